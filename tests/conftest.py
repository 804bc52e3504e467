"""Shared fixtures: settings on a temp data dir, and a real DreamRelay on a loopback port."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.ports import free_port as free_port  # tests import it from here

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

    from dreamrelay.settings import Settings

# What a running relay needs (the app, the store, uvicorn: seconds of imports) is imported where it is
# used, so the unit layer (tests/unit, which starts no relay) collects without it.


def _one_tls_context_for_the_tests_clients() -> None:
    """Every httpx client made in a test process (the tests' own and the Python SDKs') gets one shared
    default TLS context instead of building its own: loading the CA bundle cost 19 ms of CPU a client,
    about a tenth of the suite's. Contexts are made to be shared; the tests speak plain HTTP on loopback;
    the product's own processes are untouched."""
    try:
        from httpx._transports import default
    except ImportError:
        return
    build = getattr(default, "create_ssl_context")  # noqa: B009 (not in its exports)
    shared = functools.cache(build)  # one context per (verify, cert, trust_env)

    def create_ssl_context(verify: object = True, cert: object = None, trust_env: bool = True) -> object:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        return shared(verify=True, cert=None, trust_env=trust_env)

    setattr(default, "create_ssl_context", create_ssl_context)  # noqa: B010


_one_tls_context_for_the_tests_clients()


@dataclass
class StoreChoice:
    """The store the running test uses: SQLite files, or one PostgreSQL database per data directory."""

    kind: str = "sqlite"
    databases: dict[Path, str] = field(default_factory=dict)
    _drops: list[Iterator[str]] = field(default_factory=list)

    def url_for(self, data_dir: Path) -> str | None:
        if self.kind == "sqlite":
            return None
        from tests.support.templates import migrated_postgres_database

        key = data_dir.resolve()
        if key not in self.databases:
            database = migrated_postgres_database()
            self.databases[key] = next(database)
            self._drops.append(database)
        return self.databases[key]

    def reset(self) -> None:
        for database in self._drops:
            next(database, None)  # runs its clean-up: the database is dropped
        self.kind, self.databases, self._drops = "sqlite", {}, []


STORE = StoreChoice()


TEST_DATABASE_CONNECTIONS = 10


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Fast sandbox settings on `data_dir`; on the PostgreSQL run, that directory's own database."""
    from dreamrelay.settings import Settings

    values: dict[str, object] = {
        "data_dir": data_dir,
        "port": free_port(),
        "sandbox_queued_seconds": 0.0,
        "sandbox_dreaming_seconds": 0.0,
        "task_deadline_seconds": 120.0,
        "database_url": STORE.url_for(data_dir),
        # The machine's PostgreSQL (max_connections 100) serves every test process at once: a relay
        # process of a test opens at most this many connections (20 by default).
        "database_connections": TEST_DATABASE_CONNECTIONS,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Relay:
    """A running DreamRelay: its URL, settings and the demo account's key."""

    url: str
    settings: Settings
    key: str
    app: FastAPI | None = None  # the application served (its runtime at app.state.runtime)

    def client(self, key: str | None = None) -> httpx.Client:
        import httpx

        headers = {"Authorization": f"Bearer {key or self.key}"}
        # Generous: a synchronous route waits for a render, slow on a machine busy with other tests.
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def admin(self) -> httpx.Client:
        """A client holding the admin token (from the data directory, made on first need)."""
        import httpx

        from dreamrelay.local_secrets import ensure_admin_token

        token, _created = ensure_admin_token(self.settings)
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def new_key(self, account: str, *, balance: int = 0, **limits: object) -> str:
        """A key of `account` (created with `balance` credits if new); `limits` are api_keys columns."""
        return asyncio.run(_new_key(self.settings, account, balance, limits))


async def _prepare(settings: Settings) -> str | None:
    from dreamrelay.runtime import Runtime
    from dreamrelay.services.bootstrap import first_start
    from dreamrelay.store import migrate

    async with Runtime.from_settings(settings) as rt:
        await migrate.upgrade(rt.db)  # at head already when copied from the template
        seeded = await first_start(rt)
    return seeded.api_key if seeded else None


async def _new_key(settings: Settings, account: str, balance: int, limits: dict[str, object]) -> str:
    from sqlalchemy import update

    from dreamrelay.runtime import Runtime
    from dreamrelay.store import accounts as account_store
    from dreamrelay.store import ledger
    from dreamrelay.store.schema import api_keys

    async with Runtime.from_settings(settings) as rt, rt.db.transaction() as conn:
        found = await account_store.get_account(conn, account)
        if found is None:
            found = await account_store.create_account(conn, account)
            if balance:
                await ledger.top_up(conn, found.id, balance, note="test")
        key_id, key = await account_store.create_key(conn, found.id)
        if limits:
            await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**limits))
    return key


