"""The operator's `dreamrelay usage`: tasks and credits per account and model."""

from __future__ import annotations

from typing import Any

from dreamrelay.admin_cli.common import AccountOption, JsonOption, SinceOption, emit, rows, run, when
from dreamrelay.services import admin


def usage(
    account: AccountOption = None,
    since: SinceOption = None,
    until: SinceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tasks and credits per account and model."""
    data = run(lambda rt: admin.usage(rt, account=account, since=when(since), until=when(until)))

    def text(d: list[dict[str, Any]]) -> str:
        flat = [{**r, **r["tasks"]} for r in d]
        columns = ["account", "model", "completed", "failed", "pending", "processing", "credits_charged"]
        return rows(flat, [*columns, "credits_held"])

    emit(data, as_json, text)
