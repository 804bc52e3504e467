"""Media a customer names by URL (an input image, a source video), fetched through netguard.

Every refusal names the customer's field: an unsafe or unreachable URL is a 400, one too large a 413.
"""

from __future__ import annotations

import aiohttp

from dreamrelay.domain.errors import InvalidRequest, PayloadTooLarge
from dreamrelay.netguard import FetchError, UnsafeURL, URLPolicy, check_url_syntax, fetch_bytes

# How each kind of media is named when it is too large (the wording customers have always read).
_TOO_LARGE = {"image": "image is larger than", "video": "the video is larger than"}


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
    try:
        check_url_syntax(url, policy)
        data, _type = await fetch_bytes(
            session, url, policy, max_bytes=limit, timeout_seconds=timeout_seconds
        )
    except UnsafeURL as exc:
        raise InvalidRequest(f"{field}: {exc}") from exc
    except FetchError as exc:
        if exc.too_large:
            raise PayloadTooLarge(f"{field}: {_TOO_LARGE[what]} {limit} bytes") from exc
        raise InvalidRequest(f"{field}: the {what} could not be fetched ({exc})") from exc
    return data
