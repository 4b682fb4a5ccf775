"""The ingress add-on's objects (pure): what ``svcnet up`` applies for Ingresses to be served."""

from __future__ import annotations

from typing import Any

from svcnet.cluster.addons import IngressAddonSpec, ingress_addon_objects
from svcnet.ingress.model import CONTROLLER_NAME

SPEC = IngressAddonSpec(kubeconfig="/d/addons/ingress.kubeconfig", python="/v/bin/python")


def by_kind() -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in ingress_addon_objects(SPEC)}


def test_objects_are_applied_namespace_first_in_svcnet_ingress() -> None:
    kinds = [(o["kind"], o["metadata"].get("namespace", "")) for o in ingress_addon_objects(SPEC)]
    assert kinds == [
        ("Namespace", ""),
        ("ServiceAccount", "svcnet-ingress"),
        ("IngressClass", ""),
        ("GatewayClass", ""),
        ("Service", "svcnet-ingress"),
        ("Deployment", "svcnet-ingress"),
    ]


def test_ingress_class_svcnet_is_ours_and_the_default() -> None:
    ic = by_kind()["IngressClass"]
    assert ic["metadata"]["name"] == "svcnet"
    assert ic["spec"]["controller"] == CONTROLLER_NAME
    assert ic["metadata"]["annotations"] == {"ingressclass.kubernetes.io/is-default-class": "true"}


def test_one_load_balancer_service_on_80_and_443_selects_the_controller_pod() -> None:
    objs = by_kind()
    svc = objs["Service"]["spec"]
    assert svc["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"]) for p in svc["ports"]] == [(80, "http"), (443, "https")]
    pod = objs["Deployment"]["spec"]["template"]
    assert svc["selector"].items() <= pod["metadata"]["labels"].items()
    [container] = pod["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 80, "https": 443, "healthz": 10254,
    }  # fmt: skip


def test_the_controller_publishes_its_service_address_and_runs_haproxy() -> None:
    [container] = by_kind()["Deployment"]["spec"]["template"]["spec"]["containers"]
    argv = container["command"]
    assert argv[:3] == ["/v/bin/python", "-m", "svcnet.ingress"]
    assert argv[argv.index("--publish-service") + 1] == "svcnet-ingress/svcnet-ingress-controller"
    assert argv[argv.index("--kubeconfig") + 1] == "/d/addons/ingress.kubeconfig"
    assert container["readinessProbe"]["httpGet"]["port"] == 10254


def test_gateway_class_svcnet_names_the_gateway_controller() -> None:
    gc = by_kind()["GatewayClass"]
    assert (gc["metadata"]["name"], gc["spec"]["controllerName"]) == (
        "svcnet",
        "svcnet.io/gateway-controller",
    )
