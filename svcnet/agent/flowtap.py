"""The node's flow log, fed from the kernel and served on the agent's ``/flows`` endpoint.

NetworkPolicy (:func:`svcnet.agent.nodelocal.run_netpol`) starts :func:`record_flows` beside
its sync loop: NFLOG and conntrack events of the node's namespace
(:mod:`svcnet.dataplane.netlink_events`) become flows (:mod:`svcnet.netpol.flowlog`) judged
against the model the node's syncer last programmed. The agent's HTTP server finds the ring by
node name, as the pod network gate does (:mod:`svcnet.agent.netgate`): one agent process
serves one node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from svcnet.dataplane.netlink_events import Event, EventSource
from svcnet.netpol.compiler import Compiled
from svcnet.netpol.flowlog import RING_CAPACITY, Flow, FlowRecorder, FlowRing
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)


class NodeFlows:
    """A node's ring, and a way to wait for what comes next.

    Flows are numbered from the time the ring was made, in milliseconds: an agent that
    restarts numbers past what its previous run gave (unless that one recorded more than a
    thousand flows a second throughout), so a reader that follows across the restart goes on
    from where the new numbers start instead of skipping them.
    """

    def __init__(self, capacity: int = RING_CAPACITY, clock: Clock = REAL_CLOCK) -> None:
        self.ring = FlowRing(capacity, start=int(clock.time() * 1000))
        self.running = False
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def after(self, seq: int, timeout: float) -> list[Flow]:
        """Flows numbered above ``seq``, waiting up to ``timeout`` for the first one."""
        flows = self.ring.since(seq)
        if flows:
            return flows
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return []
        return self.ring.since(seq)


_NODES: dict[str, NodeFlows] = {}


def node_flows(node_name: str) -> NodeFlows:
    """The flows of ``node_name`` (made on first use)."""
    return _NODES.setdefault(node_name, NodeFlows())


async def record_flows(
    node_name: str,
    pod_cidr: str,
    model: Callable[[], Compiled | None],
    source: EventSource,
    clock: Clock = REAL_CLOCK,
) -> None:
    """Feed ``node_name``'s ring from ``source`` until cancelled. A kernel that refuses the
    sockets leaves the node without flows, never without NetworkPolicy."""
    flows = node_flows(node_name)
    recorder = FlowRecorder(node_name, pod_cidr, flows.ring, model)

    def sink(batch: list[Event]) -> None:
        recorder.record(batch, clock.time())
        flows.changed()

    flows.running = True
    try:
        await source.run(sink)
    except OSError as e:
        log.warning("flows of %s: cannot read NFLOG/conntrack events: %s", node_name, e)
    finally:
        flows.running = False
