"""URL safety: customer-given URLs never reach loopback, private or metadata addresses, in any spelling.

Every server here is a real one on 127.0.0.0/8 that counts the TCP connections it accepts; DNS is
simulated at its boundary (`socket.getaddrinfo`), and tripwires fail the test if anything at all
tries to connect, or to ask a DNS server, off this machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import httpx
import pytest
from sqlalchemy import func, select

from dreamrelay.netguard import (
    MAX_REDIRECTS,
    FetchError,
    UnsafeURL,
    URLPolicy,
    check_url_syntax,
    fetch_bytes,
    guarded_session,
    host_and_port,
    post_json,
    resolve_checked,
)
from dreamrelay.runtime import Runtime
from dreamrelay.settings import Settings
from dreamrelay.store.schema import accounts, tasks
from dreamrelay.store.schema import ledger as ledger_table
from tests.conftest import Relay, make_settings, start_relay

T = TypeVar("T")

PUBLIC_V4 = "93.184.215.14"  # only ever handed out by the fake DNS below, never connected to
LOOPBACK_ONLY = URLPolicy.from_setting("127.0.0.0/8")


# --- a receiver that counts connections -------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/plain"),)
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length
    endless: bool = False  # chunked and never finished
    hang: bool = False  # read the request, never answer


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: Receiver

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # Runs in the accept thread right after accept(): connections are recorded in arrival order.
        self.owner.accepted(tuple(client_address[:2]))
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _answer(self, body: bytes) -> None:
        owner = self.server.owner
        reply = owner.record(Seen(self.command, self.path, dict(self.headers.items()), body))
        try:
            if reply.hang:
                owner.stopping.wait(30)
                self.close_connection = True
                return
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.chunked or reply.endless:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while not owner.stopping.is_set():
                    for start in range(0, len(reply.body), 4096):
                        piece = reply.body[start : start + 4096]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    if not reply.endless:
                        break
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
        except OSError:  # the client hung up (as it should once it has had enough)
            self.close_connection = True


class Receiver:
    """A real HTTP server on `host` that records every connection and request it gets."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.replies: dict[str, Reply] = {}
        self.requests: list[Seen] = []
        self.stopping = threading.Event()
        self._peers: list[tuple[Any, ...]] = []
        self._probes: set[tuple[Any, ...]] = set()
        self._lock = threading.Lock()
        self._server = _Server((host, 0), _Handler)
        self._server.owner = self
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def accepted(self, peer: tuple[Any, ...]) -> None:
        with self._lock:
            self._peers.append(peer)

    def record(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
        return self.replies.get(seen.path.split("?", 1)[0], Reply())

    def connections(self) -> int:
        """Connections accepted so far, not counting our own probe.

        The probe is accepted after anything that connected before it (the accept queue is FIFO),
        so once it shows up, an earlier connection cannot still be on its way.
        """
        with socket.create_connection((self.host, self.port), timeout=5) as probe:
            me = tuple(probe.getsockname()[:2])
            with self._lock:
                self._probes.add(me)
            deadline = time.monotonic() + 5
            while True:
                with self._lock:
                    if me in self._peers:
                        return sum(1 for peer in self._peers if peer not in self._probes)
                assert time.monotonic() < deadline, "the receiver never accepted the probe"
                time.sleep(0.005)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver("127.0.0.1") as running:
        yield running


# --- DNS at its boundary, and a tripwire for anything leaving the machine ---------------------------


class FakeDNS:
    """Answers for chosen names. Otherwise only `localhost` and numeric hosts reach the real resolver:
    a lookup that would go to a DNS server (off this machine) is refused and fails the test."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self._real = real
        self._answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self.sent_off_machine: list[str] = []
        self._lock = threading.Lock()

    def add(self, name: str, *answers: list[str]) -> None:
        """Each lookup of `name` gets the next answer; the last one repeats."""
        self._answers[name.lower()] = list(answers)

    def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        name = (host.decode() if isinstance(host, bytes) else str(host or "")).lower()
        if name not in self._answers:
            if name in ("", "localhost"):
                return self._real(host, port, family, type, proto, flags)
            try:
                return self._real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
            except socket.gaierror:
                with self._lock:
                    self.sent_off_machine.append(name)
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        with self._lock:
            self.lookups.append(name)
            queue = self._answers[name]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
        port_number = int(port or 0)
        infos: list[tuple[Any, ...]] = []
        for text in answer:
            v4 = ipaddress.ip_address(text).version == 4
            kind = socket.AF_INET if v4 else socket.AF_INET6
            if family in (0, kind):
                sockaddr = (text, port_number) if v4 else (text, port_number, 0, 0)
                infos.append((kind, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        if not infos:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return infos


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDNS]:
    dns = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    yield dns
    assert not dns.sent_off_machine, f"a lookup tried to reach a DNS server: {dns.sent_off_machine}"


def _is_loopback(host: str) -> bool:
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@pytest.fixture(autouse=True)
def only_this_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connect() to an address outside loopback is refused and fails the test."""
    off_machine: list[object] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(address: object) -> None:
        if isinstance(address, tuple) and not _is_loopback(str(address[0])):
            off_machine.append(address)
            raise ConnectionRefusedError(f"test tripwire: no connections off this machine ({address})")

    def connect(sock: socket.socket, address: Any) -> None:
        check(address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield
    assert not off_machine, f"something tried to connect off this machine: {off_machine}"


def with_session(policy: URLPolicy, action: Callable[[aiohttp.ClientSession], Awaitable[T]]) -> T:
    async def main() -> T:
        async with guarded_session(policy) as session:
            return await action(session)

    return asyncio.run(main())


def fetch(url: str, policy: URLPolicy, *, max_bytes: int = 1_000_000, timeout: float = 10) -> bytes:
    async def action(session: aiohttp.ClientSession) -> bytes:
        data, _type = await fetch_bytes(session, url, policy, max_bytes=max_bytes, timeout_seconds=timeout)
        return data

    return with_session(policy, action)


def post(url: str, policy: URLPolicy, *, timeout: float = 10) -> int:
    async def action(session: aiohttp.ClientSession) -> int:
        headers = {"Content-Type": "application/json", "X-Test": "netguard"}
        status, _seconds = await post_json(
            session, url, b'{"state": "completed"}', headers, policy, timeout_seconds=timeout
        )
        return status

    return with_session(policy, action)


def first_two_layers(url: str, policy: URLPolicy) -> list[Any]:
    """What submit does with a callback URL before accepting it."""
    check_url_syntax(url, policy)
    host, port = host_and_port(url)
    return asyncio.run(resolve_checked(host, port, policy))


# --- 1. syntax and resolution ------------------------------------------------------------------------

FORBIDDEN_HTTP_URLS = [
    "http://127.0.0.1/",
    "http://localhost/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0.0.0.0/",
    "http://[fd00:ec2::254]/",
    "http://100.64.0.1/",
    # more spellings and ranges of the same rules
    "https://127.0.0.1:8443/x",
    "http://user:pw@127.0.0.1/",
    "http://0X7F.0.0.1/",
    "http://0/",
    "http://[::]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://[fe80::1%25eth0]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://127.0.0.1./",
    "http://0x7f000001./",
    "http://１２７.0.0.1/",
    "http://127。0。0。1/",
]
NOT_HTTP_URLS = ["ftp://example.com/", "file:///etc/passwd", "http:///no-host", "https://", "gopher://x/"]


@pytest.mark.parametrize("url", FORBIDDEN_HTTP_URLS + NOT_HTTP_URLS)
def test_submit_checks_refuse_forbidden_urls(url: str) -> None:
    with pytest.raises(UnsafeURL):
        first_two_layers(url, URLPolicy())


@pytest.mark.parametrize("url", [u for u in FORBIDDEN_HTTP_URLS if "localhost" not in u] + NOT_HTTP_URLS)
def test_syntax_check_alone_refuses_literals_in_any_spelling(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url_syntax(url, URLPolicy())


@pytest.mark.parametrize("url", FORBIDDEN_HTTP_URLS)
def test_resolution_check_alone_refuses_every_forbidden_host(url: str) -> None:
    host, port = host_and_port(url)
    with pytest.raises(UnsafeURL):
        asyncio.run(resolve_checked(host, port, URLPolicy()))


@pytest.mark.parametrize(
    ("url", "address"),
    [
        (f"http://{PUBLIC_V4}/", PUBLIC_V4),
        (f"https://{PUBLIC_V4}:8443/hook?x=1", PUBLIC_V4),
        ("http://8.8.8.8/", "8.8.8.8"),
        ("https://[2606:4700:4700::1111]/cb", "2606:4700:4700::1111"),
    ],
)
def test_public_literals_are_accepted_without_any_lookup(
    url: str, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_dns(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"an IP literal must not be looked up: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert first_two_layers(url, URLPolicy()) == [ipaddress.ip_address(address)]


def test_allow_list_lets_exactly_its_networks_through() -> None:
    policy = URLPolicy.from_setting(" 127.0.0.0/8, 10.1.0.0/16 ,")
    for allowed in ("http://127.0.0.1/", "http://127.9.9.9/", "http://2130706433/", "http://10.1.2.3/"):
        assert first_two_layers(allowed, policy)
    for refused in ("http://10.2.0.1/", "http://192.168.1.1/", "http://169.254.169.254/", "http://[::1]/"):
        with pytest.raises(UnsafeURL):
            first_two_layers(refused, policy)
    assert URLPolicy.from_setting("") == URLPolicy.from_setting(None) == URLPolicy()


# --- 2. loopback spellings are never connected to ---------------------------------------------------

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "localhost",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "127.0.0.1.",
    "１２７.0.0.1",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_in_any_spelling_is_never_connected_to(host: str, receiver: Receiver) -> None:
    url = receiver.url("/hook", host=host)
    with pytest.raises(UnsafeURL):
        fetch(url, URLPolicy())
    with pytest.raises(UnsafeURL):
        post(url, URLPolicy())
    assert receiver.connections() == 0
    assert receiver.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "１２７.0.0.1"])
def test_the_same_spellings_do_reach_the_receiver_when_allow_listed(host: str, receiver: Receiver) -> None:
    """The control for the test above: these URLs really point at the receiver."""
    assert fetch(receiver.url("/hook", host=host), LOOPBACK_ONLY) == b"ok"
    assert receiver.connections() == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]"])
def test_the_guarded_session_refuses_the_socket_even_without_the_url_checks(
    host: str, receiver: Receiver
) -> None:
    """aiohttp does not resolve IP literals; the socket factory is what stands in the way."""

    async def direct(session: aiohttp.ClientSession) -> None:
        async with session.get(receiver.url("/", host=host)):
            pass

    with pytest.raises(aiohttp.ClientConnectorError):
        with_session(URLPolicy(), direct)
    assert receiver.connections() == 0


# --- 3. a public-looking name that resolves to loopback ---------------------------------------------

HOOK_NAME = "callbacks.example-public.com"


FORBIDDEN_ANSWERS = [["127.0.0.1"], ["::1"], ["::ffff:127.0.0.1"], ["169.254.169.254"], ["10.0.0.1"]]


@pytest.mark.parametrize("answer", [*FORBIDDEN_ANSWERS, [PUBLIC_V4, "127.0.0.1"]])
def test_a_name_resolving_to_a_forbidden_address_is_refused(answer: list[str], fake_dns: FakeDNS) -> None:
    fake_dns.add(HOOK_NAME, answer)
    with pytest.raises(UnsafeURL, match="resolves to"):
        first_two_layers(f"https://{HOOK_NAME}/hook", URLPolicy())
    assert fake_dns.lookups == [HOOK_NAME]


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["::ffff:127.0.0.1"]])
def test_a_name_resolving_to_loopback_is_never_connected_to(
    answer: list[str], receiver: Receiver, fake_dns: FakeDNS
) -> None:
    fake_dns.add(HOOK_NAME, answer)
    url = receiver.url("/hook", host=HOOK_NAME)
    with pytest.raises(UnsafeURL):
        post(url, URLPolicy())
    with pytest.raises(UnsafeURL):
        fetch(url, URLPolicy())
    assert receiver.connections() == 0
    assert fake_dns.lookups == [HOOK_NAME, HOOK_NAME]  # refused because of the answer, not a failed lookup
    # Control: allow-listed, the very same name and URL reach the receiver.
    assert post(url, LOOPBACK_ONLY) == 200
    assert receiver.connections() == 1


