"""The resource registry: every kind svcnet serves, as one fixed table.

One row per resource with what discovery, routing, the store layout and kubectl need: group,
version, kind, plural, singular, short names, categories, scope, subresources and the field
selectors the resource supports — the same values upstream publishes, so `kubectl get svc`,
`kubectl get all` and `kubectl api-resources` behave as against a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STANDARD_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
_COMMON_FIELDS: tuple[str, ...] = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Subresources served under the object's path, e.g. "status", "scale", "log".
    subresources: tuple[str, ...] = ()
    # Field selectors beyond metadata.name and metadata.namespace.
    extra_field_selectors: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    singular: str = field(default="")
    # A version of a CustomResourceDefinition: what its schema and printer make of the
    # objects. Not part of the row's identity (rows are compared and hashed by their names).
    custom: CustomVersion | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.singular:
            object.__setattr__(self, "singular", self.kind.lower())

    @property
    def group_version(self) -> str:
        """``v1`` for the core group, ``apps/v1`` otherwise: the apiVersion of objects."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified_resource(self) -> str:
        """``services`` or ``deployments.apps``: how errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def field_selectors(self) -> tuple[str, ...]:
        return _COMMON_FIELDS + self.extra_field_selectors

    @property
    def base_path(self) -> str:
        """The URL prefix of this resource's group version: ``/api/v1`` or ``/apis/apps/v1``."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def store_prefix(self, namespace: str | None = None) -> str:
        """The store key prefix, laid out as kube-apiserver does in etcd.

        ``/registry/<group>/<plural>/<namespace>/<name>`` (core kinds leave the group out, as
        upstream does for e.g. ``/registry/services/specs/…``; we keep one layout for all).
        """
        head = (
            f"/registry/{self.group}/{self.plural}/" if self.group else f"/registry/{self.plural}/"
        )
        if self.namespaced and namespace:
            return f"{head}{namespace}/"
        return head

    def store_key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is required")
            return f"{self.store_prefix(namespace)}{name}"
        return f"{self.store_prefix()}{name}"


@dataclass(frozen=True, eq=False)
class CustomVersion:
    """What one served version of a CustomResourceDefinition adds to its registry row."""

    crd: str  # the CRD's name, <plural>.<group>
    # openAPIV3Schema as the CRD gives it, and as field validation, apply and OpenAPI read it
    # (apiVersion, kind and ObjectMeta added: svcnet.api.structural.with_object_meta).
    schema: Mapping[str, Any]
    published: Mapping[str, Any]
    storage_version: str
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    # spec.versions[].subresources.scale: specReplicasPath, statusReplicasPath, labelSelectorPath.
    scale: Mapping[str, str] | None = None


_STATUS = ("status",)
_WORKLOAD = ("status", "scale")

# Each row under the name components use for it: a typed constant, so code that watches or
# writes a kind it knows names the row itself instead of looking it up.

