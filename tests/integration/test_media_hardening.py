"""Issue 26 items 2, 10, 11, 12 and 17: the Files API and our media, tried as a hostile customer and a
stranger would.

- 2: every image the Files API takes goes through the one bounded decode (header checked first, at most
  `image_decodes` decodes at once per process);
- 10: a presigned upload's bytes are never served before `complete` has checked them, nor after it
  failed them; every /media answer says `nosniff`;
- 11: a deleted file's bytes are gone;
- 12: numbers and credentials in paths, queries and signatures are ASCII only (no 500, no
  Arabic-Indic "٣" read as 3);
- 17: an `expires_at` past year 9999 is a 400 that stores nothing, and cannot break the file list.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing

import anyio
import httpx
import pytest
from PIL import Image

from dreamrelay.domain.agent_file import AgentFile
from dreamrelay.domain.keys import Caller
from dreamrelay.runtime import Runtime
from dreamrelay.services import agent_files
from dreamrelay.services.agent_files import Declared
from dreamrelay.store import agent_files as file_store
from tests.conftest import Relay, relays_by_store
from tests.integration.test_console import csrf, signed_in
from tests.support.media import picture
from tests.support.upstreams import small_video

pytestmark = pytest.mark.both_stores

HTML = b"<html><script>alert(document.cookie)</script></html>"


def flat_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 40, 40)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def huge() -> bytes:
    return flat_png(7000)  # the image: ≈ 143 kB on the wire, 49 megapixels decoded


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_video(tmp_path_factory.mktemp("video") / "v.mp4")


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Relay]]:
    with relays_by_store(tmp_path_factory.mktemp("media-hardening")) as relay_for:
        yield relay_for


@pytest.fixture
def relay(relays: Callable[[str], Relay], store: str) -> Relay:
    return relays(store)


def customer(relay: Relay) -> httpx.Client:
    return relay.client(relay.new_key(f"c-{uuid.uuid4().hex[:8]}", balance=10_000))


def files_on_disk(relay: Relay, file_id: str) -> list[str]:
    folder = relay.settings.data_dir / "media" / "files"
    return sorted(p.name for p in folder.glob(f"{file_id}*")) if folder.exists() else []


def presigned(client: httpx.Client, mime_type: str, data: bytes) -> str:
    """A presigned file whose PUT delivered `data`; its id."""
    made = client.post("/agents/v1/files", json={"mime_type": mime_type, "size_bytes": len(data)})
    assert made.status_code == 201, made.text
    upload = made.json()["upload"]
    put = httpx.put(upload["url"], content=data, headers=upload["headers"])
    assert put.status_code == 200, put.text
    return str(made.json()["id"])


# ---- item 2: the Files API's images take the bounded decode ------------------------------------------


def test_an_oversize_image_is_refused_from_its_header_inline_and_presigned(relay: Relay, huge: bytes) -> None:
    with customer(relay) as client:
        inline = client.post("/agents/v1/files", files={"file": ("big.png", huge, "image/png")})
        assert inline.status_code == 400, inline.text
        assert inline.json() == {
            "detail": "the image cannot be decoded (image is 7000×7000 pixels; at most 4096 on a side)"
        }
        assert client.get("/agents/v1/files").json()["data"] == []

        file_id = presigned(client, "image/png", huge)
        done = client.post(f"/agents/v1/files/{file_id}/complete")
        assert done.status_code == 200, done.text
        assert (done.json()["state"], done.json()["failure_reason"]) == (
            "failed",
            "the image cannot be decoded (image is 7000×7000 pixels; at most 4096 on a side)",
        )
    assert files_on_disk(relay, file_id) == []


def test_files_api_decodes_wait_for_the_process_wide_limiter(relay: Relay) -> None:
    """With every decode slot taken, an inline upload waits for one instead of decoding beside them:
    the Files API shares the limiter of every other image intake."""

    async def scenario() -> AgentFile:
        async with Runtime.from_settings(relay.settings) as rt:
            async with rt.db.reader() as conn:
                owner = await conn.exec_driver_sql("SELECT id FROM accounts ORDER BY id LIMIT 1")
                account_id = int(owner.scalar_one())
            caller = Caller(key_id=1, account_id=account_id)
            holders = [object() for _ in range(int(rt.image_decodes.total_tokens))]
            for holder in holders:
                await rt.image_decodes.acquire_on_behalf_of(holder)
            upload = asyncio.ensure_future(
                agent_files.create_inline(rt, caller, picture(64, 64), Declared(mime_type="", size_bytes=0))
            )
            while rt.image_decodes.statistics().tasks_waiting == 0:  # noqa: ASYNC110 (nothing to await)
                await asyncio.sleep(0.01)
            assert not upload.done()  # it waits for a slot, not beside the running decodes
            for holder in holders:
                rt.image_decodes.release_on_behalf_of(holder)
            return await upload

    made = anyio.run(scenario)
    assert made.state == "ready" and made.mime_type == "image/png"


# ---- items 10 and 11: only checked, ready files are served, with nosniff; deleted bytes go ------------


def test_html_uploaded_as_a_video_is_never_served(relay: Relay) -> None:
    with customer(relay) as client:
        file_id = presigned(client, "video/mp4", HTML)
        media = httpx.get(f"{relay.url}/media/files/{file_id}.mp4")
        assert media.status_code == 404, media.text  # pending: not checked yet, not served
        assert media.headers["x-content-type-options"] == "nosniff"
        done = client.post(f"/agents/v1/files/{file_id}/complete").json()
        assert done["state"] == "failed"
        for path in (f"/media/files/{file_id}.mp4", f"/media/files/{file_id}.mp4.staged"):
            answer = httpx.get(relay.url + path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.headers["x-content-type-options"] == "nosniff"
    assert files_on_disk(relay, file_id) == []  # what failed its check is not kept


def test_a_checked_file_is_served_with_nosniff_and_its_bytes_go_when_deleted(relay: Relay) -> None:
    png = picture(96, 64)
    with customer(relay) as client:
        file_id = presigned(client, "image/png", png)
        assert client.post(f"/agents/v1/files/{file_id}/complete").json()["state"] == "ready"
        inline = client.post("/agents/v1/files", files={"file": ("a.png", png, "image/png")}).json()
        for made in (file_id, inline["id"]):
            url = f"{relay.url}/media/files/{made}.png"
            served = httpx.get(url)
            assert served.status_code == 200 and served.content == png
            assert served.headers["content-type"] == "image/png"
            assert served.headers["x-content-type-options"] == "nosniff"
            assert httpx.head(url).headers["x-content-type-options"] == "nosniff"
            assert files_on_disk(relay, made) == [f"{made}.png"]

            assert client.delete(f"/agents/v1/files/{made}").status_code == 204
            assert httpx.get(url).status_code == 404
            assert files_on_disk(relay, made) == []
            assert client.get(f"/agents/v1/files/{made}").json()["state"] == "deleted"
            assert client.delete(f"/agents/v1/files/{made}").status_code == 204  # again: still fine


def test_a_presigned_video_is_checked_from_disk_served_once_ready_and_used_as_a_source(
    relay: Relay, video: bytes
) -> None:
    with customer(relay) as client:
        file_id = presigned(client, "video/mp4", video)
        assert httpx.get(f"{relay.url}/media/files/{file_id}.mp4").status_code == 404
        done = client.post(f"/agents/v1/files/{file_id}/complete").json()
        assert done["state"] == "ready", done
        assert files_on_disk(relay, file_id) == [f"{file_id}.mp4"]
        served = httpx.get(f"{relay.url}/media/files/{file_id}.mp4")
        assert served.status_code == 200 and served.content == video
        edit = client.post(
            "/agents/v1/generations",
            json={"prompt": "blue", "type": "video_edit", "source": {"file_id": file_id}},
        )
        assert edit.status_code == 201, edit.text


def test_a_pending_file_deleted_before_complete_leaves_no_bytes(relay: Relay) -> None:
    with customer(relay) as client:
        file_id = presigned(client, "image/png", picture(32, 32))
        assert files_on_disk(relay, file_id) == [f"{file_id}.png.staged"]
        assert client.delete(f"/agents/v1/files/{file_id}").status_code == 204
        assert files_on_disk(relay, file_id) == []
        answer = client.post(f"/agents/v1/files/{file_id}/complete")
        assert answer.json()["state"] == "deleted"


def test_every_media_answer_says_nosniff(relay: Relay) -> None:
    for method, path in (
        ("GET", "/media/tasks/nope/video.mp4"),
        ("GET", "/media/anything.html"),
        ("PUT", "/media/uploads/0123456789abcdef0123456789abcdef.png?expires=1&signature=x"),
    ):
        answer = httpx.request(method, relay.url + path, content=b"x" if method == "PUT" else None)
        assert answer.status_code in (403, 404), (path, answer.text)
        assert answer.headers["x-content-type-options"] == "nosniff", path


# ---- item 12: numbers and credentials are ASCII only -----------------------------------------------


@pytest.mark.parametrize("expires", ["²", "٣", "①", "１２", "12a", "-1"])
def test_unicode_digits_in_an_upload_url_are_a_403_not_a_500(relay: Relay, expires: str) -> None:
    name = f"{uuid.uuid4().hex}.png"
    answer = httpx.put(
        f"{relay.url}/media/uploads/{name}", params={"expires": expires, "signature": "0" * 64}, content=b"x"
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["message"] == "not a valid upload URL"


def test_a_non_ascii_signature_or_token_is_refused_not_a_500(relay: Relay) -> None:
    expires = str(int(time.time()) + 600)
    for signature in ("é" * 64, "٣", "\u00a0"):
        answer = httpx.put(
            f"{relay.url}/media/uploads/{uuid.uuid4().hex}.png",
            params={"expires": expires, "signature": signature},
            content=b"x",
        )
        assert answer.status_code == 403, (signature, answer.text)
    with customer(relay) as client:
        made = client.post("/agents/v1/files", json={"mime_type": "image/png", "size_bytes": 1}).json()
    for token in ("é", "٣" * 40):
        url = f"{relay.url}/agents/v1/uploads/{made['id']}"
        answer = httpx.put(url, params={"token": token}, content=b"x")
        assert answer.status_code == 404, (token, answer.text)


def test_key_ids_in_other_scripts_are_not_found_and_delete_nothing(relay: Relay) -> None:
    with customer(relay) as client:
        made = client.post("/account/keys", json={"name": "victim"})
        assert made.status_code in (200, 201), made.text
        key_id = int(made.json()["id"])
        arabic = "٠١٢٣٤٥٦٧٨٩"
        spelled = "".join(arabic[int(d)] for d in str(key_id))
        for raw in ("²", "①", "٣", spelled, "１"):
            for method in ("DELETE", "PATCH"):
                answer = client.request(
                    method, f"/account/keys/{raw}", json={"name": "x"} if method == "PATCH" else None
                )
                assert answer.status_code == 404, (method, raw, answer.text)
                assert answer.json()["error"]["code"] == "key_not_found"
        ids = [k["id"] for k in client.get("/account/keys").json()]
        assert key_id in ids  # "٣"-style ids never reached the key


def test_a_range_header_in_other_scripts_is_ignored(relay: Relay) -> None:
    png = picture(32, 32)
    with customer(relay) as client:
        file_id = client.post("/agents/v1/files", files={"file": ("a.png", png, "image/png")}).json()["id"]
    # Headers arrive as Latin-1: "²" (0xB2) passes `str.isdigit` but not `int`.
    for header in ("bytes=²-", "bytes=-²", "bytes=0-³", "bytes=¹-²"):
        answer = httpx.get(
            f"{relay.url}/media/files/{file_id}.png", headers={b"Range": header.encode("latin-1")}
        )
        assert (answer.status_code, answer.content) == (200, png), header


# ---- item 17: expires_at is bounded --------------------------------------------------------------


@pytest.mark.parametrize("expires_at", ["9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59.999-00:01"])
def test_an_expiry_past_year_9999_is_a_400_and_stores_nothing(relay: Relay, expires_at: str) -> None:
    with customer(relay) as client:
        answer = client.post(
            "/agents/v1/files", json={"mime_type": "image/png", "size_bytes": 10, "expires_at": expires_at}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json() == {"detail": "expires_at must be a Unix time from 0 to 253402300799"}
        inline = client.post(
            "/agents/v1/files",
            files={"file": ("a.png", picture(8, 8), "image/png")},
            data={"expires_at": expires_at},
        )
        assert inline.status_code == 400, inline.text
        listed = client.get("/agents/v1/files")
        assert (listed.status_code, listed.json()["data"]) == (200, [])
        latest = client.post(
            "/agents/v1/files",
            json={"mime_type": "image/png", "size_bytes": 10, "expires_at": "9999-12-31T23:59:59Z"},
        )
        assert latest.status_code == 201, latest.text
        assert latest.json()["file"]["expires_at"] == "9999-12-31T23:59:59.000Z"


def test_a_row_stored_past_year_9999_before_the_fix_cannot_break_the_list(relay: Relay) -> None:
    with customer(relay) as client:
        made = client.post("/agents/v1/files", json={"mime_type": "image/png", "size_bytes": 10}).json()

        async def push_past_9999() -> None:
            async with Runtime.from_settings(relay.settings) as rt, rt.db.transaction() as conn:
                await file_store.update_file(conn, made["id"], "pending", {"expires_at": 253_402_318_799.0})

        asyncio.run(push_past_9999())
        listed = client.get("/agents/v1/files")
        assert listed.status_code == 200, listed.text
        assert listed.json()["data"][0]["expires_at"] == "9999-12-31T23:59:59.000Z"
        assert client.get(f"/agents/v1/files/{made['id']}").status_code == 200


def test_the_consoles_take_key_ids_in_ascii_only(relay: Relay) -> None:
    """The customer's and the operator's key pages: "٣" never reaches key 3, "²" is no 500."""
    key = relay.new_key(f"c-{uuid.uuid4().hex[:8]}", balance=10)
    with relay.client(key) as api:
        victim = api.post("/account/keys", json={"name": "victim"}).json()["id"]
    arabic = "".join("٠١٢٣٤٥٦٧٨٩"[int(d)] for d in str(victim))
    with closing(signed_in(relay, key)) as browser:
        token = csrf(browser.get("/console/me/keys"))
        for raw in ("²", "①", arabic):
            answer = browser.post(f"/console/me/keys/{raw}", data={"csrf": token, "action": "delete"})
            assert answer.status_code == 404, (raw, answer.text[:300])
    with relay.admin() as admin:
        admin_token = admin.headers["Authorization"].removeprefix("Bearer ")
    with closing(signed_in(relay, admin_token)) as operator:
        token = csrf(operator.get("/console/admin/accounts"))
        for raw in ("²", "①", arabic):
            answer = operator.post(f"/console/admin/keys/{raw}", data={"csrf": token, "action": "disable"})
            assert answer.status_code == 404, (raw, answer.text[:300])
    with relay.client(key) as api:
        mine = {k["id"]: k for k in api.get("/account/keys").json()}
    assert victim in mine and mine[victim].get("disabled") in (False, None)
