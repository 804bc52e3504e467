"""What `dreamrelay serve` prints first: where it listens, which public URL its links use, and where the
first key is (on a terminal, the key; otherwise the file, and in a container how to read it from the host)."""

from __future__ import annotations

from pathlib import Path

from dreamrelay.cli import welcome
from dreamrelay.services.bootstrap import FirstStart
from dreamrelay.settings import Settings

SEEDED = FirstStart(account="demo", api_key="dr-secret")


def test_without_a_public_url_the_links_use_the_loopback_and_the_banner_says_how_to_change_it() -> None:
    text = welcome(Settings(host="127.0.0.1", port=8000), SEEDED)
    assert text.splitlines()[:2] == [
        "DreamRelay is listening on http://127.0.0.1:8000  (OpenAPI: http://127.0.0.1:8000/docs)",
        "Links in answers (media, callbacks) use http://127.0.0.1:8000: set DREAMRELAY_PUBLIC_URL to how "
        "customers reach this server",
    ]
    assert "  dr-secret" in text


def test_in_a_container_the_links_use_the_public_url_and_the_key_is_read_with_docker_exec() -> None:
    settings = Settings(host="0.0.0.0", port=8000, public_url="http://localhost:18766/")
    key_file = Path("/var/lib/dreamrelay/first_start_key")
    text = welcome(settings, SEEDED, key_file, container=True)
    assert text.splitlines()[:2] == [
        "DreamRelay is listening on http://0.0.0.0:8000  (OpenAPI: http://localhost:18766/docs)",
        "Links in answers (media, callbacks) use http://localhost:18766 (DREAMRELAY_PUBLIC_URL)",
    ]
    assert "Read it: KEY=$(docker exec <container> cat /var/lib/dreamrelay/first_start_key)" in text
    assert 'curl -s http://localhost:18766/luma/generations -H "Authorization: Bearer $KEY"' in text
    assert "dr-secret" not in text


def test_off_a_terminal_outside_a_container_the_key_is_read_with_cat() -> None:
    text = welcome(Settings(), SEEDED, Path("data/first_start_key"))
    assert "Read it: KEY=$(cat data/first_start_key)" in text
    assert "docker" not in text and "dr-secret" not in text
