"""Per-kind strategies: what the API server does to an object around a write.

Mirrors upstream's ``rest.RESTCreateStrategy``/``RESTUpdateStrategy`` in ``pkg/registry/*``:
defaulting (``SetDefaults_*``), ``PrepareForCreate``/``PrepareForUpdate`` (which fields a
write may set: the main resource never sets status, the status subresource never sets spec),
generation tracking, and validation including ObjectMeta and immutable fields.

The API server calls, in this order:

* create: ``default`` → ``prepare_for_create`` → ``validate``
* update: ``default`` → ``prepare_for_update`` → ``validate_update``
* status: ``prepare_for_status_update`` → ``validate_status_update``

:meth:`Strategy.prepare_update` runs the update sequence of the main resource or of a
subresource; kinds with subresources of their own (``pods/binding``,
``pods/ephemeralcontainers``, ``namespaces/finalize``) extend it.

Generated names, uids, timestamps and ClusterIP/NodePort allocation are the API server's
(see :mod:`svcnet.api.meta`); a strategy only transforms and checks the object it is given.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

from svcnet.api import customresource, objects, structural
from svcnet.api.defaults import DEFAULTERS
from svcnet.api.defaults.core import default_pod_spec, externally_accessible
from svcnet.api.errors import FieldError, Invalid, MethodNotAllowed
from svcnet.api.jsonvalue import copy_json
from svcnet.api.meta import (
    name_is_dns_subdomain,
    name_validator_for,
    validate_object_meta,
    validate_object_meta_update,
)
from svcnet.api.objects import Obj
from svcnet.api.registry import REGISTRY, ResourceType
from svcnet.api.validation import apiregistration as apiregistration_v
from svcnet.api.validation import apps as apps_v
from svcnet.api.validation import autoscaling as autoscaling_v
from svcnet.api.validation import batch as batch_v
from svcnet.api.validation import core as core_v
from svcnet.api.validation import discovery as discovery_v
from svcnet.api.validation import gateway as gateway_v
from svcnet.api.validation import networking as networking_v
from svcnet.api.validation import policy as policy_v
from svcnet.api.validation import rbac as rbac_v
from svcnet.api.validation import storage as storage_v
from svcnet.api.wellknown import NAMESPACE_NAME_LABEL, TAINT_NOT_READY, TAINT_UNREACHABLE

Validator = Callable[[Obj], list[FieldError]]
UpdateValidator = Callable[[Obj, Obj], list[FieldError]]

# Fields of an object that are neither its spec nor bookkeeping: where generation-tracking
# kinds without a `spec` (EndpointSlice, CRDs) keep what they compare.
_NOT_SPEC = frozenset({"apiVersion", "kind", "metadata", "status"})

# DefaultTolerationSeconds admission. Upstream's default is 300 s
# (--default-not-ready-toleration-seconds / --default-unreachable-toleration-seconds); svcnet
# runs with 20 s, so that a stopped node's pods are replaced elsewhere while a user watches.
DEFAULT_TOLERATION_SECONDS = 20
_DEFAULT_TOLERATIONS = (
    {
        "key": TAINT_NOT_READY,
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
    },
    {
        "key": TAINT_UNREACHABLE,
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
    },
)

# metav1.ResetObjectMetaForStatus: what a status write may not change in metadata.
_STATUS_RESET_META = (
    "deletionTimestamp",
    "generation",
    "selfLink",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
)


def _spec_of(obj: Obj) -> Any:
    if "spec" in obj:
        return obj["spec"]
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


class Strategy:
    """The default behaviour; subclasses override the hooks of kinds that differ."""

    # Whether an annotation change is a new generation too (Deployments).
    generation_from_annotations: ClassVar[bool] = False
    # Whether a PUT of a missing object creates it (upstream's AllowCreateOnUpdate).
    allow_create_on_update: ClassVar[bool] = False

    def __init__(self, resource: ResourceType) -> None:
        self.resource = resource
        self.has_status = "status" in resource.subresources
        self.tracks_generation = resource.kind in _TRACKS_GENERATION
        self._defaulter = DEFAULTERS.get(resource.kind)
        self._validator = _VALIDATORS.get(resource.kind)
        self._update_validator = _UPDATE_VALIDATORS.get(resource.kind)
        self._status_validator = _STATUS_VALIDATORS.get(resource.kind)
        self._name_fn = name_validator_for(resource.kind)

    # -- defaulting and preparation ----------------------------------------------------

    def default(self, obj: Obj) -> None:
        if self._defaulter is not None:
            self._defaulter(obj)

    def initial_status(self, obj: Obj) -> Obj | None:
        """The status a new object starts with (None: no status at all)."""
        del obj
        return {}

    def prepare_for_create(self, obj: Obj) -> None:
        meta = objects.meta_for_write(obj)
        if self.has_status:
            status = self.initial_status(obj)
            if status is None:
                obj.pop("status", None)
            else:
                obj["status"] = status
        if self.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        if self.has_status:
            if "status" in old:
                new["status"] = copy_json(old["status"])
            else:
                new.pop("status", None)
        new_meta, old_meta = objects.meta_for_write(new), old.get("metadata") or {}
        if self.tracks_generation:
            generation = old_meta.get("generation") or 1
            changed = _spec_of(new) != _spec_of(old)
            if self.generation_from_annotations:
                changed = changed or (new_meta.get("annotations") or {}) != (
                    old_meta.get("annotations") or {}
                )
            new_meta["generation"] = generation + 1 if changed else generation
        elif "generation" in old_meta:
            new_meta["generation"] = old_meta["generation"]
        else:
            new_meta.pop("generation", None)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        status = new.get("status")
        keep = copy_json(old)
        new_meta = objects.meta_for_write(new)
        old_meta = keep.get("metadata") or {}
        # Everything but status comes from the stored object; metadata keeps what a status
        # writer may touch (managedFields, resourceVersion for the precondition).
        for key in list(new):
            if key not in ("metadata", "status", "apiVersion", "kind"):
                del new[key]
        for key, value in keep.items():
            if key not in ("metadata", "status"):
                new[key] = value
        for key in _STATUS_RESET_META:
            if key in old_meta:
                new_meta[key] = old_meta[key]
            else:
                new_meta.pop(key, None)
        if status is None:
            new.pop("status", None)
        else:
            new["status"] = status

    def prepare_update(self, new: Obj, old: Obj, subresource: str) -> list[FieldError]:
        """Prepare an update of the main resource (``subresource`` "") or of a subresource,
        and validate it: the errors of the update."""
        if subresource == "":
            self.default(new)
            self.prepare_for_update(new, old)
            return self.validate_update(new, old)
        if subresource == "status":
            self.prepare_for_status_update(new, old)
            return self.validate_status_update(new, old)
        # Upstream's subresources without an update (eviction, or one a kind has not).
        raise MethodNotAllowed("the server does not allow this method on the requested resource")

    # -- validation -------------------------------------------------------------------

    def invalid(self, obj: Obj, errors: list[FieldError]) -> Invalid:
        """The 422 ``Invalid`` error for ``errors``, named as upstream names the kind
        (``Deployment.apps "web" is invalid: ...``)."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        return Invalid(self.resource.kind, name, errors, group=self.resource.group)

    def validate_meta(self, obj: Obj) -> list[FieldError]:
        return validate_object_meta(
            obj.get("metadata") or {}, self.resource.namespaced, self._name_fn
        )

    def validate(self, obj: Obj) -> list[FieldError]:
        errors = self.validate_meta(obj)
        if self._validator is not None:
            errors.extend(self._validator(obj))
        return errors

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errors = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
        if self._update_validator is not None:
            errors.extend(self._update_validator(new, old))
        elif self._validator is not None:
            errors.extend(self._validator(new))
        return errors

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errors = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
        if self._status_validator is not None:
            errors.extend(self._status_validator(new))
        return errors


