"""What the sandbox's three APIs share: its configuration, its error, and the core every API sits on (the
files directory, the render limiter and locks, the guarded HTTP session and fetching through it).

`generations.py` (the official API) extends the core; `kling.py`, `agents.py` and `dream_machine.py` take it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import aiohttp
import anyio
import orjson

from dreamrelay import netguard
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.netguard import URLPolicy
from dreamrelay.private_files import private_dir

log = logging.getLogger(__name__)

PARALLEL_RENDERS = 2


@dataclass(frozen=True)
class SandboxConfig:
    data_dir: Path
    api_key: str
    queued_seconds: float = 2.0
    dreaming_seconds: float = 5.0
    output_url_seconds: float = 3600.0  # how long an Agents API output URL stays valid
    # Where the sandbox's own requests (keyframe images, callbacks) may go: URL safety's rules, plus
    # these networks, plus the listeners of `relay_urls` (the relay it serves: its /media and
    # /upstream/callbacks). Nothing else private or loopback.
    url_policy: URLPolicy = field(default_factory=URLPolicy)
    relay_urls: tuple[str, ...] = ()
    # Answer only requests from this machine that did not come through a proxy (the mounted sandbox).
    loopback_only: bool = False


@dataclass(kw_only=True)
class GenerationRecord:
    """One generation of the official API as the sandbox keeps it (a JSON file per generation, its fields
    in this order); its driver changes it as the generation moves."""

    id: str
    state: str
    failure_reason: str | None
    created_at: float  # unix seconds
    model: str
    request: JsonObject  # the request as the API echoes it (and `parent` for upscale and audio)
    video: str | None  # the output files' names
    image: str | None
    base_url: str  # where its file links point unless a read names another
    stalled: bool = False  # records written before it existed lack it
    api: str | None = None  # made through another of the sandbox's APIs ("openai-videos"), else None


class RecordChange(TypedDict, total=False):
    """What a generation's driver changes of its record."""

    state: str
    failure_reason: str | None
    video: str | None
    image: str | None
    stalled: bool


class SandboxError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class SandboxCore:
    """The files directory, renders in parallel at most `PARALLEL_RENDERS`, one lock per render, the
    guarded session, and the official API's generations by id (Dream Machine actions read their parents)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.files_dir = config.data_dir / "files"
        self.records: dict[str, GenerationRecord] = {}
        self.render_locks: dict[str, asyncio.Lock] = {}
        self.limiter = anyio.CapacityLimiter(PARALLEL_RENDERS)
        self.session: aiohttp.ClientSession | None = None
        self.url_policy = config.url_policy

    async def start(self) -> None:
        for folder in (self.config.data_dir, self.files_dir):  # owner-only, as the data directory
            private_dir(folder)
        for url in self.config.relay_urls:
            self.url_policy = self.url_policy.with_endpoints(await netguard.endpoints_of(url))
        self.session = netguard.guarded_session(self.url_policy)

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def callback(self, url: str, payload: JsonObject) -> None:
        """A callback as the sandbox's APIs send one (the official API's and Kling's way): up to 3 retries
        100 ms apart, 5 s timeout each, unsigned."""
        assert self.session is not None
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json"}
        for _attempt in range(4):
            try:
                status, _seconds = await netguard.post_json(
                    self.session, url, body, headers, self.url_policy, timeout_seconds=5
                )
            except netguard.UnsafeURL:
                log.info("sandbox: callback to %s refused by URL safety", url[:200])
                return
            except netguard.FetchError:
                status = 0
            if status == 200:
                return
            await asyncio.sleep(0.1)

    async def fetch_image(self, url: str, max_bytes: int, what: str) -> bytes:
        """GET an image through URL safety. One message for every failure: a caller learns nothing
        about which hosts or ports exist (the reason goes to the log only)."""
        assert self.session is not None
        try:
            data, _type = await netguard.fetch_bytes(self.session, url, self.url_policy, max_bytes=max_bytes)
        except (netguard.UnsafeURL, netguard.FetchError) as exc:
            log.info("sandbox: %s %s not fetched: %s", what, url[:200], exc)
            raise RuntimeError(f"{what} could not be fetched") from None
        return data
