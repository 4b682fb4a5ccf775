"""Gateway API routing: every table row is checked against the model's own reading
(:func:`select_rule`) and a trace of the rendered HAProxy frontend, which must agree; status
conditions carry the specification's reasons.

Fixture ranges: endpoints 10.244.2.0/24, namespaces ``default`` and ``other``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from svcnet.ingress.certs import self_signed
from svcnet.ingress.gateway import (
    GATEWAY_PORT_BASE,
    Frontend,
    GatewayModel,
    allocate_ports,
    build_gateways,
    gateway_service,
    intersect,
    merge_conditions,
    select_rule,
    service_spec_patch,
)
from svcnet.ingress.haproxycfg import Layout, assign_slots, render
from svcnet.ingress.model import RoutingModel, backend_name
from tests.unit.ingress.builders import NOW, endpoint_slice, service, tls_secret
from tests.unit.ingress.gwbuilders import (
    GW_CLASS,
    gateway,
    grant,
    http_rule,
    listener,
    ref,
    route,
    trace_gateway,
)

LAYOUT = Layout(admin_socket="/run/test/admin.sock", default_pem=self_signed("default", NOW))
SERVICES = ("api", "web", "exact", "prefix", "regex", "hdr", "get", "q", "old", "new", "any",
            "wild", "deep", "v1", "v2")  # fmt: skip


def build(
    gateways: list[dict[str, Any]],
    routes: list[dict[str, Any]],
    *,
    grants: tuple[dict[str, Any], ...] = (),
    secrets: tuple[dict[str, Any], ...] = (),
    namespaces: tuple[dict[str, Any], ...] = (),
    other: tuple[str, ...] = (),
    addresses: Mapping[tuple[str, str], list[str]] | None = None,
    grpc_routes: tuple[dict[str, Any], ...] = (),
    tls_routes: tuple[dict[str, Any], ...] = (),
    refused: Mapping[str, str] | None = None,
) -> GatewayModel:
    svcs = [service(s) for s in SERVICES] + [service(s, namespace="other") for s in other]
    slices = [endpoint_slice(s, f"10.244.2.{i + 2}") for i, s in enumerate(SERVICES)]
    slices += [endpoint_slice(s, "10.244.2.200", namespace="other") for s in other]
    ports = allocate_ports(
        (
            (g["metadata"]["namespace"], g["metadata"]["name"], [li["port"] for li in g["spec"]["listeners"]])
            for g in gateways
        ),
        {},
    )  # fmt: skip
    return build_gateways(
        gateway_classes=[GW_CLASS],
        gateways=gateways,
        routes=routes,
        grants=grants,
        namespaces=namespaces,
        services=svcs,
        endpoint_slices=slices,
        secrets=secrets,
        addresses=addresses or {},
        target_ports=ports,
        grpc_routes=grpc_routes,
        tls_routes=tls_routes,
        refused_regexes=refused,
    )


def where(gw: GatewayModel, host: str, path: str, port: int = 80, **request: Any) -> str:
    """The Service (or 404, 500, redirect …) a request reaches, by the model and by the
    rendered configuration."""
    fe = _frontend(gw, port)
    routing = RoutingModel(backends=gw.backends)
    config = render(routing, LAYOUT, assign_slots({}, routing), gw.frontends)
    traced = trace_gateway(config, fe.name, host, path, **request)
    rule = select_rule(fe, host, path, request.get("method", "GET"), request.get("headers"),
                       request.get("query"))  # fmt: skip
    if rule is None:
        assert traced == "404", f"model: 404, configuration: {traced}"
        return "404"
    if traced.startswith("redirect") or traced == "500":
        return traced
    assert traced == rule.backends[0].backend, f"model: {rule}, configuration: {traced}"
    return _service(traced)


def _frontend(gw: GatewayModel, port: int) -> Frontend:
    [fe] = [f for f in gw.frontends if f.port == port]
    return fe


def _service(backend: str) -> str:
    return backend.split("_")[1]


def _cond(status: Mapping[str, Any], kind: str) -> tuple[str, str]:
    [c] = [c for c in status["conditions"] if c["type"] == kind]
    return c["status"], c["reason"]


MATCHES = route(
    "matches",
    http_rule(ref("exact"), matches=[{"path": {"type": "Exact", "value": "/a/b"}}]),
    http_rule(ref("prefix"), matches=[{"path": {"type": "PathPrefix", "value": "/a/"}}]),
    http_rule(ref("regex"), matches=[{"path": {"type": "RegularExpression", "value": "/r/[0-9]+"}}]),
    http_rule(ref("hdr"), matches=[{"path": {"type": "PathPrefix", "value": "/h"},
                                    "headers": [{"name": "X-Env", "value": "canary"}]}]),
    http_rule(ref("get"), matches=[{"path": {"type": "PathPrefix", "value": "/h"}, "method": "GET"}]),
    http_rule(ref("q"), matches=[{"path": {"type": "PathPrefix", "value": "/h"},
                                  "queryParams": [{"name": "v", "value": "2"}]}]),
    http_rule(ref("any")),
)  # fmt: skip


@pytest.mark.parametrize(
    ("path", "req", "want"),
    [
        ("/a/b", {}, "exact"),
        ("/a/b/", {}, "prefix"),  # Exact is the path as written; "/a/" is element-wise
        ("/a", {}, "prefix"),
        ("/ab", {}, "any"),
        ("/r/12", {}, "regex"),
        ("/r/12x", {}, "any"),  # a regular expression matches the whole path
        ("/h", {"method": "POST"}, "any"),
        ("/h", {}, "get"),  # a method match outranks none
        ("/h", {"method": "POST", "query": {"v": "2"}}, "q"),
        ("/h", {"headers": {"X-Env": "canary"}}, "get"),  # method before headers
        ("/h", {"method": "PUT", "headers": {"x-env": "canary"}}, "hdr"),  # names ignore case
        ("/h", {"method": "PUT", "headers": {"X-Env": "Canary"}}, "any"),  # values do not
        ("/", {}, "any"),
    ],
)
def test_matches_and_their_precedence(path: str, req: dict[str, Any], want: str) -> None:
    gw = build([gateway("gw", listener("http"))], [MATCHES])
    assert where(gw, "x.example.com", path, **req) == want


HOSTS = [
    route("exact", http_rule(ref("api")), hostnames=["api.example.com"]),
    route("wild", http_rule(ref("wild")), hostnames=["*.example.com"]),
    route("deep", http_rule(ref("deep")), hostnames=["*.b.example.com"]),
    route("any", http_rule(ref("any"), matches=[{"path": {"value": "/only"}}])),
]


@pytest.mark.parametrize(
    ("host", "path", "want"),
    [
        ("api.example.com", "/", "api"),
        ("API.example.com:80", "/", "api"),
        ("web.example.com", "/", "wild"),
        ("a.b.example.com", "/", "deep"),  # the longest wildcard wins
        ("x.y.example.com", "/", "wild"),  # a Gateway wildcard takes several labels
        ("example.com", "/only", "any"),
        ("example.com", "/", "404"),
        ("api.example.com", "/only", "api"),  # no fall-through to a less specific host
    ],
)
def test_hostnames(host: str, path: str, want: str) -> None:
    gw = build([gateway("gw", listener("http"))], HOSTS)
    assert where(gw, host, path) == want


@pytest.mark.parametrize(
    ("listener_host", "route_hosts", "want"),
    [
        ("", [], [""]),
        ("*.example.com", [], ["*.example.com"]),
        ("*.example.com", ["a.example.com", "other.org"], ["a.example.com"]),
        ("a.example.com", ["*.example.com"], ["a.example.com"]),
        ("*.example.com", ["*.a.example.com"], ["*.a.example.com"]),
        ("*.a.example.com", ["*.example.com"], ["*.a.example.com"]),
        ("a.example.com", ["b.example.com"], []),
    ],
)
def test_hostname_intersection(listener_host: str, route_hosts: list[str], want: list[str]) -> None:
    assert intersect(listener_host, route_hosts) == want


def test_listener_hostname_limits_a_route_and_a_mismatch_is_refused_with_the_reason() -> None:
    gw = build(
        [gateway("gw", listener("http", hostname="*.example.com"))],
        [route("ok", http_rule(ref("web"))), route("no", http_rule(ref("api")), hostnames=["other.org"])],
    )  # fmt: skip
    assert where(gw, "a.example.com", "/") == "web"
    assert where(gw, "other.org", "/") == "404"
    assert _cond(gw.route_status[("default", "no")][0], "Accepted") == (
        "False", "NoMatchingListenerHostname")  # fmt: skip
    [lis] = gw.gateway_status[("default", "gw")]["listeners"]
    assert lis["attachedRoutes"] == 1


def test_older_route_wins_a_tie_then_namespace_and_name() -> None:
    routes = [
        route("b-new", http_rule(ref("new")), created="2026-01-02T00:00:00Z"),
        route("a-newer", http_rule(ref("new")), created="2026-01-03T00:00:00Z"),
        route("z-old", http_rule(ref("old")), created="2026-01-01T00:00:00Z"),
    ]
    assert where(build([gateway("gw", listener("http"))], routes), "h", "/") == "old"
    same_age = [route("b", http_rule(ref("new"))), route("a", http_rule(ref("old")))]
    assert where(build([gateway("gw", listener("http"))], same_age), "h", "/") == "old"


def test_filters_header_modifiers_redirect_and_rewrite() -> None:
    hdr = {
        "type": "RequestHeaderModifier",
        "requestHeaderModifier": {
            "set": [{"name": "X-Set", "value": "100%"}],
            "add": [{"name": "X-Add", "value": "a"}],
            "remove": ["X-Drop"],
        },
    }
    resp = {
        "type": "ResponseHeaderModifier",
        "responseHeaderModifier": {"set": [{"name": "X-Served-By", "value": "svcnet"}]},
    }
    redirect = {
        "type": "RequestRedirect",
        "requestRedirect": {"scheme": "https", "statusCode": 301},
    }
    moved = {
        "type": "RequestRedirect",
        "requestRedirect": {
            "hostname": "new.example.com",
            "port": 8443,
            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"},
        },
    }
    rewrite = {
        "type": "URLRewrite",
        "urlRewrite": {
            "hostname": "internal",
            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"},
        },
    }
    full = {
        "type": "URLRewrite",
        "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/fixed"}},
    }
    gw = build([gateway("gw", listener("http"))], [route(
        "filters",
        http_rule(ref("api"), filters=[hdr, resp], matches=[{"path": {"value": "/hdr"}}]),
        http_rule(filters=[redirect], matches=[{"path": {"value": "/secure"}}]),
        http_rule(filters=[moved], matches=[{"path": {"value": "/v1"}}]),
        http_rule(ref("web"), filters=[rewrite], matches=[{"path": {"value": "/strip"}}]),
        http_rule(ref("web"), filters=[full], matches=[{"path": {"value": "/full"}}]),
    )])  # fmt: skip
    assert where(gw, "h.example.com", "/secure/x") == "redirect https://h.example.com/secure/x"
    assert where(gw, "h", "/v1/a") == "redirect http://new.example.com:8443/v2/a"
    assert where(gw, "h", "/v1") == "redirect http://new.example.com:8443/v2"
    routing = RoutingModel(backends=gw.backends)
    text = render(routing, LAYOUT, assign_slots({}, routing), gw.frontends).files["haproxy.cfg"]
    body = text.decode()
    assert "http-request set-header X-Set '100%%'" in body
    assert "http-request add-header X-Add 'a'" in body
    assert "http-request del-header X-Drop" in body
    assert "http-response set-header X-Served-By 'svcnet'" in body
    assert "http-request set-header Host 'internal'" in body
    assert "http-request set-path '/fixed'" in body
    config = render(routing, LAYOUT, assign_slots({}, routing), gw.frontends)
    fe = _frontend(gw, 80).name
    assert trace_gateway(config, fe, "h", "/strip/a/b") == backend_name("default", "web", "80")


def test_weighted_backends_split_by_weight_and_zero_weight_gets_nothing() -> None:
    gw = build([gateway("gw", listener("http"))], [route(
        "canary", http_rule(ref("v1", weight=90), ref("v2", weight=10), ref("api", weight=0)))])  # fmt: skip
    routing = RoutingModel(backends=gw.backends)
    config = render(routing, LAYOUT, assign_slots({}, routing), gw.frontends)
    fe = _frontend(gw, 80).name
    got = Counter(_service(trace_gateway(config, fe, "h", "/", pick=p)) for p in range(100))
    assert got == {"v1": 90, "v2": 10}


def test_cross_namespace_backend_needs_a_reference_grant() -> None:
    routes = [route("x", http_rule(ref("shop", namespace="other")))]
    refused = build([gateway("gw", listener("http"))], routes, other=("shop",))
    assert where(refused, "h", "/") == "500"
    assert _cond(refused.route_status[("default", "x")][0], "ResolvedRefs") == (
        "False", "RefNotPermitted")  # fmt: skip
    granted = build(
        [gateway("gw", listener("http"))], routes, other=("shop",),
        grants=(grant("other", "HTTPRoute", "default", "Service"),),
    )  # fmt: skip
    assert where(granted, "h", "/") == "shop"
    assert _cond(granted.route_status[("default", "x")][0], "ResolvedRefs") == (
        "True", "ResolvedRefs")  # fmt: skip


def test_missing_backend_answers_500_for_its_share_only() -> None:
    gw = build([gateway("gw", listener("http"))], [
        route("r", http_rule(ref("nope")), hostnames=["bad.example.com"]),
        route("ok", http_rule(ref("web")), hostnames=["good.example.com"]),
    ])  # fmt: skip
    assert where(gw, "bad.example.com", "/") == "500"
    assert where(gw, "good.example.com", "/") == "web"
    assert _cond(gw.route_status[("default", "r")][0], "ResolvedRefs") == (
        "False", "BackendNotFound")  # fmt: skip
    assert _cond(gw.route_status[("default", "r")][0], "Accepted") == ("True", "Accepted")


@pytest.mark.parametrize(
    ("parent", "allowed_from", "route_ns", "reason"),
    [
        ({"name": "missing"}, None, "default", "NoMatchingParent"),
        ({"name": "gw", "sectionName": "nope"}, None, "default", "NoMatchingParent"),
        ({"name": "gw", "namespace": "default"}, None, "other", "NotAllowedByListeners"),
        ({"name": "gw", "namespace": "default"}, "All", "other", "Accepted"),
        ({"name": "gw", "namespace": "default"}, "Selector", "other", "Accepted"),
        ({"name": "gw", "namespace": "default"}, "Selector", "third", "NotAllowedByListeners"),
    ],
)
def test_route_parent_status(
    parent: dict[str, Any], allowed_from: str | None, route_ns: str, reason: str
) -> None:
    lis = listener("http", allowed_from=allowed_from,
                   selector={"matchLabels": {"shared": "yes"}} if allowed_from == "Selector" else None)  # fmt: skip
    namespaces = (
        {"metadata": {"name": "other", "labels": {"shared": "yes"}}},
        {"metadata": {"name": "third"}},
    )
    gw = build([gateway("gw", lis)], [route("r", http_rule(ref("web")), parents=[parent], namespace=route_ns)],
               namespaces=namespaces)  # fmt: skip
    [status] = gw.route_status[(route_ns, "r")]
    assert status["controllerName"] == "svcnet.io/gateway-controller"
    assert _cond(status, "Accepted")[1] == reason
    assert status["conditions"][0]["observedGeneration"] == 2


def test_a_regular_expression_that_does_not_compile_refuses_that_route_only() -> None:
    gw = build([gateway("gw", listener("http"))], [
        route("bad", http_rule(ref("api"), matches=[{"path": {"type": "RegularExpression", "value": "/(x"}}])),
        route("good", http_rule(ref("web"))),
    ])  # fmt: skip
    assert _cond(gw.route_status[("default", "bad")][0], "Accepted") == (
        "False", "UnsupportedValue")  # fmt: skip
    assert where(gw, "h", "/x") == "web"


def test_https_listener_certificates_and_their_refs() -> None:
    secrets = (tls_secret("api-tls", "api.example.com"), tls_secret("shared", "x", namespace="other"),
               tls_secret("opaque", "y", secret_type="Opaque"))  # fmt: skip
    gw = build(
        [gateway("gw",
                 listener("api", 443, "HTTPS", "api.example.com", certs=("api-tls",)),
                 listener("shared", 443, "HTTPS", "shared.example.com", certs=("other/shared",)),
                 listener("bad", 443, "HTTPS", "bad.example.com", certs=("opaque",)),
                 listener("plain", 8080, "TCP"))],
        [route("r", http_rule(ref("api")))],
        secrets=secrets,
        addresses={("default", "gw"): ["192.0.2.10"]},
    )  # fmt: skip
    status = gw.gateway_status[("default", "gw")]
    by_name = {li["name"]: li for li in status["listeners"]}
    assert _cond(by_name["api"], "ResolvedRefs") == ("True", "ResolvedRefs")
    assert _cond(by_name["api"], "Programmed") == ("True", "Programmed")
    assert _cond(by_name["shared"], "ResolvedRefs") == ("False", "RefNotPermitted")
    assert _cond(by_name["bad"], "ResolvedRefs") == ("False", "InvalidCertificateRef")
    assert _cond(by_name["plain"], "Accepted") == ("False", "UnsupportedProtocol")
    assert _cond(status, "Accepted") == ("True", "ListenersNotValid")
    assert _cond(status, "Programmed") == ("True", "Programmed")
    assert status["addresses"] == [{"type": "IPAddress", "value": "192.0.2.10"}]
    fe = _frontend(gw, 443)
    assert fe.tls and [c.hosts for c in fe.certificates] == [("api.example.com",)]
    assert where(gw, "api.example.com", "/", port=443) == "api"
    assert where(gw, "bad.example.com", "/", port=443) == "404"  # its listener is not served


def test_listener_conflicts() -> None:
    gw = build([gateway("gw", listener("a", 80, "HTTP", "a.example.com"),
                        listener("b", 80, "HTTP", "a.example.com"),
                        listener("c", 8080, "HTTP"), listener("d", 8080, "HTTPS", certs=("x",)))],
               [])  # fmt: skip
    by_name = {li["name"]: li for li in gw.gateway_status[("default", "gw")]["listeners"]}
    assert _cond(by_name["a"], "Conflicted") == ("True", "HostnameConflict")
    assert _cond(by_name["c"], "Conflicted") == ("True", "ProtocolConflict")
    assert _cond(by_name["a"], "Programmed") == ("False", "Invalid")
    assert _cond(gw.gateway_status[("default", "gw")], "Programmed") == (
        "False", "AddressNotAssigned")  # fmt: skip


def test_ports_are_kept_and_new_ones_take_the_lowest_free() -> None:
    held = {("default", "a", 80): GATEWAY_PORT_BASE + 1}
    got = allocate_ports([("default", "a", [80, 443]), ("default", "b", [80])], held)
    assert got == {
        ("default", "a", 80): GATEWAY_PORT_BASE + 1,
        ("default", "a", 443): GATEWAY_PORT_BASE,
        ("default", "b", 80): GATEWAY_PORT_BASE + 2,
    }


def test_transition_time_is_kept_while_the_status_holds() -> None:
    have = [{"type": "Accepted", "status": "True", "lastTransitionTime": "T0"}]
    want = [{"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "False"}]
    got = merge_conditions(have, want, "T1")
    assert [c["lastTransitionTime"] for c in got] == ["T0", "T1"]
    flipped = merge_conditions(have, [{"type": "Accepted", "status": "False"}], "T1")
    assert flipped[0]["lastTransitionTime"] == "T1"


def test_a_gateway_service_is_patched_only_for_what_the_controller_sets() -> None:
    fe = Frontend("f", ("default", "gw"), 80, GATEWAY_PORT_BASE, False, (), (), ())
    want = gateway_service(("default", "gw"), [fe], "svcnet-ingress", {"app": "ingress"})
    served = {**want, "spec": {**want["spec"], "clusterIP": "10.96.0.9",
              "ports": [{**want["spec"]["ports"][0], "nodePort": 31000}]}}  # fmt: skip
    assert service_spec_patch(served, want) is None
    moved = gateway_service(("default", "gw"), [replace(fe, target_port=GATEWAY_PORT_BASE + 1)],
                            "svcnet-ingress", {"app": "ingress"})  # fmt: skip
    patch = service_spec_patch(served, moved)
    assert patch is not None
    assert patch["spec"]["ports"] == [{"name": "port-80", "port": 80, "protocol": "TCP",
                                       "targetPort": GATEWAY_PORT_BASE + 1, "nodePort": 31000}]  # fmt: skip
