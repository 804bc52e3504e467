"""Operator commands (`dreamrelay accounts|keys|prices|ledger|usage|deliveries|channels|tasks|codes …`), over
the admin services: one module per noun, `common.py` for what they share.

Each prints a short table, or JSON with --json; errors print one line and exit 1.
"""

from __future__ import annotations

import typer

from dreamrelay.admin_cli import accounts, channels, codes, deliveries, keys, ledger, prices, tasks
from dreamrelay.admin_cli.usage import usage


def register(app: typer.Typer) -> None:
    app.add_typer(channels.app, name="channels")
    app.add_typer(tasks.app, name="tasks")
    app.add_typer(accounts.app, name="accounts")
    app.add_typer(keys.app, name="keys")
    app.add_typer(prices.app, name="prices")
    app.add_typer(ledger.app, name="ledger")
    app.add_typer(deliveries.app, name="deliveries")
    app.add_typer(codes.app, name="codes")
    app.command("usage")(usage)