@contextmanager
def start_relay(settings: Settings, key: str | None = None) -> Iterator[Relay]:
    """Migrate and seed the store, then serve DreamRelay on settings.port until the block ends.

    On a data directory that was seeded before, pass the demo `key` it printed then.
    """
    from dreamrelay.http.app import create_app
    from dreamrelay.http.protocol import ConnectionLimits, guarded_protocol
    from tests.support.live_server import live_server
    from tests.support.templates import copy_migrated_sqlite

    store_file = settings.data_dir / "dreamrelay.db"
    if settings.database_url is None and not store_file.exists():
        copy_migrated_sqlite(store_file)
    seeded = asyncio.run(_prepare(settings))
    demo_key = seeded or key
    assert demo_key is not None, "this data directory was seeded before: pass its demo key"
    app = create_app(settings)
    # Served as `dreamrelay serve` serves it: with the connection guard (header and body deadlines).
    with live_server(app, port=settings.port, http=guarded_protocol(ConnectionLimits.of(settings))) as url:
        yield Relay(url=url, settings=settings, key=demo_key, app=app)


@contextmanager
def relays_by_store(data_dir: Path, **overrides: object) -> Iterator[Callable[[str], Relay]]:
    """For a module's shared relays: `relay_for(kind)` starts (once) a relay on that store, so the
    module's [postgres] tests really run on PostgreSQL. Its database is its own, not the test's (a test's
    is dropped when the test ends); everything stops when the block ends."""
    with ExitStack() as stack:
        from tests.support.templates import migrated_postgres_database

        started: dict[str, Relay] = {}

        def relay_for(kind: str) -> Relay:
            if kind not in started:
                url = (
                    stack.enter_context(contextmanager(migrated_postgres_database)())
                    if kind == "postgres"
                    else None
                )
                settings = make_settings(data_dir / kind, **{**overrides, "database_url": url})
                started[kind] = stack.enter_context(start_relay(settings))
            return started[kind]

        yield relay_for


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    """DreamRelay with the sandbox at its fastest timings (completion = render time)."""
    with start_relay(make_settings(tmp_path)) as running:
        yield running


@pytest.fixture
def pg_url() -> Iterator[str]:
    from tests.support.services import postgres_database

    yield from postgres_database()


@pytest.fixture
def redis_ns() -> Iterator[str]:
    from tests.support.services import redis_prefix

    yield from redis_prefix()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules marked `both_stores` run every test once on SQLite and once on PostgreSQL (except the
    tests marked `sqlite_only`: long ones whose subject is not the store)."""
    marked = metafunc.definition.get_closest_marker
    if "store" in metafunc.fixturenames and marked("both_stores") and not marked("sqlite_only"):
        metafunc.parametrize("store", ["sqlite", "postgres"], indirect=True)


@pytest.fixture(autouse=True)
def store(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which store `make_settings` gives this test (SQLite unless its module is marked both_stores)."""
    STORE.kind = getattr(request, "param", "sqlite")
    try:
        yield STORE.kind
    finally:
        STORE.reset()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """Each store the product supports: None means the default SQLite file under the data dir."""
    if request.param == "sqlite":
        yield None
    else:
        from tests.support.services import postgres_database

        yield from postgres_database()


HEAVY_LANES = 2  # `make test` runs the heavy tests with `-n 2 --dist loadgroup`: one lane a worker


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The heavy tests in HEAVY_LANES lanes of about equal length: longest first, each into the lane
    that ends soonest, by the seconds their `heavy(seconds=…)` mark expects. So the two kill -9 soaks run
    side by side and the shorter faults fill in after them."""
    heavy = [(item, item.get_closest_marker("heavy")) for item in items]
    timed = sorted(
        ((mark.kwargs.get("seconds", 30), item.nodeid, item) for item, mark in heavy if mark is not None),
        key=lambda entry: (-entry[0], entry[1]),
    )
    ends = [0.0] * HEAVY_LANES
    for seconds, _nodeid, item in timed:
        lane = ends.index(min(ends))
        ends[lane] += seconds
        item.add_marker(pytest.mark.xdist_group(f"heavy-lane-{lane + 1}"))
