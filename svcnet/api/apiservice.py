"""What APIServices should exist and how available each is: kube-aggregator's autoregister
and available-condition controllers, as pure functions.

kube-apiserver registers a ``Local`` APIService for every group version it serves
(``v1.``, ``v1.apps`` …): the built-in ones once at start (label ``onstart``), those of
CustomResourceDefinitions as they come and go (label ``true``, priorities 1000/100 as
upstream's crdregistration controller gives them). An APIService a user made is never
touched by that sync, even when it has a local one's name.

svcnet proxies to no aggregated API server: an APIService pointing at a Service is stored
and reported unavailable — with upstream's reason for the first check that fails
(ServiceNotFound, ServicePortError, EndpointsNotFound, MissingEndpoints), and
FailedDiscoveryCheck where upstream would go on to proxy discovery — and every such message
says that svcnet does not proxy aggregated APIs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.api.objects import Obj

GROUP = "apiregistration.k8s.io"
API_VERSION = f"{GROUP}/v1"
AUTOMANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"
ON_START = "onstart"
SYNCED = "true"
NOT_PROXIED = "svcnet does not proxy aggregated APIs"

# kube-apiserver's apiVersionPriorities (pkg/controlplane/apiserver/aggregator.go and
# DefaultGenericAPIServicePriorities): (groupPriorityMinimum, versionPriority).
PRIORITIES: Mapping[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1),
    ("apiregistration.k8s.io", "v1"): (18000, 15),
    ("apps", "v1"): (17800, 15),
    ("events.k8s.io", "v1"): (17750, 15),
    ("authentication.k8s.io", "v1"): (17700, 15),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("autoscaling", "v1"): (17500, 15),
    ("autoscaling", "v2"): (17500, 30),
    ("batch", "v1"): (17400, 15),
    ("certificates.k8s.io", "v1"): (17300, 15),
    ("networking.k8s.io", "v1"): (17200, 15),
    ("policy", "v1"): (17100, 15),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("storage.k8s.io", "v1"): (16800, 15),
    ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("admissionregistration.k8s.io", "v1"): (16700, 15),
    ("scheduling.k8s.io", "v1"): (16600, 15),
    ("coordination.k8s.io", "v1"): (16500, 15),
    ("node.k8s.io", "v1"): (16300, 15),
    ("discovery.k8s.io", "v1"): (16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21),
}
# What crdregistration gives a CRD's group version ("CRDs should have relatively low
# priority"); svcnet's built-in Gateway API kinds are CRDs upstream and get the same.
CRD_PRIORITY = (1000, 100)


def api_service_name(group: str, version: str) -> str:
    return f"{version}.{group}"


def local_api_service(group: str, version: str, managed: str) -> Obj:
    group_priority, version_priority = PRIORITIES.get((group, version), CRD_PRIORITY)
    return {
        "apiVersion": API_VERSION,
        "kind": "APIService",
        "metadata": {
            "name": api_service_name(group, version),
            "labels": {AUTOMANAGED_LABEL: managed},
        },
        "spec": {
            "group": group,
            "version": version,
            "groupPriorityMinimum": group_priority,
            "versionPriority": version_priority,
        },
    }


def wanted_local(
    builtin: Iterable[tuple[str, str]], custom: Iterable[tuple[str, str]]
) -> dict[str, Obj]:
    """The local APIServices of the group versions served: built-in, then custom ones."""
    wanted: dict[str, Obj] = {}
    for group_versions, managed in ((builtin, ON_START), (custom, SYNCED)):
        for group, version in group_versions:
            wanted.setdefault(
                api_service_name(group, version), local_api_service(group, version, managed)
            )
    return wanted


@dataclass(frozen=True)
class RegistrationPlan:
    create: tuple[Obj, ...] = ()
    # The name and the spec it should have again (an automanaged one that was edited).
    update: tuple[tuple[str, Obj], ...] = ()
    delete: tuple[str, ...] = ()


def _managed(obj: Obj) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(AUTOMANAGED_LABEL) in (ON_START, SYNCED)


def plan_registration(wanted: Mapping[str, Obj], existing: Sequence[Obj]) -> RegistrationPlan:
    """Create the missing, put back an automanaged one's spec, delete the automanaged ones no
    longer served; leave every APIService a user made alone."""
    by_name = {str((o.get("metadata") or {}).get("name", "")): o for o in existing}
    create = tuple(w for name, w in wanted.items() if name not in by_name)
    update = tuple(
        (name, wanted[name]["spec"])
        for name, o in by_name.items()
        if name in wanted and _managed(o) and o.get("spec") != wanted[name]["spec"]
    )
    delete = tuple(name for name, o in by_name.items() if name not in wanted and _managed(o))
    return RegistrationPlan(create, update, delete)


# -- availability ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    status: str
    reason: str
    message: str


LOCAL = Availability("True", "Local", "Local APIServices are always available")


def _not_proxied(message: str) -> str:
    return f"{message} ({NOT_PROXIED})"


def availability(apiservice: Obj, service: Obj | None, endpoints: Obj | None) -> Availability:
    """The Available condition of ``apiservice`` given its Service and that Service's
    Endpoints (None when absent), as upstream's available-condition controller checks them."""
    ref = (apiservice.get("spec") or {}).get("service")
    if not isinstance(ref, dict):
        return LOCAL
    name, namespace = ref.get("name", ""), ref.get("namespace", "")
    port = ref.get("port", 443)
    where = f'service/{name} in "{namespace}"'
    if service is None:
        return Availability("False", "ServiceNotFound", _not_proxied(f"{where} is not present"))
    spec = service.get("spec") or {}
    if spec.get("type", "ClusterIP") == "ClusterIP":
        # Only a ClusterIP Service is checked for its port and endpoints, as upstream.
        port_name = next(
            (str(p.get("name", "")) for p in spec.get("ports") or () if p.get("port") == port),
            None,
        )
        if port_name is None:
            return Availability(
                "False",
                "ServicePortError",
                _not_proxied(f"{where} is not listening on port {port}"),
            )
        if endpoints is None:
            return Availability(
                "False", "EndpointsNotFound", _not_proxied(f"cannot find endpoints for {where}")
            )
        if not _has_active_endpoint(endpoints, port_name):
            return Availability(
                "False",
                "MissingEndpoints",
                _not_proxied(
                    f'endpoints for {where} have no addresses with port name "{port_name}"'
                ),
            )
    target = apiservice.get("spec") or {}
    group, version = target.get("group", ""), target.get("version", "")
    return Availability(
        "False",
        "FailedDiscoveryCheck",
        f"{NOT_PROXIED}: requests for {group}/{version} are not forwarded to {where}",
    )


def _has_active_endpoint(endpoints: Obj, port_name: str) -> bool:
    for subset in endpoints.get("subsets") or ():
        if not subset.get("addresses"):
            continue
        if any(p.get("name", "") == port_name for p in subset.get("ports") or ()):
            return True
    return False


def status_with(current: Obj | None, want: Availability, now: str) -> dict[str, Any] | None:
    """The status to write for ``want`` (None: nothing changes). lastTransitionTime moves
    only when the condition's status does, as upstream's SetAPIServiceCondition."""
    status = dict(current or {})
    conditions = [dict(c) for c in status.get("conditions") or ()]
    old = next((c for c in conditions if c.get("type") == "Available"), None)
    new = {
        "type": "Available",
        "status": want.status,
        "lastTransitionTime": now,
        "reason": want.reason,
        "message": want.message,
    }
    if old is not None:
        if old.get("status") == want.status:
            new["lastTransitionTime"] = old.get("lastTransitionTime", now)
        if old == new:
            return None
        conditions[conditions.index(old)] = new
    else:
        conditions.append(new)
    status["conditions"] = conditions
    return status
