"""kubectl apply (client-side and server-side) of every kind, and kubectl get in its forms."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from apiserver_harness import Kubectl, RunningServer

MANIFEST = Path(__file__).parent / "manifests" / "all-kinds.yaml"
KINDS = [d["kind"] for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def _applied_names(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_manifest_covers_every_registered_kind() -> None:
    from svcnet.api.registry import REGISTRY

    assert {r.kind for r in REGISTRY.resources} <= set(KINDS)


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
