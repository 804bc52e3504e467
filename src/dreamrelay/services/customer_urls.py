"""Media a customer names by URL (an input image, a source video), fetched through netguard.

Every refusal names the customer's field: an unsafe or unreachable URL is a 400, one too large a 413.
Images are small (`max_image_bytes`) and fetched into memory; a source video may be hundreds of MB, so
it goes to a scratch file a chunk at a time, and only `source_fetches` of them run at once per process.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import aiohttp
import anyio

from dreamrelay.domain.errors import InvalidRequest, PayloadTooLarge
from dreamrelay.netguard import (
    FetchError,
    UnsafeURL,
    URLPolicy,
    check_url_syntax,
    fetch_bytes,
    fetch_to_file,
)

# How each kind of media is named when it is too large (the wording customers have always read).
_TOO_LARGE = {"image": "image is larger than", "video": "the video is larger than"}


class Collaborators(Protocol):
    url_policy: URLPolicy
    # Source videos fetched at once in this process, whatever the number of requests: each holds a
    # scratch file of up to its limit and a connection to the customer's server.
    source_fetches: anyio.CapacityLimiter

    @property
    def guarded_session(self) -> aiohttp.ClientSession: ...


async def fetch(
    session: aiohttp.ClientSession,
    policy: URLPolicy,
    field: str,
    url: str,
    *,
    what: str,
    limit: int,
    timeout_seconds: float = 20,
) -> bytes:
    """At most `limit` bytes of `url` (`what` it should be: "image" or "video")."""
    with _refusals(field, what, limit):
        check_url_syntax(url, policy)
        data, _type = await fetch_bytes(
            session, url, policy, max_bytes=limit, timeout_seconds=timeout_seconds
        )
    return data


@contextlib.asynccontextmanager
async def fetched_video(
    rt: Collaborators, field: str, url: str, *, limit: int, timeout_seconds: float = 60
) -> AsyncIterator[Path]:
    """The video at `url` in a scratch file for the block (removed after it): at most `limit` bytes,
    streamed to disk, one of the process's `source_fetches` held until the block ends."""
    with _refusals(field, "video", limit):
        check_url_syntax(url, rt.url_policy)
    async with rt.source_fetches:
        with tempfile.TemporaryDirectory(prefix="dreamrelay-source-") as scratch:
            path = Path(scratch) / "source.mp4"
            with _refusals(field, "video", limit):
                await fetch_to_file(
                    rt.guarded_session,
                    url,
                    rt.url_policy,
                    path,
                    max_bytes=limit,
                    timeout_seconds=timeout_seconds,
                )
            yield path


@contextlib.contextmanager
def _refusals(field: str, what: str, limit: int) -> Iterator[None]:
    try:
        yield
    except UnsafeURL as exc:
        raise InvalidRequest(f"{field}: {exc}") from exc
    except FetchError as exc:
        if exc.too_large:
            raise PayloadTooLarge(f"{field}: {_TOO_LARGE[what]} {limit} bytes") from exc
        raise InvalidRequest(f"{field}: the {what} could not be fetched ({exc})") from exc
