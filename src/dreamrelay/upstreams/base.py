"""What every upstream adapter offers, and the only exceptions it may raise."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from dreamrelay.domain.catalog import models_of
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.requests import PriceKey, SubmitRequest
from dreamrelay.domain.states import TaskState

if TYPE_CHECKING:
    import aiohttp

    from dreamrelay.settings import Settings


@dataclass(frozen=True)
class UpstreamStatus:
    state: TaskState
    video_url: str | None = None
    image_urls: tuple[str, ...] = ()
    failure_reason: str | None = None
    raw_state: str | None = None
    failure_code: str | None = None  # the Agents API's machine-readable reason of a failure
    usage_tokens: int | None = None  # what upstream says the task used (Ark's usage.completion_tokens)


class UpstreamRefused(Exception):
    """Upstream understood and rejected the request (4xx): no retry elsewhere, the customer is told."""


class UpstreamUnavailable(Exception):
    """Upstream could not take the request (429, 5xx, connection error before acceptance): try another."""


class UpstreamRateLimited(UpstreamUnavailable):
    """Upstream said 429: not a failure of the task, just "later"."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamOutcomeUnknown(Exception):
    """The request was sent but no answer came back: it may or may not exist upstream. Never resend."""


class Upstream(Protocol):
    batch_size: int  # how many ids one poll() call may carry
    takes_callbacks: bool  # whether it calls the URL given in request.callback_url

    async def submit(self, request: SubmitRequest) -> str:
        """Create the generation upstream; return its upstream id."""
        ...

    async def poll(self, upstream_ids: Sequence[str]) -> dict[str, UpstreamStatus]:
        """Current status of each id; ids upstream no longer knows are left out."""
        ...

    async def cancel(self, upstream_id: str) -> None:
        """Best effort: stop (and forget) the generation upstream; errors are the caller's to log."""
        ...


@dataclass(frozen=True)
class Endpoint:
    """Where an adapter connects and how it signs in."""

    base_url: str
    api_key: str
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Probe:
    """One cheap authenticated request that tells whether a channel works (200 = it does)."""

    method: str
    url: str
    body: Any = None


AdapterFactory = Callable[["aiohttp.ClientSession", Endpoint], Upstream]
# What upstream posted to our callback URL, read as a status if it describes generation `upstream_id`
# (the task's); None when it does not.
ReportReader = Callable[[Any, str], UpstreamStatus | None]
# A finished task's stored request and its video's real length in seconds → the price key it used.
UsedPrice = Callable[[Mapping[str, Any], float], PriceKey]


@dataclass(frozen=True)
class Site:
    """What an endpoint may depend on besides its channel: the settings, this data directory's sandbox key."""

    settings: Settings
    sandbox_key: str


def channel_endpoint(channel: Channel, site: Site, capability: str) -> Endpoint:
    """The channel's own base URL and key, with the operator's upstream timeout."""
    return Endpoint(channel.base_url, channel.secret_key, site.settings.upstream_timeout_seconds)


@dataclass(frozen=True)
class ChannelKind:
    """One kind of upstream channel, as it declares itself: what it makes (a capability each, with the
    adapter that makes it), which of those outputs sit behind links that expire, where its media may be
    fetched from when that is not the open internet, its price keys, and how to test a channel. Routing,
    the worker's choice of adapter and the follow-up read these; no service names a kind."""

    name: str
    adapters: Mapping[str, AdapterFactory]  # capability (domain/catalog.py: VIDEO, IMAGE…) → adapter
    probe: Callable[[Endpoint], Probe]  # given the endpoint of its first capability
    needs_base_url: bool = True
    endpoint: Callable[[Channel, Site, str], Endpoint] = channel_endpoint
    # Capabilities whose output links expire (presigned): a dead link fails the task, never retried.
    expiring_links: frozenset[str] = frozenset()
    # The sandbox's own kinds: its media only from these URL prefixes (per capability) on the sandbox's
    # listener. None: media comes from wherever URL safety lets it (the operator's policy).
    own_media: Callable[[Settings, str], str] | None = None
    # What prices its tasks (domain/requests.py::PriceKey fields the price list matches on).
    price_keys: tuple[str, ...] = ("resolution", "duration")
    # Its media URLs (under the channel's base URL) need the channel's key, as an OpenAI Videos server's
    # `content` does; the key goes to that first URL only, never after a redirect.
    media_key: bool = False
    # Per capability, how to read what its upstream posts to our callback URL (adapters whose
    # `takes_callbacks` is True need one; services/upstream_callbacks.py reads it).
    reports: Mapping[str, ReportReader] = field(default_factory=dict)
    # Per capability whose tasks are charged by what they delivered, not only by what was asked: the
    # price key of what a finished task used (domain/requests.py::used_price_key: Kling's mode and the
    # clip's real length); the rest of the hold goes back in the same settlement.
    priced_by_use: Mapping[str, UsedPrice] = field(default_factory=dict)

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.adapters)

    @property
    def models(self) -> tuple[str, ...]:
        """The catalog's models this kind serves (each catalog model names its kinds)."""
        return models_of(self.name)
