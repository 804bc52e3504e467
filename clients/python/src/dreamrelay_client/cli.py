"""`dreamrelay-client`: submit (with progress bars), status, watch, balance, redeem, download.

Key and base URL from --api-key / --base-url or DREAMRELAY_API_KEY / DREAMRELAY_BASE_URL. With --json
every command prints JSON on stdout (watch: one JSON array per refresh); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from dreamrelay_client import errors
from dreamrelay_client.client import Client
from dreamrelay_client.models import Task

try:
    from rich.console import Console
    from rich.live import Live
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )
    from rich.table import Table
except ImportError:  # pragma: no cover - the library works without it; the command needs it
    sys.exit("dreamrelay-client's command line needs rich: pip install 'dreamrelay-client[cli]'")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the flags may come before or after the command without one overriding the other.
    common.add_argument("--api-key", default=argparse.SUPPRESS, help="default: $DREAMRELAY_API_KEY")
    common.add_argument("--base-url", default=argparse.SUPPRESS, help="default: $DREAMRELAY_BASE_URL")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    parser = argparse.ArgumentParser(prog="dreamrelay-client", parents=[common], description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", parents=[common], help="submit a video task")
    submit.add_argument("prompt")
    submit.add_argument("--image", help="start image: a file (JPEG/PNG) or a URL")
    submit.add_argument("--end-image", help="end image: a file or a URL")
    submit.add_argument("--model", help="ray-v2 (default), ray-flash-2, ray-v1")
    submit.add_argument("--resolution", help="540p, 720p, 1080p, 4k")
    submit.add_argument("--duration", help="5s or 9s")
    submit.add_argument("--aspect-ratio", help="16:9, 1:1, 9:16, …")
    submit.add_argument("--callback-url", help="where DreamRelay POSTs state changes")
    submit.add_argument("--wait", action="store_true", help="wait until it is finished")
    submit.add_argument("--download", metavar="FILE", help="wait, then save the video here")
    submit.add_argument("--timeout", type=float, default=900.0, help="give up waiting after (s)")

    status = commands.add_parser("status", parents=[common], help="tasks by id, as a table")
    status.add_argument("ids", nargs="+", metavar="ID")

    watch = commands.add_parser("watch", parents=[common], help="live table of the account's running tasks")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    watch.add_argument("--once", action="store_true", help="one refresh, then exit")

    download = commands.add_parser("download", parents=[common], help="save a completed task's video")
    download.add_argument("id")
    download.add_argument("file")

    commands.add_parser("balance", parents=[common], help="the account's balance")
    redeem = commands.add_parser("redeem", parents=[common], help="redeem a credit code")
    redeem.add_argument("code")
    return parser


def _task_json(task: Task) -> dict[str, Any]:
    return task.raw


def _table(tasks: Sequence[Task], title: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("id", "state", "created", "prompt", "video / reason"):
        table.add_column(column, overflow="fold")
    for task in tasks:
        detail = task.video_url or task.failure_reason or ""
        table.add_row(task.id, task.state, task.created_at, (task.prompt or "")[:40], detail)
    return table


def _download(client: Client, task: Task, path: str, console: Console) -> None:
    with Progress(
        TextColumn("[bold]download"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("download", total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(bar, completed=done, total=total)

        client.download(task, path, on_progress=advance)


def _submit(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    options = {
        "image": args.image,
        "end_image": args.end_image,
        "model": args.model,
        "resolution": args.resolution,
        "duration": args.duration,
        "aspect_ratio": args.aspect_ratio,
        "callback_url": args.callback_url,
    }
    task = client.submit(args.prompt, **{k: v for k, v in options.items() if v is not None})
    if not (args.wait or args.download):
        _print(out, args, _task_json(task), f"{task.id} {task.state}")
        return 0
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        bar = progress.add_task(f"{task.id[:8]} {task.state}", total=3)
        steps = {"pending": 1, "processing": 2, "completed": 3, "failed": 3}

        def show(tasks: list[Task]) -> None:
            progress.update(
                bar, description=f"{tasks[0].id[:8]} {tasks[0].state}", completed=steps[tasks[0].state]
            )

        task = client.wait(task, timeout=args.timeout, on_update=show, raise_on_failure=False)
    if task.failed:
        _print(out, args, _task_json(task), f"{task.id} failed: {task.failure_reason}")
        return 1
    if args.download:
        _download(client, task, args.download, err)
    text = f"{task.id} completed: {task.video_url}" + (f" → {args.download}" if args.download else "")
    _print(out, args, _task_json(task), text)
    return 0


def _print(console: Console, args: argparse.Namespace, data: Any, text: Any) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        console.print(text)


def _watch(client: Client, args: argparse.Namespace, out: Console) -> int:
    if getattr(args, "json", False) or args.once:
        while True:
            tasks = client.running()
            _print(out, args, [_task_json(t) for t in tasks], _table(tasks, "running tasks"))
            if args.once:
                return 0
            time.sleep(args.interval)
    # Redrawn by this thread alone (no rich refresh thread, no stdout redirect): Ctrl-C interrupts the
    # sleep or the request in hand, and no lock or redirected stream is shared with another thread.
    first = _table(client.running(), "running tasks")
    with Live(first, console=out, auto_refresh=False, redirect_stdout=False, redirect_stderr=False) as live:
        while True:
            time.sleep(args.interval)
            table = _table(client.running(), f"running tasks ({time.strftime('%H:%M:%S')})")
            live.update(table, refresh=True)


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out, err = Console(), Console(stderr=True)
    try:
        with Client(getattr(args, "api_key", None), getattr(args, "base_url", None)) as client:
            if args.command == "submit":
                return _submit(client, args, out, err)
            if args.command == "status":
                tasks = client.batch(args.ids)
                _print(out, args, [_task_json(t) for t in tasks], _table(tasks))
                return 0 if len(tasks) == len(set(args.ids)) else 1
            if args.command == "watch":
                return _watch(client, args, out)
            if args.command == "download":
                task = client.get(args.id)
                _download(client, task, args.file, err)
                _print(out, args, {"id": task.id, "file": args.file}, f"saved {args.file}")
                return 0
            if args.command == "balance":
                account = client.account()
                data = {"name": account["name"], "balance": account["balance"]}
                _print(out, args, data, f"{account['name']}: {account['balance']} credits")
                return 0
            result = client.redeem(args.code)
            _print(out, args, result, f"+{result['amount']} credits, balance {result['balance']}")
            return 0
    except errors.APIError as exc:
        if getattr(args, "json", False):
            error = {"status": exc.status, "code": exc.code, "message": exc.message}
            sys.stdout.write(json.dumps({"error": error}) + "\n")
        err.print(f"[red]error:[/red] {exc}")
        return 2
    except errors.DreamRelayError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130


def main() -> None:
    sys.exit(run())
