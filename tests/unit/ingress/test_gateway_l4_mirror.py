"""Gateway API beyond plain HTTP routes: GRPCRoute (h2c backends), TLSRoute passthrough (SNI
routing in TCP mode), RequestMirror, regular expressions HAProxy refused, and the
GatewayClass's supported features. Each routing row is read by the model and traced through
the rendered configuration.

Fixture ranges: endpoints 10.244.2.0/24, namespace ``default``.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from svcnet.dataplane.haproxy_config import MAIN_FILE, HaproxyConfig
from svcnet.ingress.gateway import GatewayModel, build_gateways, path_regex
from svcnet.ingress.gatewayclass import SUPPORTED_FEATURES, supported_features
from svcnet.ingress.haproxycfg import (
    MIRROR_LUA,
    TCP_REJECT_BACKEND,
    assign_slots,
    refused_regexes,
    render,
)
from svcnet.ingress.model import RoutingModel
from tests.unit.ingress.gwbuilders import GW_CLASS, gateway, http_rule, listener, ref, route
from tests.unit.ingress.test_gateway import LAYOUT, _cond, _frontend, build, where


def rendered(gw: GatewayModel) -> HaproxyConfig:
    routing = RoutingModel(backends=gw.backends)
    return render(routing, LAYOUT, assign_slots({}, routing), gw.frontends)


def text(gw: GatewayModel) -> str:
    return rendered(gw).files[MAIN_FILE].decode()


def section(config: str, header: str) -> list[str]:
    """The indented lines under ``header``."""
    lines = config.split(header + "\n", 1)[1].splitlines()
    out = []
    for line in lines:
        if not line.startswith(" "):
            break
        out.append(line)
    return out


# -- GRPCRoute ---------------------------------------------------------------------------------


def grpc_rule(
    backend: str, service: str = "", method: str = "", kind: str = "Exact"
) -> dict[str, Any]:
    m: dict[str, Any] = {"type": kind}
    if service:
        m["service"] = service
    if method:
        m["method"] = method
    return {"matches": [{"method": m}], "backendRefs": [ref(backend)]}


GRPC = route(
    "g",
    grpc_rule("exact", "pkg.Echo", "Say"),
    grpc_rule("prefix", "pkg.Echo"),
    grpc_rule("regex", method="Ping"),
    grpc_rule("any", "pkg\\.v[0-9]+\\.Api", "Get.*", kind="RegularExpression"),
    hostnames=["grpc.example.com"],
)


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/pkg.Echo/Say", "exact"),
        ("/pkg.Echo/Shout", "prefix"),
        ("/other.Svc/Ping", "regex"),
        ("/pkg.v2.Api/GetUser", "any"),
        ("/pkg.v2.Api/Put", "404"),
        ("/pkg.EchoX/Say", "404"),
    ],
)
def test_grpc_method_matches_route_by_service_and_method(path: str, want: str) -> None:
    gw = build([gateway("gw", listener("http"))], [], grpc_routes=(GRPC,))
    assert where(gw, "grpc.example.com", path, method="POST") == want


def test_grpc_backends_speak_h2c_and_http_backends_do_not() -> None:
    gw = build([gateway("gw", listener("http"))],
               [route("h", http_rule(ref("web")), hostnames=["h.example.com"])],
               grpc_routes=(GRPC,))  # fmt: skip
    config = text(gw)
    grpc_servers = [ln for ln in section(config, "backend default_exact_80_h2") if "server" in ln]
    assert grpc_servers and all(ln.endswith(" proto h2") for ln in grpc_servers)
    assert not any("proto" in ln for ln in section(config, "backend default_web_80"))
    [status] = gw.routes_status["GRPCRoute"][("default", "g")]
    assert _cond(status, "Accepted") == ("True", "Accepted")


def test_a_grpc_name_that_is_not_a_grpc_name_refuses_the_route() -> None:
    bad = route("bad", grpc_rule("exact", "pkg Echo", "Say"))
    gw = build([gateway("gw", listener("http"))], [], grpc_routes=(bad,))
    assert _cond(gw.routes_status["GRPCRoute"][("default", "bad")][0], "Accepted") == (
        "False", "UnsupportedValue")  # fmt: skip


# -- TLSRoute passthrough --------------------------------------------------------------------


def passthrough(name: str = "tls", hostname: str | None = "*.example.com") -> dict[str, Any]:
    out = listener(name, 443, "TLS", hostname)
    out["tls"] = {"mode": "Passthrough"}
    return out


def tls_route(
    name: str, *backends: dict[str, Any], hostnames: list[str] | None = None
) -> dict[str, Any]:
    return route(name, {"backendRefs": list(backends)}, hostnames=hostnames)


def trace_sni(config: HaproxyConfig, frontend: str, sni: str, pick: int = 0) -> str:
    """The backend a TCP frontend sends a connection with ``sni`` to; ``pick`` stands for
    the connection's ``rand()`` draw."""
    for line in section(config.files[MAIN_FILE].decode(), f"frontend {frontend}"):
        words = shlex.split(line)
        if words[:1] == ["default_backend"]:
            return words[1]
        if words[:1] != ["use_backend"]:
            continue
        cond = words[3:] if len(words) > 2 else []
        ok = True
        while cond:
            acl, cond = cond[1 : cond.index("}")], cond[cond.index("}") + 1 :]
            if acl[0] == "req.ssl_sni,lower":
                how, value = acl[2], acl[3]
                ok = ok and (sni == value if how == "str" else sni.endswith(value))
            else:
                assert acl[:4] == ["var(sess.pick)", "-m", "int", "lt"], acl
                ok = ok and pick < int(acl[4])
        if ok:
            return words[1]
    raise AssertionError("no default_backend")


