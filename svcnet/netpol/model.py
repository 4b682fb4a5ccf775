"""NetworkPolicy's slim view of Pods, Namespaces and NetworkPolicies, converted once at the door.

API dicts become frozen dataclasses holding only what the compiler reads, so that a change the
compiler cannot see (a pod's status conditions, a policy's annotations) compares equal and costs
no sync. Selectors are parsed here once (:mod:`svcnet.api.selectors`); policyTypes are defaulted
as upstream's ``SetDefaults_NetworkPolicy`` does (Ingress always, Egress when egress rules
exist), so an object that skipped defaulting means the same as one that did not.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.api.selectors import LabelSelector, label_selector_from_dict
from svcnet.api.wellknown import NAMESPACE_NAME_LABEL

Labels = tuple[tuple[str, str], ...]


class Protocol(enum.Enum):
    """The nft literal of each NetworkPolicy protocol."""

    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"

    @classmethod
    def parse(cls, text: object) -> Protocol:
        return cls(str(text or "TCP").lower())


class Direction(enum.Enum):
    INGRESS = "ingress"
    EGRESS = "egress"

    @property
    def policy_type(self) -> str:
        return self.value.capitalize()


@dataclass(frozen=True, slots=True, order=True)
class NamespacedName:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


PolicyKey = NamespacedName
PodKey = NamespacedName


@dataclass(frozen=True, slots=True)
class NamedPort:
    """A containerPort with a name: what a policy's named port resolves to on this pod."""

    name: str
    protocol: Protocol
    port: int


@dataclass(frozen=True, slots=True)
class PodInfo:
    key: PodKey
    ip: str
    node: str
    labels: Labels
    ports: tuple[NamedPort, ...]

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def resolve(self, name: str, protocol: Protocol) -> int | None:
        for p in self.ports:
            if p.name == name and p.protocol is protocol:
                return p.port
        return None


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    name: str
    labels: Labels


@dataclass(frozen=True, slots=True)
class IPBlock:
    cidr: str
    excepts: tuple[str, ...]

    def networks(self) -> tuple[ipaddress.IPv4Network, ...]:
        """The block as disjoint networks: ``cidr`` minus every ``except``; none for IPv6,
        which this IPv4 table never sees."""
        if ":" in self.cidr:
            return ()
        nets = [ipaddress.IPv4Network(self.cidr, strict=False)]
        for text in self.excepts:
            ex = ipaddress.IPv4Network(text, strict=False)
            nxt: list[ipaddress.IPv4Network] = []
            for n in nets:
                if ex.subnet_of(n):
                    nxt.extend(n.address_exclude(ex))
                elif not n.subnet_of(ex):
                    nxt.append(n)
            nets = nxt
        return tuple(ipaddress.collapse_addresses(nets))


