"""Typed settings from DREAMRELAY_* environment variables (or a TOML file named by DREAMRELAY_CONFIG)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Everything an operator can set. Built by callers (CLI, tests), never at import time."""

    model_config = SettingsConfigDict(env_prefix="DREAMRELAY_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None  # default: SQLite file under data_dir
    # PostgreSQL connections one process opens at most: half for the hot path's driver pool, half for
    # the rest (store/engine.py). Size max_connections for (API processes + workers) × this.
    database_connections: int = Field(default=20, ge=2, le=1000)
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None  # how customers reach us; default http://<host>:<port>

    default_model: str = "ray-v2"
    cors_origins: str = "*"
    allow_private_urls: str = ""  # CIDRs that URL safety lets through (tests, private deployments)
    # Reverse proxies (CIDRs or addresses) whose X-Forwarded-For / X-Forwarded-Proto are believed: the
    # client's address for throttles, logs and metrics. Empty: no header ever names the client.
    trusted_proxies: str = ""
    # /metrics without a token from these networks (CIDRs or addresses) besides loopback; anyone else
    # needs `Authorization: Bearer <metrics token or admin token>`.
    metrics_networks: str = ""
    metrics_token: str | None = Field(default=None, repr=False)
    max_body_bytes: int = 30 * 1024 * 1024  # two base64 images of 10 MB fit
    lean_reads: bool = True  # the hottest reads and the own submit as raw ASGI before FastAPI (http/lean.py)
    max_image_bytes: int = 10 * 1024 * 1024
    header_timeout_seconds: float = Field(default=10.0, gt=0)  # a request's headers must be complete by then
    max_connections: int = Field(default=1000, ge=0)  # open client connections per process; 0 = no cap
    # A request body still arriving must bring body_min_rate bytes a second over every span of
    # body_timeout_seconds (so a body that stalls that long ends), and be complete within
    # body_deadline_seconds; else 408 and the connection is closed (http/protocol.py).
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    body_min_rate: int = Field(default=1024, ge=0)  # bytes per second; 0: only stalls and the deadline
    body_deadline_seconds: float = Field(default=600.0, gt=0)
    # Requests in progress at once from one client address (the ASGI scope's client, which trusted
    # proxy headers set), per process; one more is a 429 (http/addresses.py). 0 = no cap.
    max_requests_per_address: int = Field(default=256, ge=0)
    input_sweep_seconds: float = 600.0  # how often a worker removes orphaned input images (0: never)
    input_grace_seconds: float = 3600.0  # an input image younger than this is never an orphan

    rate_limit_rpm: int = 600  # requests per minute per key (every client route); 0 = none
    rate_limit_batch_rpm: int = 120  # batch queries per minute per key; 0 = none
    rate_limit_in_flight: int = 50  # tasks pending or processing per key; 0 = none
    max_keys_per_account: int = Field(default=10, ge=0, le=1000)  # unless the operator set the account's
    redeem_rpm: int = Field(default=10, ge=1, le=10_000)  # code redemptions a minute, per key and per IP
    redis_url: str | None = None  # shared rate limits across processes when set
    redis_prefix: str = "dreamrelay:"  # namespace of our Redis keys (several relays may share one Redis)

    # finished tasks' bodies kept in memory for reads (0: off); batch answers joined from them take up to
    # a quarter more (body_cache.py)
    body_cache_bytes: int = 256 * 1024 * 1024
    body_cache_seconds: float = 60.0  # how long another process may still show a task deleted here
    # In-flight tasks mirrored per API process (inflight.py): at most this many (0: off), the change
    # feed read every `inflight_feed_seconds`, answered from only while its last read is at most
    # `inflight_bound_seconds` old (the staleness bound across processes).
    inflight_mirror_tasks: int = 20_000  # ≈ 4 KB each: ≈ 80 MB at the bound
    inflight_feed_seconds: float = 0.25
    inflight_bound_seconds: float = 1.0

    media_url: str | None = None  # default: <data_dir>/media; a directory path, or s3://bucket[/prefix]
    media_endpoint: str | None = None  # S3 API endpoint (MinIO, R2, …); unset means AWS by region
    media_region: str | None = None
    media_access_key_id: str | None = None  # unset: the usual AWS_* variables / instance credentials
    media_secret_access_key: str | None = Field(default=None, repr=False)
    media_serve: Literal["proxy", "presign"] = "proxy"  # stream from us, or redirect to a presigned URL
    media_presign_endpoint: str | None = None  # the endpoint as customers reach it; default media_endpoint
    media_presign_seconds: int = Field(default=900, ge=10, le=7 * 24 * 3600)

    worker_enabled: bool = True
    worker_batch_size: int = 100
    lease_seconds: float = 60.0  # claimed work is kept by a heartbeat every third of this
    shutdown_grace_seconds: float = 30.0  # on SIGTERM, work in hand may finish this long, then is released
    task_deadline_seconds: float = 3600.0
    # Longest a synchronous answer (POST /luma/generations_sync, AceData's POST /luma/videos without
    # `async` or `callback_url`) holds the connection before answering with the task as it stands.
    sync_wait_seconds: float = Field(default=300.0, ge=0, le=1800)
    # Such waits open at once per API key and per account, per process (0 = no cap); one more is a 429.
    sync_waits_per_key: int = Field(default=8, ge=0)
    sync_waits_per_account: int = Field(default=32, ge=0)
    channel_failure_threshold: int = 5  # failures in a row before a channel is benched
    channel_bench_seconds: float = 60.0  # then it is tried again (one success restores it)
    upstream_timeout_seconds: float = 30.0
    upstream_callbacks: bool = True  # give callback-capable upstreams our URL (off when they cannot reach us)
    poll_error_limit: int = 8  # failed polls in a row (or "unknown id") before a task is given up
    poll_error_base_seconds: float = 1.0  # wait after the n-th failed poll: base·2^n, at most 60 s
    batch_ride_along_seconds: float = 10.0  # a batched poll with room takes its channel's tasks due this soon

    callback_retry_base_seconds: float = 5.0  # first retry after ~5 s, doubling, capped at 1 h
    callback_give_up_seconds: float = 24 * 3600.0  # then the event is marked dead
    callback_timeout_seconds: float = 5.0
    callback_secret_grace_seconds: float = 24 * 3600.0  # old secret keeps signing after a rotation

    sandbox_enabled: bool = True
    sandbox_url: str | None = None  # a separate `dreamrelay sandbox`; default: the one mounted in `serve`
    sandbox_key: str | None = Field(default=None, repr=False)  # default: random, in <data_dir>/sandbox_key
    sandbox_queued_seconds: float = 2.0
    sandbox_dreaming_seconds: float = 5.0

    log_format: Literal["auto", "json", "text"] = "auto"  # auto: JSON lines unless stdout is a terminal
    ledger_check_seconds: float = 300.0  # workers check every account's ledger this often (0: never)

    demo_account: str = "demo"
    admin_token: str | None = Field(default=None, repr=False)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("DREAMRELAY_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @model_validator(mode="after")
    def _check_networks(self) -> Settings:
        from dreamrelay.netguard import parse_networks  # netguard imports nothing of settings

        for name in ("trusted_proxies", "metrics_networks"):
            try:
                parse_networks(getattr(self, name))
            except ValueError as exc:
                raise ValueError(
                    f"DREAMRELAY_{name.upper()}: comma-separated CIDRs or addresses ({exc})"
                ) from exc
        return self

    @model_validator(mode="after")
    def _check_media(self) -> Settings:
        url = self.media_url or ""
        if "://" in url and not url.startswith("s3://"):
            raise ValueError("DREAMRELAY_MEDIA_URL: a directory path or s3://bucket[/prefix]")
        if url.startswith("s3://") and not url[len("s3://") :].strip("/"):
            raise ValueError("DREAMRELAY_MEDIA_URL: s3:// needs a bucket name (s3://bucket[/prefix])")
        if self.media_serve == "presign" and not self.media_on_s3:
            raise ValueError("DREAMRELAY_MEDIA_SERVE=presign needs media on S3 (DREAMRELAY_MEDIA_URL=s3://…)")
        return self

    @property
    def media_on_s3(self) -> bool:
        return (self.media_url or "").startswith("s3://")

    @property
    def media_dir(self) -> Path:
        """Where local media lives (when not on S3)."""
        return Path(self.media_url) if self.media_url else self.data_dir / "media"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'dreamrelay.db').resolve()}"

    @property
    def loopback_url(self) -> str:
        """How this process reaches itself (the mounted sandbox, for one)."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or self.loopback_url).rstrip("/")

    @property
    def relay_urls(self) -> tuple[str, ...]:
        """Where this relay's own URLs lead: itself, and its bucket when /media redirects there (what
        the sandbox may reach although private)."""
        urls = [self.loopback_url, self.resolved_public_url]
        if self.media_serve == "presign":
            urls += [u for u in (self.media_presign_endpoint, self.media_endpoint) if u]
        return tuple(urls)

    @property
    def sandbox_base_url(self) -> str:
        return (self.sandbox_url or f"{self.loopback_url}/sandbox/dream-machine/v1").rstrip("/")

    @property
    def mounts_sandbox(self) -> bool:
        """The API serves the sandbox itself unless the operator points sandbox channels elsewhere."""
        return self.sandbox_enabled and self.sandbox_url is None

    @property
    def sandbox_agents_url(self) -> str:
        """The sandbox's Agents API root (…/agents/v1), beside its Dream Machine API."""
        if self.sandbox_url:
            return self.sandbox_url.rstrip("/").removesuffix("/dream-machine/v1") + "/agents/v1"
        return f"{self.loopback_url}/sandbox/agents/v1"

    @property
    def sandbox_kling_url(self) -> str:
        """The sandbox's Kling image API root (the adapter appends /v1/images/generations)."""
        if self.sandbox_url:  # a separate `dreamrelay sandbox`: …/dream-machine/v1 beside …/kling
            return self.sandbox_url.rstrip("/").removesuffix("/dream-machine/v1") + "/kling"
        return f"{self.loopback_url}/sandbox/kling"

    @property
    def sandbox_ark_url(self) -> str:
        """The sandbox's Ark API root (…/ark/api/v3), as a `seedance` channel's base URL."""
        if self.sandbox_url:
            return self.sandbox_url.rstrip("/").removesuffix("/dream-machine/v1") + "/ark/api/v3"
        return f"{self.loopback_url}/sandbox/ark/api/v3"

    def with_overrides(self, **changes: Any) -> Settings:
        return self.model_copy(update=changes)
