"""Pure scheduling of one pod onto one node (upstream ``pkg/scheduler``, default profile,
reduced to what a node agent without resource accounting needs).

Filters, in upstream's plugin order; a node fails at its first failing filter, whose reason
goes into the histogram of the ``FitError`` message:

* ``NodeUnschedulable`` — spec.unschedulable, unless the pod tolerates
  ``node.kubernetes.io/unschedulable:NoSchedule``.
* ``TaintToleration`` — NoSchedule/NoExecute taints the pod does not tolerate. A node whose
  Ready condition is not True counts as tainted ``node.kubernetes.io/not-ready`` (False) or
  ``node.kubernetes.io/unreachable`` (Unknown) even before the node lifecycle controller has
  written that taint, as upstream's TaintNodesByCondition makes it so.
* ``NodeAffinity`` — spec.nodeSelector and required node affinity.
* ``NodePorts`` — a hostPort already taken on the node.
* ``VolumeBinding`` — the pod's claims (:func:`pod_claims`): a missing claim, or an unbound
  one of an Immediate class, fails every node (PreFilter); a bound claim's volume, or a
  WaitForFirstConsumer claim already given a node, keeps the pod to the nodes its
  ``nodeAffinity`` admits. A pod with unbound WaitForFirstConsumer claims is not bound until
  they are: the controller annotates them with the chosen node (``selected-node``) for the
  provisioner, and binds the pod once they are Bound (upstream's PreBind).

Score: spreading, as the default topology spread does for replicas of one owner: fewest pods of
the same controller (or, without one, the same labels), then fewest pods, then the name (a
stable tie-break instead of upstream's random one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.api.wellknown import (
    SELECTED_NODE_ANNOTATION,
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    TAINT_UNSCHEDULABLE,
)

DEFAULT_SCHEDULER = "default-scheduler"

# Upstream's reason strings (plugins' ErrReason… constants).
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_PORTS = "node(s) didn't have free ports for the requested pod ports"
REASON_VOLUME_AFFINITY = "node(s) had volume node affinity conflict"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NO_NODES = "no nodes available to schedule pods"


def needs_scheduling(pod: ObjView, scheduler_name: str = DEFAULT_SCHEDULER) -> bool:
    spec = objects.spec(pod)
    phase = (pod.get("status") or {}).get("phase")
    return (
        not spec.get("nodeName")
        and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == scheduler_name
        and not objects.meta(pod).get("deletionTimestamp")
        and phase not in ("Succeeded", "Failed")
    )


# -- taints and tolerations ----------------------------------------------------------------


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """``Toleration.ToleratesTaint``."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def ready_status(node: ObjView) -> str:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return str(c.get("status") or "Unknown")
    return "Unknown"


def effective_taints(node: ObjView) -> list[Mapping[str, Any]]:
    taints = list(objects.spec(node).get("taints") or ())
    status = ready_status(node)
    if status != "True":
        key = TAINT_UNREACHABLE if status == "Unknown" else TAINT_NOT_READY
        if not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
            taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def taint_reason(taint: Mapping[str, Any]) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"


# -- node affinity -------------------------------------------------------------------------


def _match_expression(expr: Mapping[str, Any], value: str | None) -> bool:
    op = expr.get("operator")
    values = [str(v) for v in expr.get("values") or ()]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _match_term(term: Mapping[str, Any], node: ObjView) -> bool:
    labels = objects.meta(node).get("labels") or {}
    exprs = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not exprs and not fields:
        return False  # an empty term matches nothing
    return all(_match_expression(e, labels.get(e.get("key"))) for e in exprs) and all(
        _match_expression(
            f, str(objects.meta(node).get("name")) if f.get("key") == "metadata.name" else None
        )
        for f in fields
    )