# -- kinds that differ ---------------------------------------------------------------------


class NamespaceStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return {"phase": "Active"}

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        # The "kubernetes" finalizer is required on create (not by defaulting: it is
        # removed over the namespace's life by the finalize subresource).
        spec = obj.setdefault("spec", {})
        finalizers = spec.setdefault("finalizers", [])
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        old_finalizers = (old.get("spec") or {}).get("finalizers")
        spec = new.setdefault("spec", {})
        if old_finalizers is None:
            spec.pop("finalizers", None)
        else:
            spec["finalizers"] = list(old_finalizers)
        self._label(new)

    def prepare_update(self, new: Obj, old: Obj, subresource: str) -> list[FieldError]:
        if subresource == "finalize":
            self.prepare_for_finalize(new, old)
            return self.validate_update(new, old)
        return super().prepare_update(new, old, subresource)

    def prepare_for_finalize(self, new: Obj, old: Obj) -> None:
        """The ``finalize`` subresource: only ``spec.finalizers`` changes."""
        finalizers = (new.get("spec") or {}).get("finalizers")
        new.clear()
        new.update(copy.deepcopy(old))
        new.setdefault("spec", {})["finalizers"] = list(finalizers or [])

    @staticmethod
    def _label(ns: Obj) -> None:
        name = objects.meta_for_write(ns).get("name")
        if name:
            objects.meta_for_write(ns).setdefault("labels", {})[NAMESPACE_NAME_LABEL] = name


