"""``python -m bench.cluster up-time|pod-start|memory|port-forward`` (root: it starts real clusters).

    sudo .venv/bin/python -m bench.cluster up-time [--runs 5] [--nodes 3]
    sudo .venv/bin/python -m bench.cluster pod-start [--pods 100] [--mode deployment|bare]
                                                     [--no-probe] [--rate 10]
    sudo .venv/bin/python -m bench.cluster memory [--idle 30] [--pods 10]
    sudo .venv/bin/python -m bench.cluster port-forward [--size-mib 64] [--rounds 5]
    sudo .venv/bin/python -m bench.cluster scale [--nodes 100] [--pods 1000] [--idle 10]
    sudo .venv/bin/python -m bench.cluster scale --proxy-memory [--nodes 3] [--services 1000,10000]

Each prints its figures as JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.cluster")
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up-time")
    u.add_argument("--runs", type=int, default=5)
    u.add_argument("--nodes", type=int, default=3)
    u.add_argument("--keep-logs", default=None, help="copy each run's logs under here")
    p = sub.add_parser("pod-start")
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--mode", choices=("deployment", "bare"), default="deployment")
    p.add_argument("--no-probe", action="store_true")
    p.add_argument("--rate", type=float, default=10.0, help="bare pods created per second")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--debug", action="store_true", help="SVCNET_LOG_LEVEL=DEBUG")
    p.add_argument("--keep-logs", default=None, help="copy the cluster logs here")
    p.add_argument("--profile", default=None, help="py-spy the control plane and an agent")
    m = sub.add_parser("memory")
    m.add_argument("--idle", type=float, default=30.0)
    m.add_argument("--pods", type=int, default=10)
    m.add_argument("--nodes", type=int, default=3)
    f = sub.add_parser("port-forward")
    f.add_argument("--size-mib", type=int, default=64)
    f.add_argument("--rounds", type=int, default=5)
    s = sub.add_parser("scale")
    s.add_argument("--nodes", type=int, default=None, help="100; 3 with --proxy-memory")
    s.add_argument("--pods", type=int, default=1000)
    s.add_argument("--idle", type=float, default=10.0)
    s.add_argument("--timeout", type=float, default=300.0)
    s.add_argument("--proxy-memory", action="store_true", help="agent RSS at N Services")
    s.add_argument("--services", default="1000,10000")
    a = ap.parse_args()
    if a.cmd == "up-time":
        from bench.cluster import up_time

        out = up_time.run(a.runs, a.nodes, Path(a.keep_logs) if a.keep_logs else None)
    elif a.cmd == "pod-start":
        from bench.cluster import pod_start

        out = pod_start.run(
            a.pods,
            a.mode,
            not a.no_probe,
            a.rate,
            a.nodes,
            a.debug,
            Path(a.keep_logs) if a.keep_logs else None,
            Path(a.profile) if a.profile else None,
        )
    elif a.cmd == "port-forward":
        from bench.cluster import port_forward

        out = port_forward.run(a.size_mib, a.rounds)
    elif a.cmd == "scale":
        from bench.cluster import scale

        out = scale.run(
            "proxy-memory" if a.proxy_memory else "cluster",
            a.nodes or (3 if a.proxy_memory else 100),
            a.pods,
            a.idle,
            a.timeout,
            [int(x) for x in a.services.split(",")],
        )
    else:
        from bench.cluster import memory

        out = memory.run(a.idle, a.pods, a.nodes)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