# --- 4. DNS rebinding --------------------------------------------------------------------------------


@pytest.mark.parametrize("send", ["post_json", "fetch_bytes"])
def test_rebinding_after_the_submit_check_is_refused_at_connect(
    send: str, receiver: Receiver, fake_dns: FakeDNS
) -> None:
    fake_dns.add(HOOK_NAME, [PUBLIC_V4], ["127.0.0.1"])
    url = receiver.url("/hook", host=HOOK_NAME)
    assert first_two_layers(url, URLPolicy()) == [ipaddress.ip_address(PUBLIC_V4)]  # accepted at submit
    with pytest.raises(UnsafeURL):
        if send == "post_json":
            post(url, URLPolicy())
        else:
            fetch(url, URLPolicy())
    assert fake_dns.lookups == [HOOK_NAME, HOOK_NAME]
    assert receiver.connections() == 0


# --- 5. redirects ------------------------------------------------------------------------------------


@pytest.fixture
def hop() -> Iterator[Receiver]:
    """The only allow-listed server: 127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux)."""
    with Receiver("127.0.0.2") as running:
        yield running


ONLY_HOP = URLPolicy.from_setting("127.0.0.2/32")


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/secret",
        "//127.0.0.1:{port}/secret",
        "http://2130706433:{port}/secret",
        "http://0x7f000001:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://localhost:{port}/secret",
        "http://" + HOOK_NAME + ":{port}/secret",
        "file:///etc/passwd",
    ],
)
def test_a_redirect_to_a_forbidden_address_is_refused(
    location: str, hop: Receiver, receiver: Receiver, fake_dns: FakeDNS
) -> None:
    fake_dns.add(HOOK_NAME, ["127.0.0.1"])
    hop.replies["/image.png"] = Reply(302, b"", (("Location", location.format(port=receiver.port)),))
    with pytest.raises(UnsafeURL):
        fetch(hop.url("/image.png"), ONLY_HOP)
    assert [seen.path for seen in hop.requests] == ["/image.png"]
    assert receiver.connections() == 0
    assert receiver.requests == []