# core/v1
NAMESPACES = ResourceType(
    "", "v1", "Namespace", "namespaces", False, ("ns",),
    subresources=("status", "finalize"), extra_field_selectors=("status.phase",),
)  # fmt: skip
NODES = ResourceType(
    "", "v1", "Node", "nodes", False, ("no",), subresources=("status", "proxy"),
    extra_field_selectors=("spec.unschedulable",),
)  # fmt: skip
PODS = ResourceType(
    "", "v1", "Pod", "pods", True, ("po",), ("all",),
    subresources=("status", "log", "exec", "attach", "binding", "eviction", "portforward",
                  "ephemeralcontainers"),
    extra_field_selectors=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                           "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                           "status.podIP", "status.nominatedNodeName"),
)  # fmt: skip
SERVICES = ResourceType(
    "", "v1", "Service", "services", True, ("svc",), ("all",),
    subresources=("status", "proxy"), extra_field_selectors=("spec.clusterIP", "spec.type"),
)  # fmt: skip
ENDPOINTS = ResourceType("", "v1", "Endpoints", "endpoints", True, ("ep",), singular="endpoints")
SECRETS = ResourceType("", "v1", "Secret", "secrets", True, extra_field_selectors=("type",))
CONFIGMAPS = ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",))
SERVICEACCOUNTS = ResourceType(
    "", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), subresources=("token",)
)
REPLICATIONCONTROLLERS = ResourceType(
    "", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ("all",),
    subresources=_WORKLOAD,
)  # fmt: skip
PERSISTENTVOLUMECLAIMS = ResourceType(
    "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",),
    subresources=_STATUS,
)  # fmt: skip
PERSISTENTVOLUMES = ResourceType(
    "", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), subresources=_STATUS
)
EVENTS = ResourceType(
    "", "v1", "Event", "events", True, ("ev",),
    extra_field_selectors=("involvedObject.kind", "involvedObject.namespace",
                           "involvedObject.name", "involvedObject.uid",
                           "involvedObject.apiVersion", "involvedObject.resourceVersion",
                           "involvedObject.fieldPath", "reason", "reportingComponent", "source",
                           "type"),
)  # fmt: skip
# discovery.k8s.io/v1
ENDPOINTSLICES = ResourceType(
    "discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True,
    extra_field_selectors=("addressType",),
)  # fmt: skip
# apps/v1
DEPLOYMENTS = ResourceType(
    "apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",), subresources=_WORKLOAD
)
REPLICASETS = ResourceType(
    "apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",),
    subresources=_WORKLOAD, extra_field_selectors=("status.replicas",),
)  # fmt: skip
STATEFULSETS = ResourceType(
    "apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",), subresources=_WORKLOAD
)
DAEMONSETS = ResourceType(
    "apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",), subresources=_STATUS
)
# autoscaling/v2 (v1 is not served: it would need conversion of the stored v2 objects)
HORIZONTALPODAUTOSCALERS = ResourceType(
    "autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
    ("all",), subresources=_STATUS,
)  # fmt: skip
# batch/v1
JOBS = ResourceType("batch", "v1", "Job", "jobs", True, (), ("all",), subresources=_STATUS)
CRONJOBS = ResourceType(
    "batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("all",), subresources=_STATUS
)
# policy/v1
PODDISRUPTIONBUDGETS = ResourceType(
    "policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",),
    subresources=_STATUS,
)  # fmt: skip
# networking.k8s.io/v1
INGRESSES = ResourceType(
    "networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), subresources=_STATUS
)
INGRESSCLASSES = ResourceType("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False)
NETWORKPOLICIES = ResourceType(
    "networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)
)
# gateway.networking.k8s.io (standard channel): v1, ReferenceGrant in v1beta1
GATEWAYCLASSES = ResourceType(
    "gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", False, ("gc",),
    ("gateway-api",), subresources=_STATUS,
)  # fmt: skip
GATEWAYS = ResourceType(
    "gateway.networking.k8s.io", "v1", "Gateway", "gateways", True, ("gtw",), ("gateway-api",),
    subresources=_STATUS,
)  # fmt: skip
HTTPROUTES = ResourceType(
    "gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", True, (), ("gateway-api",),
    subresources=_STATUS,
)  # fmt: skip
GRPCROUTES = ResourceType(
    "gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes", True, (), ("gateway-api",),
    subresources=_STATUS,
)  # fmt: skip
# TLSRoute is in the experimental channel only (v1alpha2), as upstream serves it.
TLSROUTES = ResourceType(
    "gateway.networking.k8s.io", "v1alpha2", "TLSRoute", "tlsroutes", True, (), ("gateway-api",),
    subresources=_STATUS,
)  # fmt: skip
REFERENCEGRANTS = ResourceType(
    "gateway.networking.k8s.io", "v1beta1", "ReferenceGrant", "referencegrants", True,
    ("refgrant",), ("gateway-api",),
)  # fmt: skip
# storage.k8s.io/v1
STORAGECLASSES = ResourceType(
    "storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)
)
# rbac.authorization.k8s.io/v1
_RBAC = "rbac.authorization.k8s.io"
CLUSTERROLEBINDINGS = ResourceType(_RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", False)
CLUSTERROLES = ResourceType(_RBAC, "v1", "ClusterRole", "clusterroles", False)
ROLEBINDINGS = ResourceType(_RBAC, "v1", "RoleBinding", "rolebindings", True)
ROLES = ResourceType(_RBAC, "v1", "Role", "roles", True)
# apiregistration.k8s.io/v1: stored and listed; svcnet proxies to no aggregated API server
APISERVICES = ResourceType(
    "apiregistration.k8s.io", "v1", "APIService", "apiservices", False, (),
    ("api-extensions",), subresources=_STATUS,
)  # fmt: skip
# coordination.k8s.io/v1
LEASES = ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True)
# apiextensions.k8s.io/v1
CUSTOMRESOURCEDEFINITIONS = ResourceType(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
    ("crd", "crds"), ("api-extensions",), subresources=_STATUS,
)  # fmt: skip

# Registry order is discovery order (core first, then each group as upstream lists it).
RESOURCES: tuple[ResourceType, ...] = (
    NAMESPACES, NODES, PODS, SERVICES, ENDPOINTS, SECRETS, CONFIGMAPS, SERVICEACCOUNTS,
    PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, EVENTS,
    REPLICATIONCONTROLLERS,
    ENDPOINTSLICES,
    DEPLOYMENTS, REPLICASETS, STATEFULSETS, DAEMONSETS,
    HORIZONTALPODAUTOSCALERS,
    JOBS, CRONJOBS,
    INGRESSES, INGRESSCLASSES, NETWORKPOLICIES,
    PODDISRUPTIONBUDGETS,
    GATEWAYCLASSES, GATEWAYS, HTTPROUTES, GRPCROUTES, TLSROUTES, REFERENCEGRANTS,
    STORAGECLASSES,
    CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES,
    LEASES,
    APISERVICES,
    CUSTOMRESOURCEDEFINITIONS,
)  # fmt: skip


class NotInRegistry(LookupError):
    """A kind or name the registry does not hold (the caller decides what that means: a 404, a
    client error, a bug)."""


class Registry:
    """Lookups over :data:`RESOURCES` by the names clients use.

    A registry is built-in rows plus the rows of CustomResourceDefinitions. The module's
    :data:`REGISTRY` holds the built-in rows only and never changes; an API server holds a
    :meth:`copy` of its own and installs the custom rows it serves with :meth:`set_custom`
    (each call replaces them all, and bumps :attr:`generation` so that what was derived
    from the rows, discovery and OpenAPI documents, is derived again). A custom row never
    shadows a built-in one.
    """

    def __init__(self, resources: Iterable[ResourceType] = RESOURCES) -> None:
        self.builtin = tuple(resources)
        self.generation = 0
        self._index(self.builtin)

    def _index(self, resources: tuple[ResourceType, ...]) -> None:
        by_path: dict[tuple[str, str, str], ResourceType] = {}
        by_kind: dict[tuple[str, str], ResourceType] = {}
        for r in resources:
            by_path.setdefault((r.group, r.version, r.plural), r)
            by_kind.setdefault((r.group_version, r.kind), r)
        self.resources = resources
        self._by_path, self._by_kind = by_path, by_kind

    def copy(self) -> Registry:
        """A registry of the same built-in rows, without custom ones (a server's own)."""
        return Registry(self.builtin)

    def serves_builtin(self, group: str, plural: str) -> bool:
        """Whether a built-in row serves ``plural`` in ``group`` (at any version)."""
        return any(r.group == group and r.plural == plural for r in self.builtin)

    def set_custom(self, rows: Iterable[ResourceType]) -> None:
        """Serve ``rows`` (the custom resources) besides the built-in rows, from now on."""
        custom = tuple(r for r in rows if not self.serves_builtin(r.group, r.plural))
        self._index(self.builtin + custom)
        self.generation += 1

    @property
    def custom(self) -> tuple[ResourceType, ...]:
        return self.resources[len(self.builtin) :]

    def by_plural(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The resource at ``/apis/<group>/<version>/<plural>``; None for a path the server
        does not serve (a request's 404, not an error of the caller)."""
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType:
        """The resource of an object's ``apiVersion`` and ``kind``."""
        rt = self._by_kind.get((api_version, kind))
        if rt is None:
            raise NotInRegistry(f'no resource for apiVersion "{api_version}", kind "{kind}"')
        return rt

    def by_name(self, name: str) -> ResourceType:
        """The resource a kubectl argument names: plural, singular, short name or kind,
        optionally qualified by group (``svc``, ``pods``, ``deployments.apps``,
        ``Deployment``)."""
        bare, _, group = name.partition(".")
        lowered = bare.lower()
        for r in self.resources:
            if group and r.group != group:
                continue
            if lowered in (r.plural, r.singular, r.kind.lower(), *r.short_names):
                return r
        raise NotInRegistry(f'no resource type "{name}"')

    def group_versions(self) -> list[tuple[str, str]]:
        """Each (group, version) once, core first, in registry order."""
        seen: dict[tuple[str, str], None] = {}
        for r in self.resources:
            seen.setdefault((r.group, r.version), None)
        return list(seen)

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self.resources if r.group == group and r.version == version]


REGISTRY = Registry()
