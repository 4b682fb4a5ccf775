"""``python -m svcnet.agent --node-name node-1 --kubeconfig K --node-ip 172.18.0.11 --data-dir D``

Run inside the node's network namespace (``svcnet up`` starts it with ``nsenter --net``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from svcnet.api.ranges import CLUSTER_DNS_IP


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m svcnet.agent")
    p.add_argument("--node-name", required=True)
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--node-ip", required=True)
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument(
        "--node-netns",
        default=None,
        help="The node's namespace name: its pods' namespaces are named after it.",
    )
    p.add_argument(
        "--server",
        default=None,
        help="The API server's URL as this node reaches it (overrides the kubeconfig).",
    )
    p.add_argument("--port", type=int, default=10250)
    p.add_argument(
        "--pod-cidr", default="", help="Register the Node with this podCIDR (no node IPAM needed)."
    )
    p.add_argument("--cluster-dns", default=CLUSTER_DNS_IP)
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument(
        "--no-node-local",
        action="store_true",
        help="Run pods only: no Service proxy, no LoadBalancer announcer.",
    )
    p.add_argument(
        "--stop-flag",
        type=Path,
        default=None,
        help="While this file exists the node is stopped (svcnet node stop).",
    )
    return p.parse_args(argv)


def _lower_priority() -> bool:
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 19)
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    # At `svcnet up` the control plane and every agent start together on a small machine:
    # the agents import at the lowest priority, so that they use only what the control plane
    # leaves idle, and wait for its kubeconfig before running at normal priority (the pods
    # inherit it).
    niced = _lower_priority()
    from svcnet.agent.agent import AgentConfig, NodeComponent, run_agent
    from svcnet.util.log import setup_logging

    setup_logging(f"agent/{args.node_name}")
    components: tuple[NodeComponent, ...] = ()
    if not args.no_node_local:
        from svcnet.agent.nodelocal import NODE_LOCAL_COMPONENTS

        components = tuple(NODE_LOCAL_COMPONENTS)
    config = AgentConfig(
        node_name=args.node_name,
        node_ip=args.node_ip,
        data_dir=args.data_dir,
        node_netns=args.node_netns,
        port=args.port,
        pod_cidr=args.pod_cidr,
        cluster_dns=args.cluster_dns,
        cluster_domain=args.cluster_domain,
        stop_flag=args.stop_flag,
        components=components,
    )
    while not args.kubeconfig.exists():
        time.sleep(0.02)
    if niced:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    # Not uvloop: it keeps its own copy of a child's stdin fd until the child exits, and the
    # container runner learns that a container started from EOF on exactly that pipe.
    # One pidfd per child in the event loop instead of asyncio's default thread per child
    # (ThreadedChildWatcher) just to waitpid it: a pod start spawns several (ip, CNI plugins).
    asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    asyncio.run(run_agent(config, args.kubeconfig, args.server))
    sys.exit(0)


if __name__ == "__main__":
    main()