def test_the_allow_list_itself_does_not_cover_the_second_receiver(hop: Receiver, receiver: Receiver) -> None:
    with pytest.raises(UnsafeURL):
        fetch(receiver.url("/secret"), ONLY_HOP)
    assert fetch(hop.url("/"), ONLY_HOP) == b"ok"
    assert receiver.connections() == 0


def _chain(server: Receiver, redirects: int) -> None:
    for n in range(redirects):
        target = f"/r{n + 1}" if n + 1 < redirects else "/final"
        status = (301, 302, 303, 307, 308)[n % 5]
        server.replies[f"/r{n}"] = Reply(status, b"", (("Location", target),))
    server.replies["/final"] = Reply(200, b"the image")


def test_up_to_three_redirects_are_followed(hop: Receiver) -> None:
    _chain(hop, MAX_REDIRECTS)
    assert MAX_REDIRECTS == 3
    assert fetch(hop.url("/r0"), ONLY_HOP) == b"the image"
    assert [seen.path for seen in hop.requests] == ["/r0", "/r1", "/r2", "/final"]


def test_more_than_three_redirects_fail(hop: Receiver) -> None:
    _chain(hop, MAX_REDIRECTS + 1)
    with pytest.raises(FetchError, match="redirects") as caught:
        fetch(hop.url("/r0"), ONLY_HOP)
    assert not isinstance(caught.value, UnsafeURL) and not caught.value.too_large
    assert [seen.path for seen in hop.requests] == ["/r0", "/r1", "/r2", "/r3"]  # /final never asked for


