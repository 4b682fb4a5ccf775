"""Service validation through the strategy: each error with upstream's exact text."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.errors import Invalid
from svcnet.api.strategy import strategy_for_kind

STRATEGY = strategy_for_kind("v1", "Service")


def _svc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    base.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": base,
    }


def _errors(svc: dict[str, Any]) -> list[str]:
    svc = copy.deepcopy(svc)
    STRATEGY.default(svc)
    STRATEGY.prepare_for_create(svc)
    return [str(e) for e in STRATEGY.validate(svc)]


DNS_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("valid", _svc(), []),
    (
        "valid two named ports",
        _svc(ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}]),
        [],
    ),
    (
        "valid same port two protocols",
        _svc(
            ports=[
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ]
        ),
        [],
    ),
    ("valid named targetPort", _svc(ports=[{"port": 80, "targetPort": "http"}]), []),
    ("valid headless without ports", _svc(clusterIP="None", ports=[]), []),
    (
        "valid external name",
        _svc(type="ExternalName", externalName="db.example.com", ports=[], selector={}),
        [],
    ),
    (
        "port zero",
        _svc(ports=[{"port": 0}]),
        [
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            # targetPort defaults to port, so it is out of range too
            "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        ],
    ),
    (
        "port too big",
        _svc(ports=[{"port": 65536, "targetPort": 80}]),
        ["spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive"],
    ),
    (
        "bad protocol",
        _svc(ports=[{"port": 80, "protocol": "HTTP"}]),
        [
            'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'
        ],
    ),
    (
        "targetPort too big",
        _svc(ports=[{"port": 80, "targetPort": 70000}]),
        ["spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"],
    ),
    (
        "targetPort bad name",
        _svc(ports=[{"port": 80, "targetPort": "HTTP"}]),
        [
            'spec.ports[0].targetPort: Invalid value: "HTTP": must contain only alpha-numeric '
            "characters (a-z, 0-9), and hyphens (-)",
            'spec.ports[0].targetPort: Invalid value: "HTTP": must contain at least one letter (a-z)',
        ],
    ),
    (
        "second port unnamed",
        _svc(ports=[{"name": "http", "port": 80}, {"port": 443}]),
        ["spec.ports[1].name: Required value"],
    ),
    (
        "duplicate port names",
        _svc(ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81}]),
        ['spec.ports[1].name: Duplicate value: "http"'],
    ),
    (
        "port name not a label",
        _svc(ports=[{"name": "Http", "port": 80}]),
        [f'spec.ports[0].name: Invalid value: "Http": {DNS_LABEL}'],
    ),
    (
        "duplicate port and protocol",
        _svc(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
        [
            'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
            "AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, "
            'StrVal:""}, NodePort:0}'
        ],
    ),
    ("no ports", _svc(ports=[]), ["spec.ports: Required value"]),
    (
        "bad type",
        _svc(type="Internal"),
        [
            'spec.type: Unsupported value: "Internal": supported values: "ClusterIP", '
            '"ExternalName", "LoadBalancer", "NodePort"'
        ],
    ),
    (
        "external name missing",
        _svc(type="ExternalName", ports=[]),
        ["spec.externalName: Required value"],
    ),
    (
        "external name invalid",
        _svc(type="ExternalName", externalName="Db_Host", ports=[]),
        [
            'spec.externalName: Invalid value: "Db_Host": a lowercase RFC 1123 subdomain must consist '
            "of lower case alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ],
    ),
    (
        "external name with cluster ip",
        _svc(type="ExternalName", externalName="a.b", clusterIP="10.96.0.5", ports=[]),
        ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"],
    ),
    (
        "nodePort on ClusterIP",
        _svc(ports=[{"port": 80, "nodePort": 30080}]),
        ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
    ),
    (
        "headless NodePort",
        _svc(type="NodePort", clusterIP="None"),
        [
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
        ],
    ),
    (
        "bad cluster ip",
        _svc(clusterIP="10.96.0.300"),
        [
            'spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. '
            "10.9.8.7 or 2001:db8::ffff)"
        ],
    ),
    (
        "clusterIPs mismatch",
        _svc(clusterIP="10.96.0.5", clusterIPs=["10.96.0.6"]),
        [
            'spec.clusterIPs: Invalid value: []string{"10.96.0.6"}: first value must match `clusterIP`'
        ],
    ),
    (
        "bad session affinity",
        _svc(sessionAffinity="Cookie"),
        ['spec.sessionAffinity: Unsupported value: "Cookie": supported values: "ClientIP", "None"'],
    ),
    (
        "client ip timeout too big",
        _svc(
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86401}},
        ),
        [
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater "
            "than 0 and less than 86400"
        ],
    ),
    (
        "externalTrafficPolicy on ClusterIP",
        _svc(externalTrafficPolicy="Local"),
        [
            'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for '
            "externally-accessible services"
        ],
    ),
    (
        "bad internalTrafficPolicy",
        _svc(internalTrafficPolicy="Node"),
        [
            'spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", "Local"'
        ],
    ),
    (
        "allocateLoadBalancerNodePorts on ClusterIP",
        _svc(allocateLoadBalancerNodePorts=True),
        [
            "spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'"
        ],
    ),
    (
        "bad ip family",
        _svc(ipFamilies=["IPv5"]),
        ['spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"'],
    ),
    (
        "single stack two families",
        _svc(ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="SingleStack"),
        [
            "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or "
            "'PreferDualStack' when multiple IP families are specified"
        ],
    ),
    (
        "bad selector value",
        _svc(selector={"app": "web app"}),
        [
            'spec.selector: Invalid value: "web app": a valid label must be an empty string or '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
            "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ],
    ),
    (
        "bad external ip",
        _svc(externalIPs=["1.2.3"]),
        [
            'spec.externalIPs[0]: Invalid value: "1.2.3": must be a valid IP address, (e.g. 10.9.8.7 '
            "or 2001:db8::ffff)"
        ],
    ),
]


@pytest.mark.parametrize(("svc", "errors"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_service_validation(svc: dict[str, Any], errors: list[str]) -> None:
    assert _errors(svc) == errors


def test_invalid_message_as_kubectl_prints_it() -> None:
    svc = _svc(ports=[{"port": 0, "targetPort": 80}])
    STRATEGY.default(svc)
    err = Invalid("Service", "web", STRATEGY.validate(svc))
    assert err.message == (
        'Service "web" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and '
        "65535, inclusive"
    )


def _stored(**spec: Any) -> dict[str, Any]:
    svc = _svc(**spec)
    STRATEGY.default(svc)
    STRATEGY.prepare_for_create(svc)
    svc["metadata"].update(uid="u1", resourceVersion="1", creationTimestamp="2024-01-01T00:00:00Z")
    return svc


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({}, []),
        ({"clusterIP": ""}, []),
        ({"clusterIP": "10.96.0.10"}, []),
        (
            {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"]},
            ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set'],
        ),
        (
            {"clusterIP": "None", "clusterIPs": None},
            ['spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set'],
        ),
        (
            {"ipFamilies": ["IPv6"]},
            ['spec.ipFamilies[0]: Invalid value: []string{"IPv6"}: may not change once set'],
        ),
        ({"type": "NodePort"}, []),
    ],
)
def test_service_update_immutable_cluster_ip(change: dict[str, Any], errors: list[str]) -> None:
    old = _stored(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"])
    new = copy.deepcopy(old)
    for key, value in change.items():
        if value is None:
            new["spec"].pop(key, None)
        else:
            new["spec"][key] = value
    STRATEGY.default(new)
    STRATEGY.prepare_for_update(new, old)
    assert [str(e) for e in STRATEGY.validate_update(new, old)] == errors


def test_service_update_to_external_name_may_drop_cluster_ip() -> None:
    old = _stored(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"])
    new = copy.deepcopy(old)
    new["spec"].update(type="ExternalName", externalName="db.example.com")
    STRATEGY.default(new)
    STRATEGY.prepare_for_update(new, old)
    assert STRATEGY.validate_update(new, old) == []
    for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert field not in new["spec"]


def test_service_update_from_nodeport_to_clusterip_drops_node_ports_and_policy() -> None:
    old = _stored(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    STRATEGY.default(new)
    STRATEGY.prepare_for_update(new, old)
    assert "nodePort" not in new["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in new["spec"]
    assert STRATEGY.validate_update(new, old) == []
