"""kubectl's typed create commands send protobuf bodies: explicit zero values survive decoding.

``kubectl create deployment|secret ...`` build Go structs and send them as
``application/vnd.kubernetes.protobuf``; a pointer field set to its zero value (``--replicas=0``)
is on the wire and must be stored as given, not dropped and then defaulted.
"""

from __future__ import annotations

import json

from apiserver_harness import Kubectl


def _get(k: Kubectl, *what: str) -> dict:
    return json.loads(k("get", *what, "-o", "json"))


def test_create_deployment_with_zero_replicas_keeps_zero(kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "idle", "--image=nginx", "--replicas=0")
    assert _get(kubectl, "deployment", "idle")["spec"]["replicas"] == 0


def test_create_deployment_without_replicas_gets_one(kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "plain", "--image=nginx")
    spec = _get(kubectl, "deployment", "plain")["spec"]
    assert spec["replicas"] == 1
    # Non-pointer zero values stay dropped (their JSON form omits them) and get defaulted.
    assert spec["revisionHistoryLimit"] == 10
    assert "minReadySeconds" not in spec


def test_create_deployment_with_replicas_sets_them(kubectl: Kubectl) -> None:
    kubectl("create", "deployment", "three", "--image=nginx", "--replicas=3")
    assert _get(kubectl, "deployment", "three")["spec"]["replicas"] == 3


def test_create_service_and_secret_carry_no_unset_pointer_fields(kubectl: Kubectl) -> None:
    # Unset pointer fields are not on the wire at all: nothing appears that the user did not
    # set, beyond the API server's defaults.
    kubectl("create", "service", "clusterip", "web", "--tcp=80:8080")
    spec = _get(kubectl, "service", "web")["spec"]
    assert spec["ports"][0]["port"] == 80 and spec["ports"][0]["targetPort"] == 8080
    assert "loadBalancerClass" not in spec and "allocateLoadBalancerNodePorts" not in spec
    assert spec["internalTrafficPolicy"] == "Cluster"  # defaulted, not sent
    kubectl("create", "secret", "generic", "s", "--from-literal=a=b")
    assert "immutable" not in _get(kubectl, "secret", "s")
