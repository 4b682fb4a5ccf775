"""A pod's status as kubelet computes it (``generateAPIPodStatus``), from the agent's facts (pure).

Conditions: PodReadyToStartContainers (the sandbox exists), Initialized (no init containers
run by svcnet, so True), ContainersReady and Ready (every container ready; reason
``ContainersNotReady`` naming the unready ones), PodScheduled (kubelet adds it as True when
the scheduler did not, e.g. for a pod created with spec.nodeName). A condition's
``lastTransitionTime`` is kept from the previous status while its status does not change, so
the computed status is stable and the agent writes only real changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from svcnet.agent.containers import ContainerStatus, StateKind, Terminated


def ts(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ContainerFacts:
    """What the agent knows about one container beyond its lifecycle state."""

    name: str
    image: str
    status: ContainerStatus
    ready: bool
    started: bool
    pid: int | None
    waiting_override: tuple[str, str] | None = None  # (reason, message), e.g. config errors


@dataclass(frozen=True)
class PodFacts:
    host_ip: str
    pod_ips: tuple[str, ...]
    start_time: float
    sandbox_ready: bool
    phase: str
    containers: tuple[ContainerFacts, ...]


def _terminated(t: Terminated, container_id: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "exitCode": t.exit_code,
        "reason": t.reason,
        "finishedAt": ts(t.finished_at),
    }
    out["startedAt"] = ts(t.started_at) if t.started_at is not None else None
    if t.message:
        out["message"] = t.message
    if container_id:
        out["containerID"] = container_id
    return out


def container_status_api(c: ContainerFacts) -> dict[str, Any]:
    st = c.status
    state: dict[str, Any]
    if c.waiting_override is not None:
        state = {"waiting": {"reason": c.waiting_override[0], "message": c.waiting_override[1]}}
    elif st.state.kind is StateKind.RUNNING:
        state = {"running": {"startedAt": ts(st.state.started_at)}}
    elif st.state.kind is StateKind.TERMINATED and st.state.terminated is not None:
        state = {"terminated": _terminated(st.state.terminated)}
    else:
        waiting: dict[str, Any] = {"reason": st.state.reason}
        if st.state.message:
            waiting["message"] = st.state.message
        state = {"waiting": waiting}
    out: dict[str, Any] = {
        "name": c.name,
        "image": c.image,
        "imageID": f"svcnet://{c.image}",
        "ready": c.ready,
        "started": c.started,
        "restartCount": st.restart_count,
        "state": state,
        "lastState": {"terminated": _terminated(st.last_state)} if st.last_state else {},
    }
    if c.pid is not None:
        out["containerID"] = f"svcnet://{c.pid}"
    return out


def _condition(
    previous: Mapping[str, Mapping[str, Any]],
    ctype: str,
    ok: bool,
    now: str,
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = previous.get(ctype)
    transition = now
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        transition = str(old["lastTransitionTime"])
    out: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": transition,
    }
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def build_pod_status(
    facts: PodFacts, previous_conditions: Sequence[Mapping[str, Any]], now: str
) -> dict[str, Any]:
    prev = {str(c.get("type")): c for c in previous_conditions}
    unready = [c.name for c in facts.containers if not c.ready]
    all_ready = not unready and bool(facts.containers)
    reason = "" if all_ready else "ContainersNotReady"
    message = "" if all_ready else f"containers with unready status: [{' '.join(unready)}]"
    if facts.phase == "Succeeded":
        reason, message = "PodCompleted", ""
    conditions = [
        _condition(prev, "PodReadyToStartContainers", facts.sandbox_ready, now),
        _condition(prev, "Initialized", True, now),
        _condition(prev, "Ready", all_ready, now, reason, message),
        _condition(prev, "ContainersReady", all_ready, now, reason, message),
    ]
    scheduled = prev.get("PodScheduled")
    conditions.append(
        dict(scheduled) if scheduled is not None else _condition(prev, "PodScheduled", True, now)
    )
    status: dict[str, Any] = {
        "phase": facts.phase,
        "conditions": conditions,
        "hostIP": facts.host_ip,
        "hostIPs": [{"ip": facts.host_ip}],
        "startTime": ts(facts.start_time),
        "containerStatuses": [container_status_api(c) for c in facts.containers],
        "qosClass": "BestEffort",
    }
    if facts.pod_ips:
        status["podIP"] = facts.pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in facts.pod_ips]
    return status


def render_resolv_conf(
    pod: Mapping[str, Any], cluster_dns: str, cluster_domain: str, node_resolv: str
) -> str:
    """/etc/resolv.conf per dnsPolicy (kubelet's ``dns.go: GetPodDNS``)."""
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "Default" or (policy == "ClusterFirst" and host_network):
        for line in node_resolv.splitlines():
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "nameserver":
                nameservers += parts[1:2]
            elif parts[0] == "search":
                searches += parts[1:]
            elif parts[0] == "options":
                options += parts[1:]
    elif policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        nameservers = [cluster_dns]
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        options = ["ndots:5"]
    # "None" starts empty; dnsConfig is merged in for every policy.
    cfg = spec.get("dnsConfig") or {}
    for ip in cfg.get("nameservers") or []:
        if ip not in nameservers:
            nameservers.append(str(ip))
    for s in cfg.get("searches") or []:
        if s not in searches:
            searches.append(str(s))
    for opt in cfg.get("options") or []:
        name = str(opt.get("name", ""))
        value = opt.get("value")
        rendered = f"{name}:{value}" if value is not None else name
        options = [o for o in options if o.split(":", 1)[0] != name] + [rendered]
    lines = [f"nameserver {ip}" for ip in nameservers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"
