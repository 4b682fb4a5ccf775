"""What the ``kube-root-ca.crt`` ConfigMap of a namespace needs (pure): upstream's root CA
publisher (``pkg/controller/certificates/rootcacertpublisher/publisher.go``).

Every namespace gets the ConfigMap with key ``ca.crt`` = the CA that the API server's serving
certificate chains to, so in-cluster clients can verify ``https://kubernetes.default.svc``.
A ConfigMap whose data differs or whose description annotation is missing is put back (its
other metadata is kept); a deleted one is created again.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from svcnet.api.objects import Obj
from svcnet.controllers.serviceaccount.plan import namespace_active

CONFIGMAP_NAME = "kube-root-ca.crt"
CA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)


class Action(enum.Enum):
    NONE = "none"
    CREATE = "create"
    UPDATE = "update"


@dataclass(frozen=True)
class Plan:
    action: Action
    configmap: Obj | None = None


def plan_root_ca(
    namespace: Mapping[str, Any] | None, current: Mapping[str, Any] | None, ca_pem: str
) -> Plan:
    """``syncNamespace``: create the ConfigMap, put its data and annotation back, or nothing."""
    if namespace is None:
        return Plan(Action.NONE)
    ns_name = str((namespace.get("metadata") or {}).get("name") or "")
    data = {CA_KEY: ca_pem}
    if current is None:
        if not namespace_active(namespace):
            # Upstream's create would be refused (the namespace is terminating).
            return Plan(Action.NONE)
        return Plan(
            Action.CREATE,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": CONFIGMAP_NAME,
                    "namespace": ns_name,
                    "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                },
                "data": data,
            },
        )
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    if current.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
        return Plan(Action.NONE)
    updated: Obj = copy.deepcopy(dict(current))
    updated["data"] = data
    updated["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
    return Plan(Action.UPDATE, updated)
