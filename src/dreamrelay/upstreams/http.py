"""One JSON request to an upstream, with its failures sorted into the three kinds routing cares about."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Self

import aiohttp
import orjson

from dreamrelay.domain.json_object import JsonObject
from dreamrelay.upstreams.base import (
    Endpoint,
    Probe,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamStatus,
    UpstreamUnavailable,
)


async def send_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str],
    limits: aiohttp.ClientTimeout,
    *,
    idempotent: bool | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """(status, parsed JSON or a text snippet, headers).

    A connection that never opened → UpstreamUnavailable (safe to try elsewhere). A request that was
    sent but got no answer → UpstreamOutcomeUnknown for writes (it may exist upstream), Unavailable
    for reads.
    """
    data = orjson.dumps(body) if body is not None else None
    sent_headers = {**headers, "Content-Type": "application/json"} if data is not None else headers
    try:
        async with session.request(method, url, data=data, headers=sent_headers, timeout=limits) as response:
            raw = await response.read()
            status, answer_headers = response.status, dict(response.headers)
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailable(f"cannot reach upstream: {exc}") from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        if idempotent or (idempotent is None and method == "GET"):
            raise UpstreamUnavailable(f"no answer from upstream: {exc!r}") from exc
        raise UpstreamOutcomeUnknown(f"no answer from upstream: {exc!r}") from exc
    try:
        payload = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        payload = raw[:200].decode(errors="replace")
    return status, payload, answer_headers


def detail(payload: Any) -> str:
    """The human part of an upstream error body, whatever its format."""
    if isinstance(payload, dict):
        for key in ("detail", "message", "error"):
            value = payload.get(key)
            if isinstance(value, dict):
                value = value.get("message", value)
            if value:
                return str(value)[:300]
    return str(payload)[:300]


def retry_after(headers: dict[str, str], default: float) -> float:
    try:
        return min(max(float(headers.get("Retry-After", default)), 1.0), 300.0)
    except ValueError:
        return default


def classify(status: int, payload: Any, headers: dict[str, str], *, who: str = "upstream") -> Exception:
    """An error answer as routing sees it: 429 later, 400/413/422 the request's fault, else unavailable.

    401/402/403/404 mean this channel's key or balance is the problem, not the customer's request.
    """
    message = f"{who} answered {status}: {detail(payload)}"
    if status == 429:
        return UpstreamRateLimited(message, retry_after(headers, 10.0))
    if status in (400, 413, 422):
        return UpstreamRefused(message)
    return UpstreamUnavailable(message)


def unavailable(error: Exception, prefix: str = "") -> UpstreamUnavailable:
    """A read's failure as routing sees it: whatever the answer was, this channel cannot say now."""
    if isinstance(error, UpstreamUnavailable):
        return error
    return UpstreamUnavailable(prefix + str(error))


def json_field(payload: Any, key: str) -> Any:
    """`payload[key]` of a JSON object; None for anything else."""
    return payload.get(key) if isinstance(payload, dict) else None


def created_id(
    status: int,
    payload: Any,
    headers: dict[str, str],
    found: Any,
    *,
    created: tuple[int, ...] = (200, 201),
    what: str = "a readable id",
    who: str = "upstream",
) -> str:
    """The upstream id a create call answered with (`found`, read out of `payload` by the adapter).

    A success without a readable id → UpstreamOutcomeUnknown: the generation may exist upstream.
    """
    if status in created and isinstance(found, str):
        return found
    if 200 <= status < 300:
        raise UpstreamOutcomeUnknown(f"upstream answered {status} without {what}: {detail(payload)}")
    raise classify(status, payload, headers, who=who)


def probe_at(path: str, method: str = "GET", body: Any = None) -> Callable[[Endpoint], Probe]:
    """A ChannelKind's probe: one request to `path` below the channel's base URL."""

    def probe(endpoint: Endpoint) -> Probe:
        return Probe(method, endpoint.base_url.rstrip("/") + path, body)

    return probe


def _whole(payload: Any) -> Any:
    return payload


class BearerUpstream:
    """What the HTTP adapters share: a session, Bearer headers, a timeout, and per-id polls sent at once."""

    batch_size = 1

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, api_key: str, *, timeout_seconds: float = 30
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    @property
    def _headers(self) -> dict[str, str]:
        """Each request's headers (a kind whose token expires signs a fresh one: `_bearer`)."""
        return {"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"}

    def _bearer(self) -> str:
        return self._api_key

    @classmethod
    def connect(cls, session: aiohttp.ClientSession, endpoint: Endpoint) -> Self:
        """The adapter factory of upstreams/kinds.py."""
        return cls(session, endpoint.base_url, endpoint.api_key, timeout_seconds=endpoint.timeout_seconds)

    async def poll(self, upstream_ids: Sequence[str]) -> dict[str, UpstreamStatus]:
        results = await asyncio.gather(*(self._get(i) for i in upstream_ids))
        return {i: s for i, s in zip(upstream_ids, results, strict=True) if s is not None}

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        """One id's status; None when upstream no longer knows it."""
        raise NotImplementedError

    async def _post(self, url: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        return await send_json(self._session, "POST", url, body, self._headers, self._timeout)

    async def _read(self, url: str, part: Callable[[Any], Any] = _whole) -> JsonObject | None:
        """GET `url`: the JSON object it answers (or the `part` of it the adapter names); None on 404.

        Any other answer → UpstreamUnavailable: a poll that fails says nothing about the task.
        """
        status, payload, headers = await send_json(
            self._session, "GET", url, None, self._headers, self._timeout
        )
        if status == 404:
            return None
        found = part(payload)
        if status != 200 or not isinstance(found, dict):
            raise unavailable(classify(status, payload, headers))
        return found