def test_tls_passthrough_routes_by_sni_most_specific_first() -> None:
    gw = build([gateway("gw", passthrough())], [], tls_routes=(
        tls_route("exact", ref("exact"), hostnames=["a.example.com"]),
        tls_route("wild", ref("wild"), hostnames=["*.example.com"]),
    ))  # fmt: skip
    fe = _frontend(gw, 443)
    assert fe.passthrough and not fe.tls
    config = rendered(gw)
    body = section(config.files[MAIN_FILE].decode(), f"frontend {fe.name}")
    assert "    mode tcp" in body and "    tcp-request inspect-delay 5s" in body
    table = {"a.example.com": "default_exact_80_tcp", "b.example.com": "default_wild_80_tcp",
             "x.b.example.com": "default_wild_80_tcp", "example.org": TCP_REJECT_BACKEND}  # fmt: skip
    assert {sni: trace_sni(config, fe.name, sni) for sni in table} == table
    assert "    mode tcp" in section(
        config.files[MAIN_FILE].decode(), "backend default_exact_80_tcp"
    )


def test_tls_passthrough_splits_connections_by_weight() -> None:
    gw = build([gateway("gw", passthrough())], [], tls_routes=(
        tls_route("split", ref("v1", weight=3), ref("v2", weight=1), hostnames=["s.example.com"]),
    ))  # fmt: skip
    fe = _frontend(gw, 443)
    config = rendered(gw)
    picks = [trace_sni(config, fe.name, "s.example.com", p) for p in range(0, 1_000_000, 1000)]
    assert picks.count("default_v1_80_tcp") == 750 and picks.count("default_v2_80_tcp") == 250


def test_listener_protocols_take_their_own_route_kinds() -> None:
    terminate = listener("term", 8443, "TLS", "t.example.com")
    gw = build(
        [gateway("gw", listener("http"), passthrough(), terminate)],
        [route("h", http_rule(ref("web")), parents=[{"name": "gw", "sectionName": "tls"}])],
        tls_routes=(route("t", {"backendRefs": [ref("web")]},
                          parents=[{"name": "gw", "sectionName": "http"}]),),
    )  # fmt: skip
    assert _cond(gw.route_status[("default", "h")][0], "Accepted") == (
        "False", "NotAllowedByListeners")  # fmt: skip
    assert _cond(gw.routes_status["TLSRoute"][("default", "t")][0], "Accepted") == (
        "False", "NotAllowedByListeners")  # fmt: skip
    status = gw.gateway_status[("default", "gw")]["listeners"]
    kinds = {li["name"]: [k["kind"] for k in li["supportedKinds"]] for li in status}
    assert kinds == {"http": ["HTTPRoute", "GRPCRoute"], "tls": ["TLSRoute"], "term": []}
    [term] = [li for li in status if li["name"] == "term"]
    assert _cond(term, "Accepted") == ("False", "UnsupportedProtocol")


# -- RequestMirror ---------------------------------------------------------------------------


def mirror(service: str, **share: Any) -> dict[str, Any]:
    return {"type": "RequestMirror", "requestMirror": {"backendRef": ref(service), **share}}


def test_a_mirror_copies_the_rules_requests_and_leaves_the_route_alone() -> None:
    gw = build([gateway("gw", listener("http"))], [
        route("m", http_rule(ref("web"), filters=[mirror("v1"), mirror("v2", percent=25)])),
    ])  # fmt: skip
    assert where(gw, "h", "/x") == "web"
    [rule] = _frontend(gw, 80).rules
    assert [(m.backend, m.numerator, m.denominator) for m in rule.filters.mirrors] == [
        ("default_v1_80", 100, 100), ("default_v2_80", 25, 100)]  # fmt: skip
    config = rendered(gw)
    main = config.files[MAIN_FILE].decode()
    assert f"    lua-load {MIRROR_LUA}" in section(main, "global")
    body = section(main, f"frontend {_frontend(gw, 80).name}")
    on = "{ var(txn.rule) -m str r0 }"
    assert f"    http-request lua.svcnet_mirror default_v1_80 if {on}" in body
    assert (
        f"    http-request lua.svcnet_mirror default_v2_80 if {on} {{ rand(100) -m int lt 25 }}"
        in body
    )
    lua = config.files[MIRROR_LUA].decode()
    assert f'dst = "127.0.0.1:{LAYOUT.mirror_port}"' in lua
    mirror_fe = section(main, "frontend svcnet_mirror")
    assert f"    bind 127.0.0.1:{LAYOUT.mirror_port}" in mirror_fe


