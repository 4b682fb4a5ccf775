"""prepare_create: what the writer of a create owns.

Upstream's create handler records managedFields after decoding (which defaults) and before
mutating admission and the strategy's PrepareForCreate: the writer owns the defaults it was
given, not what admission or the registry add (a Pod's service account, priority and default
tolerations, a Namespace's "kubernetes" finalizer, a Service's clusterIPs)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from svcnet.api.apply import decode_fields
from svcnet.api.registry import REGISTRY
from svcnet.apiserver.prepare import prepare_create
from svcnet.apiserver.request import WriteOptions

MANAGER = "kubectl-client-side-apply"
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-0"},
    "spec": {"containers": [{"name": "web", "image": "agnhost"}]},
}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80}]},
}


def _owned(plural: str, body: dict[str, Any]) -> tuple[dict[str, Any], set[tuple[str, ...]]]:
    group = "" if plural != "deployments" else "apps"
    rt = REGISTRY.by_plural(group, "v1", plural)
    assert rt is not None
    namespace = "default" if rt.namespaced else None
    _, obj = prepare_create(
        rt, orjson.dumps(body), "application/json", WriteOptions(field_manager=MANAGER), namespace
    )
    (entry,) = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == (MANAGER, "Update")
    return obj, decode_fields(entry["fieldsV1"])


@pytest.mark.parametrize(
    ("plural", "body", "defaulted", "added_later"),
    [
        (
            "pods",
            POD,
            [("f:spec", "f:dnsPolicy"), ("f:spec", "f:restartPolicy")],
            [
                ("f:spec", "f:serviceAccountName"),
                ("f:spec", "f:serviceAccount"),
                ("f:spec", "f:priority"),
                ("f:spec", "f:preemptionPolicy"),
                ("f:spec", "f:tolerations"),
            ],
        ),
        (
            "namespaces",
            NAMESPACE,
            [("f:metadata", "f:labels", "f:kubernetes.io/metadata.name")],
            [("f:spec", "f:finalizers")],
        ),
        (
            "services",
            SERVICE,
            [("f:spec", "f:clusterIP"), ("f:spec", "f:sessionAffinity")],
            [("f:spec", "f:clusterIPs")],
        ),
    ],
)
def test_create_owns_its_defaults_not_what_admission_adds(
    plural: str,
    body: dict[str, Any],
    defaulted: list[tuple[str, ...]],
    added_later: list[tuple[str, ...]],
) -> None:
    obj, owned = _owned(plural, body)
    for path in defaulted + added_later:
        value: Any = obj
        for step in path:
            value = value[step[2:]]  # every path is there in the object
    assert set(defaulted) <= owned
    assert not set(added_later) & owned
