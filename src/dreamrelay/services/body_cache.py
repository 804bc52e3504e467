"""Finished tasks' response bodies, kept in process memory for the read hot path.

A task's body never changes once it is completed or failed, so a cached copy is never stale and no
process has to tell another about it. Bounded by total bytes; the oldest entries go first (reads
favour recent tasks, and not reordering on every hit keeps a hit to one dict lookup).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class BodyCache:
    max_bytes: int
    _entries: OrderedDict[str, tuple[int, bytes]] = field(default_factory=OrderedDict)
    _bytes: int = 0

    def get(self, task_id: str, account_id: int) -> bytes | None:
        """The body if cached and owned by `account_id` (others' tasks stay invisible)."""
        entry = self._entries.get(task_id)
        return entry[1] if entry is not None and entry[0] == account_id else None

    def put(self, task_id: str, account_id: int, body: bytes) -> None:
        """Keep the body of a finished task."""
        if len(body) > self.max_bytes or task_id in self._entries:
            return
        self._entries[task_id] = (account_id, body)
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= len(dropped)

    def forget(self, task_id: str) -> None:
        entry = self._entries.pop(task_id, None)
        if entry is not None:
            self._bytes -= len(entry[1])

    def __len__(self) -> int:
        return len(self._entries)