def test_a_grpc_request_is_mirrored_to_an_h2c_backend() -> None:
    g = route("g", {**grpc_rule("exact", "pkg.Echo", "Say"), "filters": [mirror("v1")]})
    gw = build([gateway("gw", listener("http"))], [], grpc_routes=(g,))
    [rule] = _frontend(gw, 80).rules
    assert [m.backend for m in rule.filters.mirrors] == ["default_v1_80_h2"]


def test_a_fraction_mirrors_numerator_in_denominator() -> None:
    gw = build([gateway("gw", listener("http"))], [route("m", http_rule(
        ref("web"), filters=[mirror("v1", fraction={"numerator": 1, "denominator": 1000})]))])  # fmt: skip
    assert "{ rand(1000) -m int lt 1 }" in text(gw)


def test_no_mirror_no_lua() -> None:
    gw = build([gateway("gw", listener("http"))], [route("r", http_rule(ref("web")))])
    config = rendered(gw)
    assert MIRROR_LUA not in config.files and "lua" not in config.files[MAIN_FILE].decode()


def test_a_mirror_to_a_missing_service_is_not_resolved_and_the_route_still_serves() -> None:
    gw = build([gateway("gw", listener("http"))],
               [route("m", http_rule(ref("web"), filters=[mirror("nowhere")]))])  # fmt: skip
    assert where(gw, "h", "/") == "web"
    status = gw.route_status[("default", "m")][0]
    assert _cond(status, "ResolvedRefs") == ("False", "BackendNotFound")
    assert _cond(status, "Accepted") == ("True", "Accepted")
    assert "lua" not in text(gw)


# -- regular expressions HAProxy refused -----------------------------------------------------


def regex_route(name: str, value: str, host: str) -> dict[str, Any]:
    match = [{"path": {"type": "RegularExpression", "value": value}}]
    return route(name, http_rule(ref("web"), matches=match), hostnames=[host])


def test_a_regex_haproxy_refused_refuses_that_route_with_its_message() -> None:
    bad = "/\\u0041"
    gw = build([gateway("gw", listener("http"))],
               [regex_route("bad", bad, "bad.example.com"), regex_route("ok", "/a+", "ok.example.com")],
               refused={path_regex(bad): "regex is invalid (PCRE2 does not support \\u)"})  # fmt: skip
    status = gw.route_status[("default", "bad")][0]
    assert _cond(status, "Accepted") == ("False", "UnsupportedValue")
    assert "HAProxy refused it: regex is invalid" in status["conditions"][0]["message"]
    assert where(gw, "ok.example.com", "/aa") == "web"
    assert where(gw, "bad.example.com", "/A") == "404"


def test_refused_regexes_are_read_from_haproxys_file_and_line() -> None:
    gw = build([gateway("gw", listener("http"))], [
        regex_route("a", "/\\u0041", "a.example.com"), regex_route("b", "/b+", "b.example.com")])  # fmt: skip
    config = rendered(gw)
    lines = config.files[MAIN_FILE].decode().splitlines()
    [n] = [i + 1 for i, ln in enumerate(lines) if "u0041" in ln]
    bad = path_regex("/\\u0041")
    error = (
        f"[ALERT]    (1) : config : parsing [/x/v3/haproxy.cfg:{n}] : error detected while "
        f"parsing switching rule : regex '{bad}' is invalid (error=PCRE2 does not support \\u).\n"
        "[ALERT]    (1) : config : Fatal errors found in configuration."
    )
    assert list(refused_regexes(config, error)) == [bad]
    assert refused_regexes(config, "[ALERT] config : parsing [/x:3] : unknown keyword") == {}


# -- GatewayClass --------------------------------------------------------------------------


def test_supported_features_are_upstream_names_sorted() -> None:
    names = [f["name"] for f in supported_features()]
    assert names == sorted(names) == list(SUPPORTED_FEATURES)
    assert {"Gateway", "HTTPRoute", "GRPCRoute", "TLSRoute", "ReferenceGrant",
            "HTTPRouteRequestMirror"} <= set(names)  # fmt: skip


def test_gateways_of_a_class_with_parameters_are_not_served() -> None:
    params = {**GW_CLASS, "spec": {**GW_CLASS["spec"], "parametersRef": {
        "group": "", "kind": "ConfigMap", "name": "p"}}}  # fmt: skip
    gw = build_gateways(
        gateway_classes=[params], gateways=[gateway("gw", listener("http"))],
        routes=[route("r", http_rule(ref("web")))], grants=[], namespaces=[], services=[],
        endpoint_slices=[], secrets=[], addresses={}, target_ports={("default", "gw", 80): 20000},
    )  # fmt: skip
    assert gw.frontends == () and gw.gateway_status == {}