def matches_node_affinity(pod: ObjView, node: ObjView) -> bool:
    labels = objects.meta(node).get("labels") or {}
    selector = objects.spec(pod).get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    required = ((objects.spec(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    return any(_match_term(t, node) for t in required.get("nodeSelectorTerms") or ())


# -- host ports ----------------------------------------------------------------------------


def host_ports(pod: ObjView) -> set[tuple[str, str, int]]:
    out = set()
    for c in objects.spec(pod).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("hostPort"):
                out.add(
                    (p.get("protocol") or "TCP", p.get("hostIP") or "0.0.0.0", int(p["hostPort"]))
                )
    return out


def ports_conflict(want: set[tuple[str, str, int]], used: set[tuple[str, str, int]]) -> bool:
    # The same protocol and port clash when either side binds every address or both the same.
    return any(
        proto == uproto and port == uport and (ip == uip or "0.0.0.0" in (ip, uip))
        for proto, ip, port in want
        for uproto, uip, uport in used
    )


# -- the decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeState:
    """A node and the pods already on it (bound or assumed)."""

    node: ObjView
    pods: Sequence[ObjView] = ()

    @property
    def name(self) -> str:
        return str(objects.meta(self.node).get("name", ""))


# -- volumes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodClaims:
    """What the scheduler's volume binding knows of a pod's claims."""

    unschedulable: str | None = None  # PreFilter's verdict for every node
    # Node selector terms each node must match (one list per bound claim's volume).
    node_terms: tuple[tuple[Mapping[str, Any], ...], ...] = ()
    to_select: tuple[str, ...] = ()  # unbound WaitForFirstConsumer claims without a node
    waiting: tuple[str, ...] = ()  # claims given a node, not Bound yet

    @property
    def ready(self) -> bool:
        return not self.to_select and not self.waiting


def claim_names(pod: ObjView) -> list[str]:
    return [
        str(v["persistentVolumeClaim"].get("claimName") or "")
        for v in objects.spec(pod).get("volumes") or ()
        if isinstance(v.get("persistentVolumeClaim"), Mapping)
    ]


def _node_name_term(node: str) -> Mapping[str, Any]:
    return {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}


def pod_claims(
    pod: ObjView,
    claims: Mapping[str, ObjView],
    volumes: Mapping[str, ObjView],
    classes: Mapping[str, ObjView],
) -> PodClaims:
    """``claims`` by name in the pod's namespace, ``volumes`` and ``classes`` by name."""
    terms: list[tuple[Mapping[str, Any], ...]] = []
    to_select: list[str] = []
    waiting: list[str] = []
    for name in claim_names(pod):
        pvc = claims.get(name)
        if pvc is None:
            return PodClaims(f'persistentvolumeclaim "{name}" not found')
        if objects.meta(pvc).get("deletionTimestamp"):
            return PodClaims(f'persistentvolumeclaim "{name}" is being deleted')
        volume = objects.spec(pvc).get("volumeName")
        if volume and (pvc.get("status") or {}).get("phase") == "Bound":
            pv = volumes.get(str(volume))
            required = ((objects.spec(pv).get("nodeAffinity") or {}) if pv else {}).get(
                "required"
            ) or {}
            if required.get("nodeSelectorTerms"):
                terms.append(tuple(required["nodeSelectorTerms"]))
            continue
        sc = classes.get(str(objects.spec(pvc).get("storageClassName") or ""))
        if sc is None or sc.get("volumeBindingMode") != "WaitForFirstConsumer":
            return PodClaims(UNBOUND_IMMEDIATE)
        selected = (objects.meta(pvc).get("annotations") or {}).get(SELECTED_NODE_ANNOTATION)
        if selected:
            terms.append((_node_name_term(str(selected)),))
            waiting.append(name)
        else:
            to_select.append(name)
    return PodClaims(None, tuple(terms), tuple(to_select), tuple(waiting))


def filter_node(pod: ObjView, state: NodeState, claims: PodClaims | None = None) -> str | None:
    """The reason the pod cannot go to this node, or None when it fits."""
    node = state.node
    tolerations = list(objects.spec(pod).get("tolerations") or ())
    if objects.spec(node).get("unschedulable") and not tolerated(
        tolerations, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}
    ):
        return REASON_UNSCHEDULABLE
    for taint in effective_taints(node):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerated(tolerations, taint):
            return taint_reason(taint)
    if not matches_node_affinity(pod, node):
        return REASON_AFFINITY
    want = host_ports(pod)
    if want:
        used: set[tuple[str, str, int]] = set()
        for other in state.pods:
            used |= host_ports(other)
        if ports_conflict(want, used):
            return REASON_PORTS
    for terms in claims.node_terms if claims else ():
        if not any(_match_term(t, node) for t in terms):
            return REASON_VOLUME_AFFINITY
    return None


def _owner_key(pod: ObjView) -> tuple[str, ...]:
    for ref in objects.meta(pod).get("ownerReferences") or ():
        if ref.get("controller"):
            return ("owner", str(ref.get("uid", "")))
    labels = objects.meta(pod).get("labels") or {}
    return ("labels", *sorted(f"{k}={v}" for k, v in labels.items()))


def _counts(pod: ObjView, state: NodeState) -> tuple[int, int]:
    mine = _owner_key(pod)
    active = [
        p for p in state.pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    return sum(1 for p in active if _owner_key(p) == mine), len(active)


@dataclass(frozen=True)
class Bind:
    node: str


@dataclass(frozen=True)
class Unschedulable:
    message: str


def fit_error_message(num_nodes: int, reasons: Counter[str]) -> str:
    """``FitError.Error()``: the reasons histogram, then the preemption post-filter's verdict
    (none of these filters can be resolved by evicting lower-priority pods)."""
    histogram = ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))
    return (
        f"0/{num_nodes} nodes are available: {histogram}. preemption: 0/{num_nodes} nodes "
        f"are available: {num_nodes} Preemption is not helpful for scheduling."
    )


def schedule(
    pod: ObjView, nodes: Sequence[NodeState], claims: PodClaims | None = None
) -> Bind | Unschedulable:
    if not nodes:
        return Unschedulable(NO_NODES)
    if claims is not None and claims.unschedulable:
        # A PreFilter failure: one reason for all nodes, and preemption cannot help.
        n = len(nodes)
        return Unschedulable(
            f"0/{n} nodes are available: {claims.unschedulable}. preemption: 0/{n} nodes are "
            f"available: {n} Preemption is not helpful for scheduling."
        )
    reasons: Counter[str] = Counter()
    feasible: list[tuple[tuple[int, int, str], str]] = []
    for state in nodes:
        reason = filter_node(pod, state, claims)
        if reason is not None:
            reasons[reason] += 1
            continue
        same, total = _counts(pod, state)
        feasible.append(((same, total, state.name), state.name))
    if not feasible:
        return Unschedulable(fit_error_message(len(nodes), reasons))
    return Bind(min(feasible)[1])


def scheduled_message(pod: ObjView, node: str) -> str:
    m = objects.meta(pod)
    return f"Successfully assigned {m.get('namespace', '')}/{m.get('name', '')} to {node}"


def unschedulable_condition(message: str, now: str) -> dict[str, Any]:
    return {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }


def with_unschedulable_condition(pod: ObjView, message: str, now: str) -> dict[str, Any] | None:
    """The pod with PodScheduled=False/Unschedulable, or None when it already says so."""
    status = dict(pod.get("status") or {})
    conds = [dict(c) for c in status.get("conditions") or ()]
    for c in conds:
        if c.get("type") == "PodScheduled":
            if (
                c.get("status") == "False"
                and c.get("reason") == "Unschedulable"
                and c.get("message") == message
            ):
                return None
            transition = c.get("lastTransitionTime") if c.get("status") == "False" else now
            c.update(unschedulable_condition(message, transition or now))
            break
    else:
        conds.append(unschedulable_condition(message, now))
    status["conditions"] = conds
    status.setdefault("phase", "Pending")
    out = dict(pod)
    out["status"] = status
    return out
