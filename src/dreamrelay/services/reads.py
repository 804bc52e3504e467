"""Reading tasks back: one, a batch (pre-encoded bodies joined), and the download URL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, cast

import orjson

from dreamrelay.body_cache import agents_key, official_key
from dreamrelay.domain.api_format import IMAGE_ACTION, SHARED_IMAGES, SHARED_VIDEOS, Listing
from dreamrelay.domain.errors import InvalidRequest, NotFound, TaskNotFound, TaskNotReady
from dreamrelay.domain.ids import is_id, shown
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats import newapi, official
from dreamrelay.formats.families import AGENTS
from dreamrelay.services.auth import Caller
from dreamrelay.store import accounts as account_store
from dreamrelay.store import tasks as task_store

if TYPE_CHECKING:
    from dreamrelay.body_cache import BodyCache
    from dreamrelay.inflight import InFlightMirror
    from dreamrelay.store.engine import Database


class Collaborators(Protocol):
    db: Database
    body_cache: BodyCache  # finished tasks' bodies, kept in this process
    inflight: InFlightMirror  # in-flight tasks, mirrored in this process within a bound

    @property
    def media_base_url(self) -> str: ...


BATCH_MAX_IDS = 1000


async def find_task(rt: Collaborators, caller: Caller, task_id: str, listing: Listing) -> Task | None:
    """The caller's task if `listing` (the family's, domain/api_format.py) shows it: an in-flight one
    from this process's mirror when it has it (inflight.py), else from the store (mirrored from then on
    while in flight). Every family's read of one task comes here, so each reads in-flight tasks from
    memory; a family's many-task read comes to `find_video_tasks`."""
    task = rt.inflight.get(task_id, caller.account_id)
    if task is None:
        async with rt.db.reader() as conn:
            task = await task_store.get_task(conn, task_id, caller.account_id)
        if task is None:
            return None
        rt.inflight.keep(task)
    return task if listing.shows(task) else None


async def get_task(rt: Collaborators, caller: Caller, task_id: str, *, images: bool = False) -> Task:
    """The caller's task: a video task (own and official formats) or, with `images`, an image task."""
    if not is_id(task_id):
        raise TaskNotFound(f"task {shown(task_id)} not found")
    task = await find_task(rt, caller, task_id, SHARED_IMAGES if images else SHARED_VIDEOS)
    if task is None:
        raise TaskNotFound(f"task {task_id} not found")
    return task


async def get_agents_task(rt: Collaborators, caller: Caller, task_id: str) -> Task:
    """The caller's generation made through the Agents API; 404 for anything else."""
    if not is_id(task_id):
        raise NotFound(f"generation {shown(task_id)} not found")
    task = await find_task(rt, caller, task_id, AGENTS.listing)
    if task is None:
        raise NotFound(f"generation {task_id} not found")
    return task


async def get_agents_body(rt: Collaborators, caller: Caller, task_id: str) -> bytes:
    """An Agents API generation's body; a finished one's is kept like the own body."""
    key = agents_key(task_id)
    cached = rt.body_cache.get(key, caller.account_id)
    if cached is not None:
        return cached
    task = await get_agents_task(rt, caller, task_id)
    if task.state.is_terminal:
        rt.body_cache.put(key, task.account_id, task.body)
    return task.body


async def list_videos(
    rt: Collaborators, caller: Caller, *, limit: int, offset: int, states: Sequence[str] | None = None
) -> tuple[list[Task], bool]:
    """A page of the caller's video tasks (in `states`, when given), newest first, and whether more follow."""
    async with rt.db.reader() as conn:
        return await task_store.list_video_tasks(
            conn, caller.account_id, limit=limit, offset=offset, states=states
        )


async def balance(rt: Collaborators, caller: Caller) -> int:
    async with rt.db.reader() as conn:
        account = await account_store.get_account_by_id(conn, caller.account_id)
    assert account is not None  # a key cannot outlive its account (ON DELETE CASCADE)
    return account.balance


async def get_body(rt: Collaborators, caller: Caller, task_id: str) -> bytes:
    cached = rt.body_cache.get(task_id, caller.account_id)
    if cached is not None:
        return cached
    task = await get_task(rt, caller, task_id)
    if task.state.is_terminal:
        rt.body_cache.put(task.id, task.account_id, task.body)
    return task.body


async def get_official_body(rt: Collaborators, caller: Caller, task_id: str) -> bytes:
    """The task as an official-API `Generation`; a finished task's is kept like the own body."""
    key = official_key(task_id)
    cached = rt.body_cache.get(key, caller.account_id)
    if cached is not None:
        return cached
    task = await get_task(rt, caller, task_id)
    base = rt.media_base_url
    if task.state.is_terminal:
        body = official.encode_generation(task, base)
        rt.body_cache.put(key, task.account_id, body)
        return body
    return rt.inflight.encoded(task, "official", lambda t: official.encode_generation(t, base))


async def download_url(rt: Collaborators, caller: Caller, task_id: str) -> bytes:
    task = await get_task(rt, caller, task_id)
    if task.state is not TaskState.COMPLETED:
        raise TaskNotReady(f"task {task_id} is {task.state}; the video exists once it is completed")
    video = orjson.loads(task.body)["video"]
    return orjson.dumps({"url": video["download_url"]})


