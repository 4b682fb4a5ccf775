"""kubectl on a real terminal (a pty of a chosen size), for the e2e tests of ``-it`` commands."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time

from cluster_fixture import KUBECTL, Cluster


def in_terminal(
    c: Cluster,
    argv: list[str],
    steps: list[tuple[str, str]],
    env: dict[str, str] | None = None,
    size: tuple[int, int] = (24, 80),
    timeout: float = 90,
) -> tuple[str, int]:
    """Run kubectl on a real terminal of ``size`` (rows, cols): for each step, wait until
    the output shows its text, then type its input. Returns (all output, exit code)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    proc = subprocess.Popen(
        [KUBECTL, *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**c.env(), **(env or {})},
        start_new_session=True,
    )
    os.close(slave)
    out = b""
    pending = list(steps)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if pending and pending[0][0].encode() in out:
                os.write(master, pending.pop(0)[1].encode())
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return out.decode(errors="replace"), code
