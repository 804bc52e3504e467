"""This round's create routes (/v1/videos, Ark's tasks under /api/v3 and /seedance/v3, Kling's text2video
and image2video) with the three hostile values in every field they read — 2^63, a NUL byte, a 10 MB
string: a clear 4xx in the family's JSON shape, never a 5xx, and nothing charged or created (both
stores)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Relay, relays_by_store

pytestmark = pytest.mark.both_stores

SEEDANCE = "doubao-seedance-1-0-lite-t2v-250428"


def _png() -> str:
    out = io.BytesIO()
    Image.new("RGB", (640, 640), (40, 120, 200)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


PNG = _png()
ROUTES: dict[str, dict[str, Any]] = {
    "/v1/videos": {"model": "ray-2", "prompt": "a fox", "seconds": "5", "size": "1280x720"},
    "/api/v3/contents/generations/tasks": {
        "model": SEEDANCE,
        "content": [{"type": "text", "text": "a fox"}],
        "duration": 5,
        "resolution": "480p",
    },
    "/seedance/v3/contents/generations/tasks": {
        "model": SEEDANCE,
        "content": [{"type": "text", "text": "x"}],
    },
    "/kling/v1/videos/text2video": {
        "prompt": "a fox",
        "model_name": "kling-v1-6",
        "duration": "5",
        "mode": "std",
    },
    "/kling/v1/videos/image2video": {"image": PNG, "model_name": "kling-v1-6"},
}
HOSTILE = {"2^63": 2**63, "NUL": "a\x00b", "10 MB": "x" * (10 * 1024 * 1024)}


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Relay]]:
    with relays_by_store(tmp_path_factory.mktemp("bounded"), worker_enabled=False) as relay_for:
        yield relay_for


def _balance_and_tasks(relay: Relay, account: str) -> tuple[int, list[Any]]:
    with relay.admin() as admin:
        balance = int(admin.get(f"/admin/accounts/{account}").json()["balance"])
        return balance, admin.get("/admin/tasks", params={"account": account}).json()


@pytest.mark.parametrize("path", list(ROUTES))
def test_hostile_values_in_every_field_are_a_clear_4xx(
    relays: Callable[[str], Relay], store: str, path: str
) -> None:
    relay = relays(store)
    wrong = []
    with relay.client() as client:
        # The body as it stands is accepted: each refusal below is the hostile value's.
        accepted = client.post(path, json=ROUTES[path])
        assert accepted.status_code == 200, accepted.text[:300]
    # The hostile bodies come from an account of their own: the accepted tasks of this module settle
    # (the sandbox calls back) whenever they finish, on the demo account.
    account = f"hostile-{path.strip('/').replace('/', '-')}"
    with relay.client(relay.new_key(account, balance=100_000)) as client:
        for field in ROUTES[path]:
            for name, value in HOSTILE.items():
                body = {**ROUTES[path], field: value}
                if field == "content":  # Ark's text item carries the value
                    body[field] = [{"type": "text", "text": value}]
                answer = client.post(path, json=body)
                shaped = answer.headers.get("content-type", "").startswith("application/json")
                if not (400 <= answer.status_code < 500 and shaped and answer.json()):
                    wrong.append((field, name, answer.status_code, answer.text[:160]))
    assert wrong == []
    assert _balance_and_tasks(relay, account) == (100_000, [])  # nothing held, nothing created
