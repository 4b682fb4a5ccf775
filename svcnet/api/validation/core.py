"""core/v1 validation: ``pkg/apis/core/validation/validation.go`` (Kubernetes 1.32).

Each ``validate_<kind>`` checks one object's own fields (ObjectMeta is checked by the
strategy); ``validate_<kind>_update`` adds what may not change. Paths and messages are
upstream's, for the cases users meet; rarer rules are approximated and say so.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from svcnet.api.defaults.core import externally_accessible
from svcnet.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_found,
    not_supported,
    required,
    too_long,
)
from svcnet.api.meta import validate_finalizer_name
from svcnet.api.names import (
    is_config_map_key,
    is_qualified_name,
    is_valid_cidr,
    is_valid_ip,
    is_valid_port_name,
)
from svcnet.api.objects import Obj
from svcnet.api.selectors import validate_labels
from svcnet.api.validation.fields import (
    dns_label,
    dns_subdomain,
    each,
    items,
    mapping,
    nonnegative,
    one_of,
    port_num,
    port_num_or_name,
    protocol,
)
from svcnet.api.validation.goformat import GoValue, go_strings
from svcnet.api.validation.quantity import QuantityError, parse_quantity

HEADLESS = "None"
SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
MAX_SECRET_SIZE = 1024 * 1024
RESTART_POLICIES = ["Always", "Never", "OnFailure"]
DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]

UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


# -- Pod ----------------------------------------------------------------------------------


def _validate_probe(probe: Any, path: str, liveness_or_startup: bool) -> list[FieldError]:
    if probe is None:
        return []
    p = mapping(probe)
    errors: list[FieldError] = []
    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if p.get(h) is not None]
    if not handlers:
        errors.append(required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        errors.append(
            forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type")
        )
    for field in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errors.extend(nonnegative(f"{path}.{field}", p.get(field)))
    if liveness_or_startup and p.get("successThreshold") not in (None, 1):
        errors.append(invalid(f"{path}.successThreshold", p["successThreshold"], "must be 1"))
    http = p.get("httpGet")
    if isinstance(http, dict):
        errors.extend(port_num_or_name(f"{path}.httpGet.port", http.get("port")))
        scheme = http.get("scheme")
        if scheme not in (None, "HTTP", "HTTPS"):
            errors.append(not_supported(f"{path}.httpGet.scheme", scheme, ["HTTP", "HTTPS"]))
    tcp = p.get("tcpSocket")
    if isinstance(tcp, dict):
        errors.extend(port_num_or_name(f"{path}.tcpSocket.port", tcp.get("port")))
    return errors


def _validate_container_ports(ports: Any, path: str, host_network: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(items(ports)):
        p = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errors.extend(invalid(f"{p}.name", name, m) for m in msgs)
            elif name in names:
                errors.append(duplicate(f"{p}.name", name))
            else:
                names.add(name)
        container_port = port.get("containerPort")
        if not container_port:
            errors.append(required(f"{p}.containerPort"))
        else:
            errors.extend(port_num(f"{p}.containerPort", container_port))
        host_port = port.get("hostPort")
        if host_port:
            errors.extend(port_num(f"{p}.hostPort", host_port))
            if host_network and host_port != container_port:
                errors.append(
                    invalid(
                        f"{p}.hostPort",
                        host_port,
                        "must match `containerPort` when `hostNetwork` is true",
                    )
                )
        errors.extend(protocol(f"{p}.protocol", port.get("protocol")))
    return errors


# Resources whose requests may be below their limits (the rest must be equal, e.g. hugepages).
_OVERCOMMITTABLE = ("cpu", "memory", "ephemeral-storage")
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _validate_resource_name(name: str, path: str) -> list[FieldError]:
    if name in _STANDARD_CONTAINER_RESOURCES or name.startswith("hugepages-"):
        return []
    if "/" in name and not name.startswith("kubernetes.io/"):
        return [invalid(path, name, m) for m in is_qualified_name(name)]
    return [invalid(path, name, "must be a standard resource for containers")]


def _validate_resources(resources: Any, path: str) -> list[FieldError]:
    """``ValidateResourceRequirements``: known names, non-negative, requests <= limits."""
    r = mapping(resources)
    limits, requests = mapping(r.get("limits")), mapping(r.get("requests"))
    errors: list[FieldError] = []
    parsed_limits: dict[str, Any] = {}
    for key, value, section in [(k, v, "limits") for k, v in limits.items()] + [
        (k, v, "requests") for k, v in requests.items()
    ]:
        p = f"{path}.{section}[{key}]"
        errors.extend(_validate_resource_name(str(key), p))
        try:
            amount = parse_quantity(value)
        except QuantityError as exc:
            errors.append(invalid(p, str(value), str(exc)))
            continue
        if amount < 0:
            errors.append(invalid(p, str(value), "must be greater than or equal to 0"))
        if section == "limits":
            parsed_limits[key] = amount
            continue
        if key in parsed_limits:
            limit = parsed_limits[key]
            if amount != limit and key not in _OVERCOMMITTABLE:
                errors.append(
                    invalid(
                        f"{path}.requests",
                        str(value),
                        f"must be equal to {key} limit of {limits[key]}",
                    )
                )
            elif amount > limit:
                errors.append(
                    invalid(
                        f"{path}.requests",
                        str(value),
                        f"must be less than or equal to {key} limit of {limits[key]}",
                    )
                )
    return errors


def _validate_containers(
    containers: Any,
    path: str,
    volumes: set[str],
    seen: set[str],
    host_network: bool,
    init: bool,
) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, c in enumerate(items(containers)):
        p = f"{path}[{i}]"
        name = c.get("name") or ""
        if not name:
            errors.append(required(f"{p}.name"))
        else:
            errors.extend(dns_label(f"{p}.name", name))
            if name in seen:
                errors.append(duplicate(f"{p}.name", name))
            seen.add(name)
        image = c.get("image")
        if not image:
            errors.append(required(f"{p}.image"))
        elif isinstance(image, str) and image.strip() != image:
            errors.append(
                invalid(f"{p}.image", image, "must not have leading or trailing whitespace")
            )
        errors.extend(_validate_container_ports(c.get("ports"), f"{p}.ports", host_network))
        policy = c.get("imagePullPolicy")
        if policy is not None:
            errors.extend(one_of(f"{p}.imagePullPolicy", policy, PULL_POLICIES))
        policy = c.get("terminationMessagePolicy")
        if policy is not None:
            errors.extend(
                one_of(f"{p}.terminationMessagePolicy", policy, ["FallbackToLogsOnError", "File"])
            )
        if not init or c.get("restartPolicy") == "Always":
            errors.extend(_validate_probe(c.get("livenessProbe"), f"{p}.livenessProbe", True))
            errors.extend(_validate_probe(c.get("readinessProbe"), f"{p}.readinessProbe", False))
            errors.extend(_validate_probe(c.get("startupProbe"), f"{p}.startupProbe", True))
        else:
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(probe) is not None:
                    errors.append(
                        forbidden(
                            f"{p}.{probe}",
                            "may not be set for init containers without restartPolicy=Always",
                        )
                    )
        for j, mount in enumerate(items(c.get("volumeMounts"))):
            mp = f"{p}.volumeMounts[{j}]"
            mount_name = mount.get("name") or ""
            if not mount_name:
                errors.append(required(f"{mp}.name"))
            elif mount_name not in volumes:
                errors.append(not_found(f"{mp}.name", mount_name))
            if not mount.get("mountPath"):
                errors.append(required(f"{mp}.mountPath"))
            if mount.get("subPath"):
                errors.extend(_local_descending_path(f"{mp}.subPath", str(mount["subPath"])))
        errors.extend(_validate_resources(c.get("resources"), f"{p}.resources"))
        for j, env in enumerate(items(c.get("env"))):
            if not env.get("name"):
                errors.append(required(f"{p}.env[{j}].name"))
    return errors


def _local_descending_path(path: str, value: str) -> list[FieldError]:
    """validateLocalDescendingPath: relative, with no '..' element (one error is enough)."""
    errors = []
    if value.startswith("/"):
        errors.append(invalid(path, value, "must be a relative path"))
    if ".." in value.split("/"):
        errors.append(invalid(path, value, "must not contain '..'"))
    return errors


def validate_pod_spec(spec: Obj, path: str = "spec") -> list[FieldError]:
    errors: list[FieldError] = []
    volumes: set[str] = set()
    for i, v in enumerate(items(spec.get("volumes"))):
        name = v.get("name") or ""
        if not name:
            errors.append(required(f"{path}.volumes[{i}].name"))
            continue
        errors.extend(dns_label(f"{path}.volumes[{i}].name", name))
        if name in volumes:
            errors.append(duplicate(f"{path}.volumes[{i}].name", name))
        volumes.add(name)
    host_network = spec.get("hostNetwork") is True
    seen: set[str] = set()
    containers = spec.get("containers")
    if not containers:
        errors.append(required(f"{path}.containers"))
    errors.extend(
        _validate_containers(
            spec.get("initContainers"), f"{path}.initContainers", volumes, seen, host_network, True
        )
    )
    errors.extend(
        _validate_containers(containers, f"{path}.containers", volumes, seen, host_network, False)
    )
    # checkHostPortConflicts: one hostIP/protocol/hostPort per pod.
    host_ports: set[str] = set()
    for i, c in enumerate(items(containers)):
        for j, port in enumerate(items(c.get("ports"))):
            if not port.get("hostPort"):
                continue
            key = f"{port.get('hostIP', '')}/{port.get('protocol', '')}/{port['hostPort']}"
            if key in host_ports:
                errors.append(duplicate(f"{path}.containers[{i}].ports[{j}].hostPort", key))
            host_ports.add(key)
    errors.extend(one_of(f"{path}.restartPolicy", spec.get("restartPolicy"), RESTART_POLICIES))
    errors.extend(one_of(f"{path}.dnsPolicy", spec.get("dnsPolicy"), DNS_POLICIES))
    if spec.get("dnsPolicy") == "None" and not (spec.get("dnsConfig") or {}).get("nameservers"):
        errors.append(
            required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
        )
    errors.extend(
        nonnegative(
            f"{path}.terminationGracePeriodSeconds", spec.get("terminationGracePeriodSeconds")
        )
    )
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not (isinstance(deadline, int) and 1 <= deadline <= 2147483647):
        errors.append(
            invalid(
                f"{path}.activeDeadlineSeconds",
                deadline,
                "must be between 1 and 2147483647, inclusive",
            )
        )
    for field in ("nodeName", "serviceAccountName"):
        value = spec.get(field)
        if value:
            errors.extend(dns_subdomain(f"{path}.{field}", value))
    if spec.get("hostname"):
        errors.extend(dns_label(f"{path}.hostname", spec["hostname"]))
    if spec.get("subdomain"):
        errors.extend(dns_label(f"{path}.subdomain", spec["subdomain"]))
    errors.extend(validate_labels(mapping(spec.get("nodeSelector")), f"{path}.nodeSelector"))
    for i, tol in enumerate(items(spec.get("tolerations"))):
        tp = f"{path}.tolerations[{i}]"
        operator = tol.get("operator") or "Equal"
        if operator not in ("Equal", "Exists"):
            errors.append(not_supported(f"{tp}.operator", operator, ["Equal", "Exists"]))
        elif operator == "Exists" and tol.get("value"):
            errors.append(
                invalid(
                    f"{tp}.operator",
                    tol.get("value"),
                    "value must be empty when `operator` is 'Exists'",
                )
            )
        if not tol.get("key") and operator != "Exists":
            errors.append(
                invalid(
                    f"{tp}.operator",
                    operator,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        effect = tol.get("effect")
        if effect:
            errors.extend(
                one_of(f"{tp}.effect", effect, ["NoExecute", "NoSchedule", "PreferNoSchedule"])
            )
    return errors


def validate_pod(pod: Obj) -> list[FieldError]:
    spec = mapping(pod.get("spec"))
    errors = validate_pod_spec(spec)
    if items(spec.get("ephemeralContainers")):
        # Added later, through the ephemeralcontainers subresource only.
        errors.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return errors


# What an ephemeral container may set (upstream's allowedEphemeralContainerFields); the rest
# of Container (ports, probes, lifecycle, resources...) "cannot be set".
_EPHEMERAL_ALLOWED = frozenset(
    [
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "env",
        "envFrom",
        "volumeMounts",
        "volumeDevices",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "securityContext",
        "stdin",
        "stdinOnce",
        "tty",
        "targetContainerName",
    ]
)


def _validate_ephemeral_containers(spec: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    regular = {
        str(c.get("name"))
        for key in ("containers", "initContainers")
        for c in items(spec.get(key))
        if c.get("name")
    }
    seen = set(regular)
    for i, c in enumerate(items(spec.get("ephemeralContainers"))):
        p = f"spec.ephemeralContainers[{i}]"
        name = c.get("name") or ""
        if not name:
            errors.append(required(f"{p}.name"))
        else:
            errors.extend(dns_label(f"{p}.name", name))
            if name in seen:
                errors.append(duplicate(f"{p}.name", name))
            seen.add(name)
        if not c.get("image"):
            errors.append(required(f"{p}.image"))
        for key in sorted(c):
            # Zero values (resources: {} from defaulting) count as unset, as upstream's
            # allow-list check compares each field with its zero value.
            if key not in _EPHEMERAL_ALLOWED and c[key] not in (None, {}, [], "", False, 0):
                errors.append(forbidden(f"{p}.{key}", "cannot be set for an Ephemeral Container"))
        target = c.get("targetContainerName")
        if target and target not in regular:
            errors.append(not_found(f"{p}.targetContainerName", target))
        policy = c.get("imagePullPolicy")
        if policy is not None:
            errors.extend(one_of(f"{p}.imagePullPolicy", policy, PULL_POLICIES))
    return errors


def validate_ephemeral_containers_update(new: Obj, old: Obj) -> list[FieldError]:
    """``ValidatePodEphemeralContainersUpdate``: ephemeral containers are valid, and the ones
    already there are neither removed nor changed."""
    new_spec, old_spec = mapping(new.get("spec")), mapping(old.get("spec"))
    errors = _validate_ephemeral_containers(new_spec)
    new_by_name = {
        str(c.get("name")): (i, c) for i, c in enumerate(items(new_spec.get("ephemeralContainers")))
    }
    for c in items(old_spec.get("ephemeralContainers")):
        name = str(c.get("name"))
        found = new_by_name.get(name)
        if found is None:
            errors.append(
                forbidden(
                    "spec.ephemeralContainers",
                    f'existing ephemeral containers "{name}" may not be removed\n',
                )
            )
        elif found[1] != c:
            errors.append(
                forbidden(
                    f"spec.ephemeralContainers[{found[0]}]",
                    f'existing ephemeral containers "{name}" may not be changed\n',
                )
            )
    return errors


def validate_pod_template(template: Any, path: str) -> list[FieldError]:
    """``ValidatePodTemplateSpec``: template labels and annotations, then the pod spec."""
    if template is None:
        return [required(path)]
    t = mapping(template)
    meta = mapping(t.get("metadata"))
    errors = validate_labels(mapping(meta.get("labels")), f"{path}.metadata.labels")
    errors.extend(validate_pod_spec(mapping(t.get("spec")), f"{path}.spec"))
    return errors


def _go_name(key: str) -> str:
    return key[:1].upper() + key[1:]


def _pod_spec_diff(old: Obj, new: Obj) -> str:
    """A short diff in the spirit of the cmp.Diff upstream appends to the message."""
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key in old:
                lines.append(f"-\t{_go_name(key)}: {json.dumps(old[key], sort_keys=True)},")
            if key in new:
                lines.append(f"+\t{_go_name(key)}: {json.dumps(new[key], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines)


def _toleration_key(t: Obj) -> tuple[str, str, str, str]:
    return (
        str(t.get("key", "")),
        str(t.get("operator") or "Equal"),
        str(t.get("value", "")),
        str(t.get("effect", "")),
    )


def validate_pod_update(new: Obj, old: Obj) -> list[FieldError]:
    """``ValidatePodUpdate``: only images, activeDeadlineSeconds, added tolerations and a
    negative grace period may change."""
    new_spec, old_spec = mapping(new.get("spec")), mapping(old.get("spec"))
    errors = validate_pod_spec(new_spec)
    new_deadline, old_deadline = (
        new_spec.get("activeDeadlineSeconds"),
        old_spec.get("activeDeadlineSeconds"),
    )
    if old_deadline is not None:
        if new_deadline is None:
            errors.append(
                invalid(
                    "spec.activeDeadlineSeconds",
                    None,
                    "must not update from a positive integer to nil value",
                )
            )
        elif isinstance(new_deadline, int) and new_deadline > old_deadline:
            errors.append(
                invalid(
                    "spec.activeDeadlineSeconds",
                    new_deadline,
                    "must be less than or equal to previous value",
                )
            )
    old_tolerations = {_toleration_key(t) for t in items(old_spec.get("tolerations"))}
    new_tolerations = {_toleration_key(t) for t in items(new_spec.get("tolerations"))}
    if not old_tolerations <= new_tolerations:
        errors.append(
            forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )
        )
    munged = json.loads(json.dumps(new_spec))
    for key in ("containers", "initContainers"):
        old_cs, new_cs = items(old_spec.get(key)), munged.get(key)
        if isinstance(new_cs, list) and len(new_cs) == len(old_cs):
            for c, o in zip(new_cs, old_cs, strict=True):
                if isinstance(c, dict):
                    c["image"] = o.get("image")
    for key in ("activeDeadlineSeconds", "tolerations"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = old_spec[key]
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if (
        isinstance(old_grace, int)
        and old_grace < 0
        and munged.get("terminationGracePeriodSeconds") == 1
    ):
        munged["terminationGracePeriodSeconds"] = old_grace
    if munged != old_spec:
        errors.append(
            forbidden(
                "spec",
                "pod updates may not change fields other than "
                + ",".join(UPDATABLE_POD_SPEC_FIELDS)
                + "\n"
                + _pod_spec_diff(old_spec, munged),
            )
        )
    return errors


def validate_pod_status(pod: Obj) -> list[FieldError]:
    status = mapping(pod.get("status"))
    errors: list[FieldError] = []
    phase = status.get("phase")
    if phase:
        errors.extend(
            one_of("status.phase", phase, ["Failed", "Pending", "Running", "Succeeded", "Unknown"])
        )
    for field in ("podIP", "hostIP"):
        if status.get(field):
            errors.extend(each(f"status.{field}", status[field], is_valid_ip))
    for i, ip in enumerate(items(status.get("podIPs"))):
        errors.extend(each(f"status.podIPs[{i}].ip", str(ip.get("ip", "")), is_valid_ip))
    return errors


# -- Service ------------------------------------------------------------------------------


def _go_service_port(port: int, proto: str) -> GoValue:
    # The duplicate key is printed as upstream's %#v of core.ServicePort{Protocol, Port}.
    text = (
        f'core.ServicePort{{Name:"", Protocol:"{proto}", AppProtocol:(*string)(nil), '
        f'Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}'
    )
    return GoValue({"port": port, "protocol": proto}, text)


def _cluster_ips(spec: Obj) -> list[str]:
    ips = [str(ip) for ip in spec.get("clusterIPs") or []]
    if not ips and spec.get("clusterIP"):
        ips = [str(spec["clusterIP"])]
    return ips


# Service ports (name, port, protocol, targetPort, with their types) found valid on their own;
# bounded, cleared when full.
_VALID_PORTS: set[tuple[Any, ...]] = set()


def validate_service(svc: Obj) -> list[FieldError]:
    spec = mapping(svc.get("spec"))
    errors: list[FieldError] = []
    svc_type = spec.get("type")
    cluster_ip = spec.get("clusterIP") or ""
    cluster_ips = [str(ip) for ip in spec.get("clusterIPs") or []]
    headless = cluster_ip == HEADLESS or (cluster_ips[:1] == [HEADLESS])
    ports = items(spec.get("ports"))

    if not svc_type:
        errors.append(required("spec.type"))
    elif svc_type not in SERVICE_TYPES:
        errors.append(not_supported("spec.type", svc_type, SERVICE_TYPES))

    if svc_type == "ExternalName":
        # Only the plural is checked: the strategy derives it from the singular.
        if cluster_ips or cluster_ip:
            errors.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        for field in ("ipFamilies", "ipFamilyPolicy"):
            if spec.get(field):
                errors.append(
                    forbidden(f"spec.{field}", "may not be set for ExternalName services")
                )
        external_name = str(spec.get("externalName") or "").removesuffix(".")
        if not external_name:
            errors.append(required("spec.externalName"))
        else:
            errors.extend(dns_subdomain("spec.externalName", external_name))
    else:
        errors.extend(_validate_cluster_ips(spec, cluster_ip, cluster_ips, svc_type))

    if not ports and not headless and svc_type != "ExternalName":
        errors.append(required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    require_name = len(ports) > 1
    for i, port in enumerate(ports):
        p = f"spec.ports[{i}]"
        name = port.get("name") or ""
        number, proto, target = port.get("port"), port.get("protocol"), port.get("targetPort")
        # The checks of a port on its own (name, number, protocol, targetPort) depend on these
        # four values only, and Services repeat the same few ports: a port found valid before
        # skips them. The types are part of the key (True == 1, but it is not a port number).
        memo = (type(name), name, type(number), number, type(proto), proto, type(target), target)
        try:
            known = memo in _VALID_PORTS
        except TypeError:  # an unhashable value: certainly not valid, the checks say why
            known = False
        own: list[FieldError] = []
        if require_name and not name:
            errors.append(required(f"{p}.name"))
        elif name:
            if not known:
                own.extend(dns_label(f"{p}.name", name))
                errors.extend(own)
            if name in names:
                errors.append(duplicate(f"{p}.name", name))
            names.add(name)
        if not known:
            found = len(own)
            own.extend(port_num(f"{p}.port", number))
            own.extend(protocol(f"{p}.protocol", proto))
            own.extend(port_num_or_name(f"{p}.targetPort", target))
            errors.extend(own[found:])
            if not own:
                if len(_VALID_PORTS) >= 4096:
                    _VALID_PORTS.clear()
                _VALID_PORTS.add(memo)
        key = (number, proto)
        if isinstance(key[0], int) and isinstance(key[1], str):
            if (key[0], key[1]) in seen:
                errors.append(duplicate(p, _go_service_port(key[0], key[1])))
            seen.add((key[0], key[1]))
        if svc_type == "ClusterIP" and port.get("nodePort"):
            errors.append(forbidden(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'"))
        if svc_type == "ExternalName" and port.get("nodePort"):
            errors.append(
                forbidden(f"{p}.nodePort", "may not be used when `type` is 'ExternalName'")
            )

    errors.extend(validate_labels(mapping(spec.get("selector")), "spec.selector"))
    errors.extend(_validate_session_affinity(spec))
    errors.extend(_validate_traffic_policies(spec, svc_type))
    for i, ip in enumerate(spec.get("externalIPs") or []):
        errors.extend(each(f"spec.externalIPs[{i}]", str(ip), is_valid_ip))
    if svc_type == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is None:
            errors.append(required("spec.allocateLoadBalancerNodePorts"))
    elif spec.get("allocateLoadBalancerNodePorts") is not None:
        errors.append(
            forbidden(
                "spec.allocateLoadBalancerNodePorts",
                "may only be used when `type` is 'LoadBalancer'",
            )
        )
    if spec.get("loadBalancerClass") is not None and svc_type != "LoadBalancer":
        errors.append(
            forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")
        )
    for cidr in spec.get("loadBalancerSourceRanges") or []:
        if is_valid_cidr(str(cidr).strip()):
            # Upstream's path is spelled with a capital L here.
            errors.append(
                invalid(
                    "spec.LoadBalancerSourceRanges",
                    cidr,
                    "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ",
                )
            )
            break
    return errors


def _validate_cluster_ips(
    spec: Obj, cluster_ip: str, cluster_ips: list[str], svc_type: Any
) -> list[FieldError]:
    errors: list[FieldError] = []
    if cluster_ip and cluster_ips and cluster_ips[0] != cluster_ip:
        errors.append(
            invalid(
                "spec.clusterIPs", go_strings(cluster_ips), "first value must match `clusterIP`"
            )
        )
    if not cluster_ip and cluster_ips:
        errors.append(
            invalid(
                "spec.clusterIPs",
                go_strings(cluster_ips),
                "must be empty when `clusterIP` is not specified",
            )
        )
    ips = cluster_ips or ([cluster_ip] if cluster_ip else [])
    if len(ips) > 2:
        errors.append(invalid("spec.clusterIPs", go_strings(ips), "may only hold up to 2 values"))
    for i, ip in enumerate(ips):
        p = f"spec.clusterIPs[{i}]"
        if ip == HEADLESS:
            if i > 0 or len(ips) > 1:
                errors.append(
                    invalid(p, go_strings(ips), "'None' must be the first and only value")
                )
            elif svc_type in ("NodePort", "LoadBalancer"):
                errors.append(invalid(p, ip, f"may not be set to 'None' for {svc_type} services"))
            continue
        errors.extend(invalid(p, ip, m) for m in is_valid_ip(ip))
    families = spec.get("ipFamilies") or []
    seen: set[str] = set()
    for i, family in enumerate(families):
        p = f"spec.ipFamilies[{i}]"
        if family not in ("IPv4", "IPv6"):
            errors.append(not_supported(p, family, ["IPv4", "IPv6"]))
        elif family in seen:
            errors.append(duplicate(p, family))
        seen.add(str(family))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None:
        errors.extend(
            one_of(
                "spec.ipFamilyPolicy",
                policy,
                ["PreferDualStack", "RequireDualStack", "SingleStack"],
            )
        )
        if policy == "SingleStack" and len(families) > 1:
            errors.append(
                invalid(
                    "spec.ipFamilyPolicy",
                    policy,
                    "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
                )
            )
    return errors


def _validate_session_affinity(spec: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    affinity = spec.get("sessionAffinity")
    errors.extend(one_of("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    config = spec.get("sessionAffinityConfig")
    if affinity == "ClientIP":
        timeout = mapping(mapping(config).get("clientIP")).get("timeoutSeconds")
        if not (isinstance(timeout, int) and 0 < timeout <= MAX_CLIENT_IP_AFFINITY_SECONDS):
            errors.append(
                invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    timeout,
                    f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}",
                )
            )
    elif affinity == "None" and config:
        errors.append(
            forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
        )
    return errors


def _validate_traffic_policies(spec: Obj, svc_type: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    etp = spec.get("externalTrafficPolicy")
    if svc_type != "ExternalName":
        if not externally_accessible(spec):
            if etp:
                errors.append(
                    invalid(
                        "spec.externalTrafficPolicy",
                        etp,
                        "may only be set for externally-accessible services",
                    )
                )
        else:
            errors.extend(one_of("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
        errors.extend(
            one_of(
                "spec.internalTrafficPolicy",
                spec.get("internalTrafficPolicy"),
                ["Cluster", "Local"],
            )
        )
    hc = spec.get("healthCheckNodePort")
    if hc and not (svc_type == "LoadBalancer" and etp == "Local"):
        errors.append(
            invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            )
        )
    return errors


def validate_service_update(new: Obj, old: Obj) -> list[FieldError]:
    """``ValidateServiceUpdate``: the primary ClusterIP and IP family may not change.

    An update that leaves ``clusterIP`` empty keeps the allocated one (the API server copies
    it, as upstream's ``patchAllocatedValues``), so only a different value is an error.
    """
    errors = validate_service(new)
    new_spec, old_spec = mapping(new.get("spec")), mapping(old.get("spec"))
    if "ExternalName" in (new_spec.get("type"), old_spec.get("type")):
        return errors
    old_ips = _cluster_ips(old_spec)
    requested = str(new_spec.get("clusterIP") or "") or (_cluster_ips(new_spec) or [""])[0]
    if old_ips and requested and requested != old_ips[0]:
        errors.append(
            invalid("spec.clusterIPs[0]", go_strings([requested]), "may not change once set")
        )
    old_families = old_spec.get("ipFamilies") or []
    new_families = new_spec.get("ipFamilies") or []
    if old_families and new_families and old_families[0] != new_families[0]:
        errors.append(
            invalid("spec.ipFamilies[0]", go_strings(new_families), "may not change once set")
        )
    return errors


def validate_service_status(svc: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    lb = mapping(mapping(svc.get("status")).get("loadBalancer"))
    for i, ingress in enumerate(items(lb.get("ingress"))):
        p = f"status.loadBalancer.ingress[{i}]"
        if ingress.get("ip"):
            errors.extend(each(f"{p}.ip", str(ingress["ip"]), is_valid_ip))
        if ingress.get("hostname"):
            errors.extend(dns_subdomain(f"{p}.hostname", str(ingress["hostname"])))
        mode = ingress.get("ipMode")
        if mode is not None:
            errors.extend(one_of(f"{p}.ipMode", mode, ["Proxy", "VIP"]))
    return errors


# -- Namespace, Node ------------------------------------------------------------------------


def validate_namespace(ns: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    for name in mapping(ns.get("spec")).get("finalizers") or []:
        errors.extend(validate_finalizer_name(str(name), "spec.finalizers"))
    return errors


def validate_node(node: Obj) -> list[FieldError]:
    spec = mapping(node.get("spec"))
    errors: list[FieldError] = []
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    for i, cidr in enumerate(cidrs):
        errors.extend(invalid(f"spec.podCIDRs[{i}]", cidr, m) for m in is_valid_cidr(str(cidr)))
    for i, taint in enumerate(items(spec.get("taints"))):
        p = f"spec.taints[{i}]"
        key = str(taint.get("key") or "")
        if not key:
            errors.append(required(f"{p}.key"))
        errors.extend(
            one_of(
                f"{p}.effect", taint.get("effect"), ["NoExecute", "NoSchedule", "PreferNoSchedule"]
            )
        )
    return errors


def validate_node_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = validate_node(new)
    old_cidrs = mapping(old.get("spec")).get("podCIDRs") or []
    new_cidrs = mapping(new.get("spec")).get("podCIDRs") or []
    if old_cidrs and new_cidrs != old_cidrs:
        errors.append(
            forbidden(
                "spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'
            )
        )
    return errors


# -- Endpoints, Secret, ConfigMap, Event -------------------------------------------------------


def validate_endpoints(ep: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, subset in enumerate(items(ep.get("subsets"))):
        sp = f"subsets[{i}]"
        for key in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(items(subset.get(key))):
                ip = str(addr.get("ip") or "")
                errors.extend(invalid(f"{sp}.{key}[{j}].ip", ip, m) for m in is_valid_ip(ip))
                if addr.get("nodeName"):
                    errors.extend(dns_subdomain(f"{sp}.{key}[{j}].nodeName", addr["nodeName"]))
        ports = items(subset.get("ports"))
        for j, port in enumerate(ports):
            pp = f"{sp}.ports[{j}]"
            name = port.get("name") or ""
            if len(ports) > 1 and not name:
                errors.append(required(f"{pp}.name"))
            elif name:
                errors.extend(dns_label(f"{pp}.name", name))
            errors.extend(port_num(f"{pp}.port", port.get("port")))
            errors.extend(protocol(f"{pp}.protocol", port.get("protocol")))
    return errors


def _validate_data_keys(data: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for key in mapping(data):
        errors.extend(invalid(f"{path}[{key}]", key, m) for m in is_config_map_key(str(key)))
    return errors


def validate_secret(secret: Obj) -> list[FieldError]:
    data = mapping(secret.get("data"))
    errors = _validate_data_keys(data, "data")
    total = 0
    for key, value in data.items():
        try:
            total += len(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError):
            errors.append(
                invalid(f"data[{key}]", "<secret contents redacted>", "must be base64-encoded")
            )
    if total > MAX_SECRET_SIZE:
        errors.append(too_long("data", MAX_SECRET_SIZE))
    secret_type = secret.get("type")
    if secret_type == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                errors.append(required(f"data[{key}]"))
    elif secret_type == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in data:
            errors.append(required("data[.dockerconfigjson]"))
    elif secret_type == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errors.append(required("data[username]", "either username or password is required"))
    elif secret_type == "kubernetes.io/service-account-token":
        annotations = mapping(mapping(secret.get("metadata")).get("annotations"))
        if not annotations.get("kubernetes.io/service-account.name"):
            errors.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    return errors


def _validate_immutable_data(new: Obj, old: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errors.append(forbidden("immutable", "field is immutable when `immutable` is set"))
        for key in ("data", "binaryData"):
            if (new.get(key) or {}) != (old.get(key) or {}):
                errors.append(forbidden(key, "field is immutable when `immutable` is set"))
    return errors


def validate_secret_update(new: Obj, old: Obj) -> list[FieldError]:
    errors = validate_secret(new)
    if (new.get("type") or "Opaque") != (old.get("type") or "Opaque"):
        errors.append(invalid("type", new.get("type"), "field is immutable"))
    return errors + _validate_immutable_data(new, old)


def validate_config_map(cm: Obj) -> list[FieldError]:
    data, binary = mapping(cm.get("data")), mapping(cm.get("binaryData"))
    errors = _validate_data_keys(data, "data") + _validate_data_keys(binary, "binaryData")
    for key in binary:
        if key in data:
            errors.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    total = sum(len(str(v)) for v in data.values()) + sum(
        len(str(v)) * 3 // 4 for v in binary.values()
    )
    if total > MAX_SECRET_SIZE:
        errors.append(too_long("", MAX_SECRET_SIZE))
    return errors


def validate_config_map_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_config_map(new) + _validate_immutable_data(new, old)


def validate_event(event: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    involved = mapping(event.get("involvedObject"))
    namespace = mapping(event.get("metadata")).get("namespace") or ""
    if involved.get("namespace") and namespace and involved["namespace"] != namespace:
        errors.append(
            invalid(
                "involvedObject.namespace", involved["namespace"], "does not match event.namespace"
            )
        )
    event_type = event.get("type")
    if event_type:
        errors.extend(one_of("type", event_type, ["Normal", "Warning"]))
    return errors


def validate_lease(lease: Obj) -> list[FieldError]:
    spec = mapping(lease.get("spec"))
    errors: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and not (isinstance(duration, int) and duration > 0):
        errors.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    errors.extend(nonnegative("spec.leaseTransitions", transitions))
    return errors
