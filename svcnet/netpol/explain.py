"""Why a connection between two pods is allowed or dropped, from the model the nodes enforce.

The sender's node judges its egress, the receiver's node its ingress (each compiles only its
own pods, :func:`svcnet.netpol.compiler.compile_policies`); a connection passes when both allow
it. The answer names the policy and rule that allowed each direction, or the policies that
isolate the pod and that none of them allows it. A pod always reaches itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from svcnet.netpol.compiler import Judgement, compile_policies, judge
from svcnet.netpol.model import (
    Direction,
    NamespaceInfo,
    PodInfo,
    PodKey,
    PolicyInfo,
    Protocol,
)


@dataclass(frozen=True, slots=True)
class Explanation:
    src: PodInfo
    dst: PodInfo
    protocol: Protocol
    port: int
    egress: Judgement
    ingress: Judgement

    @property
    def allowed(self) -> bool:
        return self.src.key == self.dst.key or (self.egress.allowed and self.ingress.allowed)


class UnknownPodError(LookupError):
    """A pod named in the question does not exist or has no address yet."""


def explain(
    policies: Iterable[PolicyInfo],
    pods: Iterable[PodInfo],
    namespaces: Iterable[NamespaceInfo],
    src: PodKey,
    dst: PodKey,
    protocol: Protocol,
    port: int,
) -> Explanation:
    all_pods = {p.key: p for p in pods}
    for key in (src, dst):
        if key not in all_pods:
            raise UnknownPodError(f"pod {key} not found or has no IP address")
    pols, nss = tuple(policies), tuple(namespaces)
    s, d = all_pods[src], all_pods[dst]
    models = {
        node: compile_policies(node, pols, all_pods.values(), nss) for node in {s.node, d.node}
    }
    return Explanation(
        s,
        d,
        protocol,
        port,
        judge(models[s.node], Direction.EGRESS, s.ip, d.ip, protocol, port),
        judge(models[d.node], Direction.INGRESS, d.ip, s.ip, protocol, port),
    )


def _direction_text(pod: PodInfo, direction: Direction, j: Judgement) -> str:
    what = f"{direction.value} of {pod.key}"
    if not j.isolated_by:
        return f"{what}: allowed (no policy selects it for {direction.policy_type})"
    if j.allowed_by is not None:
        policy, rule = j.allowed_by
        return f"{what}: allowed by {policy} {direction.value}[{rule}]"
    names = ", ".join(str(k) for k in j.isolated_by)
    return f"{what}: DROPPED: isolated by {names}; no rule of them allows it"


def render(e: Explanation) -> str:
    """The answer as ``svcnet policy explain`` prints it."""
    head = f"{e.src.key} ({e.src.ip}) -> {e.dst.key} ({e.dst.ip}):{e.port}/{e.protocol.name}"
    if e.src.key == e.dst.key:
        return f"{head}: allowed (a pod always reaches itself)\n"
    verdict = "allowed" if e.allowed else "DROPPED"
    return (
        f"{head}: {verdict}\n"
        f"  {_direction_text(e.src, Direction.EGRESS, e.egress)}\n"
        f"  {_direction_text(e.dst, Direction.INGRESS, e.ingress)}\n"
    )
