"""Finished tasks' response bodies, kept in process memory for the read hot path.

A task's body never changes once it is completed or failed; only a customer deleting it changes
what reads show. The process that deletes forgets it at once; other processes keep a copy at most
`ttl` seconds, so a deletion shows everywhere within that time without any message between
processes. Bounded by total bytes; the oldest entries go first (reads favour recent tasks, and not
reordering on every hit keeps a hit to one dict lookup).

Batch queries are mostly a client polling the same ids again and again, so the joined answer of a
batch made only of cached bodies is kept too, under the account and the ids as asked. It is exactly
as fresh as its parts: it expires with the soonest of their entries, and a deletion in this process
drops every joined answer (deletions are rare; the bodies themselves never change). Only a caller
that joins the bodies straight from `get_many`, with nothing awaited between, may keep the answer.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

# A task's own-format body is kept under its id; other formats under (format, id), which no id
# given by a client can equal.
Key = str | tuple[str, str]
AnswerKey = tuple[int, tuple[str, ...]]  # (account id, the ids as asked)
ANSWER_SHARE = 4  # joined answers take at most 1/4 of the cache's bytes
_ID_BYTES = 100  # what a key's id costs in memory, counted against the bound with the answer


def official_key(task_id: str) -> Key:
    return ("official", task_id)


def agents_key(task_id: str) -> Key:
    return ("agents", task_id)


def videos_key(task_id: str) -> Key:
    return ("videos", task_id)


@dataclass
class BodyCache:
    max_bytes: int
    ttl: float = 60.0
    _entries: OrderedDict[Key, tuple[int, bytes, float]] = field(default_factory=OrderedDict)
    _bytes: int = 0
    _answers: OrderedDict[AnswerKey, tuple[bytes, float]] = field(default_factory=OrderedDict)
    _answer_bytes: int = 0

    def get(self, task_id: Key, account_id: int) -> bytes | None:
        """The body if cached, fresh and owned by `account_id` (others' tasks stay invisible)."""
        entry = self._entries.get(task_id)
        if entry is None or entry[0] != account_id:
            return None
        if entry[2] < time.monotonic():
            self._drop(task_id)
            return None
        return entry[1]

    def get_many(self, task_ids: Iterable[str], account_id: int) -> tuple[list[bytes | None], list[str]]:
        """`get` of each id in one pass (one clock read): the bodies in order (None where not cached)
        and the ids not cached."""
        now = time.monotonic()
        found = self._entries.get
        bodies = [
            e[1] if (e := found(task_id)) is not None and e[0] == account_id and e[2] >= now else None
            for task_id in task_ids
        ]
        if None not in bodies:
            return bodies, []
        missing: list[str] = []
        for task_id, body in zip(task_ids, bodies, strict=True):
            if body is None:
                missing.append(task_id)
                entry = found(task_id)
                if entry is not None and entry[2] < now:
                    self._drop(task_id)
        return bodies, missing

    def put(self, task_id: Key, account_id: int, body: bytes) -> None:
        """Keep the body of a finished task."""
        if len(body) > self.max_bytes or task_id in self._entries:
            return
        self._entries[task_id] = (account_id, body, time.monotonic() + self.ttl)
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            _, (_, dropped, _) = self._entries.popitem(last=False)
            self._bytes -= len(dropped)

    def joined(self, account_id: int, ids: tuple[str, ...]) -> bytes | None:
        """The joined answer kept for these ids as asked by this account, if still fresh."""
        key = (account_id, ids)
        entry = self._answers.get(key)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            self._drop_answer(key)
            return None
        return entry[0]

    def keep_joined(self, account_id: int, ids: tuple[str, ...], answer: bytes) -> None:
        """Keep the answer joined from the cached bodies of `ids` (each owned by `account_id`); it
        expires with the soonest of them. Not kept if any of them is no longer cached."""
        expires = float("inf")
        found = self._entries.get
        for task_id in set(ids):
            entry = found(task_id)
            if entry is None or entry[0] != account_id:
                return
            expires = min(expires, entry[2])
        size = len(answer) + _ID_BYTES * len(ids)
        limit = self.max_bytes // ANSWER_SHARE
        key = (account_id, ids)
        if size > limit or key in self._answers:
            return
        self._answers[key] = (answer, expires)
        self._answer_bytes += size
        while self._answer_bytes > limit:
            self._drop_answer(next(iter(self._answers)))

    def forget(self, task_id: str) -> None:
        """Drop the task's bodies, in every format, and every joined answer."""
        self._answers.clear()
        self._answer_bytes = 0
        self._drop(task_id)
        self._drop(official_key(task_id))
        self._drop(agents_key(task_id))
        self._drop(videos_key(task_id))

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])

    def _drop_answer(self, key: AnswerKey) -> None:
        entry = self._answers.pop(key, None)
        if entry is not None:
            self._answer_bytes -= len(entry[0]) + _ID_BYTES * len(key[1])

    def __len__(self) -> int:
        return len(self._entries)