@dataclass(frozen=True, slots=True)
class Peer:
    """One entry of ``from``/``to``: selectors ANDed within it, or an ipBlock."""

    pod_selector: LabelSelector | None
    namespace_selector: LabelSelector | None
    ip_block: IPBlock | None


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One entry of ``ports``: a number (with ``end`` for a range), a name, or every port."""

    protocol: Protocol
    port: int | None = None
    name: str | None = None
    end: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyRule:
    peers: tuple[Peer, ...]  # (): every peer
    ports: tuple[PortSpec, ...]  # (): every port


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    key: PolicyKey
    pod_selector: LabelSelector
    ingress: tuple[PolicyRule, ...] | None  # None: the policy does not isolate for ingress
    egress: tuple[PolicyRule, ...] | None
    error: str = ""  # why the policy could not be read (it then closes its namespace)

    def rules(self, direction: Direction) -> tuple[PolicyRule, ...] | None:
        return self.ingress if direction is Direction.INGRESS else self.egress


def _labels(obj: ObjView) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in objects.labels(obj).items()))


def _key(obj: ObjView) -> NamespacedName:
    return NamespacedName(objects.namespace(obj) or "default", objects.name(obj))


pod_key = _key
policy_key = _key


def pod_info(obj: ObjView) -> PodInfo | None:
    """The pod as policies see it; None when it has no IPv4 address that traffic can use."""
    status = objects.status(obj)
    spec = objects.spec(obj)
    ip = str(status.get("podIP") or "")
    # A finished pod's address may already belong to a new pod (upstream ignores them too).
    if not ip or ":" in ip or status.get("phase") in ("Succeeded", "Failed"):
        return None
    if spec.get("hostNetwork"):
        return None  # NetworkPolicy does not apply to the host's namespace
    ports: list[NamedPort] = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") and p.get("containerPort"):
                ports.append(
                    NamedPort(p["name"], Protocol.parse(p.get("protocol")), int(p["containerPort"]))
                )
    return PodInfo(pod_key(obj), ip, str(spec.get("nodeName") or ""), _labels(obj), tuple(ports))


def namespace_info(obj: ObjView) -> NamespaceInfo:
    name = objects.name(obj)
    # The API server sets this label on every namespace; a namespace that predates that
    # admission step is still selectable by name.
    labels = dict(_labels(obj))
    labels[NAMESPACE_NAME_LABEL] = name
    return NamespaceInfo(name, tuple(sorted(labels.items())))


def _selector(value: object) -> LabelSelector | None:
    return None if value is None else label_selector_from_dict(value)  # type: ignore[arg-type]


def _peer(obj: ObjView) -> Peer:
    block = obj.get("ipBlock")
    ip_block = None
    if block is not None:
        ip_block = IPBlock(str(block.get("cidr") or ""), tuple(block.get("except") or ()))
        ip_block.networks()  # refused here, at the door, rather than in every compile
    return Peer(
        _selector(obj.get("podSelector")), _selector(obj.get("namespaceSelector")), ip_block
    )


def _port(obj: ObjView) -> PortSpec:
    proto = Protocol.parse(obj.get("protocol"))
    value = obj.get("port")
    if value is None:
        return PortSpec(proto)
    if isinstance(value, int):
        end = obj.get("endPort")
        return PortSpec(proto, port=value, end=int(end) if end is not None else None)
    if str(value).isdigit():  # an int-or-string written as a string of digits
        return PortSpec(proto, port=int(str(value)))
    return PortSpec(proto, name=str(value))


def _rules(items: object, peers_field: str) -> tuple[PolicyRule, ...]:
    out: list[PolicyRule] = []
    for r in items or ():  # type: ignore[attr-defined]
        peers = tuple(_peer(p) for p in r.get(peers_field) or ())
        ports = tuple(_port(p) for p in r.get("ports") or ())
        out.append(PolicyRule(peers, ports))
    return tuple(out)


def policy_types(spec: ObjView) -> tuple[str, ...]:
    """``spec.policyTypes``, defaulted as upstream: Ingress, plus Egress when egress rules exist."""
    types = spec.get("policyTypes")
    if types:
        return tuple(types)
    return ("Ingress", "Egress") if spec.get("egress") else ("Ingress",)


def policy_info(obj: ObjView) -> PolicyInfo:
    """The policy as the compiler reads it.

    The API server refuses what cannot be read (a bad selector, a bad CIDR); one that got past
    it anyway closes its whole namespace for its policy types instead of opening anything.
    """
    spec = objects.spec(obj)
    types = policy_types(spec)
    try:
        return PolicyInfo(
            policy_key(obj),
            label_selector_from_dict(spec.get("podSelector") or {}),
            _rules(spec.get("ingress"), "from") if "Ingress" in types else None,
            _rules(spec.get("egress"), "to") if "Egress" in types else None,
        )
    except (ValueError, TypeError, AttributeError) as e:
        return PolicyInfo(
            policy_key(obj),
            LabelSelector.everything(),
            () if "Ingress" in types else None,
            () if "Egress" in types else None,
            error=str(e) or type(e).__name__,
        )
