"""Probe many TCP/UDP targets at once from inside a pod: ``python -m svcnet.testing.reachability``.

NetworkPolicy tests probe whole matrices (upstream's: 9 pods x 9 pods), so each source pod runs
one of these with every target, probed in parallel with a short timeout: a dropped connection
costs one timeout, not one per target. Arguments are ``tcp:ADDR:PORT`` / ``udp:ADDR:PORT``; the
answer is one JSON object, target -> ``"ok"``, ``"timeout"``, ``"refused"`` or ``"error: ..."``.
A UDP target must answer a datagram (agnhost netexec answers ``hostname``); it is asked twice
within the timeout, as a first datagram can be lost while neighbours are resolved.

Imports only the standard library's socket, threading and json: it starts in a pod per probe
round.
"""

from __future__ import annotations

import errno
import json
import select
import socket
import sys
import threading
import time


def probe_tcp(addr: str, port: int, timeout: float) -> str:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return "ok"
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return f"error: {e}"


def probe_udp(addr: str, port: int, timeout: float) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout / 2)
        for _ in range(2):
            try:
                s.sendto(b"hostname", (addr, port))
                s.recvfrom(65535)
                return "ok"
            except TimeoutError:
                continue
            except ConnectionRefusedError:
                return "refused"
            except OSError as e:
                return f"error: {e}"
    return "timeout"


def probe(targets: list[str], timeout: float) -> dict[str, str]:
    """Every target probed in its own thread; target -> outcome."""
    out: dict[str, str] = {}

    def one(target: str) -> None:
        proto, addr, port = target.split(":")
        fn = probe_tcp if proto == "tcp" else probe_udp
        out[target] = fn(addr, int(port), timeout)

    threads = [threading.Thread(target=one, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def watch(addrs: list[str], port: int, seconds: float, timeout: float) -> dict[str, list[float]]:
    """TCP-connect every address again and again for ``seconds``, all of a round at once;
    address -> the (wall-clock) start times of the attempts it answered, by accepting or by
    refusing: a packet that reached the pod's own kernel."""
    answered: dict[str, list[float]] = {a: [] for a in addrs}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.time()
        pending: dict[socket.socket, str] = {}
        for a in addrs:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((a, port))
            pending[s] = a
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            _, ready, _ = select.select([], list(pending), [], deadline - time.monotonic())
            for s in ready:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err in (0, errno.ECONNREFUSED):
                    answered[pending[s]].append(started)
                s.close()
                del pending[s]
        for s in pending:
            s.close()
    return answered


def main(argv: list[str]) -> int:
    timeout = 1.0
    if argv[:1] == ["--watch"]:  # --watch SECONDS PORT ADDR...: see watch()
        print("watching", flush=True)
        result = watch(argv[3:], int(argv[2]), float(argv[1]), 0.2)
        print(json.dumps(result, sort_keys=True))
        return 0
    if argv[:1] == ["--timeout"]:
        timeout, argv = float(argv[1]), argv[2:]
    print(json.dumps(probe(argv, timeout), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
