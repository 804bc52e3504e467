"""A TCP proxy on loopback for tests of connections that die: between a client and a real server, it
can leave every open connection half-open (the server side gone, the client none the wiser until it
sends, then reset), and counts the PostgreSQL protocol's round trips (Sync and simple Query messages)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class Proxy:
    port: int
    target: tuple[str, int]
    round_trips: int = 0
    _pairs: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)
    # Client sockets whose server side is gone, held themselves: by id() a new connection's socket could
    # take a closed one's id and be reset too (a fresh connection failed that way under load).
    _broken: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def break_open_connections(self) -> int:
        """Every connection open now: its server side closed, its client side left open and reset at the
        client's next byte (what a restarted database or a firewall that forgot it looks like)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
            for client, server in pairs:
                self._broken.add(client)
                with suppress(OSError):
                    server.shutdown(socket.SHUT_RDWR)  # wakes its pipe, which leaves the client alone
        return len(pairs)

    def _count(self, data: bytes, started: list[bool], pending: bytearray) -> None:
        pending.extend(data)
        while True:
            if not started[0]:  # the startup message has no type byte
                if len(pending) < 4:
                    return
                (length,) = struct.unpack("!I", pending[:4])
                if len(pending) < length:
                    return
                code = struct.unpack("!I", pending[4:8])[0] if length >= 8 else 0
                del pending[:length]
                if code != 80877103:  # an SSL request is followed by another startup message
                    started[0] = True
                continue
            if len(pending) < 5:
                return
            kind = bytes(pending[0:1])
            (length,) = struct.unpack("!I", pending[1:5])
            if len(pending) < 1 + length:
                return
            del pending[: 1 + length]
            if kind in (b"S", b"Q"):
                with self._lock:
                    self.round_trips += 1

    def _pipe(self, source: socket.socket, sink: socket.socket, client: socket.socket) -> None:
        upstream = source is client
        started, pending = [False], bytearray()
        try:
            while data := source.recv(65536):
                if upstream and client in self._broken:
                    source.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    source.close()  # RST: the client learns now, at its first use
                    return
                if upstream:
                    self._count(data, started, pending)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            if client not in self._broken:
                for end in (source, sink):
                    with suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pipe, args=(client, server, client), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, client), daemon=True).start()


@contextmanager
def tcp_proxy(target: tuple[str, int]) -> Iterator[Proxy]:
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = Proxy(listener.getsockname()[1], target)
    threading.Thread(target=proxy._accept, args=(listener,), daemon=True).start()
    try:
        yield proxy
    finally:
        listener.close()
        with proxy._lock:
            for client, server in proxy._pairs:
                client.close()
                server.close()