def test_a_redirect_loop_ends(hop: Receiver) -> None:
    hop.replies["/loop"] = Reply(302, b"", (("Location", "/loop"),))
    with pytest.raises(FetchError):
        fetch(hop.url("/loop"), ONLY_HOP)
    assert len(hop.requests) == MAX_REDIRECTS + 1


def test_post_json_does_not_follow_redirects(hop: Receiver, receiver: Receiver) -> None:
    hop.replies["/hook"] = Reply(307, b"", (("Location", receiver.url("/hook")),))
    assert post(hop.url("/hook"), URLPolicy.from_setting("127.0.0.0/8")) == 307
    assert receiver.connections() == 0


# --- 6. size and time caps ---------------------------------------------------------------------------

BODY = bytes(range(256)) * 40  # 10 240 bytes


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_max_bytes_is_refused_as_too_large(chunked: bool, receiver: Receiver) -> None:
    receiver.replies["/big"] = Reply(200, BODY, chunked=chunked)
    with pytest.raises(FetchError) as caught:
        fetch(receiver.url("/big"), LOOPBACK_ONLY, max_bytes=len(BODY) - 1)
    assert caught.value.too_large
    # Exactly max_bytes is fine, and the body arrives intact.
    assert fetch(receiver.url("/big"), LOOPBACK_ONLY, max_bytes=len(BODY)) == BODY


