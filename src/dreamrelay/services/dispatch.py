"""Handing a new task to an upstream: channels in routing order, failover, and each channel's health."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from dreamrelay import logs
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.errors import NoChannelAvailable, UpstreamError, UpstreamRejected
from dreamrelay.domain.requests import SubmitRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.domain.timings import first_poll_delay
from dreamrelay.services import lifecycle
from dreamrelay.services.lifecycle import Change
from dreamrelay.services.routing import candidates
from dreamrelay.store import channels as channel_store
from dreamrelay.store import tasks as task_store
from dreamrelay.upstreams.base import UpstreamOutcomeUnknown, UpstreamRefused, UpstreamUnavailable

if TYPE_CHECKING:
    from dreamrelay.settings import Settings
    from dreamrelay.upstreams.base import Upstream


class Collaborators(lifecycle.Collaborators, Protocol):
    settings: Settings  # our public URL (callbacks, user ids), when a failing channel is benched

    def upstream_for(self, channel: Channel, *, capability: str = ...) -> Upstream: ...

    def calls_back(self, upstream: Upstream) -> bool: ...


log = logging.getLogger(__name__)


async def dispatch(
    rt: Collaborators,
    task: Task,
    request: SubmitRequest,
    *,
    pinned_channel: int | None,
    channels: Sequence[Channel],
) -> Task:
    """Try `channels` (as the insert's transaction read them) in routing order until one accepts; fail
    the task (and tell the caller) otherwise. Only channels whose kind makes what the task needs
    (`Task.capability`) and serves its model are tried.

    429/5xx/connection errors move on to the next channel; a refusal is the customer's 400; an answer
    that never came is a 502 and is never resent (the generation may exist upstream).
    """
    with logs.task_context(task.id):
        return await _dispatch(rt, task, request, pinned_channel=pinned_channel, channels=channels)


async def _dispatch(
    rt: Collaborators,
    task: Task,
    request: SubmitRequest,
    *,
    pinned_channel: int | None,
    channels: Sequence[Channel],
) -> Task:
    tried: list[str] = []
    request = replace(request, user_id=opaque_user_id(rt, task.account_id))
    capability = task.capability
    for channel in candidates(channels, task.model, capability, pinned_id=pinned_channel):
        logs.channel.set(channel.name)
        upstream = rt.upstream_for(channel, capability=capability)
        sent = request
        if rt.calls_back(upstream) and task.upstream_token:
            sent = replace(request, callback_url=upstream_callback_url(rt, task.id, task.upstream_token))
        try:
            upstream_id = await upstream.submit(sent)
        except UpstreamUnavailable as exc:
            log.warning("channel %s could not take task %s: %s", channel.name, task.id, exc)
            tried.append(f"{channel.name}: {exc}")
            await note_channel_failure(rt, channel, str(exc))
            continue
        except UpstreamRefused as exc:
            await fail(rt, task, f"upstream refused the request: {exc}")
            raise UpstreamRejected(f"upstream refused the request: {exc}") from exc
        except UpstreamOutcomeUnknown as exc:
            # It may exist upstream; sending it elsewhere could run (and cost) it twice.
            await fail(rt, task, f"upstream did not confirm the submission: {exc}")
            await note_channel_failure(rt, channel, str(exc))
            raise UpstreamError("upstream did not confirm the submission; nothing was charged") from exc
        next_poll_at = time.time() + first_poll_delay(sent.callback_url is not None)
        change = Change(channel_id=channel.id, upstream_id=upstream_id, next_poll_at=next_poll_at)
        if channel.failures:  # rare: its failure count is reset in the same transaction
            async with lifecycle.transaction(rt) as unit:
                await channel_store.record_success(unit.conn, channel.id)
                accepted = await unit.apply(task, change)
        else:
            accepted = await lifecycle.record_on_driver(rt, task, change)
        # One line per accepted submit (a failure is logged where it happens, and as the task fails).
        log.info(
            "task %s: %s %s (%s), holds %d credits; channel %s took it as upstream %s",
            task.id,
            task.action,
            task.model,
            task.api_format,
            task.price,
            channel.name,
            upstream_id,
        )
        if accepted is None:  # the worker failed it meanwhile (deadline); show what it is now
            async with rt.db.reader() as conn:
                accepted = await task_store.get_task(conn, task.id)
        assert accepted is not None
        return accepted
    reason = "no channel can take this task" + (f" ({'; '.join(tried)})" if tried else "")
    await fail(rt, task, reason)
    raise NoChannelAvailable(reason)


def opaque_user_id(rt: Collaborators, account_id: int) -> str:
    """The customer account as upstreams see it (Agents API `user_id`): stable, not PII, not our id."""
    return _opaque_user_id(rt.settings.resolved_public_url, account_id)


@functools.lru_cache(maxsize=4096)
def _opaque_user_id(public_url: str, account_id: int) -> str:
    seed = f"{public_url}|account|{account_id}".encode()
    return "dr-" + hashlib.sha256(seed).hexdigest()[:32]


def upstream_callback_url(rt: Collaborators, task_id: str, token: str) -> str:
    return f"{rt.settings.resolved_public_url}/upstream/callbacks/{task_id}/{token}"


async def note_channel_failure(rt: Collaborators, channel: Channel, error: str) -> None:
    async with rt.db.transaction() as conn:
        benched = await channel_store.record_failure(
            conn,
            channel.id,
            error,
            threshold=rt.settings.channel_failure_threshold,
            bench_seconds=rt.settings.channel_bench_seconds,
        )
    if benched:
        log.warning(
            "channel %s benched for %.0f s after repeated failures",
            channel.name,
            rt.settings.channel_bench_seconds,
        )


async def fail(rt: Collaborators, task: Task, reason: str) -> None:
    await lifecycle.transition(rt, task, Change(state=TaskState.FAILED, failure_reason=reason))
