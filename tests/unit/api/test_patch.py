"""The three patch types. Strategic merge cases follow upstream's strategicpatch semantics
and the patches kubectl's client-side apply really sends (three-way patches with
``$setElementOrder`` and ``$patch: delete``)."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.errors import BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from svcnet.api.patch import (
    PatchRejected,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)
from svcnet.api.schema import GroupVersionKind

SERVICE = GroupVersionKind("", "v1", "Service")
POD = GroupVersionKind("", "v1", "Pod")
DEPLOYMENT = GroupVersionKind("apps", "v1", "Deployment")
GATEWAY = GroupVersionKind("gateway.networking.k8s.io", "v1", "Gateway")


def svc(ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": ports, **spec},
    }


def deploy(containers: list[dict[str, Any]], **pod: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": containers, **pod}}},
    }


# --- JSON patch --------------------------------------------------------------------------

JSON_PATCH_CASES = [
    ("replace", {"a": 1}, [{"op": "replace", "path": "/a", "value": 2}], {"a": 2}),
    ("add nested", {"a": {}}, [{"op": "add", "path": "/a/b", "value": [1]}], {"a": {"b": [1]}}),
    ("append to list", {"l": [1]}, [{"op": "add", "path": "/l/-", "value": 2}], {"l": [1, 2]}),
    ("remove", {"a": 1, "b": 2}, [{"op": "remove", "path": "/a"}], {"b": 2}),
    (
        "test then replace",
        {"a": 1},
        [{"op": "test", "path": "/a", "value": 1}, {"op": "replace", "path": "/a", "value": 3}],
        {"a": 3},
    ),
    (
        "escaped key",
        {"metadata": {"labels": {"app.kubernetes.io/name": "x"}}},
        [{"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"}],
        {"metadata": {"labels": {}}},
    ),
    ("move", {"a": 1}, [{"op": "move", "from": "/a", "path": "/b"}], {"b": 1}),
]


@pytest.mark.parametrize(
    ("name", "obj", "patch", "want"), JSON_PATCH_CASES, ids=[c[0] for c in JSON_PATCH_CASES]
)
def test_json_patch(name: str, obj: dict[str, Any], patch: Any, want: dict[str, Any]) -> None:
    assert apply_json_patch(obj, patch) == want


def test_json_patch_does_not_modify_input() -> None:
    obj = {"a": {"b": 1}}
    apply_json_patch(obj, [{"op": "replace", "path": "/a/b", "value": 2}])
    assert obj == {"a": {"b": 1}}


def test_json_patch_failing_test_op_is_422_with_path_in_cause() -> None:
    with pytest.raises(PatchRejected) as e:
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    status = e.value.to_status()
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"] == "the server rejected our request due to an error in our request"
    assert status["details"]["causes"] == [
        {"reason": "UnexpectedServerResponse", "message": "testing value /a failed: test failed"}
    ]


@pytest.mark.parametrize(
    ("patch", "cause"),
    [
        (
            [{"op": "remove", "path": "/missing"}],
            "error in remove for path: '/missing': Unable to remove nonexistent key: missing: missing value",
        ),
        (
            [{"op": "replace", "path": "/x/y", "value": 1}],
            "replace operation does not apply: doc is missing key: /x/y: missing value",
        ),
        (
            [{"op": "add", "path": "/x/y", "value": 1}],
            'add operation does not apply: doc is missing path: "/x/y": missing value',
        ),
        ([{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
    ],
    ids=["remove", "replace", "add", "unknown op"],
)
def test_json_patch_that_does_not_apply_is_422(patch: Any, cause: str) -> None:
    with pytest.raises(PatchRejected) as e:
        apply_json_patch({"a": 1}, patch)
    assert e.value.detail == cause


def test_json_patch_that_is_not_a_list_is_400() -> None:
    with pytest.raises(BadRequest):
        apply_json_patch({"a": 1}, {"op": "add"})


def test_json_patch_over_10000_operations_is_413() -> None:
    with pytest.raises(
        RequestEntityTooLarge, match="maximum operations in a JSON patch is 10000, got 10001"
    ):
        apply_json_patch({}, [{"op": "test", "path": "", "value": {}}] * 10001)


# --- merge patch -------------------------------------------------------------------------

MERGE_CASES = [
    ("set scalar", {"a": 1}, {"a": 2}, {"a": 2}),
    ("null deletes", {"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    (
        "nested merge",
        {"m": {"x": 1, "y": 2}},
        {"m": {"y": 3, "z": 4}},
        {"m": {"x": 1, "y": 3, "z": 4}},
    ),
    ("list replaced wholesale", {"l": [1, 2, 3]}, {"l": [4]}, {"l": [4]}),
    ("object replaces scalar", {"a": 1}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}),
    ("null for absent key is no-op", {"a": 1}, {"z": None}, {"a": 1}),
]


@pytest.mark.parametrize(
    ("name", "obj", "patch", "want"), MERGE_CASES, ids=[c[0] for c in MERGE_CASES]
)
def test_merge_patch(name: str, obj: dict[str, Any], patch: Any, want: dict[str, Any]) -> None:
    assert apply_merge_patch(obj, patch) == want


# --- strategic merge patch -------------------------------------------------------------------

SMP_CASES: list[tuple[str, Any, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "service ports merge by port",
        SERVICE,
        svc([{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]),
        {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}},
        svc(
            [{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP", "targetPort": 8443}]
        ),
    ),
    (
        "service port added at the end",
        SERVICE,
        svc([{"port": 80}]),
        {"spec": {"ports": [{"port": 53, "protocol": "UDP"}]}},
        svc([{"port": 80}, {"port": 53, "protocol": "UDP"}]),
    ),
    (
        "kubectl apply removes a service port",
        SERVICE,
        svc([{"name": "http", "port": 80}, {"name": "https", "port": 443}]),
        {
            "spec": {
                "$setElementOrder/ports": [{"port": 80}],
                "ports": [{"$patch": "delete", "port": 443}],
            }
        },
        svc([{"name": "http", "port": 80}]),
    ),
    (
        "kubectl apply reorders ports with $setElementOrder",
        SERVICE,
        svc([{"port": 80}, {"port": 443}]),
        {"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}]}},
        svc([{"port": 443}, {"port": 80}]),
    ),
    (
        "setElementOrder keeps server-only items in place",
        SERVICE,
        svc([{"port": 1}, {"port": 2}, {"port": 3}]),
        {
            "spec": {
                "$setElementOrder/ports": [{"port": 3}, {"port": 1}, {"port": 4}],
                "ports": [{"port": 4}],
            }
        },
        svc([{"port": 2}, {"port": 3}, {"port": 1}, {"port": 4}]),
    ),
    (
        "containers merge by name",
        DEPLOYMENT,
        deploy([{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "y:2"}]}}}},
        deploy([{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:2"}]),
    ),
    (
        "kubectl apply changes an image and deletes an env var",
        DEPLOYMENT,
        deploy(
            [
                {
                    "name": "web",
                    "image": "nginx:1.25",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                }
            ]
        ),
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "web"}],
                        "containers": [
                            {
                                "$setElementOrder/env": [{"name": "A"}],
                                "env": [{"$patch": "delete", "name": "B"}],
                                "image": "nginx:1.26",
                                "name": "web",
                            }
                        ],
                    }
                }
            }
        },
        deploy([{"name": "web", "image": "nginx:1.26", "env": [{"name": "A", "value": "1"}]}]),
    ),
    (
        "env value changed by name keeps the others",
        DEPLOYMENT,
        deploy(
            [{"name": "web", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]
        ),
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "3"}]}]}
                }
            }
        },
        deploy(
            [{"name": "web", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]}]
        ),
    ),
    (
        "containers replaced with $patch replace",
        DEPLOYMENT,
        deploy([{"name": "a"}, {"name": "b"}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "c"}, {"$patch": "replace"}]}}}},
        deploy([{"name": "c"}]),
    ),
    (
        "args is atomic: replaced",
        DEPLOYMENT,
        deploy([{"name": "a", "args": ["x", "y"]}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}}},
        deploy([{"name": "a", "args": ["z"]}]),
    ),
    (
        "null deletes a label",
        SERVICE,
        {**svc([]), "metadata": {"name": "web", "labels": {"a": "1", "b": "2"}}},
        {"metadata": {"labels": {"a": None}}},
        {**svc([]), "metadata": {"name": "web", "labels": {"b": "2"}}},
    ),
    (
        "map replaced with $patch replace",
        SERVICE,
        {**svc([]), "metadata": {"name": "web", "labels": {"a": "1"}}},
        {"metadata": {"labels": {"b": "2", "$patch": "replace"}}},
        {**svc([]), "metadata": {"name": "web", "labels": {"b": "2"}}},
    ),
    (
        "map deleted with $patch delete",
        SERVICE,
        svc([], selector={"app": "x"}),
        {"spec": {"selector": {"$patch": "delete"}}},
        svc([], selector={}),
    ),
    (
        "finalizers merge as a set",
        POD,
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["b", "c"]}},
        {"metadata": {"finalizers": ["a", "b", "c"]}},
    ),
    (
        "finalizer removed with $deleteFromPrimitiveList",
        POD,
        {"metadata": {"finalizers": ["a", "b"]}},
        {
            "metadata": {
                "$setElementOrder/finalizers": ["a"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
            }
        },
        {"metadata": {"finalizers": ["a"]}},
    ),
    (
        "retainKeys drops the old strategy's fields",
        DEPLOYMENT,
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        {"spec": {"strategy": {"type": "Recreate"}}},
    ),
    (
        "volumes retainKeys inside a merged list item",
        POD,
        {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}},
        {
            "spec": {
                "volumes": [
                    {"$retainKeys": ["name", "configMap"], "name": "v", "configMap": {"name": "c"}}
                ]
            }
        },
        {"spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}]}},
    ),
    (
        "new nested field keeps no directives",
        DEPLOYMENT,
        {"spec": {}},
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "a"}],
                        "containers": [{"name": "a", "image": "i"}],
                    }
                }
            }
        },
        {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "i"}]}}}},
    ),
    ("unmatched null is not stored", SERVICE, svc([]), {"spec": {"externalName": None}}, svc([])),
]


@pytest.mark.parametrize(
    ("name", "gvk", "obj", "patch", "want"), SMP_CASES, ids=[c[0] for c in SMP_CASES]
)
def test_strategic_merge_patch(
    name: str, gvk: Any, obj: dict[str, Any], patch: dict[str, Any], want: dict[str, Any]
) -> None:
    assert apply_strategic_merge_patch(obj, patch, gvk) == want


def test_strategic_merge_patch_of_gateway_api_kind_is_415() -> None:
    with pytest.raises(UnsupportedMediaType) as e:
        apply_strategic_merge_patch({}, {"spec": {}}, GATEWAY)
    assert e.value.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"spec": {"ports": [{"$patch": "delete"}]}}, "does not contain declared merge key: port"),
        ({"spec": {"$patch": "explode"}}, "unknown patch type: explode"),
        ({"spec": {"ports": [{"protocol": "TCP"}]}}, "does not contain declared merge key: port"),
        ({"spec": {"$patch": "merge"}}, "unknown patch type: merge"),
        ({"spec": {"$retainKeys": ["type"], "selector": {}}}, "invalid patch format of retainKeys"),
        (
            {"spec": {"$setElementOrder/ports": {"port": 80}}},
            "invalid patch format of setElementOrder list",
        ),
    ],
)
def test_strategic_merge_patch_malformed_is_400(patch: dict[str, Any], match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        apply_strategic_merge_patch(svc([{"port": 80}]), patch, SERVICE)


def test_strategic_merge_patch_does_not_modify_input() -> None:
    obj = svc([{"port": 80}])
    apply_strategic_merge_patch(obj, {"spec": {"ports": [{"port": 80, "name": "x"}]}}, SERVICE)
    assert obj == svc([{"port": 80}])
