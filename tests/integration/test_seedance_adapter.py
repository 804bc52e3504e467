"""The `seedance` kind's adapter against the sandbox's Ark tasks API over loopback HTTP: the body it
sends, the statuses and usage it reads, cancel, and its failures sorted the way routing needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from dreamrelay.domain.catalog import SEEDANCE, SEEDANCE_MODELS
from dreamrelay.domain.requests import SeedanceRequest, VideoRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.sandbox.app import create_sandbox_app
from dreamrelay.sandbox.core import SandboxConfig
from dreamrelay.upstreams.base import Endpoint, UpstreamRefused, UpstreamStatus, UpstreamUnavailable
from dreamrelay.upstreams.kinds import KINDS
from dreamrelay.upstreams.seedance import SeedanceUpstream
from tests.support.live_server import live_server

KEY = "ark-key"
MODEL = "doubao-seedance-1-0-pro-250528"


def sandbox(tmp_path: Path, queued: float) -> Iterator[str]:
    config = SandboxConfig(data_dir=tmp_path, api_key=KEY, queued_seconds=queued, dreaming_seconds=0.0)
    with live_server(create_sandbox_app(config)) as url:
        yield url + "/ark/api/v3"


@pytest.fixture
def ark(tmp_path: Path) -> Iterator[str]:
    yield from sandbox(tmp_path, 0.0)


@pytest.fixture
def slow_ark(tmp_path: Path) -> Iterator[str]:
    yield from sandbox(tmp_path, 60.0)


def request(prompt: str = "a kite", **changes: object) -> SeedanceRequest:
    values: dict[str, object] = {"prompt": prompt, "model": MODEL, "resolution": "480p", "ratio": "16:9"}
    return SeedanceRequest(**{"duration": 2, **values, **changes})  # type: ignore[arg-type]


async def until_done(upstream: SeedanceUpstream, upstream_id: str) -> UpstreamStatus:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = (await upstream.poll([upstream_id]))[upstream_id]
        if status.state.is_terminal:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("task did not finish")


def test_the_kind_declares_seedance_and_the_catalog_its_models() -> None:
    kind = KINDS["seedance"]
    assert kind.capabilities == frozenset({SEEDANCE})
    assert set(kind.models) == set(SEEDANCE_MODELS)
    assert SEEDANCE in KINDS["sandbox"].capabilities
    assert {"doubao-seedance-1-5-pro-251215", "doubao-seedance-2-0-260128"} <= set(SEEDANCE_MODELS)


def test_submit_poll_and_usage(ark: str) -> None:
    asyncio.run(_submit_poll_and_usage(ark))


async def _submit_poll_and_usage(ark: str) -> None:
    async with aiohttp.ClientSession() as session:
        upstream = SeedanceUpstream.connect(session, Endpoint(ark, KEY))
        upstream_id = await upstream.submit(request(return_last_frame=True, seed=9))
        assert upstream_id.startswith("cgt-")
        status = await until_done(upstream, upstream_id)
        assert status.state is TaskState.COMPLETED and status.raw_state == "succeeded"
        assert status.usage_tokens == 864 * 480 * 24 * 2 // 1024
        assert status.video_url is not None
        async with session.get(status.video_url) as answer:
            assert answer.status == 200 and (await answer.read())[4:8] == b"ftyp"


def test_failures_and_refusals(ark: str) -> None:
    asyncio.run(_failures_and_refusals(ark))


async def _failures_and_refusals(ark: str) -> None:
    async with aiohttp.ClientSession() as session:
        upstream = SeedanceUpstream.connect(session, Endpoint(ark, KEY))
        failed = await until_done(upstream, await upstream.submit(request("x [sandbox:fail]")))
        assert failed.state is TaskState.FAILED
        assert failed.failure_code == "OutputVideoSensitiveContentDetected"
        expired = await until_done(upstream, await upstream.submit(request("x [sandbox:expire]")))
        assert (expired.state, expired.raw_state) == (TaskState.FAILED, "expired")
        with pytest.raises(UpstreamRefused):
            await upstream.submit(request("x [sandbox:reject]"))
        with pytest.raises(UpstreamUnavailable):
            await upstream.submit(request("x [sandbox:error]"))
        with pytest.raises(UpstreamRefused):
            await upstream.submit(VideoRequest("x", "ray-v2", "16:9", "720p", "5s"))
        assert await upstream.poll(["cgt-unknown"]) == {}
        wrong_key = SeedanceUpstream.connect(session, Endpoint(ark, "nope"))
        with pytest.raises(UpstreamUnavailable):
            await wrong_key.submit(request())


def test_cancel_a_queued_task(slow_ark: str) -> None:
    asyncio.run(_cancel_a_queued_task(slow_ark))


async def _cancel_a_queued_task(slow_ark: str) -> None:
    async with aiohttp.ClientSession() as session:
        upstream = SeedanceUpstream.connect(session, Endpoint(slow_ark, KEY))
        upstream_id = await upstream.submit(request())
        assert (await upstream.poll([upstream_id]))[upstream_id].state is TaskState.PENDING
        await upstream.cancel(upstream_id)
        status = (await upstream.poll([upstream_id]))[upstream_id]
        assert (status.state, status.raw_state) == (TaskState.FAILED, "cancelled")
        assert status.failure_reason == "the task was cancelled upstream"