def test_an_endless_body_is_cut_off_at_max_bytes(receiver: Receiver) -> None:
    receiver.replies["/stream"] = Reply(200, b"x" * 65536, endless=True)
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch(receiver.url("/stream"), LOOPBACK_ONLY, max_bytes=200_000, timeout=10)
    assert caught.value.too_large
    assert time.monotonic() - started < 5


def test_an_error_status_is_a_fetch_error(receiver: Receiver) -> None:
    receiver.replies["/missing"] = Reply(404, b"nope")
    with pytest.raises(FetchError, match="404") as caught:
        fetch(receiver.url("/missing"), LOOPBACK_ONLY)
    assert not caught.value.too_large


@pytest.mark.parametrize("send", ["fetch_bytes", "post_json"])
def test_a_receiver_that_never_answers_times_out(send: str, receiver: Receiver) -> None:
    receiver.replies["/slow"] = Reply(hang=True)
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        if send == "fetch_bytes":
            fetch(receiver.url("/slow"), LOOPBACK_ONLY, timeout=0.5)
        else:
            post(receiver.url("/slow"), LOOPBACK_ONLY, timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3, elapsed
    assert not isinstance(caught.value, UnsafeURL) and not caught.value.too_large
    assert receiver.connections() == 1  # it did connect: the timeout is what ended it


# --- 7. the operator's allow-list --------------------------------------------------------------------


def test_post_json_to_an_allow_listed_receiver_returns_its_status(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(202, b"queued")
    assert post(receiver.url("/hook"), LOOPBACK_ONLY) == 202
    [seen] = receiver.requests
    assert (seen.method, seen.path, seen.body) == ("POST", "/hook", b'{"state": "completed"}')
    assert seen.headers["X-Test"] == "netguard"
    with pytest.raises(UnsafeURL):  # and without the allow-list, the same URL is refused
        post(receiver.url("/hook"), URLPolicy())
    assert receiver.connections() == 1


# --- 8. end to end through the relay -----------------------------------------------------------------


def account_state(settings: Settings, account: str) -> tuple[int, int, int]:
    """(balance, ledger rows, tasks) of `account`."""

    async def read() -> tuple[int, int, int]:
        async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
            row = (await conn.execute(select(accounts).where(accounts.c.name == account))).one()
            entries = await conn.scalar(
                select(func.count()).select_from(ledger_table).where(ledger_table.c.account_id == row.id)
            )
            created = await conn.scalar(
                select(func.count()).select_from(tasks).where(tasks.c.account_id == row.id)
            )
            return int(row.balance), int(entries or 0), int(created or 0)

    return asyncio.run(read())


@pytest.fixture(scope="module")
def strict_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    with start_relay(make_settings(tmp_path_factory.mktemp("strict"), allow_private_urls="")) as running:
        yield running


def _submit(relay: Relay, key: str, body: dict[str, object]) -> httpx.Response:
    with relay.client(key) as client:
        return client.post("/luma/generations", json={"user_prompt": "a safe cat", **body})


@pytest.mark.parametrize(
    ("field_name", "url"),
    [
        ("notify_hook", "http://127.0.0.1:9/hook"),
        ("notify_hook", "http://localhost:9/hook"),
        ("notify_hook", "http://[::1]:9/hook"),
        ("notify_hook", "http://[::ffff:127.0.0.1]:9/hook"),
        ("notify_hook", "http://2130706433:9/hook"),
        ("notify_hook", "http://0x7f000001:9/hook"),
        ("notify_hook", "http://127.0.0.1.:9/hook"),
        ("notify_hook", "http://１２７.0.0.1:9/hook"),
        ("notify_hook", "http://169.254.169.254/latest/meta-data"),
        ("notify_hook", "http://192.168.1.1/hook"),
        ("notify_hook", f"https://{HOOK_NAME}/hook"),
        ("notify_hook", "ftp://example.com/hook"),
        ("callback_url", "http://127.0.0.1:9/hook"),
    ],
)
def test_submit_with_a_forbidden_callback_is_a_400_and_costs_nothing(
    field_name: str, url: str, strict_relay: Relay, fake_dns: FakeDNS
) -> None:
    fake_dns.add(HOOK_NAME, ["127.0.0.1"])
    account = f"hooks-{uuid.uuid4().hex[:8]}"
    key = strict_relay.new_key(account, balance=1000)
    before = account_state(strict_relay.settings, account)
    response = _submit(strict_relay, key, {field_name: url})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("notify_hook:")
    assert account_state(strict_relay.settings, account) == before == (1000, 1, 0)


def test_submit_with_an_image_url_on_loopback_never_connects(strict_relay: Relay, receiver: Receiver) -> None:
    account = f"images-{uuid.uuid4().hex[:8]}"
    key = strict_relay.new_key(account, balance=1000)
    for host in ("127.0.0.1", "2130706433", "localhost"):
        response = _submit(strict_relay, key, {"image_url": receiver.url("/cat.png", host=host)})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"].startswith("image_url:")
    assert receiver.connections() == 0
    assert account_state(strict_relay.settings, account) == (1000, 1, 0)


def test_an_allow_listed_callback_is_accepted_and_delivered(tmp_path: Path, receiver: Receiver) -> None:
    """The control for the 400s above: with the operator's allow-list the same kind of URL works."""
    settings = make_settings(tmp_path, allow_private_urls="127.0.0.0/8")
    with start_relay(settings) as relay:
        key = relay.new_key("hooked", balance=1000)
        response = _submit(relay, key, {"notify_hook": receiver.url("/hook"), "resolution": "540p"})
        assert response.status_code == 200, response.text
        task_id = response.json()["id"]
        balance, _entries, created = account_state(settings, "hooked")
        assert balance < 1000 and created == 1
        deadline = time.monotonic() + 20
        while not any(seen.headers.get("DreamRelay-Task-Id") == task_id for seen in receiver.requests):
            assert time.monotonic() < deadline, "the callback never arrived"
            time.sleep(0.05)
    assert all(seen.method == "POST" and seen.path == "/hook" for seen in receiver.requests)
