"""A container's environment, as kubelet builds it (``kubelet_pods.go: makeEnvironmentVariables``).

Pure: every input (the pod, its node's address, the Services, ConfigMaps and Secrets it
refers to) is passed in; nothing here reaches the API.

Order and precedence, as upstream:
1. the Service variables (``envvars.FromServices``) of every Service of the pod's namespace
   when ``enableServiceLinks`` (default true), plus those of the ``kubernetes`` Service of the
   ``default`` namespace always, a namespace Service of the same name winning;
2. ``envFrom`` sources in order (a later source overrides an earlier one);
3. ``env`` entries in order, each value expanded against what is defined so far
   (``$(VAR)``; ``$$`` is a literal ``$``; an undefined reference stays as written).
A missing ConfigMap/Secret or key (not ``optional``) is a ``CreateContainerConfigError``
with upstream's message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from svcnet.api.objects import ObjView

REASON_CONFIG_ERROR = "CreateContainerConfigError"
_ENV_NAME_OK = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class EnvError(Exception):
    """The container cannot be configured: its Waiting reason is CreateContainerConfigError."""

    reason = REASON_CONFIG_ERROR


@dataclass(frozen=True)
class PodRuntimeInfo:
    """What the downward API reads that is not in the pod object yet."""

    pod_ip: str
    pod_ips: tuple[str, ...]
    host_ip: str


def _service_prefix(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(service: ObjView) -> list[tuple[str, str]]:
    """The variables of one Service (``envvars.FromServices`` for a single Service)."""
    spec = service.get("spec") or {}
    ip = spec.get("clusterIP") or ""
    ports = spec.get("ports") or []
    if not ip or ip == "None" or not ports:
        return []
    prefix = _service_prefix(str((service.get("metadata") or {}).get("name", "")))
    out: list[tuple[str, str]] = [
        (f"{prefix}_SERVICE_HOST", ip),
        (f"{prefix}_SERVICE_PORT", str(ports[0].get("port"))),
    ]
    for p in ports:
        if p.get("name"):
            out.append((f"{prefix}_SERVICE_PORT_{_service_prefix(str(p['name']))}", str(p["port"])))
    # Docker link variables (makeLinkVariables).
    for i, p in enumerate(ports):
        proto = str(p.get("protocol") or "TCP")
        port = str(p.get("port"))
        url = f"{proto.lower()}://{ip}:{port}"
        if i == 0:
            out.append((f"{prefix}_PORT", url))
        base = f"{prefix}_PORT_{port}_{proto.upper()}"
        out += [
            (base, url),
            (f"{base}_PROTO", proto.lower()),
            (f"{base}_PORT", port),
            (f"{base}_ADDR", ip),
        ]
    return out


def services_env(
    namespace: str, services: Sequence[ObjView], enable_service_links: bool
) -> dict[str, str]:
    """Variables of the Services a pod sees: its namespace's (if links are on) + ``kubernetes``."""
    chosen: dict[str, ObjView] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        name, ns = str(meta.get("name", "")), meta.get("namespace")
        if ns == "default" and name == "kubernetes":
            chosen.setdefault(name, svc)
        if ns == namespace and enable_service_links:
            chosen[name] = svc
    out: dict[str, str] = {}
    for name in sorted(chosen):
        out.update(service_env(chosen[name]))
    return out


