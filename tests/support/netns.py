"""Two hosts on one machine for tests of what crosses a network: network namespaces of the test's own,
joined by a veth pair on a private /24 that exists only between them (nothing leaves this machine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str

    @property
    def run(self) -> tuple[str, ...]:
        """The command prefix that runs a program on this host."""
        return ("ip", "netns", "exec", self.namespace)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@contextmanager
def two_hosts() -> Iterator[tuple[Host, Host]]:
    """A host for the server and another on its network; skipped where namespaces cannot be made."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("network namespaces need iproute2 and root")
    tag = uuid.uuid4().hex[:6]
    names = (f"dr-{tag}-a", f"dr-{tag}-b")
    subnet = f"10.{int(tag[:2], 16)}.{int(tag[2:4], 16)}"
    hosts = (Host(names[0], f"{subnet}.1"), Host(names[1], f"{subnet}.2"))
    made: list[str] = []
    try:
        for name in names:
            _ip("netns", "add", name)
            made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("link", "add", f"dr{tag}a", "type", "veth", "peer", "name", f"dr{tag}b")
        for host, end in zip(hosts, (f"dr{tag}a", f"dr{tag}b"), strict=True):
            _ip("link", "set", end, "netns", host.namespace)
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", end)
            _ip("-n", host.namespace, "link", "set", end, "up")
    except subprocess.CalledProcessError as exc:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        pytest.skip(f"could not make network namespaces: {exc.stderr.decode(errors='replace').strip()}")
    try:
        yield hosts
    finally:
        for name in made:  # the veth pair goes with its namespaces
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True, timeout=20)
