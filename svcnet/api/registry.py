"""The resource registry: every kind svcnet serves, as one fixed table.

One row per resource with what discovery, routing, the store layout and kubectl need: group,
version, kind, plural, singular, short names, categories, scope, subresources and the field
selectors the resource supports — the same values upstream publishes, so `kubectl get svc`,
`kubectl get all` and `kubectl api-resources` behave as against a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

STANDARD_VERBS: tuple[str, ...] = (
    "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
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
        head = f"/registry/{self.group}/{self.plural}/" if self.group else f"/registry/{self.plural}/"
        if self.namespaced and namespace:
            return f"{head}{namespace}/"
        return head

    def store_key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is required")
            return f"{self.store_prefix(namespace)}{name}"
        return f"{self.store_prefix()}{name}"


_STATUS = ("status",)
_WORKLOAD = ("status", "scale")

RESOURCES: tuple[ResourceType, ...] = (
    # core/v1
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",),
                 subresources=("status", "finalize"), extra_field_selectors=("status.phase",)),
    ResourceType("", "v1", "Node", "nodes", False, ("no",), subresources=("status", "proxy"),
                 extra_field_selectors=("spec.unschedulable",)),
    ResourceType("", "v1", "Pod", "pods", True, ("po",), ("all",),
                 subresources=("status", "log", "exec", "attach", "binding", "eviction",
                               "portforward", "ephemeralcontainers"),
                 extra_field_selectors=("spec.nodeName", "spec.restartPolicy",
                                        "spec.schedulerName", "spec.serviceAccountName",
                                        "spec.hostNetwork", "status.phase", "status.podIP",
                                        "status.nominatedNodeName")),
    ResourceType("", "v1", "Service", "services", True, ("svc",), ("all",),
                 subresources=("status", "proxy"), extra_field_selectors=("spec.clusterIP", "spec.type")),
    ResourceType("", "v1", "Endpoints", "endpoints", True, ("ep",), singular="endpoints"),
    ResourceType("", "v1", "Secret", "secrets", True, extra_field_selectors=("type",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    ResourceType("", "v1", "Event", "events", True, ("ev",),
                 extra_field_selectors=("involvedObject.kind", "involvedObject.namespace",
                                        "involvedObject.name", "involvedObject.uid",
                                        "involvedObject.apiVersion",
                                        "involvedObject.resourceVersion",
                                        "involvedObject.fieldPath", "reason", "reportingComponent",
                                        "source", "type")),
    # discovery.k8s.io/v1
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True,
                 extra_field_selectors=("addressType",)),
    # apps/v1
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",),
                 subresources=_WORKLOAD),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",),
                 subresources=_WORKLOAD, extra_field_selectors=("status.replicas",)),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",),
                 subresources=_WORKLOAD),
    # networking.k8s.io/v1
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",),
                 subresources=_STATUS),
    ResourceType("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True,
                 ("netpol",)),
    # gateway.networking.k8s.io (standard channel): v1, ReferenceGrant in v1beta1
    ResourceType("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", False,
                 ("gc",), ("gateway-api",), subresources=_STATUS),
    ResourceType("gateway.networking.k8s.io", "v1", "Gateway", "gateways", True, ("gtw",),
                 ("gateway-api",), subresources=_STATUS),
    ResourceType("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", True, (),
                 ("gateway-api",), subresources=_STATUS),
    ResourceType("gateway.networking.k8s.io", "v1beta1", "ReferenceGrant", "referencegrants",
                 True, ("refgrant",), ("gateway-api",)),
    # coordination.k8s.io/v1
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True),
)


class Registry:
    """Lookups over :data:`RESOURCES` by the names clients use."""

    def __init__(self, resources: Iterable[ResourceType] = RESOURCES) -> None:
        self.resources = tuple(resources)
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        for r in self.resources:
            self._by_path[(r.group, r.version, r.plural)] = r
            self._by_kind[(r.group_version, r.kind)] = r

    def by_plural(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The resource at ``/apis/<group>/<version>/<plural>``."""
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        """The resource of an object's ``apiVersion`` and ``kind``."""
        return self._by_kind.get((api_version, kind))

    def group_versions(self) -> list[tuple[str, str]]:
        """Each (group, version) once, core first, in registry order."""
        seen: dict[tuple[str, str], None] = {}
        for r in self.resources:
            seen.setdefault((r.group, r.version), None)
        return list(seen)

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self.resources if r.group == group and r.version == version]


REGISTRY = Registry()