class NodeStrategy(Strategy):
    def prepare_for_create(self, obj: Obj) -> None:
        # Nodes may set all of their fields, status included, when they register.
        objects.meta_for_write(obj).pop("generation", None)


def pod_qos_class(pod: Obj) -> str:
    """``qos.GetPodQOS``: Guaranteed, Burstable or BestEffort from cpu/memory resources."""
    containers = list((pod.get("spec") or {}).get("containers") or []) + list(
        (pod.get("spec") or {}).get("initContainers") or []
    )
    any_set = False
    guaranteed = True
    for c in containers:
        resources = (c or {}).get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        if any(k in requests or k in limits for k in ("cpu", "memory")):
            any_set = True
        for k in ("cpu", "memory"):
            if k not in limits or str(requests.get(k, limits[k])) != str(limits[k]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class PodStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return {"phase": "Pending", "qosClass": pod_qos_class(obj)}

    def prepare_update(self, new: Obj, old: Obj, subresource: str) -> list[FieldError]:
        if subresource == "binding":
            # pods/binding sets spec.nodeName and the PodScheduled condition only; the
            # binding itself was checked when it was read.
            return []
        if subresource == "ephemeralcontainers":
            # Only spec.ephemeralContainers changes (upstream's ephemeralContainersStrategy).
            updated = ephemeral_containers_update(new, old)
            new.clear()
            new.update(updated)
            return core_v.validate_ephemeral_containers_update(new, old)
        return super().prepare_update(new, old, subresource)

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        spec = obj.setdefault("spec", {})
        # What a real cluster's default admission plugins add to every new Pod.
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        if not spec.get("priorityClassName"):
            spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        tolerations = spec.setdefault("tolerations", [])
        for default in _DEFAULT_TOLERATIONS:
            if not any(
                isinstance(t, dict)
                and (
                    t.get("key") == default["key"]
                    or (not t.get("key") and t.get("operator") == "Exists")
                )
                and t.get("effect") in (None, "", "NoExecute")
                for t in tolerations
            ):
                tolerations.append(dict(default))


def ephemeral_containers_update(new: Obj, old: Obj) -> Obj:
    """pods/ephemeralcontainers: the stored pod with only ``spec.ephemeralContainers`` (and
    its container defaults) taken from ``new``; metadata as a status write keeps it."""
    out = copy_json(old)
    spec = out.setdefault("spec", {})
    ephemeral = (new.get("spec") or {}).get("ephemeralContainers")
    if ephemeral:
        spec["ephemeralContainers"] = copy_json(ephemeral)
        default_pod_spec(spec)
    else:
        spec.pop("ephemeralContainers", None)
    new_meta, out_meta = objects.meta(new), objects.meta_for_write(out)
    for key in ("resourceVersion", "managedFields"):
        if key in new_meta:
            out_meta[key] = new_meta[key]
    return out


class ServiceStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return {"loadBalancer": {}}

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        spec = obj.get("spec")
        # normalizeClusterIPs: a client that sets only the singular field gets the plural.
        if isinstance(spec, dict) and spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        new_spec, old_spec = new.get("spec"), old.get("spec") or {}
        if not isinstance(new_spec, dict):
            return
        drop_type_dependent_fields(new_spec, old_spec)
        patch_allocated_values(new_spec, old_spec)
        normalize_cluster_ips(new_spec, old_spec)


def _node_ports(spec: Obj) -> list[Any]:
    return [(p or {}).get("nodePort") for p in spec.get("ports") or []]


def drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    """``dropTypeDependentFields``: when the type changes, wipe what no longer applies —
    but only values the user did not change in this very update."""
    old_type, new_type = old.get("type") or "ClusterIP", new.get("type") or "ClusterIP"
    if old_type != "ExternalName" and new_type == "ExternalName":
        if new.get("clusterIP") == old.get("clusterIP") and new.get("clusterIPs") == old.get(
            "clusterIPs"
        ):
            new.pop("clusterIP", None)
            new.pop("clusterIPs", None)
        for field in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if new.get(field) == old.get(field):
                new.pop(field, None)
    node_port_types = ("NodePort", "LoadBalancer")
    if (
        old_type in node_port_types
        and new_type not in node_port_types
        and _node_ports(new) == _node_ports(old)
    ):
        for port in new.get("ports") or []:
            if isinstance(port, dict):
                port.pop("nodePort", None)
    if old_type == "LoadBalancer" and new_type != "LoadBalancer":
        for field in ("allocateLoadBalancerNodePorts", "loadBalancerClass", "healthCheckNodePort"):
            if field in new and new.get(field) == old.get(field):
                new.pop(field, None)
    if (
        externally_accessible(old)
        and not externally_accessible(new)
        and new.get("externalTrafficPolicy") == old.get("externalTrafficPolicy")
    ):
        new.pop("externalTrafficPolicy", None)


def _needs_cluster_ip(spec: Obj) -> bool:
    return (spec.get("type") or "ClusterIP") != "ExternalName"


def _needs_node_ports(spec: Obj) -> bool:
    svc_type = spec.get("type") or "ClusterIP"
    if svc_type == "NodePort":
        return True
    return svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def _needs_health_check_port(spec: Obj) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def patch_allocated_values(new: Obj, old: Obj) -> None:
    """``patchAllocatedValues``: an update that omits allocated values keeps them, so that
    replacing a Service with its original manifest does not reallocate or fail."""
    if _needs_cluster_ip(old) and _needs_cluster_ip(new):
        if not new.get("clusterIP") and old.get("clusterIP"):
            new["clusterIP"] = old["clusterIP"]
        if not new.get("clusterIPs") and old.get("clusterIPs"):
            new["clusterIPs"] = list(old["clusterIPs"])
    if _needs_node_ports(old) and _needs_node_ports(new):
        used_new = {p.get("nodePort") for p in new.get("ports") or [] if isinstance(p, dict)}
        used = {p.get("nodePort") for p in old.get("ports") or [] if isinstance(p, dict)} & used_new
        by_name = {
            p.get("name", ""): p.get("nodePort")
            for p in old.get("ports") or []
            if isinstance(p, dict)
        }
        for port in new.get("ports") or []:
            if isinstance(port, dict) and not port.get("nodePort"):
                value = by_name.get(port.get("name", ""))
                if value and value not in used:
                    port["nodePort"] = value
    if (
        _needs_health_check_port(old)
        and _needs_health_check_port(new)
        and not new.get("healthCheckNodePort")
        and old.get("healthCheckNodePort")
    ):
        new["healthCheckNodePort"] = old["healthCheckNodePort"]


def normalize_cluster_ips(new: Obj, old: Obj) -> None:
    """``normalizeClusterIPs`` on update: keep ``clusterIP`` and ``clusterIPs`` in step with
    what an old (singular-only) or new client meant."""
    old_ips, new_ips = old.get("clusterIPs") or [], new.get("clusterIPs") or []
    old_ip, new_ip = old.get("clusterIP") or "", new.get("clusterIP") or ""
    if old_ips and not new_ips and old_ip == new_ip:
        new["clusterIPs"] = new_ips = list(old_ips)
    if old_ip != new_ip:
        same_ips = list(new_ips) == list(old_ips)
        if old_ip and not new_ip and same_ips:
            new.pop("clusterIPs", None)
        if new_ip and same_ips:
            new["clusterIPs"] = [new_ip]


class CreateOnUpdateStrategy(Strategy):
    """Kinds a PUT may create: those written by their owners with a plain PUT (Endpoints,
    Events, Leases)."""

    allow_create_on_update = True


class DeploymentStrategy(Strategy):
    # Annotations are copied to the ReplicaSets, so changing them is a new generation too.
    generation_from_annotations = True


class ReplicaSetStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return {"replicas": 0}  # the one non-omitempty field of ReplicaSetStatus


class StatefulSetStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return {"replicas": 0, "availableReplicas": 0}


class DaemonSetStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        # The non-omitempty fields of DaemonSetStatus.
        return {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }


class PodDisruptionBudgetStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        # The non-omitempty fields of PodDisruptionBudgetStatus.
        return {
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        }


class HorizontalPodAutoscalerStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return {"desiredReplicas": 0}


class VolumeStrategy(Strategy):
    """PersistentVolume and PersistentVolumeClaim: a new one is Pending until the PV
    controller binds it (the phase upstream's defaulting gives the empty status)."""

    def initial_status(self, obj: Obj) -> Obj | None:
        return {"phase": "Pending"}


class IngressStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return {"loadBalancer": {}}


# The status the Gateway API CRDs default a new object's status to.
_PENDING_CONDITION = {
    "status": "Unknown",
    "reason": "Pending",
    "message": "Waiting for controller",
    "lastTransitionTime": "1970-01-01T00:00:00Z",
}


class GatewayClassStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return {"conditions": [{"type": "Accepted", **_PENDING_CONDITION}]}


class GatewayStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return {
            "conditions": [
                {"type": "Accepted", **_PENDING_CONDITION},
                {"type": "Programmed", **_PENDING_CONDITION},
            ]
        }


class HTTPRouteStrategy(Strategy):
    def initial_status(self, obj: Obj) -> Obj | None:
        return None  # the CRD has no status default; controllers add parents


class CustomResourceDefinitionStrategy(Strategy):
    def default(self, obj: Obj) -> None:
        customresource.default_crd(obj)

    def initial_status(self, obj: Obj) -> Obj | None:
        # The API server's CRD controller writes the conditions once it has looked at names.
        return {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        # Deleting a CRD deletes its custom resources first (upstream's finalizer controller).
        finalizers = objects.meta_for_write(obj).setdefault("finalizers", [])
        if customresource.CLEANUP_FINALIZER not in finalizers:
            finalizers.append(customresource.CLEANUP_FINALIZER)


class CustomResourceStrategy(Strategy):
    """Objects of a CRD version (upstream's ``customResourceStrategy``): the structural
    schema prunes, defaults and validates; with the status subresource, the main resource
    never writes status and the status subresource nothing else; generation follows every
    change but metadata and status."""

    def __init__(self, resource: ResourceType) -> None:
        super().__init__(resource)
        assert resource.custom is not None
        self.schema = resource.custom.schema
        self.tracks_generation = True
        self._name_fn = name_is_dns_subdomain

    def default(self, obj: Obj) -> None:
        structural.prune(obj, self.schema)
        structural.apply_defaults(obj, self.schema)

    def initial_status(self, obj: Obj) -> Obj | None:
        return None  # a create with the status subresource drops status

    def validate(self, obj: Obj) -> list[FieldError]:
        return self.validate_meta(obj) + structural.validate(obj, self.schema)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        errors = validate_object_meta_update(new.get("metadata") or {}, old.get("metadata") or {})
        return errors + structural.validate(new, self.schema, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[FieldError]:
        structural.prune(new, self.schema)
        structural.apply_defaults(new, self.schema)
        return self.validate_update(new, old)


# -- the tables ------------------------------------------------------------------------------

_TRACKS_GENERATION = frozenset(
    {
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "ReplicationController",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Ingress",
        "IngressClass",
        "NetworkPolicy",
        "EndpointSlice",
        "GatewayClass",
        "Gateway",
        "HTTPRoute",
        "GRPCRoute",
        "TLSRoute",
        "ReferenceGrant",
        "CustomResourceDefinition",
    }
)

_VALIDATORS: dict[str, Validator] = {
    "APIService": apiregistration_v.validate_api_service,
    "PersistentVolumeClaim": storage_v.validate_persistent_volume_claim,
    "PersistentVolume": storage_v.validate_persistent_volume,
    "StorageClass": storage_v.validate_storage_class,
    "Namespace": core_v.validate_namespace,
    "Node": core_v.validate_node,
    "Pod": core_v.validate_pod,
    "Service": core_v.validate_service,
    "Endpoints": core_v.validate_endpoints,
    "Secret": core_v.validate_secret,
    "ConfigMap": core_v.validate_config_map,
    "Event": core_v.validate_event,
    "EndpointSlice": discovery_v.validate_endpoint_slice,
    "Deployment": apps_v.validate_deployment,
    "ReplicaSet": apps_v.validate_replica_set,
    "StatefulSet": apps_v.validate_stateful_set,
    "DaemonSet": apps_v.validate_daemon_set,
    "Job": batch_v.validate_job,
    "CronJob": batch_v.validate_cron_job,
    "ReplicationController": apps_v.validate_replication_controller,
    "PodDisruptionBudget": policy_v.validate_pod_disruption_budget,
    "HorizontalPodAutoscaler": autoscaling_v.validate_horizontal_pod_autoscaler,
    "Ingress": networking_v.validate_ingress,
    "IngressClass": networking_v.validate_ingress_class,
    "NetworkPolicy": networking_v.validate_network_policy,
    "GatewayClass": gateway_v.validate_gateway_class,
    "Gateway": gateway_v.validate_gateway,
    "HTTPRoute": gateway_v.validate_http_route,
    "GRPCRoute": gateway_v.validate_grpc_route,
    "TLSRoute": gateway_v.validate_tls_route,
    "ReferenceGrant": gateway_v.validate_reference_grant,
    "Lease": core_v.validate_lease,
    "CustomResourceDefinition": customresource.validate_crd,
    "Role": rbac_v.validate_role,
    "ClusterRole": rbac_v.validate_cluster_role,
    "RoleBinding": rbac_v.validate_role_binding,
    "ClusterRoleBinding": rbac_v.validate_cluster_role_binding,
}

_UPDATE_VALIDATORS: dict[str, UpdateValidator] = {
    "PersistentVolumeClaim": storage_v.validate_persistent_volume_claim_update,
    "PersistentVolume": storage_v.validate_persistent_volume_update,
    "StorageClass": storage_v.validate_storage_class_update,
    "Node": core_v.validate_node_update,
    "Pod": core_v.validate_pod_update,
    "Service": core_v.validate_service_update,
    "Secret": core_v.validate_secret_update,
    "ConfigMap": core_v.validate_config_map_update,
    "EndpointSlice": discovery_v.validate_endpoint_slice_update,
    "Deployment": apps_v.validate_deployment_update,
    "ReplicaSet": apps_v.validate_replica_set_update,
    "StatefulSet": apps_v.validate_stateful_set_update,
    "DaemonSet": apps_v.validate_daemon_set_update,
    "Job": batch_v.validate_job_update,
    "CronJob": batch_v.validate_cron_job_update,
    "ReplicationController": apps_v.validate_replication_controller_update,
    "PodDisruptionBudget": policy_v.validate_pod_disruption_budget_update,
    "HorizontalPodAutoscaler": autoscaling_v.validate_horizontal_pod_autoscaler_update,
    "IngressClass": networking_v.validate_ingress_class_update,
    "GatewayClass": gateway_v.validate_gateway_class_update,
    "CustomResourceDefinition": customresource.validate_crd_update,
    "RoleBinding": rbac_v.validate_role_binding_update,
    "ClusterRoleBinding": rbac_v.validate_cluster_role_binding_update,
}

_STATUS_VALIDATORS: dict[str, Validator] = {
    "APIService": apiregistration_v.validate_api_service_status,
    "PersistentVolumeClaim": storage_v.validate_persistent_volume_claim,
    "PersistentVolume": storage_v.validate_persistent_volume,
    "Pod": core_v.validate_pod_status,
    "Service": core_v.validate_service_status,
    "Ingress": networking_v.validate_ingress_status,
    "Deployment": apps_v.validate_workload_status,
    "ReplicaSet": apps_v.validate_workload_status,
    "StatefulSet": apps_v.validate_workload_status,
    "DaemonSet": apps_v.validate_daemon_set_status,
    "Job": batch_v.validate_job_status,
    "ReplicationController": apps_v.validate_workload_status,
}

_STRATEGY_CLASSES: dict[str, type[Strategy]] = {
    "PersistentVolumeClaim": VolumeStrategy,
    "PersistentVolume": VolumeStrategy,
    "Namespace": NamespaceStrategy,
    "Node": NodeStrategy,
    "Endpoints": CreateOnUpdateStrategy,
    "Event": CreateOnUpdateStrategy,
    "Lease": CreateOnUpdateStrategy,
    # rbac's strategies allow create on update (reconcilers PUT the roles they own).
    "Role": CreateOnUpdateStrategy,
    "ClusterRole": CreateOnUpdateStrategy,
    "RoleBinding": CreateOnUpdateStrategy,
    "ClusterRoleBinding": CreateOnUpdateStrategy,
    "Pod": PodStrategy,
    "Service": ServiceStrategy,
    "Deployment": DeploymentStrategy,
    "ReplicaSet": ReplicaSetStrategy,
    "StatefulSet": StatefulSetStrategy,
    "DaemonSet": DaemonSetStrategy,
    "ReplicationController": ReplicaSetStrategy,
    "PodDisruptionBudget": PodDisruptionBudgetStrategy,
    "HorizontalPodAutoscaler": HorizontalPodAutoscalerStrategy,
    "Ingress": IngressStrategy,
    "GatewayClass": GatewayClassStrategy,
    "Gateway": GatewayStrategy,
    "HTTPRoute": HTTPRouteStrategy,
    "GRPCRoute": HTTPRouteStrategy,
    "TLSRoute": HTTPRouteStrategy,
    "CustomResourceDefinition": CustomResourceDefinitionStrategy,
}

_CACHE: dict[ResourceType, Strategy] = {}
_CUSTOM_CACHE: dict[int, Strategy] = {}
_CUSTOM_CACHE_SIZE = 512


def strategy_for(rt: ResourceType) -> Strategy:
    """The strategy of a resource (one shared instance per resource type)."""
    if rt.custom is not None:
        # Rows of custom resources compare by name only: a CRD's new schema is a new row.
        custom = _CUSTOM_CACHE.get(id(rt.custom))
        if custom is None or custom.resource.custom is not rt.custom:
            if len(_CUSTOM_CACHE) >= _CUSTOM_CACHE_SIZE:
                _CUSTOM_CACHE.clear()  # the strategies of replaced CRD versions go
            custom = _CUSTOM_CACHE[id(rt.custom)] = CustomResourceStrategy(rt)
        return custom
    strategy = _CACHE.get(rt)
    if strategy is None:
        strategy = _STRATEGY_CLASSES.get(rt.kind, Strategy)(rt)
        _CACHE[rt] = strategy
    return strategy


def strategy_for_kind(api_version: str, kind: str) -> Strategy:
    return strategy_for(REGISTRY.by_kind(api_version, kind))
