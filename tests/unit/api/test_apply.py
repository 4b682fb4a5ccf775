"""Server-side apply and managed fields, after structured-merge-diff's behaviour."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from svcnet.api import schema
from svcnet.api.apply import (
    _field_values,
    decode_fields,
    encode_fields,
    fields_trie,
    path_string,
    server_side_apply,
    track_update,
)
from svcnet.api.errors import BadRequest, Conflict
from svcnet.api.schema import GroupVersionKind

SERVICE = GroupVersionKind("", "v1", "Service")
DEPLOYMENT = GroupVersionKind("apps", "v1", "Deployment")
GATEWAY = GroupVersionKind("gateway.networking.k8s.io", "v1", "Gateway")
T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"
P80 = 'k:{"port":80,"protocol":"TCP"}'
P443 = 'k:{"port":443,"protocol":"TCP"}'


def svc(ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": dict(spec),
    }
    if ports is not None:
        s["spec"]["ports"] = ports
    return s


def dep(replicas: int, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": replicas, **extra},
    }


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], set[tuple[str, ...]]]:
    return {
        (e["manager"], e["operation"]): decode_fields(e["fieldsV1"])
        for e in obj["metadata"].get("managedFields", [])
    }


def test_fields_v1_encoding_matches_upstream() -> None:
    paths = {
        ("f:spec", "f:ports"),
        ("f:spec", "f:ports", P80),
        ("f:spec", "f:ports", P80, "f:port"),
        ("f:metadata", "f:labels", "f:app"),
    }
    assert encode_fields(paths) == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:ports": {".": {}, P80: {".": {}, "f:port": {}}}},
    }
    assert decode_fields(encode_fields(paths)) == paths


@pytest.mark.parametrize(
    ("path", "want"),
    [
        (("f:spec", "f:replicas"), ".spec.replicas"),
        (
            ("f:spec", "f:ports", P80, "f:targetPort"),
            '.spec.ports[port=80,protocol="TCP"].targetPort',
        ),
        (("f:metadata", "f:finalizers", 'v:"a"'), '.metadata.finalizers[="a"]'),
    ],
)
def test_path_string(path: tuple[str, ...], want: str) -> None:
    assert path_string(path) == want


def test_first_apply_creates_and_owns_what_it_applied() -> None:
    out = server_side_apply(
        None, svc([{"port": 80}], selector={"app": "web"}), "kubectl", False, SERVICE, now=T0
    )
    assert out["spec"] == {"ports": [{"port": 80}], "selector": {"app": "web"}}
    [entry] = out["metadata"]["managedFields"]
    assert entry == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "v1",
        "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:spec": {
                "f:ports": {P80: {".": {}, "f:port": {}}},
                # ServiceSpec.selector is a map of type atomic upstream.
                "f:selector": {},
            }
        },
    }


def test_reapply_without_a_field_removes_it() -> None:
    live = server_side_apply(
        None,
        svc([{"port": 80}], selector={"app": "web"}, sessionAffinity="None"),
        "kubectl",
        False,
        SERVICE,
        now=T0,
    )
    out = server_side_apply(
        live, svc([{"port": 80}], selector={"app": "web"}), "kubectl", False, SERVICE, now=T1
    )
    assert "sessionAffinity" not in out["spec"]


def test_reapply_without_a_list_item_removes_it() -> None:
    live = server_side_apply(
        None, svc([{"port": 80}, {"port": 443}]), "kubectl", False, SERVICE, now=T0
    )
    out = server_side_apply(live, svc([{"port": 80}]), "kubectl", False, SERVICE, now=T1)
    assert out["spec"]["ports"] == [{"port": 80}]


def test_reapply_without_a_label_removes_it_and_the_empty_map() -> None:
    first = svc([{"port": 80}])
    first["metadata"]["labels"] = {"a": "1"}
    live = server_side_apply(None, first, "kubectl", False, SERVICE, now=T0)
    out = server_side_apply(live, svc([{"port": 80}]), "kubectl", False, SERVICE, now=T1)
    assert "labels" not in out["metadata"]


def test_field_owned_by_another_manager_survives_removal() -> None:
    live = server_side_apply(
        None, svc([{"port": 80}], sessionAffinity="None"), "a", False, SERVICE, now=T0
    )
    live = server_side_apply(live, svc(sessionAffinity="None"), "b", False, SERVICE, now=T0)
    out = server_side_apply(live, svc([{"port": 80}]), "a", False, SERVICE, now=T1)
    assert out["spec"]["sessionAffinity"] == "None"
    assert managers(out)[("b", "Apply")] == {("f:spec", "f:sessionAffinity")}


def test_two_managers_share_a_field_with_equal_values() -> None:
    live = server_side_apply(None, dep(3), "a", False, DEPLOYMENT, now=T0)
    out = server_side_apply(live, dep(3), "b", False, DEPLOYMENT, now=T1)
    m = managers(out)
    assert ("f:spec", "f:replicas") in m[("a", "Apply")] and ("f:spec", "f:replicas") in m[
        ("b", "Apply")
    ]


def test_conflict_with_an_applier() -> None:
    live = server_side_apply(None, dep(3), "a", False, DEPLOYMENT, now=T0)
    with pytest.raises(Conflict) as e:
        server_side_apply(live, dep(5), "b", False, DEPLOYMENT, now=T1)
    status = e.value.to_status()
    assert status["code"] == 409 and status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "a"',
            "field": ".spec.replicas",
        }
    ]


def test_conflict_with_an_updater_names_its_api_version() -> None:
    live = dep(3)
    track_update(None, live, "kubectl-client-side-apply", "Update", DEPLOYMENT, now=T0)
    with pytest.raises(
        Conflict,
        match=r"^Apply failed with 1 conflict: conflict with "
        r'"kubectl-client-side-apply" using apps/v1: \.spec\.replicas$',
    ):
        server_side_apply(live, dep(5), "kubectl", False, DEPLOYMENT, now=T1)


def test_several_conflicts_are_grouped_by_manager() -> None:
    live = server_side_apply(None, dep(3, minReadySeconds=1), "a", False, DEPLOYMENT, now=T0)
    with pytest.raises(Conflict) as e:
        server_side_apply(live, dep(5, minReadySeconds=2), "b", False, DEPLOYMENT, now=T1)
    assert e.value.message == (
        'Apply failed with 2 conflicts: conflicts with "a":\n'
        "- .spec.minReadySeconds\n- .spec.replicas"
    )


def test_force_takes_the_field_over() -> None:
    live = server_side_apply(None, dep(3), "a", False, DEPLOYMENT, now=T0)
    out = server_side_apply(live, dep(5), "b", True, DEPLOYMENT, now=T1)
    assert out["spec"]["replicas"] == 5
    m = managers(out)
    assert ("a", "Apply") not in m
    assert ("f:spec", "f:replicas") in m[("b", "Apply")]


def test_apply_after_kubectl_create_with_equal_values_does_not_conflict() -> None:
    live = dep(3)
    track_update(None, live, "kubectl-create", "Update", DEPLOYMENT, now=T0)
    out = server_side_apply(live, dep(3), "kubectl", False, DEPLOYMENT, now=T1)
    assert out["spec"]["replicas"] == 3


def test_object_without_managed_fields_is_owned_before_first_apply() -> None:
    with pytest.raises(
        Conflict,
        match=re.escape('conflict with "before-first-apply" using apps/v1: .spec.replicas'),
    ):
        server_side_apply(dep(3), dep(4), "kubectl", False, DEPLOYMENT, now=T1)


def test_list_map_items_merge_by_keys_with_other_owners_items_kept() -> None:
    live = server_side_apply(None, svc([{"port": 80, "name": "http"}]), "a", False, SERVICE, now=T0)
    out = server_side_apply(
        live, svc([{"port": 443, "name": "https"}]), "b", False, SERVICE, now=T1
    )
    assert out["spec"]["ports"] == [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]
    assert ("f:spec", "f:ports", P443) in managers(out)[("b", "Apply")]


def test_protocol_key_defaults_to_tcp_and_udp_is_a_different_item() -> None:
    live = server_side_apply(None, svc([{"port": 53}]), "a", False, SERVICE, now=T0)
    out = server_side_apply(
        live, svc([{"port": 53, "protocol": "UDP"}]), "b", False, SERVICE, now=T1
    )
    assert out["spec"]["ports"] == [{"port": 53}, {"port": 53, "protocol": "UDP"}]


def test_atomic_list_is_replaced() -> None:
    pod = {"containers": [{"name": "c", "args": ["a", "b"]}]}
    live = server_side_apply(None, dep(1, template={"spec": pod}), "a", False, DEPLOYMENT, now=T0)
    pod2 = {"containers": [{"name": "c", "args": ["z"]}]}
    out = server_side_apply(live, dep(1, template={"spec": pod2}), "a", False, DEPLOYMENT, now=T1)
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "c", "args": ["z"]}]


def test_gateway_api_list_map_listeners_by_name() -> None:
    gw = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "g", "namespace": "d"},
        "spec": {
            "gatewayClassName": "c",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }
    out = server_side_apply(None, gw, "a", False, GATEWAY, now=T0)
    assert ("f:spec", "f:listeners", 'k:{"name":"http"}') in managers(out)[("a", "Apply")]


def test_item_without_its_key_is_bad_request() -> None:
    with pytest.raises(BadRequest, match='omits key field "name"'):
        server_side_apply(
            None,
            dep(1, template={"spec": {"containers": [{"image": "x"}]}}),
            "a",
            False,
            DEPLOYMENT,
            now=T0,
        )


def test_unknown_field_is_bad_request() -> None:
    with pytest.raises(BadRequest) as e:
        server_side_apply(None, svc(foo=1), "a", False, SERVICE, now=T0)
    assert e.value.message == (
        "failed to create typed patch object (default/web; /v1, Kind=Service): "
        ".spec.foo: field not declared in schema"
    )


def test_status_is_not_applied_to_the_main_resource() -> None:
    applied = {**svc([{"port": 80}]), "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}
    out = server_side_apply(None, applied, "a", False, SERVICE, now=T0)
    assert "status" not in out


def test_server_metadata_is_kept() -> None:
    live = svc([{"port": 80}])
    live["metadata"].update(uid="u", resourceVersion="7", creationTimestamp=T0)
    track_update(None, live, "m", "Update", SERVICE, now=T0)
    out = server_side_apply(live, svc([{"port": 80}]), "kubectl", False, SERVICE, now=T1)
    assert (out["metadata"]["uid"], out["metadata"]["resourceVersion"]) == ("u", "7")


# --- track_update -----------------------------------------------------------------------------


def test_create_owns_every_field_but_server_metadata() -> None:
    obj = svc([{"port": 80, "protocol": "TCP"}], type="ClusterIP")
    obj["metadata"]["uid"] = "u"
    track_update(None, obj, "kubectl-create", "Update", SERVICE, now=T0)
    [entry] = obj["metadata"]["managedFields"]
    assert (
        entry["manager"] == "kubectl-create"
        and entry["operation"] == "Update"
        and entry["time"] == T0
    )
    assert entry["fieldsV1"] == {
        "f:spec": {"f:ports": {P80: {".": {}, "f:port": {}, "f:protocol": {}}}, "f:type": {}}
    }


def test_update_moves_changed_fields_to_the_writer() -> None:
    old = dep(3, minReadySeconds=1)
    track_update(None, old, "a", "Update", DEPLOYMENT, now=T0)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 4
    track_update(old, new, "b", "Update", DEPLOYMENT, now=T1)
    m = managers(new)
    assert m[("a", "Update")] == {("f:spec", "f:minReadySeconds")}
    assert m[("b", "Update")] == {("f:spec", "f:replicas")}


def test_update_that_changes_nothing_adds_no_entry() -> None:
    old = dep(3)
    track_update(None, old, "a", "Update", DEPLOYMENT, now=T0)
    new = copy.deepcopy(old)
    track_update(old, new, "b", "Update", DEPLOYMENT, now=T1)
    assert [e["manager"] for e in new["metadata"]["managedFields"]] == ["a"]


def test_removed_field_leaves_every_manager() -> None:
    old = dep(3, minReadySeconds=1)
    track_update(None, old, "a", "Update", DEPLOYMENT, now=T0)
    new = copy.deepcopy(old)
    del new["spec"]["minReadySeconds"]
    track_update(old, new, "b", "Update", DEPLOYMENT, now=T1)
    assert managers(new) == {("a", "Update"): {("f:spec", "f:replicas")}}


def test_entries_are_sorted_apply_first_then_by_time() -> None:
    obj = dep(3)
    track_update(None, obj, "z", "Update", DEPLOYMENT, now=T0)
    out = server_side_apply(obj, dep(3, minReadySeconds=2), "a", False, DEPLOYMENT, now=T1)
    assert [(e["manager"], e["operation"]) for e in out["metadata"]["managedFields"]] == [
        ("a", "Apply"),
        ("z", "Update"),
    ]


def test_python_client_reads_managed_fields() -> None:
    import json

    from kubernetes.client import ApiClient

    obj = svc([{"port": 80}])
    track_update(None, obj, "kubectl-create", "Update", SERVICE, now=T0)

    service = ApiClient().deserialize(json.dumps(obj), "V1Service", "application/json")
    [entry] = service.metadata.managed_fields
    assert (entry.manager, entry.operation, entry.fields_type) == (
        "kubectl-create",
        "Update",
        "FieldsV1",
    )
    assert entry.fields_v1 == obj["metadata"]["managedFields"][0]["fieldsV1"]


LAST = "kubectl.kubernetes.io/last-applied-configuration"


def _client_side_applied(replicas: int) -> dict[str, Any]:
    obj = dep(replicas)
    obj["metadata"]["annotations"] = {LAST: json.dumps(dep(replicas))}
    track_update(None, obj, "kubectl-client-side-apply", "Update", DEPLOYMENT, now=T0)
    return obj


def test_kubectl_may_take_fields_still_as_client_side_applied() -> None:
    out = server_side_apply(_client_side_applied(2), dep(4), "kubectl", False, DEPLOYMENT, now=T1)
    assert out["spec"]["replicas"] == 4
    # lastAppliedUpdater: the annotation now holds what kubectl applied.
    assert json.loads(out["metadata"]["annotations"][LAST]) == dep(4)


def test_kubectl_conflicts_on_fields_changed_since_client_side_apply() -> None:
    live = _client_side_applied(2)
    live["spec"]["replicas"] = 9  # changed by someone else since
    with pytest.raises(Conflict):
        server_side_apply(live, dep(4), "kubectl", False, DEPLOYMENT, now=T1)


def test_other_managers_get_no_last_applied_leniency() -> None:
    with pytest.raises(Conflict):
        server_side_apply(_client_side_applied(2), dep(4), "my-tool", False, DEPLOYMENT, now=T1)


@pytest.mark.parametrize(
    "obj",
    [
        svc([{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], type="ClusterIP"),
        {
            **dep(
                2,
                template={
                    "spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}
                },
            ),
            "metadata": {"name": "w", "labels": {"a": "b"}, "finalizers": ["x", "y"], "uid": "u"},
        },
        {**svc(), "status": {"loadBalancer": {}}},
        {**svc(), "spec": {"selector": {}}},
    ],
    ids=["service", "deployment", "status ignored", "empty map"],
)
def test_create_fast_path_matches_the_general_encoding(obj: dict[str, Any]) -> None:
    gvk = DEPLOYMENT if obj["kind"] == "Deployment" else SERVICE
    fast = fields_trie(obj, gvk)
    general = encode_fields(_field_values(obj, schema.root_schema(gvk), ("status",)))
    assert fast == general
    assert json.dumps(fast) == json.dumps(general)  # same key order too


def test_update_the_field_manager_cannot_type_drops_managed_fields() -> None:
    old = svc([{"port": 80}])
    track_update(None, old, "a", "Update", SERVICE, now=T0)
    new = copy.deepcopy(old)
    new["spec"]["ports"].append({"name": "no-port"})
    track_update(old, new, "b", "Update", SERVICE, now=T1)
    assert "managedFields" not in new["metadata"]


def test_apply_with_managed_fields_is_bad_request() -> None:
    applied = svc([{"port": 80}])
    applied["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(BadRequest, match=r"metadata\.managedFields must be nil"):
        server_side_apply(None, applied, "a", False, SERVICE, now=T0)
