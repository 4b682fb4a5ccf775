"""kubectl apply (client-side and server-side) of every kind, and kubectl get in its forms."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from apiserver_harness import Kubectl, RunningServer

from svcnet.api.registry import REGISTRY

MANIFEST = Path(__file__).parent / "manifests" / "all-kinds.yaml"
KINDS = [d["kind"] for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def _applied_names(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_client_side_apply_creates_every_kind_then_reports_unchanged(
    fresh_apiserver: RunningServer,
) -> None:
    k = Kubectl(fresh_apiserver.kubeconfig, "")
    out = k("apply", "-f", str(MANIFEST))
    assert len(_applied_names(out)) == len(KINDS)
    assert all(line.endswith(" created") for line in out.splitlines())
    before = _resource_versions(k)
    again = k("apply", "-f", str(MANIFEST))
    # kubectl says "configured" where its three-way patch is not empty although the server
    # ends up with the same object (Secret stringData, lists the server defaults into), as
    # against a real cluster; what matters is that nothing was rewritten.
    assert all(line.endswith((" unchanged", " configured")) for line in again.splitlines()), again
    assert _resource_versions(k) == before


ALL = (
    "namespaces,nodes,pods,services,endpoints,secrets,configmaps,serviceaccounts,events,"
    "endpointslices,deployments,replicasets,statefulsets,ingresses,ingressclasses,"
    "networkpolicies,gatewayclasses,gateways,httproutes,referencegrants,leases"
)


def _resource_versions(k: Kubectl) -> dict[str, str]:
    items = json.loads(k("get", ALL, "-A", "-o", "json"))["items"]
    return {
        f"{i['kind']}/{i['metadata'].get('namespace', '')}/{i['metadata']['name']}": i["metadata"][
            "resourceVersion"
        ]
        for i in items
    }


def test_server_side_apply_creates_every_kind_then_applies_again(
    fresh_apiserver: RunningServer,
) -> None:
    k = Kubectl(fresh_apiserver.kubeconfig, "")
    out = k("apply", "--server-side", "-f", str(MANIFEST))
    assert len(out.splitlines()) == len(KINDS)
    assert all(line.endswith(" serverside-applied") for line in out.splitlines())
    k("apply", "--server-side", "-f", str(MANIFEST))
    svc = json.loads(k("get", "svc", "web", "-o", "json", "--show-managed-fields"))
    managers = {m["manager"] for m in svc["metadata"]["managedFields"]}
    assert "kubectl" in managers


def test_get_wide_yaml_json_jsonpath(fresh_apiserver: RunningServer) -> None:
    k = Kubectl(fresh_apiserver.kubeconfig, "")
    k("apply", "-f", str(MANIFEST))
    wide = k("get", "svc", "-o", "wide").splitlines()
    assert wide[0].split() == [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
        "SELECTOR",
    ]
    rows = {line.split()[0]: line.split() for line in wide[1:]}
    assert rows["web-nodeport"][1] == "NodePort" and rows["web-nodeport"][4] == "80:30080/TCP"
    assert rows["web-lb"][3] == "<pending>"
    assert rows["my-database"][3] == "my-database.us-east-1.rds.amazonaws.com"
    assert rows["kubernetes"][2] == "10.96.0.1"
    pods = k("get", "pods", "-o", "wide").splitlines()
    assert pods[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    as_yaml = yaml.safe_load(k("get", "svc", "web", "-o", "yaml"))
    assert as_yaml["spec"]["ports"][0]["targetPort"] == 8080
    assert as_yaml["spec"]["clusterIP"].startswith("10.96.")
    as_json = json.loads(k("get", "deploy", "web", "-o", "json"))
    assert as_json["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": "25%",
        "maxUnavailable": "25%",
    }
    ip = k("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
    assert ip == as_yaml["spec"]["clusterIP"]


def test_get_all_namespaces_label_and_field_selectors(fresh_apiserver: RunningServer) -> None:
    k = Kubectl(fresh_apiserver.kubeconfig, "")
    k("apply", "-f", str(MANIFEST))
    netpols = k("get", "netpol", "-A").splitlines()
    assert netpols[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert sorted(line.split()[1] for line in netpols[1:]) == [
        "backend-allow-from-frontend-only",
        "default-deny-all",
    ]
    labelled = k("get", "svc", "-l", "provider=kubernetes", "-o", "name").split()
    assert labelled == ["service/kubernetes"]
    by_field = k("get", "svc", "--field-selector", "spec.type=NodePort", "-o", "name").split()
    assert by_field == ["service/web-nodeport"]
    not_name = k("get", "pods", "--field-selector", "metadata.name!=web-0", "-o", "name")
    assert not_name.strip() == ""
    ns_list = k("get", "ns", "-o", "name").split()
    assert {
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
        "namespace/kube-node-lease",
        "namespace/production",
    } <= set(ns_list)


# Kinds of the registry that `kubectl apply` cannot create, with the reason: every other kind
# must have an object in MANIFEST, so a kind added to the registry is covered (or fails here).
NOT_APPLIABLE = {
    r.kind: f"the registry serves no create or patch for it (verbs {', '.join(r.verbs)})"
    for r in REGISTRY.resources
    if not {"create", "patch"} <= set(r.verbs)
}
CSA_MANAGER = "kubectl-client-side-apply"


def _managers(k: Kubectl, path: Path) -> dict[str, set[tuple[str, str]]]:
    """(manager, operation) of each object of a manifest, by kind/namespace/name."""
    listed = json.loads(k("get", "-f", str(path), "-o", "json", "--show-managed-fields"))
    return {
        f"{i['kind']}/{i['metadata'].get('namespace', '')}/{i['metadata']['name']}": {
            (m["manager"], m["operation"]) for m in i["metadata"].get("managedFields", [])
        }
        for i in listed["items"]
    }


def test_server_side_apply_takes_over_every_kind_from_client_side_apply(
    fresh_apiserver: RunningServer,
) -> None:
    """`kubectl apply` then `kubectl apply --server-side`: kubectl's first apply, its migration of
    the client-side manager (a JSON patch of managedFields) and its apply after it all succeed,
    and neither diff sees a change."""
    missing = [
        r.kind for r in REGISTRY.resources if r.kind not in NOT_APPLIABLE and r.kind not in KINDS
    ]
    assert not missing, f"{MANIFEST.name} has no object of {missing}"
    k = Kubectl(fresh_apiserver.kubeconfig, "")
    k("apply", "-f", str(MANIFEST))
    assert all(CSA_MANAGER in {m for m, _ in ms} for ms in _managers(k, MANIFEST).values())
    ssa = k.run("apply", "--server-side", "-f", str(MANIFEST))
    # kubectl exits 0 but warns when the migration or the apply after it fails.
    assert ssa.stderr == ""
    assert [line.rsplit(" ", 1)[1] for line in ssa.stdout.splitlines()] == [
        "serverside-applied"
    ] * len(KINDS)
    for obj, managers in _managers(k, MANIFEST).items():
        assert CSA_MANAGER not in {m for m, _ in managers}, obj
        assert ("kubectl-last-applied", "Apply") in managers, obj
    server_side = k.run("diff", "--server-side", "-f", str(MANIFEST), check=False)
    assert (server_side.returncode, server_side.stdout, server_side.stderr) == (0, "", "")
    client_side = k.run("diff", "-f", str(MANIFEST), check=False)
    assert (client_side.returncode, client_side.stdout, client_side.stderr) == (0, "", "")


# The server defaults fields inside these atomic lists (EndpointPort.protocol; ParentReference
# group and kind, the rule's match, BackendRef group, kind and weight, as the Gateway API CRDs
# do): kube-apiserver's field manager compares the applied list with the stored one before
# defaulting it, and its lastAppliedManager forgives only fields whose live value still equals
# the last-applied one, so the first server-side apply conflicts with the client-side manager.
LEAVES_DEFAULTS_OUT = """
apiVersion: v1
kind: Endpoints
metadata: {name: manual}
subsets:
  - addresses: [{ip: 10.244.1.5}]
    ports: [{port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-route}
spec:
  parentRefs: [{name: edge}]
  hostnames: [web.example.com]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"""


def test_server_side_apply_after_client_side_apply_conflicts_on_defaulted_atomic_lists(
    kubectl: Kubectl,
) -> None:
    kubectl("apply", "-f", "-", input=LEAVES_DEFAULTS_OUT)
    ssa = kubectl.run("apply", "--server-side", "-f", "-", input=LEAVES_DEFAULTS_OUT, check=False)
    assert ssa.returncode == 1
    assert (
        f'Apply failed with 1 conflict: conflict with "{CSA_MANAGER}" using v1: .subsets\n'
        in ssa.stderr
    )
    assert (
        f'Apply failed with 2 conflicts: conflicts with "{CSA_MANAGER}" using '
        "gateway.networking.k8s.io/v1:\n- .spec.parentRefs\n- .spec.rules\n" in ssa.stderr
    )
    # kubectl's own advice: take the fields over; the server defaults the lists again.
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=LEAVES_DEFAULTS_OUT)
    route = json.loads(kubectl("get", "httproute", "web-route", "-o", "json"))
    assert route["spec"]["parentRefs"][0]["kind"] == "Gateway"
    diff = kubectl.run("diff", "--server-side", "-f", "-", input=LEAVES_DEFAULTS_OUT, check=False)
    assert (diff.returncode, diff.stdout) == (0, "")
