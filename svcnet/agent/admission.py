"""Pod admission on the node (kubelet's ``canAdmitPod``), pure: a pod bound to this node
without the scheduler (``spec.nodeName`` set by its author) is checked against the pods the
node already runs, and a pod that cannot run here is rejected: phase Failed, the predicate's
name as reason, as kubelet's ``rejectPod`` writes it.

Checked today: NodePorts (a hostPort another active pod of the node holds — with hostNetwork
pods, whose containerPorts are hostPorts, two servers on one port of the node).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from svcnet.api.objects import ObjView
from svcnet.controllers.scheduler.plan import REASON_PORTS, host_ports, ports_conflict


@dataclass(frozen=True)
class Rejection:
    reason: str  # the predicate's name: the event's reason and the status's
    message: str  # the event's message; the status's is "Pod was rejected: " + this

    @property
    def status(self) -> dict[str, str]:
        return {
            "phase": "Failed",
            "reason": self.reason,
            "message": f"Pod was rejected: {self.message}",
        }


def admit(pod: ObjView, active: Iterable[ObjView]) -> Rejection | None:
    """None when ``pod`` can run beside the ``active`` (not terminated) pods of the node."""
    want = host_ports(pod)
    if want:
        used: set[tuple[str, str, int]] = set()
        for other in active:
            used |= host_ports(other)
        if ports_conflict(want, used):
            return Rejection("NodePorts", f"Predicate NodePorts failed: {REASON_PORTS}")
    return None
