"""networking.k8s.io validation: NetworkPolicy, Ingress, IngressClass."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.strategy import strategy_for_kind


def _errors(obj: dict[str, Any]) -> list[str]:
    obj = copy.deepcopy(obj)
    strategy = strategy_for_kind(obj["apiVersion"], obj["kind"])
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    return [str(e) for e in strategy.validate(obj)]


def _netpol(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"podSelector": {"matchLabels": {"app": "db"}}}
    base.update(spec)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": base,
    }


def _from(
    *peers: dict[str, Any], ports: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    rule: dict[str, Any] = {"from": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return [rule]


NETPOL_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("valid deny all", _netpol(podSelector={}), []),
    (
        "valid ingress",
        _netpol(
            ingress=_from(
                {"podSelector": {"matchLabels": {"app": "web"}}},
                {"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {}},
                {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                ports=[
                    {"port": 5432},
                    {"port": "pg"},
                    {"port": 8000, "endPort": 8100, "protocol": "UDP"},
                ],
            )
        ),
        [],
    ),
    (
        "empty peer",
        _netpol(ingress=_from({})),
        ["spec.ingress[0].from[0]: Required value: must specify a peer"],
    ),
    (
        "ipBlock with selector",
        _netpol(ingress=_from({"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}})),
        ["spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"],
    ),
    (
        "bad cidr",
        _netpol(egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]),
        ['spec.egress[0].to[0].ipBlock.cidr: Invalid value: "10.0.0.0": not a valid CIDR'],
    ),
    (
        "missing cidr",
        _netpol(egress=[{"to": [{"ipBlock": {}}]}]),
        ["spec.egress[0].to[0].ipBlock.cidr: Required value"],
    ),
    (
        "except not subset",
        _netpol(ingress=_from({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.2.0.0/24"]}})),
        [
            'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.2.0.0/24": must be a strict '
            "subset of `cidr`"
        ],
    ),
    (
        "except equal to cidr",
        _netpol(ingress=_from({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}})),
        [
            'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/16": must be a strict '
            "subset of `cidr`"
        ],
    ),
    (
        "bad port protocol",
        _netpol(ingress=[{"ports": [{"port": 80, "protocol": "ICMP"}]}]),
        [
            'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", '
            '"UDP", "SCTP"'
        ],
    ),
    (
        "port out of range",
        _netpol(ingress=[{"ports": [{"port": 0}]}]),
        ["spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
    ),
    (
        "endPort before port",
        _netpol(ingress=[{"ports": [{"port": 90, "endPort": 80}]}]),
        [
            "spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`"
        ],
    ),
    (
        "endPort with named port",
        _netpol(ingress=[{"ports": [{"port": "http", "endPort": 80}]}]),
        [
            "spec.ingress[0].ports[0].endPort: Invalid value: 80: may not be specified when `port` is "
            "non-numeric"
        ],
    ),
    (
        "endPort without port",
        _netpol(ingress=[{"ports": [{"endPort": 80}]}]),
        [
            "spec.ingress[0].ports[0].endPort: Invalid value: 80: may not be specified when `port` is "
            "not specified"
        ],
    ),
    (
        "bad policy type",
        _netpol(policyTypes=["Ingress", "Both"]),
        ['spec.policyTypes[1]: Unsupported value: "Both": supported values: "Ingress", "Egress"'],
    ),
    (
        "three policy types",
        _netpol(policyTypes=["Ingress", "Egress", "Ingress"]),
        [
            'spec.policyTypes: Invalid value: &[]networking.PolicyType{"Ingress", "Egress", "Ingress"}: '
            "may not specify more than two policyTypes"
        ],
    ),
    (
        "bad pod selector",
        _netpol(podSelector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
        [
            "spec.podSelector.matchExpressions[0].values: Required value: must be specified when "
            "`operator` is 'In' or 'NotIn'"
        ],
    ),
]


@pytest.mark.parametrize(
    ("obj", "errors"), [c[1:] for c in NETPOL_CASES], ids=[c[0] for c in NETPOL_CASES]
)
def test_network_policy_validation(obj: dict[str, Any], errors: list[str]) -> None:
    assert _errors(obj) == errors


def _ingress(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }


def _rule(path: dict[str, Any], host: str | None = None) -> list[dict[str, Any]]:
    rule: dict[str, Any] = {"http": {"paths": [path]}}
    if host is not None:
        rule["host"] = host
    return [rule]


BACKEND = {"service": {"name": "web", "port": {"number": 80}}}
PATH = {"path": "/", "pathType": "Prefix", "backend": BACKEND}

INGRESS_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("valid", _ingress(rules=_rule(PATH, "www.example.com")), []),
    ("valid wildcard host", _ingress(rules=_rule(PATH, "*.example.com")), []),
    ("valid default backend only", _ingress(defaultBackend=BACKEND), []),
    (
        "valid named port",
        _ingress(
            rules=_rule({**PATH, "backend": {"service": {"name": "web", "port": {"name": "http"}}}})
        ),
        [],
    ),
    (
        "valid implementation specific without path",
        _ingress(rules=_rule({"pathType": "ImplementationSpecific", "backend": BACKEND})),
        [],
    ),
    (
        "no rules nor default backend",
        _ingress(),
        [
            "spec.rules: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or "
            "`rules` must be specified"
        ],
    ),
    (
        "pathType missing",
        _ingress(rules=_rule({"path": "/", "backend": BACKEND})),
        ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"],
    ),
    (
        "pathType unsupported",
        _ingress(rules=_rule({**PATH, "pathType": "Regex"})),
        [
            'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: '
            '"Exact", "ImplementationSpecific", "Prefix"'
        ],
    ),
    (
        "relative path",
        _ingress(rules=_rule({**PATH, "path": "api"})),
        ['spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path'],
    ),
    (
        "double slash",
        _ingress(rules=_rule({**PATH, "path": "/a//b"})),
        ["spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"],
    ),
    (
        "backend missing service name",
        _ingress(rules=_rule({**PATH, "backend": {"service": {"port": {"number": 80}}}})),
        ["spec.rules[0].http.paths[0].backend.service.name: Required value"],
    ),
    (
        "backend port missing",
        _ingress(rules=_rule({**PATH, "backend": {"service": {"name": "web"}}})),
        ["spec.rules[0].http.paths[0].backend: Required value: port name or number is required"],
    ),
    (
        "backend port both",
        _ingress(
            rules=_rule(
                {
                    **PATH,
                    "backend": {"service": {"name": "web", "port": {"name": "http", "number": 80}}},
                }
            )
        ),
        [
            'spec.rules[0].http.paths[0].backend: Invalid value: "": cannot set both port name & port number'
        ],
    ),
    (
        "backend port out of range",
        _ingress(
            rules=_rule(
                {**PATH, "backend": {"service": {"name": "web", "port": {"number": 70000}}}}
            )
        ),
        [
            "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: must be "
            "between 1 and 65535, inclusive"
        ],
    ),
    (
        "backend missing",
        _ingress(rules=_rule({"path": "/", "pathType": "Prefix"})),
        [
            'spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required'
        ],
    ),
    (
        "host is an IP",
        _ingress(rules=_rule(PATH, "10.0.0.1")),
        ['spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address'],
    ),
    (
        "no paths",
        _ingress(rules=[{"http": {"paths": []}}]),
        ["spec.rules[0].http.paths: Required value"],
    ),
]


@pytest.mark.parametrize(
    ("obj", "errors"), [c[1:] for c in INGRESS_CASES], ids=[c[0] for c in INGRESS_CASES]
)
def test_ingress_validation(obj: dict[str, Any], errors: list[str]) -> None:
    assert _errors(obj) == errors


@pytest.mark.parametrize(
    ("controller", "errors"),
    [
        ("svcnet.io/ingress", []),
        (None, ["spec.controller: Required value"]),
        (
            "ingress",
            [
                'spec.controller: Invalid value: "ingress": must be a domain-prefixed path '
                '(such as "acme.io/foo")'
            ],
        ),
    ],
)
def test_ingress_class_controller(controller: str | None, errors: list[str]) -> None:
    spec = {} if controller is None else {"controller": controller}
    obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "svcnet"},
        "spec": spec,
    }
    assert _errors(obj) == errors


def test_ingress_class_controller_is_immutable() -> None:
    strategy = strategy_for_kind("networking.k8s.io/v1", "IngressClass")
    old = {"metadata": {"name": "a"}, "spec": {"controller": "a.io/x"}}
    new = {"metadata": {"name": "a"}, "spec": {"controller": "b.io/x"}}
    assert [str(e) for e in strategy.validate_update(new, old)] == [
        'spec.controller: Invalid value: "b.io/x": field is immutable'
    ]
