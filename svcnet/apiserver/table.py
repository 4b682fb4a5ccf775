"""Table output: the columns and cells ``kubectl get`` prints, per kind.

Pure. The columns, their priorities (1 = only with ``-o wide``) and the cell formats follow
upstream's ``pkg/printers/internalversion/printers.go``; the Gateway API kinds use their
CRDs' ``additionalPrinterColumns``. Unknown kinds get NAME and AGE.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.api.wellknown import DEFAULT_CLASS_ANNOTATION, NODE_ROLE_LABEL_PREFIX


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    format: str = ""
    priority: int = 0
    description: str = ""

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME = Column("Name", format="name", description="Name must be unique within a namespace.")
AGE = Column(
    "Age",
    description="CreationTimestamp is a timestamp representing the server time "
    "when this object was created.",
)
NONE = "<none>"

# -- cell formatting -----------------------------------------------------------------------


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(d: datetime.timedelta) -> str:
    """Upstream's ``duration.HumanDuration``: 5s, 3m2s, 15m, 4h, 2d3h, 20d, 2y30d."""
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(ts: str | None, now: datetime.datetime) -> str:
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    return human_duration(now - t)


def format_labels(labels: Mapping[str, str] | None) -> str:
    if not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_label_selector(sel: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: ``app=web,tier in (a,b)``; empty -> ``<none>``."""
    if sel is None:
        return NONE
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key", ""), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) if parts else NONE


def _lb_ingress(ingress: list[Mapping[str, Any]] | None, wide: bool) -> str:
    out = [i.get("ip") or i.get("hostname") or "" for i in ingress or []]
    text = ",".join(o for o in out if o)
    if not wide and len(text) > 16:
        return text[:13] + "..."
    return text


# -- rows per kind -------------------------------------------------------------------------

Row = list[Any]
RowFn = Callable[[ObjView, datetime.datetime], Row]


def _pod_row(obj: ObjView, now: datetime.datetime) -> Row:
    spec, status, meta = objects.spec(obj), objects.status(obj), objects.meta(obj)
    containers = spec.get("containers") or []
    total = len(containers)
    ready = 0
    restarts = 0
    last_restart: datetime.datetime | None = None
    reason = status.get("reason") or status.get("phase") or ""
    initializing = False
    for i, c in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(c.get("restartCount") or 0)
        state = c.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and int(term.get("exitCode") or 0) == 0:
            continue
        initializing = True
        if term:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode', 0)}")
        elif wait and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            n = len(spec.get("initContainers") or [])
            reason = f"Init:{i}/{n}"
        break
    if not initializing:
        restarts = 0
        has_running = False
        for c in reversed(status.get("containerStatuses") or []):
            restarts += int(c.get("restartCount") or 0)
            last = ((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            t = parse_time(last)
            if t is not None and (last_restart is None or t > last_restart):
                last_restart = t
            state = c.get("state") or {}
            wait, term = state.get("waiting"), state.get("terminated")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                sig = term.get("signal")
                reason = f"Signal:{sig}" if sig else f"ExitCode:{term.get('exitCode', 0)}"
            elif c.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            conds = status.get("conditions") or []
            is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
            reason = "Running" if is_ready else "NotReady"
    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration(now - last_restart)} ago)"
    gates = spec.get("readinessGates") or []
    if gates:
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        ok = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gates_text = f"{ok}/{len(gates)}"
    else:
        gates_text = NONE
    return [
        meta.get("name", ""),
        f"{ready}/{total}",
        reason,
        restarts_text,
        age(meta.get("creationTimestamp"), now),
        status.get("podIP") or NONE,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        gates_text,
    ]


def service_external_ip(obj: ObjView, wide: bool) -> str:
    spec = objects.spec(obj)
    t = spec.get("type") or "ClusterIP"
    external = list(spec.get("externalIPs") or [])
    if t in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if t == "LoadBalancer":
        lb = _lb_ingress((objects.status(obj).get("loadBalancer") or {}).get("ingress"), wide)
        if external:
            return ",".join(external + ([lb] if lb else []))
        return lb or "<pending>"
    if t == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def service_ports(obj: ObjView) -> str:
    out = []
    for p in objects.spec(obj).get("ports") or []:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) if out else NONE


def _service_row(obj: ObjView, now: datetime.datetime) -> Row:
    spec, meta = objects.spec(obj), objects.meta(obj)
    return [
        meta.get("name", ""),
        spec.get("type") or "ClusterIP",
        spec.get("clusterIP") or NONE,
        service_external_ip(obj, False),
        service_ports(obj),
        age(meta.get("creationTimestamp"), now),
        format_labels(spec.get("selector")),
    ]


def _more(items: list[str], limit: int = 3) -> str:
    if not items:
        return NONE
    if len(items) > limit:
        return ",".join(items[:limit]) + f" + {len(items) - limit} more..."
    return ",".join(items)


def _endpoints_row(obj: ObjView, now: datetime.datetime) -> Row:
    out: list[str] = []
    for subset in obj.get("subsets") or []:
        ports = subset.get("ports") or []
        for addr in subset.get("addresses") or []:
            ip = addr.get("ip", "")
            if ports:
                out.extend(f"{ip}:{p.get('port')}" for p in ports)
            else:
                out.append(ip)
    meta = objects.meta(obj)
    return [meta.get("name", ""), _more(out), age(meta.get("creationTimestamp"), now)]


def _endpointslice_row(obj: ObjView, now: datetime.datetime) -> Row:
    ports = obj.get("ports")
    if ports is None:
        ports_text = "<unset>"
    elif not ports:
        ports_text = NONE
    else:
        ports_text = ",".join(
            str(p.get("port")) if p.get("port") is not None else "<unset>" for p in ports
        )
    addrs = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    meta = objects.meta(obj)
    return [
        meta.get("name", ""),
        obj.get("addressType", ""),
        ports_text,
        _more(addrs),
        age(meta.get("creationTimestamp"), now),
    ]


def _node_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    cond = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    ready = cond.get("Ready")
    state = "Ready" if ready == "True" else "NotReady" if ready == "False" else "Unknown"
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted(
        {
            k.split("/", 1)[1]
            for k in (meta.get("labels") or {})
            if k.startswith(NODE_ROLE_LABEL_PREFIX) and k.split("/", 1)[1]
        }
        | {v for k, v in (meta.get("labels") or {}).items() if k == "kubernetes.io/role" and v}
    )
    addrs = status.get("addresses") or []
    internal = next((a.get("address") for a in addrs if a.get("type") == "InternalIP"), None)
    external = next((a.get("address") for a in addrs if a.get("type") == "ExternalIP"), None)
    info = status.get("nodeInfo") or {}
    return [
        meta.get("name", ""),
        state,
        ",".join(roles) if roles else NONE,
        age(meta.get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        internal or NONE,
        external or NONE,
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _namespace_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    return [
        meta.get("name", ""),
        objects.status(obj).get("phase", ""),
        age(meta.get("creationTimestamp"), now),
    ]


def _containers(obj: ObjView) -> tuple[str, str]:
    cs = ((objects.spec(obj).get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _deployment_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    names, images = _containers(obj)
    desired = spec.get("replicas", 1)
    return [
        meta.get("name", ""),
        f"{status.get('readyReplicas', 0)}/{desired}",
        int(status.get("updatedReplicas", 0)),
        int(status.get("availableReplicas", 0)),
        age(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _replicaset_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    names, images = _containers(obj)
    return [
        meta.get("name", ""),
        int(spec.get("replicas", 1)),
        int(status.get("replicas", 0)),
        int(status.get("readyReplicas", 0)),
        age(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _statefulset_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    names, images = _containers(obj)
    return [
        meta.get("name", ""),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        age(meta.get("creationTimestamp"), now),
        names,
        images,
    ]


def _daemonset_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    names, images = _containers(obj)
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    return [
        meta.get("name", ""),
        int(status.get("desiredNumberScheduled", 0)),
        int(status.get("currentNumberScheduled", 0)),
        int(status.get("numberReady", 0)),
        int(status.get("updatedNumberScheduled", 0)),
        int(status.get("numberAvailable", 0)),
        format_labels(node_selector),
        age(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _job_condition(status: Mapping[str, Any], type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True" for c in status.get("conditions") or ()
    )


def _job_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    names, images = _containers(obj)
    succeeded = int(status.get("succeeded") or 0)
    parallelism = spec.get("parallelism")
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif parallelism is not None and parallelism > 1:
        completions = f"{succeeded}/1 of {parallelism}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    took = ""
    if start is not None:
        took = human_duration((end or now) - start)
    if _job_condition(status, "Complete"):
        state = "Complete"
    elif _job_condition(status, "Failed"):
        state = "Failed"
    elif meta.get("deletionTimestamp"):
        state = "Terminating"
    elif _job_condition(status, "Suspended"):
        state = "Suspended"
    elif _job_condition(status, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    return [
        meta.get("name", ""),
        state,
        completions,
        took,
        age(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _bool_ptr(value: Any) -> str:
    """printBoolPtr: an unset pointer prints as ``<unset>``."""
    return "<unset>" if value is None else ("True" if value else "False")


def _cronjob_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    cs = ((job_spec.get("template") or {}).get("spec") or {}).get("containers") or []
    last = status.get("lastScheduleTime")
    return [
        meta.get("name", ""),
        spec.get("schedule", ""),
        spec.get("timeZone") or NONE,
        _bool_ptr(spec.get("suspend")),
        len(status.get("active") or ()),
        age(last, now) if last else NONE,
        age(meta.get("creationTimestamp"), now),
        ",".join(c.get("name", "") for c in cs),
        ",".join(c.get("image", "") for c in cs),
        format_label_selector(job_spec.get("selector")),
    ]


def _replicationcontroller_row(obj: ObjView, now: datetime.datetime) -> Row:
    row = _replicaset_row(obj, now)
    # An RC's selector is a plain map (labels.FormatLabels).
    row[-1] = format_labels(objects.spec(obj).get("selector"))
    return row


def _pdb_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [
        meta.get("name", ""),
        "N/A" if min_available is None else str(min_available),
        "N/A" if max_unavailable is None else str(max_unavailable),
        int(status.get("disruptionsAllowed") or 0),
        age(meta.get("creationTimestamp"), now),
    ]


def _hpa_metric(spec: Mapping[str, Any], current: Mapping[str, Any] | None) -> str:
    """One metric of formatHPAMetrics (printers.go), for the Resource and ContainerResource
    sources; other sources print their target value only."""
    kind = spec.get("type")
    source = spec.get("resource") if kind == "Resource" else spec.get("containerResource")
    if kind not in ("Resource", "ContainerResource") or not isinstance(source, dict):
        return f"<unknown>/{'<unset>'}"
    target = source.get("target") or {}
    now = (current or {}).get("resource" if kind == "Resource" else "containerResource") or {}
    now_value = now.get("current") or {}
    if target.get("averageValue") is not None:
        return f"{now_value.get('averageValue', '<unknown>')}/{target['averageValue']}"
    shown = "<unknown>"
    if now_value.get("averageUtilization") is not None:
        shown = f"{now_value['averageUtilization']}%"
    goal = "<auto>"
    if target.get("averageUtilization") is not None:
        goal = f"{target['averageUtilization']}%"
    prefix = source.get("name", "")
    if kind == "ContainerResource":
        prefix = f'{prefix} of container "{source.get("container", "")}"'
    return f"{prefix}: {shown}/{goal}"


def _hpa_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    ref = spec.get("scaleTargetRef") or {}
    metrics = spec.get("metrics") or []
    currents = status.get("currentMetrics") or []
    shown = [
        _hpa_metric(m, currents[i] if i < len(currents) else None) for i, m in enumerate(metrics)
    ]
    if not shown:
        targets = NONE
    elif len(shown) > 2:
        targets = f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    else:
        targets = ", ".join(shown)
    min_replicas = spec.get("minReplicas")
    return [
        meta.get("name", ""),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        targets,
        "<unset>" if min_replicas is None else int(min_replicas),
        int(spec.get("maxReplicas") or 0),
        int(status.get("currentReplicas") or 0),
        age(meta.get("creationTimestamp"), now),
    ]


def _ingress_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec, status = objects.meta(obj), objects.spec(obj), objects.status(obj)
    hosts = [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
    if not hosts:
        hosts_text = "*"
    elif len(hosts) > 4:
        hosts_text = ",".join(hosts[:4]) + f" + {len(hosts) - 4} more..."
    else:
        hosts_text = ",".join(hosts)
    address = _lb_ingress((status.get("loadBalancer") or {}).get("ingress"), True)
    ports = "80, 443" if spec.get("tls") else "80"
    return [
        meta.get("name", ""),
        spec.get("ingressClassName") or NONE,
        hosts_text,
        address,
        ports,
        age(meta.get("creationTimestamp"), now),
    ]


def _ingressclass_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec = objects.meta(obj), objects.spec(obj)
    params = spec.get("parameters")
    if params:
        group = params.get("apiGroup") or ""
        kind = f"{params.get('kind')}.{group}" if group else str(params.get("kind"))
        params_text = f"{kind}/{params.get('name')}"
    else:
        params_text = NONE
    return [
        meta.get("name", ""),
        spec.get("controller", ""),
        params_text,
        age(meta.get("creationTimestamp"), now),
    ]


def _networkpolicy_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    return [
        meta.get("name", ""),
        format_label_selector(objects.spec(obj).get("podSelector")),
        age(meta.get("creationTimestamp"), now),
    ]


def _secret_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    data = len(obj.get("data") or {}) + len(obj.get("stringData") or {})
    return [
        meta.get("name", ""),
        obj.get("type") or "Opaque",
        data,
        age(meta.get("creationTimestamp"), now),
    ]


def _configmap_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    data = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [meta.get("name", ""), data, age(meta.get("creationTimestamp"), now)]


def _serviceaccount_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    return [
        meta.get("name", ""),
        len(obj.get("secrets") or []),
        age(meta.get("creationTimestamp"), now),
    ]


def _role_row(obj: ObjView, now: datetime.datetime) -> Row:
    # "Created At" is the timestamp itself (RFC 3339 in UTC), not an age.
    meta = objects.meta(obj)
    return [meta.get("name", ""), meta.get("creationTimestamp") or ""]


def _binding_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    ref = obj.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in obj.get("subjects") or ():
        kind, name = s.get("kind"), s.get("name", "")
        if kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
        elif kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}:{name}")
    return [
        meta.get("name", ""),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        age(meta.get("creationTimestamp"), now),
        ", ".join(users),
        ", ".join(groups),
        ", ".join(sas),
    ]


def _event_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    first = obj.get("firstTimestamp") or obj.get("eventTime")
    last = obj.get("lastTimestamp") or (obj.get("series") or {}).get("lastObservedTime") or first
    count = int(obj.get("count") or (obj.get("series") or {}).get("count") or 1)
    last_seen = age(last, now)
    if count > 1 and first and last != first:
        last_seen = f"{last_seen} (x{count} over {age(first, now)})"
    io = obj.get("involvedObject") or {}
    source = obj.get("source") or {}
    src = source.get("component") or obj.get("reportingComponent") or ""
    if source.get("host"):
        src = f"{src}, {source['host']}"
    return [
        last_seen,
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(io.get('kind', '')).lower()}/{io.get('name', '')}",
        io.get("fieldPath", ""),
        src,
        str(obj.get("message", "")).strip(),
        age(first, now),
        count,
        meta.get("name", ""),
    ]


def _lease_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    return [
        meta.get("name", ""),
        objects.spec(obj).get("holderIdentity") or NONE,
        age(meta.get("creationTimestamp"), now),
    ]


def _condition(obj: ObjView, type_: str) -> str:
    for c in objects.status(obj).get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status", ""))
    return "Unknown"


def _gatewayclass_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec = objects.meta(obj), objects.spec(obj)
    return [
        meta.get("name", ""),
        spec.get("controllerName", ""),
        _condition(obj, "Accepted"),
        age(meta.get("creationTimestamp"), now),
        spec.get("description", ""),
    ]


def _gateway_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec = objects.meta(obj), objects.spec(obj)
    addrs = objects.status(obj).get("addresses") or []
    return [
        meta.get("name", ""),
        spec.get("gatewayClassName", ""),
        addrs[0].get("value", "") if addrs else "",
        _condition(obj, "Programmed"),
        age(meta.get("creationTimestamp"), now),
    ]


def _httproute_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    hosts = objects.spec(obj).get("hostnames") or []
    return [
        meta.get("name", ""),
        "[" + ",".join(f'"{h}"' for h in hosts) + "]" if hosts else "",
        age(meta.get("creationTimestamp"), now),
    ]


def _default_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    return [meta.get("name", ""), age(meta.get("creationTimestamp"), now)]


# -- storage -------------------------------------------------------------------------------------
# ``GetAccessModesAsString``: the short forms in this order, whatever the list's order.
_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)
_UNSET = "<unset>"


def access_modes(modes: Sequence[str] | None) -> str:
    have = set(modes or ())
    return ",".join(short for mode, short in _ACCESS_MODES if mode in have)


def _phase_or_terminating(obj: ObjView) -> str:
    if objects.meta(obj).get("deletionTimestamp"):
        return "Terminating"
    return str((obj.get("status") or {}).get("phase") or "")


def _pv_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec = objects.meta(obj), objects.spec(obj)
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    return [
        meta.get("name", ""),
        str((spec.get("capacity") or {}).get("storage") or "0"),
        access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy") or "",
        _phase_or_terminating(obj),
        claim,
        spec.get("storageClassName") or "",
        spec.get("volumeAttributesClassName") or _UNSET,
        (obj.get("status") or {}).get("reason") or "",
        age(meta.get("creationTimestamp"), now),
        spec.get("volumeMode") or "",
    ]


def _pvc_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta, spec = objects.meta(obj), objects.spec(obj)
    status = obj.get("status") or {}
    volume = spec.get("volumeName") or ""
    capacity, modes = "", ""
    if volume:  # upstream shows what the bound volume has, not what was asked for
        capacity = str((status.get("capacity") or {}).get("storage") or "")
        modes = access_modes(status.get("accessModes"))
    return [
        meta.get("name", ""),
        _phase_or_terminating(obj),
        volume,
        capacity,
        modes,
        spec.get("storageClassName") or "",
        spec.get("volumeAttributesClassName") or _UNSET,
        age(meta.get("creationTimestamp"), now),
        spec.get("volumeMode") or "",
    ]


def _storageclass_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    name = str(meta.get("name", ""))
    annotations = meta.get("annotations") or {}
    if annotations.get(DEFAULT_CLASS_ANNOTATION) == "true":
        name += " (default)"
    expansion = obj.get("allowVolumeExpansion")
    return [
        name,
        obj.get("provisioner") or "",
        obj.get("reclaimPolicy") or "Delete",
        obj.get("volumeBindingMode") or "Immediate",
        "true" if expansion else "false",
        age(meta.get("creationTimestamp"), now),
    ]


def _apiservice_row(obj: ObjView, now: datetime.datetime) -> Row:
    # kube-aggregator's apiservice ConvertToTable: "Local" when no Service, the Available
    # condition's status with its reason unless True.
    meta, spec = objects.meta(obj), objects.spec(obj)
    service = spec.get("service")
    where = f"{service.get('namespace', '')}/{service.get('name', '')}" if service else "Local"
    available = "Unknown"
    for c in objects.status(obj).get("conditions") or []:
        if c.get("type") == "Available":
            status, reason = str(c.get("status", "")), c.get("reason") or ""
            available = f"{status} ({reason})" if status != "True" and reason else status
            break
    return [meta.get("name", ""), where, available, age(meta.get("creationTimestamp"), now)]


def _w(name: str, t: str = "string") -> Column:
    return Column(name, type=t, priority=1)


def _c(name: str, t: str = "string") -> Column:
    return Column(name, type=t)


# ReplicaSets and ReplicationControllers print alike.
_REPLICA_COLUMNS = (
    NAME,
    _c("Desired", "integer"),
    _c("Current", "integer"),
    _c("Ready", "integer"),
    AGE,
    _w("Containers"),
    _w("Images"),
    _w("Selector"),
)
_RBAC = "rbac.authorization.k8s.io"
_CREATED_AT = Column("Created At", type="date", description=AGE.description)
_BINDING_COLUMNS = (NAME, _c("Role"), AGE, _w("Users"), _w("Groups"), _w("ServiceAccounts"))

PRINTERS: dict[tuple[str, str], tuple[tuple[Column, ...], RowFn]] = {
    ("", "Pod"): (
        (
            NAME,
            _c("Ready"),
            _c("Status"),
            _c("Restarts"),
            AGE,
            _w("IP"),
            _w("Node"),
            _w("Nominated Node"),
            _w("Readiness Gates"),
        ),
        _pod_row,
    ),
    ("", "Service"): (
        (NAME, _c("Type"), _c("Cluster-IP"), _c("External-IP"), _c("Port(s)"), AGE, _w("Selector")),
        _service_row,
    ),
    ("", "Endpoints"): ((NAME, _c("Endpoints"), AGE), _endpoints_row),
    ("", "Node"): (
        (
            NAME,
            _c("Status"),
            _c("Roles"),
            AGE,
            _c("Version"),
            _w("Internal-IP"),
            _w("External-IP"),
            _w("OS-Image"),
            _w("Kernel-Version"),
            _w("Container-Runtime"),
        ),
        _node_row,
    ),
    ("", "Namespace"): ((NAME, _c("Status"), AGE), _namespace_row),
    ("", "Secret"): ((NAME, _c("Type"), _c("Data", "string"), AGE), _secret_row),
    ("", "ConfigMap"): ((NAME, _c("Data", "string"), AGE), _configmap_row),
    ("", "ServiceAccount"): ((NAME, _c("Secrets", "string"), AGE), _serviceaccount_row),
    ("", "Event"): (
        (
            _c("Last Seen"),
            _c("Type"),
            _c("Reason"),
            _c("Object"),
            _w("Subobject"),
            _w("Source"),
            _c("Message"),
            _w("First Seen"),
            _w("Count", "integer"),
            _w("Name"),
        ),
        _event_row,
    ),
    ("", "PersistentVolume"): (
        (
            NAME,
            _c("Capacity"),
            _c("Access Modes"),
            _c("Reclaim Policy"),
            _c("Status"),
            _c("Claim"),
            _c("StorageClass"),
            _c("VolumeAttributesClass"),
            _c("Reason"),
            AGE,
            _w("VolumeMode"),
        ),
        _pv_row,
    ),
    ("", "PersistentVolumeClaim"): (
        (
            NAME,
            _c("Status"),
            _c("Volume"),
            _c("Capacity"),
            _c("Access Modes"),
            _c("StorageClass"),
            _c("VolumeAttributesClass"),
            AGE,
            _w("VolumeMode"),
        ),
        _pvc_row,
    ),
    ("storage.k8s.io", "StorageClass"): (
        (
            NAME,
            _c("Provisioner"),
            _c("ReclaimPolicy"),
            _c("VolumeBindingMode"),
            _c("AllowVolumeExpansion"),
            AGE,
        ),
        _storageclass_row,
    ),
    ("discovery.k8s.io", "EndpointSlice"): (
        (NAME, _c("AddressType"), _c("Ports"), _c("Endpoints"), AGE),
        _endpointslice_row,
    ),
    ("apps", "Deployment"): (
        (
            NAME,
            _c("Ready"),
            _c("Up-to-date", "integer"),
            _c("Available", "integer"),
            AGE,
            _w("Containers"),
            _w("Images"),
            _w("Selector"),
        ),
        _deployment_row,
    ),
    ("apps", "ReplicaSet"): (_REPLICA_COLUMNS, _replicaset_row),
    ("apps", "StatefulSet"): (
        (NAME, _c("Ready"), AGE, _w("Containers"), _w("Images")),
        _statefulset_row,
    ),
    ("apps", "DaemonSet"): (
        (
            NAME,
            _c("Desired", "integer"),
            _c("Current", "integer"),
            _c("Ready", "integer"),
            _c("Up-to-date", "integer"),
            _c("Available", "integer"),
            _c("Node Selector"),
            AGE,
            _w("Containers"),
            _w("Images"),
            _w("Selector"),
        ),
        _daemonset_row,
    ),
    ("batch", "Job"): (
        (
            NAME,
            _c("Status"),
            _c("Completions"),
            _c("Duration"),
            AGE,
            _w("Containers"),
            _w("Images"),
            _w("Selector"),
        ),
        _job_row,
    ),
    ("batch", "CronJob"): (
        (
            NAME,
            _c("Schedule"),
            _c("Timezone"),
            _c("Suspend", "boolean"),  # upstream declares boolean, prints printBoolPtr text
            _c("Active", "integer"),
            _c("Last Schedule"),
            AGE,
            _w("Containers"),
            _w("Images"),
            _w("Selector"),
        ),
        _cronjob_row,
    ),
    ("", "ReplicationController"): (_REPLICA_COLUMNS, _replicationcontroller_row),
    ("policy", "PodDisruptionBudget"): (
        (
            NAME,
            _c("Min Available"),
            _c("Max Unavailable"),
            _c("Allowed Disruptions", "integer"),
            AGE,
        ),
        _pdb_row,
    ),
    ("autoscaling", "HorizontalPodAutoscaler"): (
        (
            NAME,
            _c("Reference"),
            _c("Targets"),
            _c("MinPods", "string"),
            _c("MaxPods", "integer"),
            _c("Replicas", "integer"),
            AGE,
        ),
        _hpa_row,
    ),
    ("networking.k8s.io", "Ingress"): (
        (NAME, _c("Class"), _c("Hosts"), _c("Address"), _c("Ports"), AGE),
        _ingress_row,
    ),
    ("networking.k8s.io", "IngressClass"): (
        (NAME, _c("Controller"), _c("Parameters"), AGE),
        _ingressclass_row,
    ),
    ("networking.k8s.io", "NetworkPolicy"): ((NAME, _c("Pod-Selector"), AGE), _networkpolicy_row),
    ("coordination.k8s.io", "Lease"): ((NAME, _c("Holder"), AGE), _lease_row),
    ("gateway.networking.k8s.io", "GatewayClass"): (
        (NAME, _c("Controller"), _c("Accepted"), AGE, _w("Description")),
        _gatewayclass_row,
    ),
    ("gateway.networking.k8s.io", "Gateway"): (
        (NAME, _c("Class"), _c("Address"), _c("Programmed"), AGE),
        _gateway_row,
    ),
    ("gateway.networking.k8s.io", "HTTPRoute"): ((NAME, _c("Hostnames"), AGE), _httproute_row),
    ("gateway.networking.k8s.io", "GRPCRoute"): ((NAME, _c("Hostnames"), AGE), _httproute_row),
    (_RBAC, "Role"): ((NAME, _CREATED_AT), _role_row),
    (_RBAC, "ClusterRole"): ((NAME, _CREATED_AT), _role_row),
    (_RBAC, "RoleBinding"): (_BINDING_COLUMNS, _binding_row),
    (_RBAC, "ClusterRoleBinding"): (_BINDING_COLUMNS, _binding_row),
    ("apiregistration.k8s.io", "APIService"): (
        (
            NAME,
            Column(
                "Service", description="The reference to the service that hosts this API endpoint."
            ),
            Column("Available", description="Whether this service is available."),
            AGE,
        ),
        _apiservice_row,
    ),
}
_DEFAULT = ((NAME, AGE), _default_row)
Printer = tuple[tuple[Column, ...], RowFn]


def _crd_row(obj: ObjView, now: datetime.datetime) -> Row:
    meta = objects.meta(obj)
    return [meta.get("name", ""), meta.get("creationTimestamp") or ""]


PRINTERS[("apiextensions.k8s.io", "CustomResourceDefinition")] = (
    (NAME, Column("Created At", type="date")),
    _crd_row,
)


def columns(group: str, kind: str) -> tuple[Column, ...]:
    return PRINTERS.get((group, kind), _DEFAULT)[0]


def row_cells(group: str, kind: str, obj: ObjView, now: datetime.datetime) -> Row:
    return PRINTERS.get((group, kind), _DEFAULT)[1](obj, now)


def table(
    group: str,
    kind: str,
    items: Sequence[ObjView],
    now: datetime.datetime,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    with_columns: bool = True,
    printer: Printer | None = None,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``items``; ``include_object``: Object|Metadata|None.
    ``printer``: the columns and cells of a kind the table does not know (a custom
    resource's additionalPrinterColumns)."""
    cols, row_fn = printer or PRINTERS.get((group, kind), _DEFAULT)
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": row_fn(obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    meta: dict[str, Any] = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    out: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    if with_columns:
        out["columnDefinitions"] = [c.definition() for c in cols]
    out["rows"] = rows
    return out
