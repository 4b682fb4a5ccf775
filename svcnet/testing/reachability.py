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

import json
import socket
import sys
import threading


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


def main(argv: list[str]) -> int:
    timeout = 1.0
    if argv[:1] == ["--timeout"]:
        timeout, argv = float(argv[1]), argv[2:]
    print(json.dumps(probe(argv, timeout), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
