"""The controller loop against the fake API server and the fake HAProxy: informers → model →
applier, endpoint changes without reload, Ingress status and Warning events.

Fixture ranges: endpoints 10.244.1.0/24, the controller's LoadBalancer address 172.18.255.7.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from svcnet.api.registry import EVENTS, GATEWAYS
from svcnet.client.events import EventRecorder
from svcnet.client.fake import TOKEN, FakeApiServer
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient
from svcnet.dataplane.haproxy import HaproxyApplier
from svcnet.dataplane.haproxy_fake import FakeHaproxy
from svcnet.ingress.controller import IngressController
from svcnet.ingress.gateway import GATEWAY_PORT_BASE
from svcnet.ingress.gatewayclass import SUPPORTED_FEATURES
from svcnet.testing.polling import eventually
from tests.unit.ingress.builders import (
    endpoint_slice,
    ingress,
    ingress_class,
    path,
    rule,
    service,
)
from tests.unit.ingress.gwbuilders import gateway, http_rule, listener, ref, route
from tests.unit.ingress.test_model import LAYOUT

WEB = "default_web_80"
LB_IP = "172.18.255.7"


def typed(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    rt = {
        "IngressClass": ("networking.k8s.io/v1", "IngressClass"),
        "Ingress": ("networking.k8s.io/v1", "Ingress"),
        "Service": ("v1", "Service"),
        "EndpointSlice": ("discovery.k8s.io/v1", "EndpointSlice"),
    }[kind]
    return {"apiVersion": rt[0], "kind": rt[1], **obj}


@dataclass
class World:
    api: FakeApiServer
    haproxy: FakeHaproxy
    controller: IngressController

    def put(self, obj: dict[str, Any], kind: str) -> None:
        self.api.put(typed(obj, kind))

    async def until(self, what: str, check: Callable[[], bool]) -> None:
        async def holds() -> bool:
            return check()

        await eventually(holds, what=what)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    api = FakeApiServer()
    await api.start()
    client = ApiClient(ClientConfig(server=api.url, token=TOKEN))
    client.open()
    factory = SharedInformerFactory(client)
    haproxy = FakeHaproxy()
    recorder = EventRecorder(client, "svcnet-ingress-controller")
    controller = IngressController(
        factory,
        HaproxyApplier(haproxy, tmp_path),
        LAYOUT,
        publish_service=("svcnet-ingress", "controller"),
        status_client=client,
        recorder=recorder,
    )
    lb = service("controller", namespace="svcnet-ingress")
    lb["spec"]["selector"] = {"app": "ingress"}
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": LB_IP, "ipMode": "VIP"}]}}
    api.put(typed(lb, "Service"))
    api.put(typed(ingress_class(default=True), "IngressClass"))
    api.put(typed(service("web"), "Service"))
    tasks = [
        *factory.start(),
        asyncio.create_task(controller.run()),
        asyncio.create_task(recorder.run()),
    ]
    try:
        yield World(api, haproxy, controller)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        await api.close()


def ips(n: int) -> list[str]:
    return [f"10.244.1.{i + 2}" for i in range(n)]


def served(world: World) -> list[str]:
    return [addr for addr, _, _ in world.haproxy.served(WEB)]


async def test_an_ingress_is_served_and_scaling_needs_no_reload(world: World) -> None:
    world.put(endpoint_slice("web", *ips(3)), "EndpointSlice")
    world.put(
        ingress("main", rule("app.example.com", path("/", "web")), class_name=None), "Ingress"
    )
    await world.until("three endpoints served", lambda: served(world) == ips(3))

    world.put(endpoint_slice("web", *ips(10)), "EndpointSlice")
    await world.until("ten endpoints served", lambda: served(world) == sorted(ips(10)))
    world.put(endpoint_slice("web", *ips(3)), "EndpointSlice")
    await world.until("back to three", lambda: served(world) == ips(3))
    assert world.haproxy.reloads == 0

    world.put(ingress("main", rule("app.example.com", path("/v2", "web")), class_name=None),
              "Ingress")  # fmt: skip
    await world.until("the route change reloaded", lambda: world.haproxy.reloads == 1)


async def test_ingress_status_shows_the_controller_service_address(world: World) -> None:
    world.put(ingress("main", rule("app.example.com", path("/", "web"))), "Ingress")

    def status() -> Any:
        obj = world.api.objects.get(("networking.k8s.io", "ingresses", "default", "main"))
        return ((obj or {}).get("status") or {}).get("loadBalancer")

    await world.until("status written", lambda: status() == {"ingress": [{"ip": LB_IP}]})


async def test_a_missing_backend_service_is_a_warning_event(world: World) -> None:
    world.put(ingress("m", rule("m.example.com", path("/", "gone"))), "Ingress")

    def events() -> list[tuple[str, str]]:
        return [
            (o.get("reason", ""), o.get("involvedObject", {}).get("name", ""))
            for k, o in world.api.objects.items()
            if k[1] == EVENTS.plural
        ]

    await world.until("event posted", lambda: ("ServiceNotFound", "m") in events())
    assert world.haproxy.running  # the rest is served


async def test_our_gateway_class_is_accepted(world: World) -> None:
    world.api.put({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "svcnet", "generation": 1},
        "spec": {"controllerName": "svcnet.io/gateway-controller"},
    })  # fmt: skip
    world.api.put({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "other", "generation": 1},
        "spec": {"controllerName": "example.net/gateway-controller"},
    })  # fmt: skip

    def conditions(name: str) -> list[Any]:
        obj = world.api.objects.get(("gateway.networking.k8s.io", "gatewayclasses", "", name))
        return list(((obj or {}).get("status") or {}).get("conditions") or [])

    await world.until(
        "accepted", lambda: [c["reason"] for c in conditions("svcnet")] == ["Accepted"]
    )
    assert conditions("other") == []


GW_IP = "172.18.255.8"


async def test_a_gateway_gets_its_own_service_address_and_status(world: World) -> None:
    gw_api = "gateway.networking.k8s.io/v1"
    world.api.put({"apiVersion": gw_api, "kind": "GatewayClass", "metadata": {"name": "svcnet"},
                   "spec": {"controllerName": "svcnet.io/gateway-controller"}})  # fmt: skip
    world.api.put({"apiVersion": gw_api, "kind": "Gateway", **gateway("gw", listener("http"))})
    world.api.put({"apiVersion": gw_api, "kind": "HTTPRoute",
                   **route("r", http_rule(ref("web")), hostnames=["gw.example.com"])})  # fmt: skip
    world.put(endpoint_slice("web", *ips(2)), "EndpointSlice")
    svc_key = ("", "services", "svcnet-ingress", "gw-default-gw")
    await world.until("the Gateway's Service", lambda: svc_key in world.api.objects)
    svc = world.api.objects[svc_key]
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["ports"] == [
        {"name": "port-80", "port": 80, "protocol": "TCP", "targetPort": GATEWAY_PORT_BASE}
    ]
    assert svc["spec"]["selector"] == world.api.objects[
        ("", "services", "svcnet-ingress", "controller")]["spec"]["selector"]  # fmt: skip
    assert served(world) == ips(2)

    def gw_status() -> dict[str, Any]:
        obj = world.api.objects[("gateway.networking.k8s.io", "gateways", "default", "gw")]
        return dict(obj.get("status") or {})

    await world.until(
        "waiting for an address",
        lambda: (
            [c["reason"] for c in gw_status().get("conditions", [])]
            == ["Accepted", "AddressNotAssigned"]
        ),
    )
    world.api.put({**svc, "status": {"loadBalancer": {"ingress": [{"ip": GW_IP}]}}})
    await world.until(
        "programmed",
        lambda: gw_status().get("addresses") == [{"type": "IPAddress", "value": GW_IP}],
    )
    assert [c["reason"] for c in gw_status()["conditions"]] == ["Accepted", "Programmed"]
    assert gw_status()["listeners"][0]["attachedRoutes"] == 1

    def parents() -> list[Any]:
        obj = world.api.objects[("gateway.networking.k8s.io", "httproutes", "default", "r")]
        return list((obj.get("status") or {}).get("parents") or [])

    await world.until("route accepted", lambda: len(parents()) == 1)
    assert [(c["type"], c["reason"]) for c in parents()[0]["conditions"]] == [
        ("Accepted", "Accepted"), ("ResolvedRefs", "ResolvedRefs")]  # fmt: skip

    world.api.remove(GATEWAYS, "gw", "default")
    await world.until("its Service deleted", lambda: svc_key not in world.api.objects)


def _route_parents(world: World, plural: str, name: str) -> list[Any]:
    obj = world.api.objects.get(("gateway.networking.k8s.io", plural, "default", name)) or {}
    return list((obj.get("status") or {}).get("parents") or [])


async def test_a_regex_haproxy_refuses_refuses_its_route_and_the_rest_is_applied(
    world: World,
) -> None:
    gw_api = "gateway.networking.k8s.io/v1"
    world.api.put({"apiVersion": gw_api, "kind": "GatewayClass", "metadata": {"name": "svcnet"},
                   "spec": {"controllerName": "svcnet.io/gateway-controller"}})  # fmt: skip
    world.api.put({"apiVersion": gw_api, "kind": "Gateway", **gateway("gw", listener("http"))})
    world.put(endpoint_slice("web", *ips(1)), "EndpointSlice")
    world.api.put({"apiVersion": gw_api, "kind": "HTTPRoute",
                   **route("ok", http_rule(ref("web")), hostnames=["ok.example.com"])})  # fmt: skip
    await world.until("the good route applied", lambda: served(world) == ips(1))
    # Python's re takes \u0041; PCRE2 (the fake, as HAProxy) refuses it.
    bad = http_rule(
        ref("web"), matches=[{"path": {"type": "RegularExpression", "value": "/\\u0041"}}]
    )
    world.api.put({"apiVersion": gw_api, "kind": "HTTPRoute",
                   **route("bad", bad, hostnames=["bad.example.com"])})  # fmt: skip

    def accepted(name: str) -> str:
        parents = _route_parents(world, "httproutes", name)
        return parents[0]["conditions"][0]["reason"] if parents else ""

    await world.until("the bad route refused", lambda: accepted("bad") == "UnsupportedValue")
    message = _route_parents(world, "httproutes", "bad")[0]["conditions"][0]["message"]
    assert "PCRE2 does not support" in message
    assert accepted("ok") == "Accepted"
    assert world.controller.applier.rejected == 1  # one refused check, then served without it
    assert world.haproxy.config_file is not None
    assert "u0041" not in world.haproxy.config_file.read_text()


async def test_grpc_and_tls_routes_get_their_status_and_the_class_its_features(
    world: World,
) -> None:
    gw_api = "gateway.networking.k8s.io/v1"
    world.api.put({"apiVersion": gw_api, "kind": "GatewayClass",
                   "metadata": {"name": "svcnet", "generation": 1},
                   "spec": {"controllerName": "svcnet.io/gateway-controller"}})  # fmt: skip
    tls = listener("tls", 443, "TLS", "*.example.com")
    tls["tls"] = {"mode": "Passthrough"}
    world.api.put({"apiVersion": gw_api, "kind": "Gateway", **gateway("gw", listener("http"), tls)})
    world.api.put({"apiVersion": gw_api, "kind": "GRPCRoute", **route("g", http_rule(ref("web")))})
    world.api.put({"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TLSRoute",
                   **route("t", {"backendRefs": [ref("web")]}, hostnames=["t.example.com"])})  # fmt: skip
    await world.until(
        "GRPCRoute accepted", lambda: len(_route_parents(world, "grpcroutes", "g")) == 1
    )
    await world.until(
        "TLSRoute accepted", lambda: len(_route_parents(world, "tlsroutes", "t")) == 1
    )
    for plural, name in (("grpcroutes", "g"), ("tlsroutes", "t")):
        [parent] = _route_parents(world, plural, name)
        assert parent["conditions"][0]["reason"] == "Accepted", (plural, parent)

    def features() -> list[str]:
        obj = world.api.objects.get(("gateway.networking.k8s.io", "gatewayclasses", "", "svcnet"))
        return [f["name"] for f in ((obj or {}).get("status") or {}).get("supportedFeatures") or []]

    await world.until("supportedFeatures written", lambda: features() == list(SUPPORTED_FEATURES))
