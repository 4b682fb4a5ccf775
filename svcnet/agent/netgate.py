"""The hook between a pod's sandbox and the node's network components: fail-closed wiring.

A pod's sandbox gets its address from CNI ADD; before its containers start, the pod worker
calls :meth:`PodNetworkGate.admit`, which hands the pod and its address to every registered
component (NetworkPolicy) and returns once each has it in the kernel. Until then the
NetworkPolicy table drops every address of the node's pod block it does not know, so a pod in
a default-deny namespace is closed from its first packet, and one in an open namespace is open
by the time its first process runs.

The components are started by the agent apart from its pod workers (each is a
:data:`~svcnet.agent.agent.NodeComponent`, called with the node's name only), so they meet here,
by node name: one agent process serves one node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

Admitter = Callable[[Mapping[str, Any], Sequence[str]], Awaitable[None]]
# Past this the containers start anyway: the pod stays closed in the kernel until a sync
# knows it, which is the safe side, and a wedged component does not hold every pod forever.
ADMIT_TIMEOUT = 30.0


class PodNetworkGate:
    def __init__(self) -> None:
        self._admitters: list[Admitter] = []

    def register(self, admitter: Admitter) -> Callable[[], None]:
        """Add a component; returns what removes it (when the component stops)."""
        self._admitters.append(admitter)
        return lambda: self._admitters.remove(admitter)

    async def admit(
        self, pod: Mapping[str, Any], pod_ips: Sequence[str], timeout: float = ADMIT_TIMEOUT
    ) -> None:
        for admitter in list(self._admitters):
            try:
                await asyncio.wait_for(admitter(pod, pod_ips), timeout)
            except TimeoutError:
                meta = pod.get("metadata") or {}
                log.warning(
                    "pod %s/%s: network rules not programmed after %.0f s: starting it closed",
                    meta.get("namespace"),
                    meta.get("name"),
                    timeout,
                )


_GATES: dict[str, PodNetworkGate] = {}


def gate(node_name: str) -> PodNetworkGate:
    """The gate of ``node_name`` (made on first use)."""
    return _GATES.setdefault(node_name, PodNetworkGate())
