"""Composition root: the one place concrete adapters are chosen and shared resources live."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp
import anyio
from redis.asyncio import Redis

from dreamrelay.body_cache import BodyCache
from dreamrelay.domain.catalog import VIDEO
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.timings import Durations
from dreamrelay.inflight import InFlightMirror
from dreamrelay.key_cache import KeyCache
from dreamrelay.local_secrets import ensure_admin_token, ensure_sandbox_key
from dreamrelay.locks import KeyedLocks
from dreamrelay.media.storage import LocalStorage, S3Storage, Storage
from dreamrelay.netguard import IPAddress, URLPolicy, endpoints_of, guarded_session
from dreamrelay.private_files import private_dir
from dreamrelay.ratelimit import RateLimiter, create_rate_limiter
from dreamrelay.services.waiting import Waits
from dreamrelay.settings import Settings
from dreamrelay.shared_state import connect_redis, create_generations
from dreamrelay.store import tasks as task_store
from dreamrelay.store.engine import Database
from dreamrelay.upstreams import kinds
from dreamrelay.upstreams.base import Site, Upstream
from dreamrelay.upstreams.instrumented import Instrumented

INSTANCE_HEADER = "DreamRelay-Instance"
UPSTREAM_KEEPALIVE_SECONDS = 4.0
MEDIA_COPIES_AT_ONCE = 2
IMAGE_DECODES_AT_ONCE = 2
SOURCE_FETCHES_AT_ONCE = 2


@dataclass
class Runtime:
    settings: Settings
    db: Database
    storage: Storage
    url_policy: URLPolicy
    limiter: RateLimiter
    waits: Waits = field(default_factory=lambda: Waits(per_key=0, per_account=0))  # synchronous answers
    key_cache: KeyCache = field(default_factory=KeyCache)
    body_cache: BodyCache = field(default_factory=lambda: BodyCache(0))
    inflight: InFlightMirror = field(default_factory=lambda: InFlightMirror(0))  # fed by the API's lifespan
    durations: Durations = field(default_factory=Durations)  # how long tasks take, for polling
    redis: Redis | None = None  # shared by the rate limiter and the cache generations
    wake_worker: asyncio.Event = field(default_factory=asyncio.Event)
    wake_deliverer: asyncio.Event = field(default_factory=asyncio.Event)
    background: set[asyncio.Task[None]] = field(default_factory=set)  # awaited on close
    # Copying finished media is mostly probing (CPU): more at once than the cores only queues it.
    media_copies: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MEDIA_COPIES_AT_ONCE))
    # Decoding an image takes its full pixel size in memory: only this many at once per process.
    image_decodes: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(IMAGE_DECODES_AT_ONCE)
    )
    # Customers' source videos fetched by URL: each streams to a scratch file; only this many at once.
    source_fetches: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(SOURCE_FETCHES_AT_ONCE)
    )
    sources_fetching: Counter[int] = field(default_factory=Counter)  # per key, while fetching
    finishing: set[str] = field(default_factory=set)  # tasks whose media this process is copying now
    callback_locks: KeyedLocks = field(default_factory=KeyedLocks)  # one upstream report at a time per task
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # this process, in lease owners
    _upstream_session: aiohttp.ClientSession | None = None
    _guarded_session: aiohttp.ClientSession | None = None
    _admin_token: str | None = None
    _sandbox_key: str | None = None
    _sandbox_endpoints: list[tuple[IPAddress, int]] | None = None
    _policy_sessions: dict[URLPolicy, aiohttp.ClientSession] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        private_dir(settings.data_dir)
        redis = connect_redis(settings.redis_url) if settings.redis_url else None
        db = Database(settings.resolved_database_url, connections=settings.database_connections)
        return cls(
            settings=settings,
            db=db,
            inflight=InFlightMirror(
                settings.inflight_mirror_tasks,
                interval=settings.inflight_feed_seconds,
                bound=settings.inflight_bound_seconds,
                lookback=task_store.feed_lookback(db.is_sqlite),
            ),
            storage=_storage(settings),
            url_policy=URLPolicy.from_setting(settings.allow_private_urls),
            body_cache=BodyCache(settings.body_cache_bytes, settings.body_cache_seconds),
            limiter=create_rate_limiter(redis, settings.redis_prefix),
            key_cache=KeyCache(create_generations(redis, settings.redis_prefix)),
            redis=redis,
            waits=Waits(per_key=settings.sync_waits_per_key, per_account=settings.sync_waits_per_account),
        )

    @property
    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token, _created = ensure_admin_token(self.settings)
        return self._admin_token

    @property
    def sandbox_key(self) -> str:
        if self._sandbox_key is None:
            self._sandbox_key = ensure_sandbox_key(self.settings)
        return self._sandbox_key

    @property
    def media_base_url(self) -> str:
        return f"{self.settings.resolved_public_url}/media"

    @property
    def upstream_session(self) -> aiohttp.ClientSession:
        """For operator-configured upstreams (not subject to customer URL checks)."""
        if self._upstream_session is None:
            # An idle connection is dropped after 4 s, before common servers drop theirs (uvicorn's and
            # Node's 5 s): a submit sent on a connection the upstream is closing has an unknown outcome,
            # so it fails the task instead of being retried.
            connector = aiohttp.TCPConnector(
                limit=256, limit_per_host=64, ttl_dns_cache=300, keepalive_timeout=UPSTREAM_KEEPALIVE_SECONDS
            )
            # The instance header lets an upstream (and our soak test) tell our processes apart.
            self._upstream_session = aiohttp.ClientSession(
                connector=connector, headers={INSTANCE_HEADER: self.instance}
            )
        return self._upstream_session

    @property
    def guarded_session(self) -> aiohttp.ClientSession:
        """For URLs customers give us (images, callbacks): every address checked by netguard."""
        if self._guarded_session is None:
            self._guarded_session = guarded_session(self.url_policy)
        return self._guarded_session

    def guarded_session_for(self, policy: URLPolicy) -> aiohttp.ClientSession:
        """A URL-safety session for a policy other than the customers' (one per policy, kept)."""
        if policy == self.url_policy:
            return self.guarded_session
        if policy not in self._policy_sessions:
            self._policy_sessions[policy] = guarded_session(policy)
        return self._policy_sessions[policy]

    async def sandbox_endpoints(self) -> list[tuple[IPAddress, int]]:
        """The listener(s) of the sandbox that sandbox channels use (resolved once)."""
        if self._sandbox_endpoints is None:
            self._sandbox_endpoints = await endpoints_of(self.settings.sandbox_base_url)
        return self._sandbox_endpoints

    def calls_back(self, upstream: Upstream) -> bool:
        """Whether tasks sent through `upstream` get our callback URL (polling stays the safety net)."""
        return self.settings.upstream_callbacks and upstream.takes_callbacks

    def upstream_for(self, channel: Channel, *, capability: str = VIDEO) -> Upstream:
        """The adapter that makes `capability` (a task's: `Task.capability`) through `channel`,
        from the registry of kinds (upstreams/kinds.py); ValueError when its kind cannot. Every call
        through it is counted, timed and traced under the channel's name."""
        adapter = kinds.adapter(self.upstream_session, self.site, channel, capability)
        return Instrumented(adapter, channel.name)

    @property
    def site(self) -> Site:
        """What the registry of kinds builds endpoints from (upstreams/kinds.py)."""
        return Site(self.settings, self.sandbox_key)

    async def close(self) -> None:
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)
        for session in (self._upstream_session, self._guarded_session, *self._policy_sessions.values()):
            if session is not None:
                await session.close()
        self._upstream_session = self._guarded_session = None
        self._policy_sessions.clear()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _storage(settings: Settings) -> Storage:
    if settings.media_url and settings.media_on_s3:
        return S3Storage(
            settings.media_url,
            endpoint=settings.media_endpoint,
            region=settings.media_region,
            access_key_id=settings.media_access_key_id,
            secret_access_key=settings.media_secret_access_key,
            presign_endpoint=settings.media_presign_endpoint,
        )
    return LocalStorage(settings.media_dir)
