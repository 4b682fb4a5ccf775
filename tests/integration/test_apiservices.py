"""APIService (apiregistration.k8s.io/v1) with the real kubectl against the in-process API
server: the ``Local`` APIServices registered for every served group version (a CRD's too),
``kubectl get apiservices`` as upstream prints it, the Python client suite's create-twice
conflict with upstream's exact Status body, validation errors, and a non-local APIService
stored but reported unavailable (svcnet proxies to no aggregated API server).

Each test runs its own API server: APIServices are cluster-scoped and the server makes some.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from apiserver_harness import Http, Kubectl, RunningServer

from svcnet.api.apiservice import AUTOMANAGED_LABEL, NOT_PROXIED

MANIFESTS = Path(__file__).parent / "manifests"
PATH = "/apis/apiregistration.k8s.io/v1/apiservices"

# kubernetes-client/python's kubernetes/e2e_test/test_yaml/api-service.yaml.
WARDLE = """
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1alpha1.wardle.k8s.io
spec:
  insecureSkipTLSVerify: true
  group: wardle.k8s.io
  groupPriorityMinimum: 1000
  versionPriority: 15
  service:
    name: api
    namespace: wardle
  version: v1alpha1
"""
# What that suite's test_create_apiservice_from_yaml_with_conflict expects after
# "Error from server (Conflict): " (the body, byte for byte, with json.Encoder's newline).
CONFLICT_BODY = (
    '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
    '"message":"apiservices.apiregistration.k8s.io \\"v1alpha1.wardle.k8s.io\\" already exists",'
    '"reason":"AlreadyExists","details":{"name":"v1alpha1.wardle.k8s.io",'
    '"group":"apiregistration.k8s.io","kind":"apiservices"},"code":409}\n'
)


@pytest.fixture
def k(fresh_apiserver: RunningServer) -> Kubectl:
    return Kubectl(fresh_apiserver.kubeconfig, "")


def rows(k: Kubectl, *args: str) -> dict[str, list[str]]:
    """``kubectl get`` lines by name, cut at runs of 2+ spaces (cells may hold one space)."""
    lines = [re.split(r"\s{2,}", line.strip()) for line in k("get", *args).splitlines()]
    return {line[0]: line for line in lines}


def eventually_row(k: Kubectl, name: str, cells: list[str], timeout: float = 20) -> None:
    """Wait until ``kubectl get apiservice NAME`` shows ``cells`` (NAME, SERVICE, AVAILABLE)."""
    deadline = time.monotonic() + timeout
    got: list[str] = []
    while time.monotonic() < deadline:
        got = rows(k, "apiservices").get(name, [])[:3]
        if got == cells:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name}: {got} != {cells}")


def test_get_lists_a_local_apiservice_per_served_group_version(k: Kubectl) -> None:
    table = rows(k, "apiservices")
    assert table["NAME"] == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    for name in ("v1.", "v1.apps", "v1.networking.k8s.io", "v1.apiregistration.k8s.io"):
        assert table[name][1:3] == ["Local", "True"], table[name]
    apps = json.loads(k("get", "apiservice", "v1.apps", "-o", "json"))
    assert apps["metadata"]["labels"] == {AUTOMANAGED_LABEL: "onstart"}
    assert apps["spec"] == {
        "group": "apps",
        "version": "v1",
        "groupPriorityMinimum": 17800,
        "versionPriority": 15,
    }
    (available,) = apps["status"]["conditions"]
    assert {key: available[key] for key in ("type", "status", "reason", "message")} == {
        "type": "Available",
        "status": "True",
        "reason": "Local",
        "message": "Local APIServices are always available",
    }


def test_a_deleted_local_apiservice_is_registered_again(k: Kubectl) -> None:
    assert k("delete", "apiservice", "v1.apps").strip() == (
        'apiservice.apiregistration.k8s.io "v1.apps" deleted'
    )
    eventually_row(k, "v1.apps", ["v1.apps", "Local", "True"])


def test_a_crd_group_version_gets_a_local_apiservice_and_loses_it(k: Kubectl) -> None:
    k("apply", "-f", str(MANIFESTS / "crd-widgets.yaml"))
    eventually_row(k, "v1.example.com", ["v1.example.com", "Local", "True"])
    labels = json.loads(k("get", "apiservice", "v1.example.com", "-o", "json"))["metadata"]
    assert labels["labels"] == {AUTOMANAGED_LABEL: "true"}
    k("delete", "-f", str(MANIFESTS / "crd-widgets.yaml"))
    deadline = time.monotonic() + 20
    while "v1.example.com" in rows(k, "apiservices") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "v1.example.com" not in rows(k, "apiservices")


def test_create_twice_is_already_exists_with_upstreams_status_body(
    k: Kubectl, fresh_apiserver: RunningServer
) -> None:
    assert k("create", "-f", "-", input=WARDLE).strip() == (
        "apiservice.apiregistration.k8s.io/v1alpha1.wardle.k8s.io created"
    )
    again = k.run("create", "-f", "-", input=WARDLE, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        'Error from server (AlreadyExists): error when creating "STDIN": '
        'apiservices.apiregistration.k8s.io "v1alpha1.wardle.k8s.io" already exists'
    )
    # The Python client's create_from_yaml posts JSON and prints the body it gets back.
    obj = json.loads(k("create", "-f", "-", "--dry-run=client", "-o", "json", input=WARDLE))
    code, _, body = Http(fresh_apiserver).request("POST", PATH, json.dumps(obj).encode())
    assert (code, body.decode()) == (409, CONFLICT_BODY)
    stored = json.loads(k("get", "apiservice", "v1alpha1.wardle.k8s.io", "-o", "json"))
    assert stored["spec"]["service"] == {"name": "api", "namespace": "wardle", "port": 443}
    assert k("delete", "apiservice", "v1alpha1.wardle.k8s.io").strip() == (
        'apiservice.apiregistration.k8s.io "v1alpha1.wardle.k8s.io" deleted'
    )
    assert "v1alpha1.wardle.k8s.io" not in rows(k, "apiservices")


def test_the_python_client_suites_conflict_test_passes(
    fresh_apiserver: RunningServer, tmp_path: Path
) -> None:
    """The body of the suite's test_create_apiservice_from_yaml_with_conflict, with the
    installed client, against this server."""
    from kubernetes import client, config, utils

    manifest = tmp_path / "api-service.yaml"
    manifest.write_text(WARDLE)
    k8s_client = config.new_client_from_config(config_file=str(fresh_apiserver.kubeconfig))
    utils.create_from_yaml(k8s_client, str(manifest))
    reg_api = client.ApiregistrationV1Api(k8s_client)
    svc = reg_api.read_api_service(name="v1alpha1.wardle.k8s.io")
    assert (svc.metadata.name, svc.spec.group, svc.spec.version) == (
        "v1alpha1.wardle.k8s.io",
        "wardle.k8s.io",
        "v1alpha1",
    )
    with pytest.raises(utils.FailToCreateError) as failed:
        utils.create_from_yaml(k8s_client, str(manifest))
    assert str(failed.value) == "Error from server (Conflict): " + CONFLICT_BODY
    reg_api.delete_api_service(name="v1alpha1.wardle.k8s.io", body={})
    with pytest.raises(client.ApiException) as gone:
        reg_api.read_api_service(name="v1alpha1.wardle.k8s.io")
    assert gone.value.status == 404
    k8s_client.close()


def _condition(k: Kubectl, name: str) -> dict[str, str]:
    obj = json.loads(k("get", "apiservice", name, "-o", "json"))
    (available,) = obj["status"]["conditions"]
    return {key: available[key] for key in ("status", "reason", "message")}


def test_a_non_local_apiservice_is_stored_and_reported_unavailable(k: Kubectl) -> None:
    name = "v1alpha1.wardle.k8s.io"
    k("create", "-f", "-", input=WARDLE)
    eventually_row(k, name, [name, "wardle/api", "False (ServiceNotFound)"])
    assert _condition(k, name) == {
        "status": "False",
        "reason": "ServiceNotFound",
        "message": f'service/api in "wardle" is not present ({NOT_PROXIED})',
    }
    k("create", "namespace", "wardle")
    k("-n", "wardle", "create", "service", "clusterip", "api", "--tcp=443:8443")
    # kubectl wakes no loop for a Service: the periodic pass finds it.
    eventually_row(k, name, [name, "wardle/api", "False (EndpointsNotFound)"])
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "api", "namespace": "wardle"},
        "subsets": [
            {"addresses": [{"ip": "10.244.1.5"}], "ports": [{"name": "443-8443", "port": 8443}]}
        ],
    }
    k("create", "-f", "-", input=json.dumps(endpoints))
    eventually_row(k, name, [name, "wardle/api", "False (FailedDiscoveryCheck)"])
    assert _condition(k, name) == {
        "status": "False",
        "reason": "FailedDiscoveryCheck",
        "message": f"{NOT_PROXIED}: requests for wardle.k8s.io/v1alpha1 are not forwarded to "
        'service/api in "wardle"',
    }


@pytest.mark.parametrize(
    ("manifest", "errors"),
    [
        (
            {"name": "wrong", "spec": {"group": "wardle.k8s.io", "version": "v1alpha1",
                                       "groupPriorityMinimum": 1000, "versionPriority": 15}},
            ['metadata.name: Invalid value: "wrong": must be `spec.version+"."+spec.group`: '
             '"v1alpha1.wardle.k8s.io"'],
        ),
        (
            {"name": "v1alpha1.wardle.k8s.io", "spec": {"group": "wardle.k8s.io",
                                                        "version": "v1alpha1"}},
            ["spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
             "spec.versionPriority: Invalid value: 0: must be positive and less than 1000"],
        ),
        (
            {"name": "v1alpha1.", "spec": {"version": "v1alpha1", "groupPriorityMinimum": 1,
                                           "versionPriority": 1, "insecureSkipTLSVerify": True}},
            ["spec.group: Required value: only v1 may have an empty group and it better be "
             "legacy kube",
             "spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have "
             "insecureSkipTLSVerify"],
        ),
        (
            {"name": "v1.wardle.k8s.io", "spec": {
                "group": "wardle.k8s.io", "version": "v1", "groupPriorityMinimum": 1,
                "versionPriority": 1, "insecureSkipTLSVerify": True, "caBundle": "cGVt",
                "service": {"name": "", "namespace": "w", "port": 70000}}},
            ["spec.service.name: Required value",
             "spec.service.port: Invalid value: 70000: port is not valid: must be between 1 "
             "and 65535, inclusive",
             "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is "
             "present"],
        ),
    ],
    ids=["name-not-version-dot-group", "priorities-missing", "local-with-tls", "bad-service"],
)  # fmt: skip
def test_validation_errors_as_upstream(
    k: Kubectl, manifest: dict[str, object], errors: list[str]
) -> None:
    obj = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": manifest["name"]},
        "spec": manifest["spec"],
    }
    proc = k.run("create", "-f", "-", input=json.dumps(obj), check=False)
    assert proc.returncode == 1
    head = f'The APIService "{manifest["name"]}" is invalid: '
    if len(errors) == 1:
        assert proc.stderr.strip() == head + errors[0]
    else:
        assert proc.stderr.strip().splitlines() == [head, *(f"* {e}" for e in errors)]
