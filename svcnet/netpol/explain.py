"""Why a connection between two pods is allowed or dropped, from the model the nodes enforce.

The sender's node judges its egress, the receiver's node its ingress (each compiles only its
own pods, :func:`svcnet.netpol.compiler.compile_policies`); a connection passes when both allow
it. The answer names the policy and rule that allowed each direction, or the policies that
isolate the pod and that none of them allows it. A pod always reaches itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.netpol.compiler import Compiled, Judgement, compile_policies, judge
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


class Cluster:
    """The cluster's policies, pods and namespaces, compiled per node on first use."""

    def __init__(
        self,
        policies: Iterable[PolicyInfo],
        pods: Iterable[PodInfo],
        namespaces: Iterable[NamespaceInfo],
    ) -> None:
        self.policies, self.namespaces = tuple(policies), tuple(namespaces)
        self.pods = {p.key: p for p in pods}
        self._models: dict[str, Compiled] = {}

    def pod(self, key: PodKey) -> PodInfo:
        if key not in self.pods:
            raise UnknownPodError(f"pod {key} not found or has no IP address")
        return self.pods[key]

    def model(self, node: str) -> Compiled:
        if node not in self._models:
            self._models[node] = compile_policies(
                node, self.policies, self.pods.values(), self.namespaces
            )
        return self._models[node]

    def explain(self, src: PodKey, dst: PodKey, protocol: Protocol, port: int) -> Explanation:
        s, d = self.pod(src), self.pod(dst)
        return Explanation(
            s,
            d,
            protocol,
            port,
            judge(self.model(s.node), Direction.EGRESS, s.ip, d.ip, protocol, port),
            judge(self.model(d.node), Direction.INGRESS, d.ip, s.ip, protocol, port),
        )

    def matrix(
        self, sources: Sequence[PodKey], targets: Sequence[PodKey], protocol: Protocol, port: int
    ) -> list[Explanation]:
        """Every (source, target) pair, sources first."""
        return [self.explain(s, t, protocol, port) for s in sources for t in targets]


def explain(
    policies: Iterable[PolicyInfo],
    pods: Iterable[PodInfo],
    namespaces: Iterable[NamespaceInfo],
    src: PodKey,
    dst: PodKey,
    protocol: Protocol,
    port: int,
) -> Explanation:
    return Cluster(policies, pods, namespaces).explain(src, dst, protocol, port)


@dataclass(frozen=True, slots=True)
class Backend:
    """A pod behind a Service port, with the port and protocol DNAT sends it to."""

    pod: PodKey
    port: int
    protocol: Protocol


class UnknownServicePortError(LookupError):
    """The Service has no port of that number or name."""


def service_backends(service: ObjView, slices: Iterable[ObjView], port: str) -> list[Backend]:
    """The pods a connection to ``service``'s port ``port`` (its number or name) is DNATed to:
    the endpoints of its EndpointSlices that are not unready, on the slice port of the same
    name (a named targetPort is resolved per pod there)."""
    ns = objects.namespace(service) or "default"
    spec_ports = objects.spec(service).get("ports") or []
    match = [p for p in spec_ports if str(p.get("port")) == port or p.get("name") == port]
    if not match:
        raise UnknownServicePortError(f"service {ns}/{objects.name(service)} has no port {port}")
    svc_port = match[0]
    name = str(svc_port.get("name") or "")
    proto = Protocol.parse(svc_port.get("protocol"))
    out: list[Backend] = []
    for sl in slices:
        ports = [p for p in sl.get("ports") or [] if str(p.get("name") or "") == name]
        if not ports or ports[0].get("port") is None:
            continue
        number = int(ports[0]["port"])
        for ep in sl.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            if ref.get("kind") != "Pod" or (ep.get("conditions") or {}).get("ready") is False:
                continue
            key = PodKey(str(ref.get("namespace") or ns), str(ref.get("name")))
            out.append(Backend(key, number, proto))
    return sorted(set(out), key=lambda b: (b.pod, b.port))


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


def explanation_json(e: Explanation) -> dict[str, object]:
    def direction(j: Judgement) -> dict[str, object]:
        return {
            "allowed": j.allowed,
            "isolatedBy": [str(k) for k in j.isolated_by],
            "allowedBy": None if j.allowed_by is None else f"{j.allowed_by[0]}[{j.allowed_by[1]}]",
        }

    return {
        "from": str(e.src.key),
        "to": str(e.dst.key),
        "port": e.port,
        "protocol": e.protocol.name,
        "allowed": e.allowed,
        "egress": direction(e.egress),
        "ingress": direction(e.ingress),
    }
