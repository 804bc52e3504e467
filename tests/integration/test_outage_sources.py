"""Which socket errors are the database's, raised by real sockets on loopback.

A refused connection met by the database driver (asyncpg, directly or under SQLAlchemy) is an outage: the
API answers 503 `database_unavailable`, a background loop waits. The same builtin ConnectionRefusedError
or ConnectionResetError met by an upstream, a callback receiver or object storage (aiohttp) is not, and
neither is a bug raised while one was being handled: those are answered as what they are (a 500 here),
never "the database is unavailable".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import aiohttp
import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from dreamrelay.domain.errors import DatabaseUnavailable
from dreamrelay.http.errors import unexpected
from dreamrelay.store.outage import is_outage
from tests.support.ports import free_port
from tests.support.upstreams import resetting_server


async def _raised(work: Awaitable[object]) -> Exception:
    try:
        await work
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def test_the_database_refusing_a_connection_is_an_outage() -> None:
    port = free_port()  # nothing listens there

    async def errors() -> list[Exception]:
        direct = await _raised(asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/dreamrelay"))
        engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/dreamrelay")

        async def through_sqlalchemy() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        try:
            return [direct, await _raised(through_sqlalchemy())]
        finally:
            await engine.dispose()

    for error in asyncio.run(errors()):
        assert isinstance(error, ConnectionRefusedError), repr(error)
        assert is_outage(error)
        answer = unexpected("POST", "/luma/generations", error)
        assert isinstance(answer, DatabaseUnavailable) and answer.status == 503


def test_an_upstream_or_storage_socket_error_is_not_a_database_outage() -> None:
    refused_port = free_port()

    async def errors(resetting: str) -> list[Exception]:
        async with aiohttp.ClientSession() as session:
            refused = await _raised(session.get(f"http://127.0.0.1:{refused_port}/video.mp4"))
            reset = await _raised(session.get(f"{resetting}/video.mp4"))
        try:
            try:
                raise reset
            except aiohttp.ClientError:
                media: dict[str, str] = {}
                media["video"]  # a bug while handling it: the reset is in its context chain
        except KeyError as bug:
            return [refused, reset, bug]
        raise AssertionError("no bug")

    with resetting_server() as resetting:
        found = asyncio.run(errors(resetting))
    refused, reset, _bug = found
    # The builtin socket errors are there, as the cause of aiohttp's (which once made them all outages).
    assert isinstance(refused.__cause__, ConnectionRefusedError), repr(refused.__cause__)
    assert isinstance(reset.__cause__ or reset, ConnectionResetError), repr(reset)
    for error in found:
        assert not is_outage(error), repr(error)
        answer = unexpected("GET", "/luma/generations/x", error)
        assert not isinstance(answer, DatabaseUnavailable) and answer.status == 500