def expand(value: str, defined: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion (``third_party/forked/golang/expansion``)."""
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == "$" and i + 1 < n:
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end >= 0:
                    name = value[i + 2 : end]
                    if name in defined:
                        out.append(defined[name])
                    else:
                        out.append(value[i : end + 1])
                    i = end + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def field_ref(pod: ObjView, path: str, info: PodRuntimeInfo) -> str:
    """``valueFrom.fieldRef.fieldPath`` (the paths kubelet supports for env)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple: dict[str, str] = {
        "metadata.name": str(meta.get("name", "")),
        "metadata.namespace": str(meta.get("namespace", "")),
        "metadata.uid": str(meta.get("uid", "")),
        "spec.nodeName": str(spec.get("nodeName", "")),
        "spec.serviceAccountName": str(spec.get("serviceAccountName", "")),
        "status.podIP": info.pod_ip,
        "status.podIPs": ",".join(info.pod_ips),
        "status.hostIP": info.host_ip,
        "status.hostIPs": info.host_ip,
    }
    if path in simple:
        return simple[path]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".", 1)[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise EnvError(f"unsupported fieldPath: {path}")


def _lookup(
    kind: str,
    store: Mapping[str, ObjView],
    namespace: str,
    ref: ObjView,
) -> tuple[ObjView | None, bool]:
    name = str(ref.get("name", ""))
    optional = bool(ref.get("optional", False))
    obj = store.get(name)
    if obj is None and not optional:
        raise EnvError(f'{kind.lower()} "{name}" not found')
    return obj, optional


def _data_of(obj: ObjView, kind: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if kind == "Secret":
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v).decode(errors="replace")
        out.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    else:
        out.update({k: str(v) for k, v in (obj.get("data") or {}).items()})
    return out


def container_env(
    pod: ObjView,
    container: ObjView,
    info: PodRuntimeInfo,
    *,
    services: Sequence[ObjView] = (),
    config_maps: Mapping[str, ObjView] | None = None,
    secrets: Mapping[str, ObjView] | None = None,
) -> dict[str, str]:
    """The full environment of one container (without PATH: the runner adds the node's)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    namespace = str(meta.get("namespace", "default"))
    cms = config_maps or {}
    secs = secrets or {}
    env: dict[str, str] = services_env(
        namespace, services, bool(spec.get("enableServiceLinks", True))
    )
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        if "configMapRef" in source:
            obj, _ = _lookup("ConfigMap", cms, namespace, source["configMapRef"])
            data = _data_of(obj, "ConfigMap") if obj is not None else {}
        elif "secretRef" in source:
            obj, _ = _lookup("Secret", secs, namespace, source["secretRef"])
            data = _data_of(obj, "Secret") if obj is not None else {}
        else:
            continue
        for k, v in data.items():
            # Upstream skips keys that are not valid variable names (with an event).
            if _ENV_NAME_OK.match(prefix + k):
                env[prefix + k] = v
    for entry in container.get("env") or []:
        name = str(entry.get("name", ""))
        if "value" in entry or "valueFrom" not in entry:
            env[name] = expand(str(entry.get("value", "")), env)
            continue
        vf = entry["valueFrom"] or {}
        if "fieldRef" in vf:
            env[name] = field_ref(pod, str(vf["fieldRef"].get("fieldPath", "")), info)
        elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
            kind = "ConfigMap" if "configMapKeyRef" in vf else "Secret"
            ref = vf["configMapKeyRef"] if kind == "ConfigMap" else vf["secretKeyRef"]
            obj, optional = _lookup(kind, cms if kind == "ConfigMap" else secs, namespace, ref)
            if obj is None:
                continue
            data = _data_of(obj, kind)
            key = str(ref.get("key", ""))
            if key not in data:
                if optional:
                    continue
                raise EnvError(
                    f"couldn't find key {key} in {kind} {namespace}/{ref.get('name', '')}"
                )
            env[name] = data[key]
        elif "resourceFieldRef" in vf:
            # No resource accounting: limits default to the node's allocatable, as kubelet
            # does for a container without limits; 0 is what a request-less container gets.
            env[name] = "0"
    return env


def referenced_objects(pod: ObjView) -> tuple[set[str], set[str]]:
    """Names of the ConfigMaps and Secrets the pod's containers' env refers to."""
    cms: set[str] = set()
    secs: set[str] = set()
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for source in c.get("envFrom") or []:
            if "configMapRef" in source:
                cms.add(str(source["configMapRef"].get("name", "")))
            if "secretRef" in source:
                secs.add(str(source["secretRef"].get("name", "")))
        for entry in c.get("env") or []:
            vf = entry.get("valueFrom") or {}
            if "configMapKeyRef" in vf:
                cms.add(str(vf["configMapKeyRef"].get("name", "")))
            if "secretKeyRef" in vf:
                secs.add(str(vf["secretKeyRef"].get("name", "")))
    return cms, secs


def expand_command(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """command/args get the same ``$(VAR)`` expansion as env values."""
    return tuple(expand(a, env) for a in argv)
