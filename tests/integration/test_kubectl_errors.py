"""Invalid manifests: kubectl prints what it prints against a real cluster."""

from __future__ import annotations

import pytest
from apiserver_harness import Kubectl

BAD_PORT = """\
apiVersion: v1
kind: Service
metadata: {name: badport}
spec:
  selector: {app: x}
  ports:
  - port: 70000
"""
NO_SELECTOR = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: nosel}
spec:
  replicas: 1
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: c, image: nginx}]
"""
UNKNOWN_FIELD = """\
apiVersion: v1
kind: Service
metadata: {name: unk}
spec:
  selector: {app: x}
  foo: bar
  ports:
  - port: 80
"""
DUPLICATE_PORT_NAMES = """\
apiVersion: v1
kind: Service
metadata: {name: dupnames}
spec:
  selector: {app: x}
  ports:
  - {name: http, port: 80}
  - {name: http, port: 81}
"""
UNKNOWN_KIND = """\
apiVersion: v1
kind: Frobnicator
metadata: {name: f}
"""
BAD_NAME = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: Bad_Name}
"""


@pytest.mark.parametrize(
    ("manifest", "args", "expected"),
    [
        (
            BAD_PORT,
            (),
            'The Service "badport" is invalid: \n'
            "* spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive\n"
            "* spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive\n",
        ),
        (
            DUPLICATE_PORT_NAMES,
            (),
            'The Service "dupnames" is invalid: spec.ports[1].name: Duplicate value: "http"\n',
        ),
        (
            UNKNOWN_FIELD,
            ("--validate=strict",),
            'Error from server (BadRequest): error when creating "STDIN": Service in version "v1" '
            'cannot be handled as a Service: strict decoding error: unknown field "spec.foo"\n',
        ),
        (
            BAD_NAME,
            (),
            'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: '
            '"Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n",
        ),
    ],
    ids=["invalid-port", "duplicate-port-names", "unknown-field-strict", "bad-name"],
)
def test_invalid_manifest_error_text(
    kubectl: Kubectl, manifest: str, args: tuple[str, ...], expected: str
) -> None:
    proc = kubectl.run("apply", *args, "-f", "-", input=manifest, check=False)
    assert proc.returncode == 1
    assert proc.stderr == expected


def test_deployment_without_selector_is_invalid(kubectl: Kubectl) -> None:
    proc = kubectl.run("apply", "-f", "-", input=NO_SELECTOR, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith('The Deployment "nosel" is invalid: ')
    assert "spec.selector: Required value" in proc.stderr


def test_unknown_field_with_validate_warn_is_a_warning(kubectl: Kubectl) -> None:
    proc = kubectl.run("apply", "--validate=warn", "-f", "-", input=UNKNOWN_FIELD)
    assert proc.stdout == "service/unk created\n"
    assert 'Warning: unknown field "spec.foo"' in proc.stderr


def test_unknown_field_with_validate_false_is_dropped_silently(kubectl: Kubectl) -> None:
    proc = kubectl.run("apply", "--validate=false", "-f", "-", input=UNKNOWN_FIELD)
    assert proc.stdout == "service/unk created\n" and "Warning" not in proc.stderr
    assert "foo" not in kubectl("get", "svc", "unk", "-o", "jsonpath={.spec}")


def test_unknown_kind(kubectl: Kubectl) -> None:
    # With the default --validate=strict kubectl first looks for the kind's schema in
    # /openapi/v2 (protobuf); finding none, it goes on to the mapping error a real cluster gives.
    proc = kubectl.run("apply", "-f", "-", input=UNKNOWN_KIND, check=False)
    assert proc.returncode == 1
    assert 'no matches for kind "Frobnicator" in version "v1"' in proc.stderr
    assert "ensure CRDs are installed first" in proc.stderr


def test_requested_cluster_ip_in_use(kubectl: Kubectl) -> None:
    svc = BAD_PORT.replace("70000", "80").replace(
        "  selector:", "  clusterIP: 10.96.77.77\n  selector:"
    )
    kubectl("apply", "-f", "-", input=svc.replace("badport", "first"))
    proc = kubectl.run("apply", "-f", "-", input=svc.replace("badport", "second"), check=False)
    assert proc.stderr == (
        'The Service "second" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.77.77"}: '
        "failed to allocate IP 10.96.77.77: provided IP is already allocated\n"
    )


def test_missing_namespace(kubectl: Kubectl) -> None:
    proc = kubectl.run("create", "configmap", "c", "-n", "does-not-exist", check=False)
    assert (
        proc.stderr == 'error: failed to create configmap: namespaces "does-not-exist" not found\n'
    )


def test_wrong_token_is_unauthorized(kubectl: Kubectl, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = kubectl.kubeconfig.read_text()
    import yaml

    cfg = yaml.safe_load(text)
    cfg["users"][0]["user"]["token"] = "wrong"
    bad = tmp_path / "kubeconfig"
    bad.write_text(yaml.safe_dump(cfg))
    proc = Kubectl(bad, "default").run("get", "svc", check=False)
    assert proc.returncode == 1
    # With no discovery cache kubectl fails on discovery first and prints client-go's text,
    # exactly as against a real cluster; with a warm cache it prints "(Unauthorized)".
    assert proc.stderr.splitlines()[-1] in (
        "error: You must be logged in to the server (Unauthorized)",
        "error: You must be logged in to the server (the server has asked for the client to "
        "provide credentials)",
    )
