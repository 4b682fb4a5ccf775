"""kubectl's typed create commands send protobuf bodies: explicit zero values survive decoding.

``kubectl create deployment|secret ...`` build Go structs and send them as
``application/vnd.kubernetes.protobuf``; a pointer field set to its zero value (``--replicas=0``)
is on the wire and must be stored as given, not dropped and then defaulted.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from apiserver_harness import KUBECTL, Http, Kubectl

from svcnet.apiserver import protobuf_gen
from svcnet.testing.protowire import envelope, field_bytes, field_int


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


def test_create_ingress_with_class_keeps_pointer_fields(kubectl: Kubectl) -> None:
    kubectl("create", "ingress", "web", "--class=nginx", "--rule=foo.com/bar*=svc:8080")
    spec = _get(kubectl, "ingress", "web")["spec"]
    assert spec["ingressClassName"] == "nginx"
    path = spec["rules"][0]["http"]["paths"][0]  # IngressRuleValue is inline in JSON
    assert path["pathType"] == "Prefix"
    assert path["backend"] == {"service": {"name": "svc", "port": {"number": 8080}}}


# -- bodies kubectl cannot produce, built with the field numbers of upstream's generated.proto --


def _post_protobuf(http: Http, path: str, api_version: str, kind: str, raw: bytes) -> None:
    body = envelope(api_version, kind, raw)
    code, _, out = http.request("POST", path, body, "application/vnd.kubernetes.protobuf")
    assert code == 201, out


def test_protobuf_ingress_class_parameters_api_group(kubectl: Kubectl, http: Http) -> None:
    # IngressClassParametersReference.APIGroup is proto field "aPIGroup", JSON "apiGroup".
    name = "pb-" + uuid.uuid4().hex[:8]
    params = field_bytes(1, "k8s.example.com") + field_bytes(2, "Params") + field_bytes(3, "p")
    params += field_bytes(4, "Namespace") + field_bytes(5, "default")
    raw = field_bytes(1, field_bytes(1, name)) + field_bytes(
        2, field_bytes(1, "example.com/ctl") + field_bytes(2, params)
    )
    try:
        _post_protobuf(
            http,
            "/apis/networking.k8s.io/v1/ingressclasses",
            "networking.k8s.io/v1",
            "IngressClass",
            raw,
        )
        parameters = _get(kubectl, "ingressclass", name)["spec"]["parameters"]
    finally:
        kubectl.run("delete", "ingressclass", name, "--ignore-not-found", check=False)
    assert parameters == {
        "apiGroup": "k8s.example.com",
        "kind": "Params",
        "name": "p",
        "scope": "Namespace",
        "namespace": "default",
    }


def test_protobuf_pod_embedded_structs_are_flattened(kubectl: Kubectl, http: Http) -> None:
    # ConfigMapKeySelector and ConfigMapVolumeSource embed LocalObjectReference, Volume embeds
    # VolumeSource, Probe embeds ProbeHandler: all json:",inline" upstream.
    selector = field_bytes(1, field_bytes(1, "cm")) + field_bytes(2, "k") + field_int(3, 0)
    env = field_bytes(1, "E") + field_bytes(3, field_bytes(3, selector))
    probe = field_bytes(
        1, field_bytes(3, field_bytes(1, field_int(1, 0) + field_int(2, 8080)))
    ) + field_int(3, 1)
    container = (
        field_bytes(1, "c") + field_bytes(2, "nginx") + field_bytes(7, env) + field_bytes(11, probe)
    )
    volume = field_bytes(1, "v") + field_bytes(
        2, field_bytes(19, field_bytes(1, field_bytes(1, "cm")) + field_int(3, 0o644))
    )
    raw = field_bytes(1, field_bytes(1, "p")) + field_bytes(
        2, field_bytes(1, volume) + field_bytes(2, container)
    )
    _post_protobuf(http, f"/api/v1/namespaces/{kubectl.namespace}/pods", "v1", "Pod", raw)
    spec = _get(kubectl, "pod", "p")["spec"]
    # The second volume is ServiceAccount admission's kube-api-access-*.
    assert spec["volumes"][0] == {"name": "v", "configMap": {"name": "cm", "defaultMode": 0o644}}
    c = spec["containers"][0]
    assert c["env"] == [
        {
            "name": "E",
            "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": False}},
        }
    ]
    assert c["readinessProbe"]["tcpSocket"] == {"port": 8080}


@pytest.mark.skipif(
    "v1.32.4"
    not in subprocess.run(
        [KUBECTL, "version", "--client"], capture_output=True, text=True, check=False
    ).stdout,
    reason="protobuf_schema.json was generated from kubectl v1.32.4",
)
def test_schema_is_what_the_generator_makes_from_kubectl() -> None:
    generated = protobuf_gen.with_json_names(
        protobuf_gen.reachable(protobuf_gen.extract(Path(KUBECTL).read_bytes()))
    )
    assert generated == json.loads(protobuf_gen.OUT.read_text())
