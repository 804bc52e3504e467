"""Finished tasks' response bodies, kept in process memory for the read hot path.

A task's body never changes once it is completed or failed; only a customer deleting it changes
what reads show. The process that deletes forgets it at once; other processes keep a copy at most
`ttl` seconds, so a deletion shows everywhere within that time without any message between
processes. Bounded by total bytes; the oldest entries go first (reads favour recent tasks, and not
reordering on every hit keeps a hit to one dict lookup).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

# A task's own-format body is kept under its id; other formats under (format, id), which no id
# given by a client can equal.
Key = str | tuple[str, str]


def official_key(task_id: str) -> Key:
    return ("official", task_id)


def agents_key(task_id: str) -> Key:
    return ("agents", task_id)


@dataclass
class BodyCache:
    max_bytes: int
    ttl: float = 60.0
    _entries: OrderedDict[Key, tuple[int, bytes, float]] = field(default_factory=OrderedDict)
    _bytes: int = 0

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

    def forget(self, task_id: str) -> None:
        """Drop the task's bodies, in every format."""
        self._drop(task_id)
        self._drop(official_key(task_id))
        self._drop(agents_key(task_id))

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])

    def __len__(self) -> int:
        return len(self._entries)
