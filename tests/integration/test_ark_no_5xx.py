"""The Ark tasks API (/api/v3, /seedance/v3) never answers 5xx, whatever JSON or query it is sent: every
create field and content item takes any JSON value (hypothesis); each answer is Ark's error shape or a
task. Bounded: too many content items is a 400."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Relay, relays_by_store

pytestmark = pytest.mark.both_stores

PATH = "/contents/generations/tasks"
FIELDS = ("model", "content", "resolution", "ratio", "duration", "fps", "seed", "camera_fixed", "watermark",
          "callback_url", "return_last_frame", "frames", "service_tier", "generate_audio")  # fmt: skip
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
ITEM = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "video_url", "x"])},
    optional={"text": JSON, "image_url": st.fixed_dictionaries({"url": JSON}) | JSON, "role": JSON},
)


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Relay]]:
    # No worker: a body that is valid makes a task that is only dispatched (nothing renders).
    with relays_by_store(tmp_path_factory.mktemp("ark-5xx"), worker_enabled=False) as relay_for:
        yield relay_for


@pytest.fixture
def relay(relays: Callable[[str], Relay], store: str) -> Relay:
    return relays(store)


def _ark_shaped(answer: Any) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert set(error) == {"code", "message", "param", "type"}


def test_any_create_body_is_never_a_5xx(relay: Relay) -> None:
    with relay.client() as client:

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            prefix=st.sampled_from(["/api/v3", "/seedance/v3"]),
            body=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6),
            items=st.lists(ITEM, max_size=3),
            text=st.text(max_size=60),
        )
        def probe(prefix: str, body: dict[str, Any], items: list[dict[str, Any]], text: str) -> None:
            sent = {
                "model": "doubao-seedance-1-0-lite-t2v-250428",
                "content": [{"type": "text", "text": text}],
            }
            sent.update(body)
            if items and "content" not in body:
                sent["content"] = [*sent["content"], *items]
            _ark_shaped(client.post(prefix + PATH, json=sent))

        probe()
        _ark_shaped(client.post("/api/v3" + PATH, content=b"{not json"))
        _ark_shaped(client.post("/api/v3" + PATH, json=[1, 2]))
        many = [{"type": "text", "text": "x"}] * 13
        assert client.post("/api/v3" + PATH, json={"model": "m", "content": many}).status_code == 400
