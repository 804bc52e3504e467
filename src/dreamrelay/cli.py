"""The `dreamrelay` command: serve, worker-less sandbox, migrations and admin commands."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from dreamrelay import logs, metrics_dir
from dreamrelay.admin_cli import register as register_admin_commands
from dreamrelay.local_secrets import (
    admin_token_path,
    ensure_admin_token,
    ensure_sandbox_key,
    sandbox_key_path,
    save_first_key,
)
from dreamrelay.runtime import Runtime
from dreamrelay.services.bootstrap import FirstStart, first_start
from dreamrelay.settings import Settings
from dreamrelay.store import migrate

app = typer.Typer(help="DreamRelay: a relay gateway for Luma Dream Machine tasks.", no_args_is_help=True)
register_admin_commands(app)

T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _with_runtime(work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Runtime.from_settings(Settings()) as rt:
            await migrate.upgrade(rt.db)
            return await work(rt)

    return asyncio.run(run())


def _emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def in_container() -> bool:
    """Docker and Podman leave these files in every container."""
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


def welcome(
    settings: Settings, seeded: FirstStart | None, key_file: Path | None = None, container: bool = False
) -> str:
    """What `serve` prints. With `key_file` the first-start key is in that file, not in the text: stdout is
    not a terminal, and logs that capture it (journald, docker, CI) must not hold a secret. In a container
    (`container`) the file is read from the host with `docker exec`."""
    base = settings.resolved_public_url
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    lines = [
        f"DreamRelay is listening on http://{host}:{settings.port}  (OpenAPI: {base}/docs)",
        f"Links in answers (media, callbacks) use {base}"
        + (
            " (DREAMRELAY_PUBLIC_URL)"
            if settings.public_url
            else ": set DREAMRELAY_PUBLIC_URL to how customers reach this server"
        ),
    ]
    if seeded is not None:
        if key_file is None:
            key = seeded.api_key
            lines += [
                "",
                f"First start: created account '{seeded.account}' with this API key (shown once, keep it):",
                f"  {key}",
            ]
        else:
            read = f"docker exec <container> cat {key_file}" if container else f"cat {key_file}"
            key = "$KEY"
            lines += [
                "",
                f"First start: created account '{seeded.account}'; its API key is in {key_file}",
                "  (readable by you only: keep the key somewhere safe, then delete the file)",
                f"  Read it: KEY=$({read})",
            ]
        lines += [
            "",
            "Submit a video task:",
            f'  curl -s {base}/luma/generations -H "Authorization: Bearer {key}" \\',
            "    -H 'Content-Type: application/json' \\",
            '    -d \'{"user_prompt": "a paper boat on a rainy street"}\'',
            "Then poll it (state goes pending -> processing -> completed):",
            f'  curl -s {base}/luma/generations/<id> -H "Authorization: Bearer {key}"',
        ]
    else:
        lines.append("Create a key with: dreamrelay keys create --account demo")
    return "\n".join(lines)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="API processes sharing the port.")] = 1,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Also follow tasks and deliver callbacks here.")
    ] = True,
) -> None:
    """Run the API (and, unless --no-worker, the worker) and the built-in sandbox."""
    # The servers' imports (uvicorn, FastAPI: a third of a second) only where a server runs: the operator
    # commands start without them.
    import uvicorn

    from dreamrelay.http.protocol import ConnectionLimits, guarded_protocol

    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if not worker:
        overrides["worker_enabled"] = False
    settings = Settings(**overrides)
    if workers > 1 and settings.mounts_sandbox:
        _fail(
            "the built-in sandbox lives in one process: with --workers above 1 run `dreamrelay sandbox` "
            "and set DREAMRELAY_SANDBOX_URL to it, or set DREAMRELAY_SANDBOX_ENABLED=false"
        )
    logs.configure(settings.log_format)
    metrics_dir.use(settings)

    async def prepare() -> FirstStart | None:
        async with Runtime.from_settings(settings) as rt:
            await migrate.upgrade(rt.db)
            return await first_start(rt)

    seeded = asyncio.run(prepare())
    token, token_created = ensure_admin_token(settings)
    on_terminal = sys.stdout.isatty()
    key_file = None if on_terminal or seeded is None else save_first_key(settings, seeded.api_key)
    banner = welcome(settings, seeded, key_file, in_container())
    if token_created:
        where = f"kept in {admin_token_path(settings)}"
        shown = f":\n  {token}" if on_terminal else " (not printed: this output is not a terminal)"
        banner += f"\n\nAdmin token (for /admin and the console; {where}){shown}"
    if on_terminal:
        typer.echo(banner)
    else:  # one log line (JSON unless text was asked for), never plain lines among the JSON ones
        logging.getLogger("dreamrelay.serve").info(banner)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        "log_config": None,  # uvicorn's lines go through our handler (logs.configure)
        "access_log": False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: any local peer would choose its
        # address. Off: only DREAMRELAY_TRUSTED_PROXIES name proxies (http/clients.py).
        "proxy_headers": False,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
        # Slow or endless request headers and bodies are cut off; connections beyond the cap are
        # closed at once.
        "http": guarded_protocol(ConnectionLimits.of(settings)),
    }
    if workers == 1:
        from dreamrelay.http.app import create_app

        uvicorn.run(create_app(settings), **common)
        return
    # Each API process builds its own app from the environment: pass the command line on there.
    os.environ.update({f"DREAMRELAY_{name.upper()}": str(value) for name, value in overrides.items()})
    uvicorn.run("dreamrelay.http.app:create_app_from_env", factory=True, workers=workers, **common)


@app.command("worker")
def worker_command(
    metrics_port: Annotated[
        int, typer.Option(help="Serve /metrics on this port (0: none; API processes on this host sum it).")
    ] = 0,
) -> None:
    """Follow tasks and deliver callbacks, without HTTP (run as many as you like, on any host)."""
    settings = Settings()
    logs.configure(settings.log_format)
    metrics_dir.use(settings)
    from dreamrelay import metrics
    from dreamrelay.worker.process import run_worker_process

    if metrics_port:
        metrics.serve(settings.host, metrics_port)

    asyncio.run(run_worker_process(settings))


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8100,
) -> None:
    """Run only the sandbox upstream: the official API at /dream-machine/v1, Kling images at /kling/v1."""
    import uvicorn

    from dreamrelay.netguard import URLPolicy
    from dreamrelay.sandbox.app import create_sandbox_app
    from dreamrelay.sandbox.core import SandboxConfig

    settings = Settings()
    config = SandboxConfig(
        data_dir=settings.data_dir / "sandbox",
        api_key=ensure_sandbox_key(settings),
        queued_seconds=settings.sandbox_queued_seconds,
        dreaming_seconds=settings.sandbox_dreaming_seconds,
        # Its requests may reach the relay of these settings and DREAMRELAY_ALLOW_PRIVATE_URLS only.
        url_policy=URLPolicy.from_setting(settings.allow_private_urls),
        relay_urls=settings.relay_urls,
    )
    base = f"http://{host}:{port}"
    where = "DREAMRELAY_SANDBOX_KEY" if settings.sandbox_key else str(sandbox_key_path(settings))
    typer.echo(f"Sandbox upstream on {base}/dream-machine/v1 and {base}/kling/v1 (Bearer key: {where})")
    uvicorn.run(create_sandbox_app(config), host=host, port=port, log_level="info")


@app.command("status")
def status_command(as_json: JsonOption = False) -> None:
    """One screen for the operator: channels, tasks in flight, callbacks waiting, the last ledger check,
    live workers."""
    from dreamrelay.services import operations

    async def work(rt: Runtime) -> operations.Status:
        return await operations.snapshot(rt.db, worker_alive_seconds=rt.settings.lease_seconds)

    status = _with_runtime(work)
    _emit(operations.as_dict(status), as_json, operations.as_text(status))


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date."""

    async def work(rt: Runtime) -> None:
        return None

    _with_runtime(work)
    typer.echo("database is up to date")