def parse_batch_ids(raw_body: bytes) -> list[str]:
    """The batch body is JSON whatever the Content-Type says: {"ids": [str, ...]} with ≤ 1000 ids."""
    try:
        payload = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest('body must be JSON: {"ids": ["<task id>", ...]}') from exc
    if not isinstance(payload, dict) or "ids" not in payload:
        raise InvalidRequest("body must be an object with an 'ids' list")
    ids = payload["ids"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest("'ids' must be a list of strings")
    if len(ids) > BATCH_MAX_IDS:
        raise InvalidRequest(f"'ids' may hold at most {BATCH_MAX_IDS} ids (got {len(ids)})")
    return ids


async def batch_answer(rt: Collaborators, caller: Caller, ids: Sequence[str]) -> bytes:
    """The batch query's answer in the shape the key asked for: the bare array or new-api's envelope."""
    if caller.batch_envelope == "newapi":
        return await batch_newapi(rt, caller, ids)
    return await batch_bodies(rt, caller, ids)


async def batch_newapi(rt: Collaborators, caller: Caller, ids: Sequence[str]) -> bytes:
    """The batch in new-api's envelope (a key's `batch_envelope = newapi`): the same tasks, same order."""
    wanted = [i for i in dict.fromkeys(ids) if is_id(i)]
    if not wanted:
        return newapi.envelope([])
    found = await find_video_tasks(rt, caller, wanted)
    return newapi.envelope(
        [
            newapi.Found(t.id, t.body, t.state, t.failure_reason, t.created_at, t.finished_at)
            for t in (found[i] for i in wanted if i in found)
        ]
    )


async def find_video_tasks(rt: Collaborators, caller: Caller, ids: Sequence[str]) -> dict[str, Task]:
    """The caller's video tasks (any format) among `ids` (well-formed ones), by id: those in flight from
    this process's mirror, the rest from the store in one query (those still in flight mirrored from
    then on: the next poll reads memory). new-api's batch and AceData's retrieve_batch read this way."""
    wanted = [i for i in dict.fromkeys(ids) if is_id(i)]
    mirrored = rt.inflight.get_many(wanted, caller.account_id)
    found = {t.id: t for t in mirrored if t is not None and t.action != IMAGE_ACTION}
    missing = [i for i, t in zip(wanted, mirrored, strict=True) if t is None]
    if missing:
        async with rt.db.reader() as conn:
            for task in await task_store.find_video_tasks(conn, missing, caller.account_id):
                found[task.id] = task
                rt.inflight.keep(task)  # in flight: mirrored; finished: left out
    return found


async def batch_bodies(rt: Collaborators, caller: Caller, ids: Sequence[str]) -> bytes:
    """A JSON array of the caller's tasks in the order asked, duplicates once, others left out."""
    cache, account = rt.body_cache, caller.account_id
    asked = tuple(ids)
    answer = cache.joined(account, asked)  # a client polling the same ids again
    if answer is not None:
        return answer
    wanted = list(dict.fromkeys(ids))
    # A cached body's key is a real task id, so only the ids the cache lacks need the id rule.
    bodies, missing = cache.get_many(wanted, account)
    if not missing:
        answer = _joined(cast("list[bytes]", bodies))
        cache.keep_joined(account, asked, answer)
        return answer
    missing = [i for i in missing if is_id(i)]
    if missing:
        # In-flight tasks this process mirrors (inflight.py); the rest from the store.
        by_id: dict[str, bytes] = {}
        store_ids: list[str] = []
        for task_id, task in zip(missing, rt.inflight.get_many(missing, account), strict=True):
            if task is not None and SHARED_VIDEOS.shows(task):
                by_id[task_id] = task.body
            else:
                store_ids.append(task_id)
        if by_id:
            bodies = [
                body if body is not None else by_id.get(i) for i, body in zip(wanted, bodies, strict=True)
            ]
        missing = store_ids
    if missing:
        async with rt.db.reader() as conn:
            found = await task_store.get_bodies(conn, missing, caller.account_id)
            unfinished = [task_id for task_id, (_, finished) in found.items() if not finished]
            if unfinished and rt.inflight.running:  # mirrored from now on: the next poll reads memory
                for task in await task_store.find_video_tasks(conn, unfinished, account):
                    rt.inflight.keep(task)
        for task_id, (body, finished) in found.items():
            if finished:
                cache.put(task_id, account, body)
        bodies = [
            body if body is not None else found.get(task_id, (None, False))[0]
            for task_id, body in zip(wanted, bodies, strict=True)
        ]
    return _joined([body for body in bodies if body is not None])


def _joined(parts: list[bytes]) -> bytes:
    """The bodies as one JSON array, joined into one new buffer: only the first and last bodies are
    copied for the brackets (`b"[" + … + b"]"` would copy the whole answer twice more)."""
    if not parts:
        return b"[]"
    if len(parts) == 1:
        return b"[" + parts[0] + b"]"
    parts[0] = b"[" + parts[0]
    parts[-1] += b"]"
    return b",".join(parts)
