"""A JSON object whose keys a wire format decides, not we: a body a client or an upstream sent (before it is
checked), a body we send an upstream, an answer in one of the API families' formats, a task's stored
request and media (the row's JSON columns, as each format reads them), an OpenAPI schema.

Anything of ours with a fixed set of fields is a dataclass or a `TypedDict` instead (rows of the store,
the admin and account answers, the sandbox's generation records); this alias is for the JSON itself.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]
