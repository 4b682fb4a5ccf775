"""CustomResourceDefinitions with the real kubectl: install, validate, default, prune, print,
explain, apply (client and server side), watch, subresources, versions, delete.

Each test runs its own API server (fresh_apiserver): CRDs are cluster-wide and change
discovery. The CRDs are in manifests/crd-widgets.yaml (Widget: namespaced, v1 + v1beta1,
status and scale; Gizmo: cluster-scoped).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from apiserver_harness import (
    KUBECTL,
    Http,
    Kubectl,
    RunningServer,
    start_in_thread,
    stop_in_thread,
)

from svcnet.apiserver.server import ApiServerConfig

MANIFESTS = Path(__file__).parent / "manifests"
CRDS = MANIFESTS / "crd-widgets.yaml"
GATEWAY_CRDS = MANIFESTS / "gateway-api-v1.2.1-standard-crds-subset.yaml"


def _install(k: Kubectl) -> None:
    k("apply", "-f", str(CRDS))
    k(
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "crd/gizmos.example.com",
        "--timeout=20s",
    )


def _widget(name: str, spec: str) -> str:
    return f"apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {spec}\n"


@pytest.fixture
def k(fresh_apiserver: RunningServer) -> Kubectl:
    kubectl = Kubectl(fresh_apiserver.kubeconfig, "default")
    _install(kubectl)
    return kubectl


def test_crd_is_established_with_names_accepted(k: Kubectl) -> None:
    crd = json.loads(k("get", "crd", "widgets.example.com", "-o", "json"))
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "True"
    assert conditions["NamesAccepted"]["reason"] == "NoConflicts"
    assert conditions["Established"]["status"] == "True"
    assert conditions["Established"]["reason"] == "InitialNamesAccepted"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["storedVersions"] == ["v1"]
    assert crd["spec"]["names"]["listKind"] == "WidgetList"
    out = k("get", "crd")
    assert out.splitlines()[0].split() == ["NAME", "CREATED", "AT"]
    assert {line.split()[0] for line in out.splitlines()[1:]} == {
        "widgets.example.com",
        "gizmos.example.com",
    }


def test_discovery_lists_custom_resources_live(k: Kubectl) -> None:
    rows = [line.split() for line in k("api-resources", "--api-group=example.com").splitlines()]
    assert rows[1:] == [
        ["gizmos", "example.com/v1", "false", "Gizmo"],
        ["widgets", "wd", "example.com/v1", "true", "Widget"],
    ]
    versions = k("api-versions").split()
    assert "example.com/v1" in versions and "example.com/v1beta1" in versions


def test_create_defaults_and_prints_columns(k: Kubectl) -> None:
    k("create", "-f", "-", input=_widget("w1", "{size: small}"))
    obj = json.loads(k("get", "wd", "w1", "-o", "json"))
    assert obj["spec"] == {"size": "small", "color": "red", "replicas": 1}
    assert "status" not in obj  # the status subresource: a create writes no status
    out = k("get", "widgets").splitlines()
    assert out[0].split() == ["NAME", "COLOR", "REPLICAS", "READY", "AGE"]
    assert out[1].split()[:3] == ["w1", "red", "1"]


def test_invalid_object_is_422_with_field_paths(k: Kubectl) -> None:
    proc = k.run(
        "create",
        "-f",
        "-",
        input=_widget("bad", "{size: LARGEXX, color: pink, replicas: 20, rules: [a, b, c]}"),
        check=False,
    )
    assert proc.returncode != 0
    err = proc.stderr
    assert 'The Widget "bad" is invalid:' in err
    assert (
        '* spec.color: Unsupported value: "pink": supported values: "red", "green", "blue"' in err
    )
    assert (
        "* spec.replicas: Invalid value: 20: spec.replicas in body should be less than or "
        "equal to 10" in err
    )
    assert "* spec.size: Too long: may not be more than 5 bytes" in err
    assert (
        "* spec.size: Invalid value: \"LARGEXX\": spec.size in body should match '^[a-z]+$'" in err
    )
    assert "* spec.rules: Too many: must have at most 2 items" in err
    cel = k.run(
        "create", "-f", "-", input=_widget("cel", "{size: a, rules: [forbidden]}"), check=False
    )
    assert (
        "spec.rules: Invalid value: \"array\": failed rule: self.all(r, r != 'forbidden')"
        in cel.stderr
    )
    missing = k.run("create", "-f", "-", input=_widget("nosize", "{color: red}"), check=False)
    assert "spec.size: Required value" in missing.stderr
    typed = k.run(
        "create", "-f", "-", input=_widget("typed", "{size: a, replicas: two}"), check=False
    )
    assert (
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type '
        'integer: "string"' in typed.stderr
    )


def test_int_or_string_preserve_unknown_and_embedded_resource(k: Kubectl) -> None:
    spec = (
        "{size: a, port: 8080, extra: {anything: {goes: here}}, "
        "template: {apiVersion: v1, kind: ConfigMap, metadata: {name: t}, data: {k: v}}}"
    )
    k("create", "-f", "-", input=_widget("w2", spec))
    obj = json.loads(k("get", "wd", "w2", "-o", "json"))
    assert obj["spec"]["port"] == 8080
    assert obj["spec"]["extra"] == {"anything": {"goes": "here"}}
    assert obj["spec"]["template"]["data"] == {"k": "v"}
    k("patch", "wd", "w2", "--type=merge", "-p", '{"spec":{"port":"http"}}')
    assert json.loads(k("get", "wd", "w2", "-o", "json"))["spec"]["port"] == "http"
    bad = k.run("patch", "wd", "w2", "--type=merge", "-p", '{"spec":{"port":true}}', check=False)
    assert "spec.port in body must be of type integer,string" in bad.stderr
    no_kind = k.run(
        "patch", "wd", "w2", "--type=merge", "-p", '{"spec":{"template":{"kind":null}}}',
        check=False,
    )  # fmt: skip
    assert "spec.template.kind: Required value" in no_kind.stderr


def test_unknown_fields_are_pruned(fresh_apiserver: RunningServer, k: Kubectl) -> None:
    # kubectl's default --validate=strict refuses unknown fields (as upstream); without it
    # the server prunes them.
    strict = k.run("create", "-f", "-", input=_widget("s", "{size: a, bogus: 1}"), check=False)
    assert 'unknown field "spec.bogus"' in strict.stderr
    k("create", "--validate=false", "-f", "-", input=_widget("p", "{size: a, bogus: 1}"))
    obj = json.loads(k("get", "wd", "p", "-o", "json"))
    assert "bogus" not in obj["spec"]
    raw = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "raw"},
        "spec": {"size": "b", "deep": {"x": 1}},
        "top": "level",
    }
    status, _, body = Http(fresh_apiserver).request(
        "POST", "/apis/example.com/v1/namespaces/default/widgets", json.dumps(raw).encode()
    )
    assert status == 201, body
    created = json.loads(body)
    assert "deep" not in created["spec"] and "top" not in created


def test_explain_uses_the_crd_schema(k: Kubectl) -> None:
    out = k("explain", "widgets.spec")
    assert "KIND:       Widget" in out
    assert "What the widget should be." in out
    assert "size\t<string> -required-" in out
    assert "The size of the widget." in out


def test_server_side_apply_of_custom_resources(k: Kubectl) -> None:
    out = k("apply", "--server-side", "-f", "-", input=_widget("ssa", "{size: abc, color: blue}"))
    assert "serverside-applied" in out
    obj = json.loads(k("get", "wd", "ssa", "-o", "json", "--show-managed-fields"))
    managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
    assert "kubectl" in managers
    assert obj["spec"]["color"] == "blue"
    k("apply", "--server-side", "-f", "-", input=_widget("ssa", "{size: abc, color: green}"))
    assert json.loads(k("get", "wd", "ssa", "-o", "json"))["spec"]["color"] == "green"
    conflict = k.run(
        "apply", "--server-side", "--field-manager=other", "-f", "-",
        input=_widget("ssa", "{size: abc, color: red}"), check=False,
    )  # fmt: skip
    assert conflict.returncode != 0 and "conflict" in conflict.stderr.lower()


def test_status_and_spec_are_written_apart(k: Kubectl) -> None:
    k("create", "-f", "-", input=_widget("st", "{size: a}"))
    k(
        "patch", "wd", "st", "--subresource=status", "--type=merge", "-p",
        '{"status":{"replicas":2,"conditions":[{"type":"Ready","status":"True"}]},'
        '"spec":{"size":"zzz"}}',
    )  # fmt: skip
    obj = json.loads(k("get", "wd", "st", "-o", "json"))
    assert obj["status"]["replicas"] == 2
    assert obj["spec"]["size"] == "a"  # the status subresource ignores spec
    k("patch", "wd", "st", "--type=merge", "-p", '{"status":{"replicas":9},"spec":{"size":"b"}}')
    obj = json.loads(k("get", "wd", "st", "-o", "json"))
    assert obj["status"]["replicas"] == 2  # the main resource ignores status
    assert obj["spec"]["size"] == "b"
    assert obj["metadata"]["generation"] == 2
    assert k("get", "wd", "st", "--no-headers").split()[3] == "True"  # the Ready column


def test_scale_subresource(k: Kubectl) -> None:
    k("create", "-f", "-", input=_widget("sc", "{size: a}"))
    k("scale", "widget", "sc", "--replicas=4")
    assert json.loads(k("get", "wd", "sc", "-o", "json"))["spec"]["replicas"] == 4
    scale = json.loads(
        k("get", "--raw", "/apis/example.com/v1/namespaces/default/widgets/sc/scale")
    )
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 4
    over = k.run("scale", "widget", "sc", "--replicas=11", check=False)
    assert "spec.replicas in body should be less than or equal to 10" in over.stderr


def test_versions_share_objects_with_none_conversion(k: Kubectl) -> None:
    k("create", "-f", "-", input=_widget("mv", "{size: a}"))
    beta = json.loads(k("get", "widgets.v1beta1.example.com", "mv", "-o", "json"))
    assert beta["apiVersion"] == "example.com/v1beta1"
    assert beta["spec"]["size"] == "a"
    listed = json.loads(k("get", "--raw", "/apis/example.com/v1beta1/namespaces/default/widgets"))
    assert [i["apiVersion"] for i in listed["items"]] == ["example.com/v1beta1"]
    # Stop serving v1beta1: its path goes, v1 keeps the object.
    crd = json.loads(k("get", "crd", "widgets.example.com", "-o", "json"))
    crd["spec"]["versions"][1]["served"] = False
    k("replace", "-f", "-", input=json.dumps(crd))
    _until(lambda: "example.com/v1beta1" not in k("api-versions").split())
    assert json.loads(k("get", "wd", "mv", "-o", "json"))["apiVersion"] == "example.com/v1"


def test_cluster_scoped_custom_resource(k: Kubectl) -> None:
    doc = "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g1}\nspec: {level: 3}\n"
    k("create", "-f", "-", input=doc)
    obj = json.loads(k("get", "gizmo", "g1", "-o", "json"))
    assert "namespace" not in obj["metadata"]
    assert k("get", "gizmos", "--no-headers").split()[0] == "g1"


def test_watch_sees_custom_resource_events(fresh_apiserver: RunningServer, k: Kubectl) -> None:
    env = {
        "KUBECONFIG": str(fresh_apiserver.kubeconfig),
        "HOME": str(fresh_apiserver.kubeconfig.parent),
    }
    watcher = subprocess.Popen(
        [KUBECTL, "-n", "default", "get", "widgets", "-w", "--output-watch-events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(1.0)  # the watch is open (an event before it would come as ADDED anyway)
        k("create", "-f", "-", input=_widget("wa", "{size: a, color: blue}"))
        k("delete", "wd", "wa")
        rows: list[list[str]] = []
        assert watcher.stdout is not None
        while not any(r[0] == "DELETED" for r in rows):
            line = watcher.stdout.readline()
            if not line:
                break
            rows.append(line.split())
    finally:
        watcher.kill()
        watcher.wait()
    # Table rows over the watch, with the CRD's printer columns.
    assert rows[0] == ["EVENT", "NAME", "COLOR", "REPLICAS", "READY", "AGE"]
    assert rows[1][:4] == ["ADDED", "wa", "blue", "1"]
    assert rows[-1][:2] == ["DELETED", "wa"]


def test_deleting_the_crd_deletes_its_objects(fresh_apiserver: RunningServer, k: Kubectl) -> None:
    k("create", "-f", "-", input=_widget("gone", "{size: a}"))
    k("delete", "crd", "widgets.example.com")
    _until(lambda: "widgets.example.com" not in k("get", "crd", "-o", "name"))
    assert "example.com/v1beta1" not in k("api-versions").split()
    # The objects are gone from the store, not only unserved (the CRD again serves the path).
    _install(k)
    status, _, _ = Http(fresh_apiserver).request(
        "GET", "/apis/example.com/v1/namespaces/default/widgets/gone"
    )
    assert status == 404
    assert k("get", "widgets", "-o", "name") == ""


def test_gateway_api_crds_apply_and_built_in_kinds_keep_working(k: Kubectl) -> None:
    out = k("apply", "-f", str(GATEWAY_CRDS))
    assert "gatewayclasses.gateway.networking.k8s.io created" in out
    k("wait", "--for=condition=Established", "crd/gatewayclasses.gateway.networking.k8s.io",
      "crd/referencegrants.gateway.networking.k8s.io", "--timeout=20s")  # fmt: skip
    again = k("apply", "-f", str(GATEWAY_CRDS))
    assert "unchanged" in again or "configured" in again
    gc = (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: gc1}\n"
        "spec: {controllerName: example.com/ctrl}\n"
    )
    k("apply", "-f", "-", input=gc)
    obj = json.loads(k("get", "gatewayclass", "gc1", "-o", "json"))
    # The built-in GatewayClass (its own defaulting and status), not the CRD's.
    assert obj["status"]["conditions"][0]["reason"] == "Pending"
    k("delete", "crd", "gatewayclasses.gateway.networking.k8s.io")
    _until(lambda: "gatewayclasses" not in k("get", "crd", "-o", "name"))
    # The built-in kind is not a CRD's: deleting the CRD deletes nothing.
    assert (
        k("get", "gatewayclass", "gc1", "-o", "name")
        == "gatewayclass.gateway.networking.k8s.io/gc1\n"
    )


def test_crd_validation_errors(fresh_apiserver: RunningServer) -> None:
    k = Kubectl(fresh_apiserver.kubeconfig, "")
    bad = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  group: example.com
  scope: Somewhere
  names: {plural: things, kind: Thing}
  versions:
    - name: v1
      served: true
      storage: false
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              properties:
                a: {type: string}
"""
    proc = k.run("create", "-f", "-", input=bad, check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert (
        'spec.scope: Unsupported value: "Somewhere": supported values: "Cluster", "Namespaced"'
        in err
    )
    assert "must have exactly one version marked as storage version" in err
    assert (
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: "
        "must not be empty for specified object fields" in err
    )


def _until(check: object, timeout: float = 15.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.1)


def test_stored_crds_are_served_at_once_after_a_restart(tmp_path: Path) -> None:
    config = ApiServerConfig(data_dir=tmp_path / "server", port=0)
    running, thread = start_in_thread(config)
    try:
        k = Kubectl(running.kubeconfig, "default")
        _install(k)
        k("create", "-f", "-", input=_widget("kept", "{size: a}"))
    finally:
        stop_in_thread(running, thread)
    running, thread = start_in_thread(ApiServerConfig(data_dir=tmp_path / "server", port=0))
    try:
        k = Kubectl(running.kubeconfig, "default")
        # No wait for Established: the restarted server serves stored CRDs before it listens.
        assert k("get", "wd", "kept", "-o", "jsonpath={.spec.color}") == "red"
    finally:
        stop_in_thread(running, thread)


def test_strategic_merge_patch_is_refused_and_categories_reach_get_all(k: Kubectl) -> None:
    k("create", "-f", "-", input=_widget("cat", "{size: a}"))
    smp = k.run("patch", "wd", "cat", "-p", '{"spec":{"color":"blue"}}', check=False)
    assert (
        "application/strategic-merge-patch+json is not supported by example.com/v1, Kind=Widget"
        in smp.stderr
    )
    assert "widget.example.com/cat" in k("get", "all", "-o", "name").split()


def test_cel_transition_rule_makes_a_field_immutable(k: Kubectl) -> None:
    k("create", "-f", "-", input=_widget("zoned", "{size: a, zone: east}"))
    k("patch", "wd", "zoned", "--type=merge", "-p", '{"spec":{"size":"b"}}')
    moved = k.run(
        "patch", "wd", "zoned", "--type=merge", "-p", '{"spec":{"zone":"west"}}', check=False
    )
    assert 'spec.zone: Invalid value: "string": zone is immutable' in moved.stderr
    assert json.loads(k("get", "wd", "zoned", "-o", "json"))["spec"]["zone"] == "east"
