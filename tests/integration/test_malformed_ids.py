"""Issue 12 item 6: a malformed id (NUL, control characters, too long, outside the id alphabet) is a 404 in
the route family's own error shape on every route that takes one, on PostgreSQL as on SQLite (asyncpg
refused NUL with CharacterNotInRepertoireError: a 500 and a traceback per request)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, start_relay
from tests.integration.test_console import signed_in

pytestmark = pytest.mark.both_stores

# Percent-encoded as a client would send them in a path.
MALFORMED = ["a%00b", "%00", "a%01b", "a%1Fb", "a%7Fb", "a" * 65, "t%C3%A9st", "a%20b", "a'b", "a.b"]


def _own_404(answer: httpx.Response) -> None:
    assert answer.status_code == 404, (answer.request.url, answer.status_code, answer.text)
    assert answer.json()["error"]["code"] in ("task_not_found", "not_found"), answer.text


def _official_404(answer: httpx.Response) -> None:
    assert answer.status_code == 404, (answer.request.url, answer.status_code, answer.text)
    assert set(answer.json()) == {"detail"}, answer.text


def test_malformed_ids_are_404_in_each_family_shape(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay, relay.client() as client, relay.admin() as admin:
        anonymous = httpx.Client(base_url=relay.url, timeout=30)
        for bad in MALFORMED:
            _own_404(client.get(f"/luma/generations/{bad}"))
            _own_404(client.get(f"/luma/generations/{bad}/download_video_url"))
            _own_404(client.post(f"/luma/generations/{bad}/extend", json={"user_prompt": "on"}))
            _official_404(client.get(f"/dream-machine/v1/generations/{bad}"))
            _official_404(client.delete(f"/dream-machine/v1/generations/{bad}"))
            _own_404(client.get(f"/kling/v1/images/generations/{bad}"))
            _own_404(admin.get(f"/admin/tasks/{bad}"))
            _own_404(admin.post(f"/admin/tasks/{bad}/repoll"))
            _own_404(admin.post(f"/admin/tasks/{bad}/refund"))
            _own_404(anonymous.post(f"/upstream/callbacks/{bad}/x", json={"id": "x"}))
            _own_404(anonymous.post(f"/upstream/callbacks/{relay.key[:8]}/{bad}", content=b"not json"))
            assert client.get(f"/media/tasks/{bad}/video.mp4").status_code == 404
        anonymous.close()

        # The batch query leaves malformed ids out, like unknown ones.
        for bad in ("a\u0000b", "a\u0001b", "a" * 65, "tést"):
            answer = client.post("/luma/tasks", json={"ids": [bad]})
            assert answer.status_code == 200 and answer.json() == [], answer.text

        # Official keyframes naming a malformed generation: the family's 400, never a 500.
        answer = client.post(
            "/dream-machine/v1/generations",
            json={"prompt": "x", "keyframes": {"frame0": {"type": "generation", "id": "a\u0000b"}}},
        )
        assert answer.status_code == 400 and set(answer.json()) == {"detail"}, answer.text

        # NUL elsewhere: in a query string (400), in a JSON string (400), in other path names (404).
        assert admin.get("/admin/ledger", params={"task_id": "a\u0000b"}).status_code == 400
        assert client.get("/account/deliveries", params={"task_id": "a\u0000b"}).status_code == 400
        made = admin.post("/admin/keys", json={"account": "demo", "name": "a\u0000b"})
        assert made.status_code == 400 and made.json()["error"]["code"] == "invalid_request"
        _own_404(admin.get("/admin/accounts/a%00b"))
        _own_404(admin.patch("/admin/channels/a%00b", json={"enabled": True}))

        # The console answers its own 404 page.
        for secret, page in ((relay.key, "/console/me/tasks/"), (None, "/console/admin/tasks/")):
            with relay.admin() as holder:
                token = str(holder.headers["Authorization"]).removeprefix("Bearer ")
            browser = signed_in(relay, secret or token)
            try:
                for bad in MALFORMED:
                    answer = browser.get(page + bad)
                    assert answer.status_code == 404, (page, bad, answer.status_code)
                    assert answer.headers["content-type"].startswith("text/html")
            finally:
                browser.close()
