"""Why a task failed, as a customer may read it. The stored `failure_reason` is the operator's: it may
hold an upstream's own words, a channel's name, a host or a port. Customers (every task format, its
callbacks, the release row of their ledger, their console) see only what `public_reason` lets through:
our own reasons as they are, anything that came from an upstream as a generic sentence. Unknown text is
generic by default, so a new upstream message can never leak by being forgotten here.
"""

from __future__ import annotations

UPSTREAM_FAILED = "the upstream could not complete this task"

# Reasons DreamRelay itself writes, shown as they are (the first words are enough: some end in figures).
_OURS = (
    "deleted by the customer",
    "refunded by the operator",
    "upstream stopped answering for this task",
    "the submission to upstream was interrupted",
    "timed out: no result within ",
    "upstream's output link had expired before it could be copied",
    "upstream reported a failure without a reason",
)
# Reasons that start with our words and go on with an upstream's: only our words are shown.
_OURS_THEN_UPSTREAM = {
    "no channel can take this task": "no upstream channel could take this task",
    "upstream refused the request": "the upstream refused this request",
    "upstream did not confirm the submission": "the upstream did not confirm the submission",
    "media copy refused": "the upstream's result could not be fetched",
}


def public_reason(reason: str | None) -> str | None:
    """The failure reason a customer may read (None stays None)."""
    if reason is None:
        return None
    if reason.startswith(_OURS):
        return reason
    for prefix, shown in _OURS_THEN_UPSTREAM.items():
        if reason.startswith(prefix):
            return shown
    return UPSTREAM_FAILED
