"""svcnet.testing.reachability against loopback servers: connected, refused, timed out."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from svcnet.testing.reachability import probe


@pytest.fixture
def servers() -> Iterator[tuple[int, int, int]]:
    """(a listening TCP port, a UDP port that answers, a UDP port that never answers)."""
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))

    def answer() -> None:
        try:
            while True:
                _, addr = udp.recvfrom(100)
                udp.sendto(b"me", addr)
        except OSError:
            return

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        yield tcp.getsockname()[1], udp.getsockname()[1], mute.getsockname()[1]
    finally:
        for s in (tcp, udp, mute):
            s.close()


def test_each_target_gets_its_outcome(servers: tuple[int, int, int]) -> None:
    tcp, udp, mute = servers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free = closed.getsockname()[1]
    closed.close()
    got = probe(
        [f"tcp:127.0.0.1:{tcp}", f"tcp:127.0.0.1:{free}", f"udp:127.0.0.1:{udp}",
         f"udp:127.0.0.1:{mute}"],
        0.4,
    )  # fmt: skip
    assert got == {
        f"tcp:127.0.0.1:{tcp}": "ok",
        f"tcp:127.0.0.1:{free}": "refused",
        f"udp:127.0.0.1:{udp}": "ok",
        f"udp:127.0.0.1:{mute}": "timeout",
    }
