"""The hot path's PostgreSQL pool (store/direct.py) and a connection that died while pooled (a database
restart, a firewall that dropped it silently): the next submits succeed, and a healthy submit makes no
more round trips than before (the BEGIN a transaction sends anyway is the check). Issue 29.5."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from tests.conftest import make_settings, start_relay
from tests.support.tcp_proxy import tcp_proxy


def test_a_half_open_connection_fails_no_submit(tmp_path: Path, pg_url: str) -> None:
    url = make_url(pg_url)
    with tcp_proxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        through = url.set(port=proxy.port).render_as_string(hide_password=False)
        # Only the submits talk to the database (no worker, no upstream callbacks): their round trips count.
        settings = make_settings(
            tmp_path, database_url=through, worker_enabled=False, upstream_callbacks=False
        )
        with start_relay(settings) as relay, relay.client() as client:
            for _ in range(3):  # the pool has its connections, the caches are warm
                assert client.post("/luma/generations", json={"user_prompt": "warm"}).status_code == 200
            before = proxy.round_trips
            assert client.post("/luma/generations", json={"user_prompt": "counted"}).status_code == 200
            healthy = proxy.round_trips - before
            print(f"round trips to PostgreSQL of one submit on healthy pooled connections: {healthy}")
            assert proxy.break_open_connections() > 0
            answers = [client.post("/luma/generations", json={"user_prompt": f"after {i}"}) for i in range(5)]
            assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
            assert all(client.get(f"/luma/generations/{a.json()['id']}").status_code == 200 for a in answers)
