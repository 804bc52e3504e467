"""Operator actions on channels and tasks: add, list, change, test; show and re-poll a task."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import orjson
from sqlalchemy.exc import IntegrityError

from dreamrelay.domain import ranges
from dreamrelay.domain.catalog import MODELS
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.errors import Conflict, InvalidRequest, NotFound
from dreamrelay.domain.ids import is_id, shown
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats.own import iso_millis
from dreamrelay.netguard import has_control_characters, parse_networks
from dreamrelay.services import admin, lifecycle
from dreamrelay.services.admin import deliveries, ledger_entries
from dreamrelay.services.admin_views import ChannelView
from dreamrelay.services.lifecycle import Change
from dreamrelay.store import accounts as account_store
from dreamrelay.store import channels as channel_store
from dreamrelay.store import tasks as task_store
from dreamrelay.upstreams import kinds
from dreamrelay.upstreams.http import send_json

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from dreamrelay.upstreams.base import Site


class Collaborators(admin.Collaborators, lifecycle.Collaborators, Protocol):
    @property
    def site(self) -> Site: ...  # what channel endpoints are made from

    @property
    def upstream_session(self) -> aiohttp.ClientSession: ...  # probes go out as upstream calls do


KINDS = kinds.NAMES


def mask(secret: str) -> str:
    """Enough to tell secrets apart, never enough to use one."""
    if not secret:
        return ""
    return f"…{secret[-4:]}" if len(secret) > 8 else "…"


def view(channel: Channel) -> ChannelView:
    return ChannelView(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        base_url=channel.base_url,
        secret_key=mask(channel.secret_key),
        models=list(channel.models) if channel.models is not None else None,
        priority=channel.priority,
        weight=channel.weight,
        concurrency=channel.concurrency,
        enabled=channel.enabled,
        failures=channel.failures,
        benched_until=iso_millis(channel.retry_at) if channel.retry_at else None,
        last_error=channel.last_error,
        media_networks=channel.media_networks,
    )


def _check(values: dict[str, Any]) -> dict[str, Any]:
    kind = values.get("kind")
    if kind is not None and kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}")
    base_url = values.get("base_url")
    if base_url is not None and base_url and not base_url.startswith(("http://", "https://")):
        raise InvalidRequest("base_url must be an http(s) URL")
    if base_url and has_control_characters(base_url):
        raise InvalidRequest("base_url contains control characters (CR, LF, tab or other)")
    models = values.get("models")
    if models is not None:
        unknown = [m for m in models if m not in MODELS]
        if unknown:
            raise InvalidRequest(f"models: unknown {unknown}; known: {', '.join(MODELS)}")
    networks = values.get("media_networks")
    if networks is not None:
        try:
            parsed = parse_networks(networks)
        except ValueError as exc:
            raise InvalidRequest(f"media_networks: comma-separated CIDRs or addresses ({exc})") from exc
        values["media_networks"] = ",".join(str(n) for n in parsed)
    bounds = (
        ("priority", -ranges.MAX_PRIORITY, ranges.MAX_PRIORITY),
        ("weight", 1, ranges.MAX_WEIGHT),
        ("concurrency", 1, ranges.MAX_CONCURRENCY),
    )
    for name, low, high in bounds:
        if values.get(name) is not None:
            ranges.integer(name, values[name], low, high)
    return values


async def _find(rt: Collaborators, name: str) -> Channel:
    async with rt.db.reader() as conn:
        for channel in await channel_store.list_channels(conn):
            if channel.name == name or str(channel.id) == name:
                return channel
    raise NotFound(f"no channel named {name!r}")


async def add_channel(rt: Collaborators, **values: Any) -> ChannelView:
    _check(values)
    if kinds.KINDS[values["kind"]].needs_base_url and not values.get("base_url"):
        raise InvalidRequest(f"a {values['kind']} channel needs a base_url")
    try:
        async with rt.db.transaction() as conn:
            await channel_store.add_channel(conn, **values)
    except IntegrityError as exc:
        raise Conflict(f"channel {values['name']!r} exists already", code="channel_exists") from exc
    return view(await _find(rt, values["name"]))


async def list_channels(rt: Collaborators) -> list[ChannelView]:
    async with rt.db.reader() as conn:
        return [view(c) for c in await channel_store.list_channels(conn)]


async def update_channel(rt: Collaborators, name: str, values: dict[str, Any]) -> ChannelView:
    """Change settings; enabling also lifts a bench. New settings hold for the next request."""
    if not values:
        raise InvalidRequest("nothing to change")
    _check(values)
    channel = await _find(rt, name)
    async with rt.db.transaction() as conn:
        await channel_store.update_channel(conn, channel.id, values)
    return view(await _find(rt, str(channel.id)))


@dataclass(frozen=True)
class ProbeResult:
    """What one test request to a channel found (the admin API answers it as an object)."""

    channel: str
    ok: bool
    status: int | None  # upstream's HTTP status, None when no answer came
    latency_ms: int
    error: str | None


async def test_channel(rt: Collaborators, name: str) -> ProbeResult:
    """One cheap authenticated request; a success lifts a bench."""
    channel = await _find(rt, name)
    probe, endpoint = kinds.probe(rt.site, channel)
    started = time.monotonic()
    error: str | None = None
    status: int | None = None
    try:
        status, _payload, _headers = await send_json(
            rt.upstream_session,
            probe.method,
            probe.url,
            probe.body,
            {"Authorization": f"Bearer {endpoint.api_key}"},
            aiohttp.ClientTimeout(total=10),
            idempotent=True,
        )
    except Exception as exc:  # any failure is the answer to "does it work?"
        error = str(exc)[:300] or type(exc).__name__
    ok = status == 200
    async with rt.db.transaction() as conn:
        if ok:
            await channel_store.record_success(conn, channel.id)
    return ProbeResult(
        channel=channel.name,
        ok=ok,
        status=status,
        latency_ms=int((time.monotonic() - started) * 1000),
        error=error if error else (None if ok else f"answered {status}"),
    )


# ---- tasks ----------------------------------------------------------------------------------------
def _known_shape(task_id: str) -> None:
    if not is_id(task_id):
        raise NotFound(f"no task {shown(task_id)}")


async def show_task(rt: Collaborators, task_id: str) -> dict[str, Any]:
    _known_shape(task_id)
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id)
        if task is None:
            raise NotFound(f"no task {task_id}")
        channel = await channel_store.get_channel(conn, task.channel_id) if task.channel_id else None
        account = await account_store.get_account_by_id(conn, task.account_id)
    return {
        "id": task.id,
        "account": account.name if account else None,
        "state": task.state.value,
        "action": task.action,
        "parent_id": task.parent_id,
        "model": task.model,
        "api_format": task.api_format,
        "request": task.request,
        "price": task.price,
        "channel": channel.name if channel else None,
        "upstream_id": task.upstream_id,
        "upstream_state": task.upstream_state,
        "failure_reason": task.failure_reason,
        "failure_code": task.failure_code,
        "media": task.media,  # what probing our copies found (size, duration, frames, codec)
        "poll_count": task.poll_count,
        "poll_errors": task.poll_errors,
        "next_poll_at": iso_millis(task.next_poll_at) if task.next_poll_at else None,
        "created_at": iso_millis(task.created_at),
        "finished_at": iso_millis(task.finished_at) if task.finished_at else None,
        "callback_url": task.callback_url,
        "object": orjson.loads(task.body),
        "ledger": await ledger_entries(rt, task_id=task.id),
        "deliveries": await deliveries(rt, task_id=task.id, with_attempts=True),
    }


async def _unfinished(conn: AsyncConnection, task_id: str, why: str) -> Task:
    task = await task_store.get_task(conn, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    if task.state.is_terminal:
        raise Conflict(f"task {task_id} is {task.state.value}; {why}", code="task_finished")
    return task


async def repoll(rt: Collaborators, task_id: str) -> dict[str, Any]:
    """Ask upstream about an unfinished task now rather than at its next scheduled poll."""
    _known_shape(task_id)
    async with lifecycle.transaction(rt) as unit:
        task = await _unfinished(unit.conn, task_id, "there is nothing to poll")
        await unit.apply(task, Change(next_poll_at=time.time()))
    return {"id": task_id, "repoll": True}


REFUND_REASON = "refunded by the operator"


async def refund(rt: Collaborators, task_id: str) -> dict[str, Any]:
    """End an unfinished task as failed: the hold is released (once, as for any failure), callbacks sent.

    A finished task cannot be refunded here: its hold is already captured or released; an operator
    who wants to give credits back for a completed task tops the account up.
    """
    _known_shape(task_id)
    async with lifecycle.transaction(rt) as unit:
        task = await _unfinished(unit.conn, task_id, "only an unfinished task can be refunded")
        updated = await unit.apply(task, Change(state=TaskState.FAILED, failure_reason=REFUND_REASON))
    if updated is None:
        raise Conflict(f"task {task_id} changed meanwhile; look again", code="task_changed")
    return {"id": task_id, "state": updated.state.value, "refunded": task.price}


async def list_tasks(
    rt: Collaborators,
    *,
    state: str | None = None,
    account: str | None = None,
    channel: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    ranges.window(since, until)
    channel_id = (await _find(rt, channel)).id if channel else None
    async with rt.db.reader() as conn:
        found = await task_store.listing(
            conn,
            state=state,
            account=account,
            channel_id=channel_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    return [
        {
            **r,
            "created_at": iso_millis(r["created_at"]),
            "finished_at": r["finished_at"] and iso_millis(r["finished_at"]),
        }
        for r in found
    ]
