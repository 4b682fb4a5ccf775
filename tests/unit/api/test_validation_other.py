"""Validation of the remaining kinds: EndpointSlice, Gateway API, Secret, ConfigMap,
Namespace, Node, Endpoints, Event, Lease."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.strategy import strategy_for_kind

API_VERSIONS = {
    "EndpointSlice": "discovery.k8s.io/v1",
    "GatewayClass": "gateway.networking.k8s.io/v1",
    "Gateway": "gateway.networking.k8s.io/v1",
    "HTTPRoute": "gateway.networking.k8s.io/v1",
    "GRPCRoute": "gateway.networking.k8s.io/v1",
    "TLSRoute": "gateway.networking.k8s.io/v1alpha2",
    "ReferenceGrant": "gateway.networking.k8s.io/v1beta1",
    "Lease": "coordination.k8s.io/v1",
}
CLUSTER_SCOPED = {"GatewayClass", "Namespace", "Node"}


def _obj(kind: str, **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x"}
    if kind not in CLUSTER_SCOPED:
        meta["namespace"] = "default"
    return {"apiVersion": API_VERSIONS.get(kind, "v1"), "kind": kind, "metadata": meta, **fields}


def _errors(obj: dict[str, Any]) -> list[str]:
    obj = copy.deepcopy(obj)
    strategy = strategy_for_kind(obj["apiVersion"], obj["kind"])
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    return [str(e) for e in strategy.validate(obj)]


def _slice(address_type: Any = "IPv4", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"endpoints": [{"addresses": ["10.244.1.5"]}], "ports": [{"port": 80}]}
    base.update(fields)
    if address_type is not None:
        base["addressType"] = address_type
    return _obj("EndpointSlice", **base)


def _gw(*listeners: dict[str, Any], cls: str | None = "svcnet") -> dict[str, Any]:
    spec: dict[str, Any] = {"listeners": list(listeners)}
    if cls is not None:
        spec["gatewayClassName"] = cls
    return _obj("Gateway", spec=spec)


HTTP = {"name": "http", "port": 80, "protocol": "HTTP"}


def _route(**spec: Any) -> dict[str, Any]:
    return _obj("HTTPRoute", spec={"parentRefs": [{"name": "gw"}], **spec})


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    # EndpointSlice
    ("slice valid", _slice(), []),
    ("slice fqdn", _slice("FQDN", endpoints=[{"addresses": ["db.example.com"]}]), []),
    ("slice ipv6", _slice("IPv6", endpoints=[{"addresses": ["fd00::5"]}]), []),
    ("slice missing addressType", _slice(None), ["addressType: Required value"]),
    (
        "slice bad addressType",
        _slice("IP"),
        ['addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"'],
    ),
    (
        "slice no addresses",
        _slice(endpoints=[{"addresses": []}]),
        ["endpoints[0].addresses: Required value: must contain at least 1 address"],
    ),
    (
        "slice too many addresses",
        _slice(endpoints=[{"addresses": ["10.0.0.1"] * 101}]),
        ["endpoints[0].addresses: Too many: 101: must have at most 100 items"],
    ),
    (
        "slice too many endpoints",
        _slice(endpoints=[{"addresses": ["10.0.0.1"]}] * 1001),
        ["endpoints: Too many: 1001: must have at most 1000 items"],
    ),
    (
        "slice wrong family",
        _slice(endpoints=[{"addresses": ["fd00::1"]}]),
        ['endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address'],
    ),
    (
        "slice bad port",
        _slice(ports=[{"port": 0}]),
        ["ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
    ),
    (
        "slice duplicate port names",
        _slice(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}]),
        ['ports[1].name: Duplicate value: "a"'],
    ),
    (
        "slice bad protocol",
        _slice(ports=[{"port": 80, "protocol": "ICMP"}]),
        ['ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'],
    ),
    # Gateway API
    ("gatewayclass valid", _obj("GatewayClass", spec={"controllerName": "svcnet.io/gateway"}), []),
    (
        "gatewayclass missing controller",
        _obj("GatewayClass", spec={}),
        ["spec.controllerName: Required value"],
    ),
    (
        "gateway valid",
        _gw(
            HTTP,
            {
                "name": "https",
                "port": 443,
                "protocol": "HTTPS",
                "hostname": "*.example.com",
                "tls": {"certificateRefs": [{"name": "cert"}]},
            },
        ),
        [],
    ),
    ("gateway class missing", _gw(HTTP, cls=None), ["spec.gatewayClassName: Required value"]),
    ("gateway no listeners", _gw(), ["spec.listeners: Required value"]),
    (
        "gateway port zero",
        _gw({**HTTP, "port": 0}),
        [
            "spec.listeners[0].port: Invalid value: 0: spec.listeners[0].port in body should be "
            "greater than or equal to 1"
        ],
    ),
    (
        "gateway port too big",
        _gw({**HTTP, "port": 65536}),
        [
            "spec.listeners[0].port: Invalid value: 65536: spec.listeners[0].port in body should be "
            "less than or equal to 65535"
        ],
    ),
    (
        "gateway duplicate listener names",
        _gw(HTTP, {**HTTP, "port": 8080}),
        [
            'spec.listeners: Invalid value: "object": Listener name must be unique within the Gateway'
        ],
    ),
    (
        "gateway duplicate port protocol hostname",
        _gw(HTTP, {**HTTP, "name": "http2"}),
        [
            'spec.listeners: Invalid value: "object": Combination of port, protocol and hostname must '
            "be unique for each listener"
        ],
    ),
    (
        "gateway tls on http",
        _gw({**HTTP, "tls": {"mode": "Terminate"}}),
        [
            'spec.listeners: Invalid value: "object": tls must not be specified for protocols '
            "['HTTP', 'TCP', 'UDP']"
        ],
    ),
    (
        "gateway bad hostname",
        _gw({**HTTP, "hostname": "Example.com"}),
        [
            'spec.listeners[0].hostname: Invalid value: "Example.com": spec.listeners[0].hostname in '
            "body should match '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'"
        ],
    ),
    (
        "route valid",
        _route(
            hostnames=["www.example.com"], rules=[{"backendRefs": [{"name": "web", "port": 80}]}]
        ),
        [],
    ),
    (
        "route bad hostname",
        _route(hostnames=["WWW"]),
        [
            'spec.hostnames[0]: Invalid value: "WWW": spec.hostnames[0] in body should match '
            "'^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'"
        ],
    ),
    (
        "route service without port",
        _route(rules=[{"backendRefs": [{"name": "web"}]}]),
        [
            'spec.rules[0].backendRefs[0]: Invalid value: "object": Must have port for Service reference'
        ],
    ),
    (
        "grpcroute valid",
        _obj(
            "GRPCRoute",
            spec={
                "parentRefs": [{"name": "gw"}],
                "rules": [
                    {
                        "matches": [{"method": {"service": "pkg.Echo", "method": "Say"}}],
                        "backendRefs": [{"name": "grpc", "port": 50051}],
                    }
                ],
            },
        ),
        [],
    ),
    (
        "grpcroute method match with neither service nor method",
        _obj("GRPCRoute", spec={"rules": [{"matches": [{"method": {"type": "Exact"}}]}]}),
        [
            'spec.rules[0].matches[0].method: Invalid value: "object": One or both of '
            "'service' or 'method' must be specified"
        ],
    ),
    (
        "tlsroute valid",
        _obj(
            "TLSRoute",
            spec={
                "parentRefs": [{"name": "gw"}],
                "hostnames": ["a.example.com"],
                "rules": [{"backendRefs": [{"name": "tls", "port": 443}]}],
            },
        ),
        [],
    ),
    (
        "tlsroute without rules",
        _obj("TLSRoute", spec={"parentRefs": [{"name": "gw"}]}),
        ["spec.rules: Invalid value: 0: spec.rules in body should have at least 1 items"],
    ),
    (
        "route relative path",
        _route(rules=[{"matches": [{"path": {"type": "PathPrefix", "value": "api"}}]}]),
        [
            'spec.rules[0].matches[0].path: Invalid value: "object": value must be an absolute path '
            "and start with '/' when type one of ['Exact', 'PathPrefix']"
        ],
    ),
    (
        "route bad path type",
        _route(rules=[{"matches": [{"path": {"type": "Prefix", "value": "/"}}]}]),
        [
            'spec.rules[0].matches[0].path.type: Unsupported value: "Prefix": supported values: '
            '"Exact", "PathPrefix", "RegularExpression"'
        ],
    ),
    (
        "referencegrant valid",
        _obj(
            "ReferenceGrant",
            spec={
                "from": [
                    {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "a"}
                ],
                "to": [{"group": "", "kind": "Service"}],
            },
        ),
        [],
    ),
    # core kinds
    ("secret valid", _obj("Secret", data={"a": "eA=="}), []),
    (
        "secret bad key",
        _obj("Secret", data={"a/b": "eA=="}),
        [
            'data[a/b]: Invalid value: "a/b": a valid config key must consist of alphanumeric '
            "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
            "for validation is '[-._a-zA-Z0-9]+')"
        ],
    ),
    (
        "secret not base64",
        _obj("Secret", data={"a": "!!"}),
        ['data[a]: Invalid value: "<secret contents redacted>": must be base64-encoded'],
    ),
    (
        "secret tls missing key",
        _obj("Secret", type="kubernetes.io/tls", data={"tls.crt": "eA=="}),
        ["data[tls.key]: Required value"],
    ),
    ("configmap valid", _obj("ConfigMap", data={"app.conf": "x"}), []),
    (
        "configmap duplicate key",
        _obj("ConfigMap", data={"a": "x"}, binaryData={"a": "eA=="}),
        ['data[a]: Invalid value: "a": duplicate of key present in binaryData'],
    ),
    ("namespace valid", _obj("Namespace"), []),
    (
        "namespace bad finalizer",
        _obj("Namespace", spec={"finalizers": ["cleanup"]}),
        [
            'spec.finalizers: Invalid value: "cleanup": name is neither a standard finalizer name '
            "nor is it fully qualified"
        ],
    ),
    (
        "node bad pod cidr",
        _obj("Node", spec={"podCIDRs": ["10.244.1.0"]}),
        [
            'spec.podCIDRs[0]: Invalid value: "10.244.1.0": must be a valid CIDR value, (e.g. '
            "10.9.8.0/24 or 2001:db8::/64)"
        ],
    ),
    (
        "endpoints bad ip",
        _obj("Endpoints", subsets=[{"addresses": [{"ip": "x"}], "ports": [{"port": 80}]}]),
        [
            'subsets[0].addresses[0].ip: Invalid value: "x": must be a valid IP address, (e.g. '
            "10.9.8.7 or 2001:db8::ffff)"
        ],
    ),
    (
        "event type",
        _obj("Event", type="Info"),
        ['type: Unsupported value: "Info": supported values: "Normal", "Warning"'],
    ),
    (
        "lease duration",
        _obj("Lease", spec={"leaseDurationSeconds": 0}),
        ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"],
    ),
    ("serviceaccount valid", _obj("ServiceAccount"), []),
    (
        "serviceaccount bad name",
        {**_obj("ServiceAccount"), "metadata": {"name": "A", "namespace": "d"}},
        [
            'metadata.name: Invalid value: "A": a lowercase RFC 1123 subdomain must consist of lower '
            "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ],
    ),
]


@pytest.mark.parametrize(("obj", "errors"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation(obj: dict[str, Any], errors: list[str]) -> None:
    assert _errors(obj) == errors


@pytest.mark.parametrize(
    ("kind", "old", "new", "errors"),
    [
        (
            "EndpointSlice",
            {"addressType": "IPv4"},
            {"addressType": "IPv6"},
            ['addressType: Invalid value: "IPv6": field is immutable'],
        ),
        (
            "Secret",
            {"type": "Opaque"},
            {"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}},
            ['type: Invalid value: "kubernetes.io/tls": field is immutable'],
        ),
        (
            "Secret",
            {"immutable": True, "data": {"a": "eA=="}},
            {"immutable": True, "data": {"a": "eQ=="}},
            ["data: Forbidden: field is immutable when `immutable` is set"],
        ),
        (
            "ConfigMap",
            {"immutable": True, "data": {"a": "x"}},
            {"data": {"a": "x"}},
            ["immutable: Forbidden: field is immutable when `immutable` is set"],
        ),
        (
            "GatewayClass",
            {"spec": {"controllerName": "a.io/x"}},
            {"spec": {"controllerName": "b.io/x"}},
            ['spec.controllerName: Invalid value: "b.io/x": Value is immutable'],
        ),
        (
            "Node",
            {"spec": {"podCIDRs": ["10.244.1.0/24"]}},
            {"spec": {"podCIDRs": ["10.244.2.0/24"]}},
            [
                'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid'
            ],
        ),
    ],
)
def test_update_validation(
    kind: str, old: dict[str, Any], new: dict[str, Any], errors: list[str]
) -> None:
    strategy = strategy_for_kind(API_VERSIONS.get(kind, "v1"), kind)
    old_obj, new_obj = {**_obj(kind), **old}, {**_obj(kind), **new}
    assert [str(e) for e in strategy.validate_update(new_obj, old_obj)] == errors
