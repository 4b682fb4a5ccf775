"""The node-local network components an agent runs for its node: the Service proxy,
NetworkPolicy and the LoadBalancer announcer, each a :data:`svcnet.agent.agent.NodeComponent` (called with the
agent's client, its informer factory and the node name; runs until cancelled).

The agent already runs inside the node's network namespace, so all act on "this" namespace
(``netns=None``): the proxy's and NetworkPolicy's nft tables, conntrack, the announcer's ``eth0``.

Which traffic counts as "from a pod" (not masqueraded for ClusterIPs, and for
``externalTrafficPolicy: Local`` sent to any endpoint) is decided by this node's podCIDR,
kube-proxy's ``--detect-local-mode=NodeCIDR``: a pod's ClusterIP traffic is NATed on its own
node, so the node's block is exactly the set of local pod sources, and the agent knows it
without being told the cluster-wide CIDR.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from svcnet.agent import netgate
from svcnet.agent.flowtap import record_flows
from svcnet.agent.lbannounce import default_announcer
from svcnet.api.errors import ApiError
from svcnet.api.objects import ObjView
from svcnet.api.registry import NODES
from svcnet.api.wellknown import NETPOL_PROGRAMMED_ANNOTATION
from svcnet.client.events import WARNING, EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.rest import ApiClient, ConnectionFailed
from svcnet.dataplane.conntrack import ConntrackExecutor
from svcnet.dataplane.netlink_events import NetfilterEvents
from svcnet.dataplane.netns import IpRoute2
from svcnet.dataplane.nft_exec import NftExecutor
from svcnet.netpol.rules import NetpolConfig
from svcnet.netpol.runner import NetpolRunner
from svcnet.netpol.syncer import Syncer
from svcnet.proxy.rules import ProxyConfig
from svcnet.proxy.runner import ProxyRunner, node_addresses

log = logging.getLogger(__name__)

POD_CIDR_POLL = 0.2


async def _node_pod_cidr(client: ApiClient, node_name: str) -> tuple[str, tuple[str, ...]]:
    """The node's podCIDR and addresses (the agent registers them before components start;
    polled in case a component is started earlier)."""
    while True:
        node = await client.get("nodes", node_name)
        cidr = str((node.get("spec") or {}).get("podCIDR") or "")
        if cidr:
            return cidr, node_addresses(node)
        await asyncio.sleep(POD_CIDR_POLL)


async def run_proxy(client: ApiClient, factory: SharedInformerFactory, node_name: str) -> None:
    """kube-proxy for this node: nft table ``ip svcnet-proxy`` in the node's namespace."""
    pod_cidr, node_ips = await _node_pod_cidr(client, node_name)
    cfg = ProxyConfig(node_name=node_name, cluster_cidr=pod_cidr, node_ips=node_ips)
    runner = ProxyRunner(factory, cfg, NftExecutor(), ConntrackExecutor())
    log.info("proxy for %s starting (local pods %s, node IPs %s)", node_name, pod_cidr, node_ips)
    await runner.run()


async def run_netpol(client: ApiClient, factory: SharedInformerFactory, node_name: str) -> None:
    """NetworkPolicy for this node's pods: nft table ``ip svcnet-netpol`` in its namespace.

    The node's pod block is closed but for the pods a sync knows; new pods wait for it at the
    :mod:`~svcnet.agent.netgate`. What is programmed is reported on the Node (see
    :func:`report_programmed`). Its drops and the node's connections are recorded for
    ``svcnet flows`` (:mod:`~svcnet.agent.flowtap`).
    """
    pod_cidr, _ = await _node_pod_cidr(client, node_name)
    recorder = EventRecorder(client, "svcnet-netpol", node_name)
    cfg = NetpolConfig(node_name=node_name, pod_cidr=pod_cidr)
    runner = NetpolRunner(
        factory,
        cfg,
        NftExecutor(),
        on_unreadable=failed_to_program(recorder, node_name),
        conntrack=ConntrackExecutor(),
    )
    unregister = netgate.gate(node_name).register(
        lambda pod, ips: runner.admit(pod, ips)  # type: ignore[arg-type]
    )
    log.info("NetworkPolicy for %s starting (pod block %s)", node_name, pod_cidr)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(runner.run(), name="netpol")
            tg.create_task(recorder.run(), name="netpol-events")
            tg.create_task(
                report_programmed(client, node_name, runner.syncer), name="netpol-report"
            )
            if cfg.flow_log is not None:
                tg.create_task(
                    record_flows(
                        node_name,
                        pod_cidr,
                        lambda: runner.syncer.compiled,
                        NetfilterEvents(cfg.flow_log.group),
                    ),
                    name="netpol-flows",
                )
    finally:
        unregister()


def failed_to_program(recorder: EventRecorder, node_name: str) -> Callable[[ObjView, str], None]:
    """What tells a policy's owner that this node cannot program it, and what that means."""

    def unreadable(policy: ObjView, why: str) -> None:
        recorder.event(
            policy,
            WARNING,
            "FailedToProgram",
            f"node {node_name} cannot program this policy ({why}): every pod of its namespace "
            "stays closed for its policy types",
        )

    return unreadable


async def report_programmed(client: ApiClient, node_name: str, syncer: Syncer) -> None:
    """Keep the Node's :data:`NETPOL_PROGRAMMED_ANNOTATION` at the syncer's programmed revision.

    An annotation, not a condition: the agent's status writer owns ``status.conditions`` and
    replaces the list on every heartbeat, while a merge patch of one annotation touches
    nothing else; and a revision, not a boolean, so a client that created a policy knows when
    every node enforces it (each node's value reaches the policy's resourceVersion). Writes
    are coalesced: one PATCH in flight, carrying the latest value.
    """
    reported = -1
    while True:
        value = await syncer.next_programmed(reported)
        patch = {"metadata": {"annotations": {NETPOL_PROGRAMMED_ANNOTATION: str(value)}}}
        try:
            await client.patch(NODES, node_name, patch)
            reported = value
        except (ApiError, ConnectionFailed) as e:
            log.warning("reporting netpol revision %d on %s: %s", value, node_name, e)
            await asyncio.sleep(POD_CIDR_POLL)


async def run_lb_announcer(
    client: ApiClient, factory: SharedInformerFactory, node_name: str
) -> None:
    """Announce this node's LoadBalancer addresses on eth0 (see :mod:`lbannounce`)."""
    del client  # reads Services from the shared informers only
    announcer = default_announcer(factory, node_name, IpRoute2())
    log.info("LoadBalancer announcer for %s starting", node_name)
    async with asyncio.TaskGroup() as tg:
        factory.start(tg)  # informers made after the agent started the factory
        tg.create_task(announcer.run(), name="lb-announcer")


NODE_LOCAL_COMPONENTS = (run_proxy, run_netpol, run_lb_announcer)


async def run_node_local(
    client: ApiClient,
    factory: SharedInformerFactory,
    node_name: str,
    tg: asyncio.TaskGroup,
) -> None:
    """Start every node-local component in ``tg``."""
    for component in NODE_LOCAL_COMPONENTS:
        tg.create_task(component(client, factory, node_name), name=component.__name__)
