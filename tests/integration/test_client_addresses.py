"""Who the client is, and who reads /metrics: with trusted proxies (DREAMRELAY_TRUSTED_PROXIES) the
forwarded address counts for throttles; from any other peer forwarding headers are ignored; /metrics
needs a token except from loopback or DREAMRELAY_METRICS_NETWORKS (issues 26.18 and 29.2)."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import httpx
import pytest

from dreamrelay.http.clients import forwarded_client
from dreamrelay.netguard import parse_networks
from tests.conftest import Relay, make_settings, start_relay
from tests.support.guesses import guess_until_refused

METRICS_TOKEN = "drm-metrics-token-for-tests"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Relay]:
    """A relay behind a reverse proxy on this host (127.0.0.1 is trusted to forward the client)."""
    settings = make_settings(
        tmp_path, trusted_proxies="127.0.0.1", metrics_networks="10.0.0.0/8", metrics_token=METRICS_TOKEN
    )
    with start_relay(settings) as relay:
        yield relay


def from_(client: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": client, **headers}


def test_metrics_need_a_token_except_from_loopback_or_a_named_network(proxied: Relay) -> None:
    url = f"{proxied.url}/metrics"
    admin = proxied.admin().headers["authorization"]
    assert httpx.get(url).status_code == 200  # loopback, not relayed
    assert httpx.get(url, headers=from_("10.20.30.40")).status_code == 200  # the operator's network
    refused = httpx.get(url, headers=from_("203.0.113.5"))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "metrics_token_required"
    assert "DREAMRELAY_METRICS_TOKEN" in refused.json()["error"]["message"]
    assert "dreamrelay_" not in refused.text
    assert (
        httpx.get(url, headers=from_("203.0.113.5", Authorization=f"Bearer {METRICS_TOKEN}")).status_code
        == 200
    )
    assert httpx.get(url, headers=from_("203.0.113.5", Authorization=admin)).status_code == 200
    # Guessing the token (the admin token too) uses up the address's sign-in attempts.
    wrong = guess_until_refused(
        lambda i: httpx.get(url, headers=from_("203.0.113.6", Authorization=f"Bearer guess-{i}")).status_code
    )
    assert wrong.statuses[0] == 401 and wrong.ran_dry(), wrong  # 20 a minute: the bucket runs dry
    assert (
        httpx.get(url, headers=from_("203.0.113.5", Authorization=f"Bearer {METRICS_TOKEN}")).status_code
        == 200
    )


def test_an_unknown_proxy_on_this_host_gets_no_free_metrics(tmp_path: Path) -> None:
    """No trusted proxies: a request relayed by a proxy we were not told about is not "from loopback"."""
    with start_relay(make_settings(tmp_path)) as relay:
        assert httpx.get(f"{relay.url}/metrics").status_code == 200
        relayed = httpx.get(f"{relay.url}/metrics", headers=from_("203.0.113.5"))
        assert relayed.status_code == 401
        token = relay.admin().headers["authorization"]
        assert (
            httpx.get(f"{relay.url}/metrics", headers=from_("203.0.113.5", Authorization=token)).status_code
            == 200
        )


def test_behind_a_trusted_proxy_one_guesser_locks_out_only_itself(proxied: Relay) -> None:
    """The issue's scene: one stranger guessing admin tokens no longer locks every operator out."""
    url = f"{proxied.url}/admin/accounts"
    guesses = guess_until_refused(
        lambda i: (
            httpx.get(url, headers=from_("203.0.113.7", Authorization=f"Bearer dra-guess-{i}")).status_code
        )
    )
    assert guesses.ran_dry(), guesses
    token = proxied.admin().headers["authorization"]
    assert httpx.get(url, headers=from_("198.51.100.9", Authorization=token)).status_code == 200


def test_a_peer_that_is_no_proxy_never_chooses_its_address(tmp_path: Path) -> None:
    """Trusted proxies elsewhere (a compose network): this loopback peer's headers are ignored, so a
    guesser cannot spread its guesses over made-up addresses."""
    with start_relay(make_settings(tmp_path, trusted_proxies="172.16.0.0/12")) as relay:
        url = f"{relay.url}/admin/accounts"
        guesses = guess_until_refused(
            lambda i: (
                httpx.get(
                    url, headers=from_(f"198.51.100.{i}", Authorization=f"Bearer dra-guess-{i}")
                ).status_code
            )
        )
        assert guesses.statuses[0] == 401 and guesses.ran_dry(), guesses


def test_the_client_of_a_chain_is_the_rightmost_address_that_is_no_proxy() -> None:
    proxies = parse_networks("127.0.0.1, 172.16.0.0/12")
    peer = ip_address("127.0.0.1")
    assert forwarded_client(peer, "203.0.113.7", proxies) == ip_address("203.0.113.7")
    # The client wrote a made-up address first; the proxies appended what they saw.
    assert forwarded_client(peer, "1.2.3.4, 203.0.113.7, 172.17.0.2", proxies) == ip_address("203.0.113.7")
    assert forwarded_client(peer, "172.17.0.2, 127.0.0.1", proxies) == ip_address("172.17.0.2")  # all ours
    assert forwarded_client(peer, "not-an-address", proxies) is None  # the peer stays the client
