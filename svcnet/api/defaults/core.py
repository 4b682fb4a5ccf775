"""core/v1 (and discovery/v1) defaults: ``pkg/apis/core/v1/defaults.go`` and friends.

Values are upstream's (Kubernetes 1.32). A few fields that a real cluster fills through its
default admission plugins rather than ``SetDefaults_*`` (a Pod's ``serviceAccountName``,
``priority``, default tolerations) are filled in :mod:`svcnet.api.strategy` at create, as they
are only for Pods and not for Pod templates.
"""

from __future__ import annotations

import base64
from typing import Any

from svcnet.api.objects import Obj
from svcnet.api.wellknown import NAMESPACE_NAME_LABEL

DEFAULT_CLIENT_IP_TIMEOUT = 10800  # 3 hours, v1.DefaultClientIPServiceAffinitySeconds
_HEADLESS = "None"


def _obj(parent: Obj, key: str) -> Obj:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# -- Namespace, Node --------------------------------------------------------------------


def default_namespace(ns: Obj) -> None:
    meta = _obj(ns, "metadata")
    name = meta.get("name")
    if name:
        # SetDefaults_Namespace: the name label is always set (and always wins).
        _obj(meta, "labels")[NAMESPACE_NAME_LABEL] = name
    # The "kubernetes" finalizer is no default: the strategy adds it at create only (it goes
    # away over the namespace's life), so the creator does not own it.
    status = _obj(ns, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def default_node(node: Obj) -> None:
    status = node.get("status")
    if isinstance(status, dict) and "capacity" in status and "allocatable" not in status:
        status["allocatable"] = dict(status["capacity"])


# -- Pod and Pod templates ----------------------------------------------------------------


def image_tag_is_latest(image: str) -> bool:
    """Whether ``ParseImageName`` would yield the tag ``latest`` (explicit or implied)."""
    if "@" in image:
        return False  # pinned by digest
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return True
    return last.rsplit(":", 1)[1] == "latest"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    _default_handler(probe)


def _default_handler(handler: Obj) -> None:
    http = handler.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def _default_container(c: Obj) -> None:
    image = c.get("image")
    if isinstance(image, str) and image and not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = "Always" if image_tag_is_latest(image) else "IfNotPresent"
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    for port in _dicts(c.get("ports")):
        port.setdefault("protocol", "TCP")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(name))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_handler(lifecycle[hook])
    for env in _dicts(c.get("env")):
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
    if not isinstance(c.get("resources"), dict):
        c["resources"] = {}


def _default_requests_to_limits(c: Obj) -> None:
    # SetDefaults_Pod: requests default to limits where only limits are given.
    resources = c.get("resources")
    limits = resources.get("limits") if isinstance(resources, dict) else None
    if isinstance(resources, dict) and isinstance(limits, dict) and limits:
        requests = resources.setdefault("requests", {})
        for key, value in limits.items():
            requests.setdefault(key, value)


_MODE_SOURCES = ("secret", "configMap", "projected", "downwardAPI")


def _default_volume(v: Obj) -> None:
    sources = set(v) - {"name"}
    if not sources:
        v["emptyDir"] = {}
    for source in _MODE_SOURCES:
        if isinstance(v.get(source), dict):
            v[source].setdefault("defaultMode", 0o644)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    host_network = spec.get("hostNetwork") is True
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in _dicts(spec.get(key)):
            _default_container(c)
            if host_network:
                # With the host's network the container port is the host port.
                for port in _dicts(c.get("ports")):
                    port.setdefault("hostPort", port.get("containerPort"))
    for v in _dicts(spec.get("volumes")):
        _default_volume(v)


def default_pod_template(template: Any) -> None:
    if isinstance(template, dict):
        default_pod_spec(_obj(template, "spec"))


def default_pod(pod: Obj) -> None:
    """SetDefaults_Pod: the PodSpec defaults plus what only Pods (not templates) get."""
    spec = _obj(pod, "spec")
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    for key in ("initContainers", "containers"):
        for c in _dicts(spec.get(key)):
            _default_requests_to_limits(c)


# -- Service ------------------------------------------------------------------------------


def externally_accessible(spec: Obj) -> bool:
    """``apiservice.ExternallyAccessible``: reachable from outside the cluster."""
    svc_type = spec.get("type") or "ClusterIP"
    return svc_type in ("NodePort", "LoadBalancer") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )


def default_service(svc: Obj) -> None:
    spec = _obj(svc, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    svc_type = spec["type"]
    for port in _dicts(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        target = port.get("targetPort")
        if target is None or target == 0 or target == "":
            port["targetPort"] = port.get("port")
    if spec["sessionAffinity"] == "ClientIP":
        config = _obj(spec, "sessionAffinityConfig")
        client_ip = _obj(config, "clientIP")
        client_ip.setdefault("timeoutSeconds", DEFAULT_CLIENT_IP_TIMEOUT)
    if svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if svc_type != "ExternalName":
        if not spec.get("internalTrafficPolicy"):
            spec["internalTrafficPolicy"] = "Cluster"
        _default_ip_families(spec)


def _default_ip_families(spec: Obj) -> None:
    # What the service REST's initIPFamilyFields does on this single-stack IPv4 cluster.
    cluster_ip = spec.get("clusterIP") or (spec.get("clusterIPs") or [""])[0]
    headless_without_selector = cluster_ip == _HEADLESS and not spec.get("selector")
    if not spec.get("ipFamilyPolicy"):
        # Headless Services without a selector serve whatever families their endpoints have.
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless_without_selector else "SingleStack"
    if not spec.get("ipFamilies"):
        families = ["IPv4"]
        for ip in spec.get("clusterIPs") or [cluster_ip]:
            if isinstance(ip, str) and ":" in ip:
                families = ["IPv6"]
                break
        spec["ipFamilies"] = families


# -- Endpoints, EndpointSlice, Secret --------------------------------------------------


def default_endpoints(ep: Obj) -> None:
    for subset in _dicts(ep.get("subsets")):
        for port in _dicts(subset.get("ports")):
            port.setdefault("protocol", "TCP")


def default_endpoint_slice(slice_: Obj) -> None:
    for port in _dicts(slice_.get("ports")):
        port.setdefault("name", "")
        port.setdefault("protocol", "TCP")


def default_secret(secret: Obj) -> None:
    if not secret.get("type"):
        secret["type"] = "Opaque"
    merge_string_data(secret)


def merge_string_data(secret: Obj) -> None:
    """Fold ``stringData`` into ``data`` (base64), as the v1 conversion does; it wins on
    conflicts and is never stored."""
    string_data = secret.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = secret.get("data")
    if not isinstance(data, dict):
        data = secret["data"] = {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()


def default_replication_controller(rc: Obj) -> None:
    """core/v1 ``SetDefaults_ReplicationController``: the selector and the labels come from the
    template's labels when absent."""
    spec = rc.get("spec")
    if not isinstance(spec, dict):
        spec = rc["spec"] = {}
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = rc.get("metadata")
        if isinstance(meta, dict) and not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(template)
