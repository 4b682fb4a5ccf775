"""Container environments as kubelet builds them: Service variables, downward API, refs."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from svcnet.agent.envvars import (
    EnvError,
    PodRuntimeInfo,
    container_env,
    expand,
    referenced_objects,
    service_env,
    services_env,
)

INFO = PodRuntimeInfo("10.244.1.5", ("10.244.1.5",), "172.18.0.11")


def svc(name: str, ns: str, ip: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": ports}}


def pod(
    env: list[dict[str, Any]] | None = None,
    env_from: list[dict[str, Any]] | None = None,
    links: bool | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    container: dict[str, Any] = {"name": "c", "env": env or [], "envFrom": env_from or []}
    spec: dict[str, Any] = {
        "nodeName": "node-1",
        "serviceAccountName": "default",
        "containers": [container],
    }
    if links is not None:
        spec["enableServiceLinks"] = links
    return {
        "metadata": {"name": "web-0", "namespace": "prod", "uid": "u1", "labels": {"app": "web"}},
        "spec": spec,
    }, container


WEB = svc(
    "web",
    "prod",
    "10.96.0.20",
    [
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"name": "dns-udp", "port": 53, "protocol": "UDP"},
    ],
)
KUBERNETES = svc("kubernetes", "default", "10.96.0.1", [{"name": "https", "port": 443}])


def test_service_env_has_host_port_named_ports_and_link_variables() -> None:
    assert dict(service_env(WEB)) == {
        "WEB_SERVICE_HOST": "10.96.0.20",
        "WEB_SERVICE_PORT": "80",
        "WEB_SERVICE_PORT_HTTP": "80",
        "WEB_SERVICE_PORT_DNS_UDP": "53",
        "WEB_PORT": "tcp://10.96.0.20:80",
        "WEB_PORT_80_TCP": "tcp://10.96.0.20:80",
        "WEB_PORT_80_TCP_PROTO": "tcp",
        "WEB_PORT_80_TCP_PORT": "80",
        "WEB_PORT_80_TCP_ADDR": "10.96.0.20",
        "WEB_PORT_53_UDP": "udp://10.96.0.20:53",
        "WEB_PORT_53_UDP_PROTO": "udp",
        "WEB_PORT_53_UDP_PORT": "53",
        "WEB_PORT_53_UDP_ADDR": "10.96.0.20",
    }


@pytest.mark.parametrize("ip", ["", "None"])
def test_headless_or_unallocated_service_has_no_variables(ip: str) -> None:
    assert service_env(svc("h", "prod", ip, [{"port": 80}])) == []


def test_dashes_in_service_names_become_underscores() -> None:
    env = dict(service_env(svc("my-web", "prod", "10.96.0.9", [{"port": 8080}])))
    assert env["MY_WEB_SERVICE_HOST"] == "10.96.0.9"


@pytest.mark.parametrize(
    ("links", "want_web"),
    [(True, True), (False, False)],
)
def test_enable_service_links_controls_namespace_services_but_not_kubernetes(
    links: bool, want_web: bool
) -> None:
    other_ns = svc("db", "other", "10.96.0.30", [{"port": 5432}])
    env = services_env("prod", [WEB, KUBERNETES, other_ns], links)
    assert ("WEB_SERVICE_HOST" in env) is want_web
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert "DB_SERVICE_HOST" not in env


@pytest.mark.parametrize(
    ("value", "defined", "want"),
    [
        ("plain", {}, "plain"),
        ("$(A)-x", {"A": "1"}, "1-x"),
        ("$(MISSING)", {}, "$(MISSING)"),
        ("$$(A)", {"A": "1"}, "$(A)"),
        ("a$b", {}, "a$b"),
        ("$(A", {"A": "1"}, "$(A"),
    ],
)
def test_expand_follows_kubernetes_rules(value: str, defined: dict[str, str], want: str) -> None:
    assert expand(value, defined) == want


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("metadata.name", "web-0"),
        ("metadata.namespace", "prod"),
        ("metadata.uid", "u1"),
        ("spec.nodeName", "node-1"),
        ("spec.serviceAccountName", "default"),
        ("status.podIP", "10.244.1.5"),
        ("status.hostIP", "172.18.0.11"),
        ("metadata.labels['app']", "web"),
    ],
)
def test_field_refs_resolve_downward_api(path: str, want: str) -> None:
    p, c = pod([{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": path}}}])
    assert container_env(p, c, INFO)["V"] == want


def test_config_map_and_secret_key_refs() -> None:
    p, c = pod(
        [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "b"}}},
        ]
    )
    cms = {"cm": {"data": {"a": "1"}}}
    secrets = {"s": {"data": {"b": base64.b64encode(b"two").decode()}}}
    env = container_env(p, c, INFO, config_maps=cms, secrets=secrets)
    assert (env["A"], env["B"]) == ("1", "two")


@pytest.mark.parametrize(
    ("ref", "store", "message"),
    [
        ({"configMapKeyRef": {"name": "cm", "key": "a"}}, {}, 'configmap "cm" not found'),
        (
            {"configMapKeyRef": {"name": "cm", "key": "zz"}},
            {"cm": {"data": {"a": "1"}}},
            "couldn't find key zz in ConfigMap prod/cm",
        ),
        ({"secretKeyRef": {"name": "s", "key": "b"}}, {}, 'secret "s" not found'),
    ],
)
def test_missing_refs_are_create_container_config_errors(
    ref: dict[str, Any], store: dict[str, Any], message: str
) -> None:
    p, c = pod([{"name": "X", "valueFrom": ref}])
    with pytest.raises(EnvError) as e:
        container_env(p, c, INFO, config_maps=store, secrets=store)
    assert str(e.value) == message
    assert e.value.reason == "CreateContainerConfigError"


def test_optional_missing_ref_leaves_variable_unset() -> None:
    p, c = pod(
        [
            {
                "name": "X",
                "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a", "optional": True}},
            }
        ]
    )
    assert "X" not in container_env(p, c, INFO)


def test_env_from_with_prefix_and_env_overrides_it() -> None:
    p, c = pod(
        [{"name": "P_a", "value": "from-env"}], [{"configMapRef": {"name": "cm"}, "prefix": "P_"}]
    )
    env = container_env(p, c, INFO, config_maps={"cm": {"data": {"a": "1", "b": "2"}}})
    assert (env["P_a"], env["P_b"]) == ("from-env", "2")


def test_env_value_sees_service_variables() -> None:
    p, c = pod([{"name": "URL", "value": "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)"}])
    assert container_env(p, c, INFO, services=[WEB])["URL"] == "http://10.96.0.20:80"


def test_referenced_objects_lists_config_maps_and_secrets() -> None:
    p, _ = pod(
        [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm1", "key": "a"}}}],
        [{"secretRef": {"name": "s1"}}, {"configMapRef": {"name": "cm2"}}],
    )
    assert referenced_objects(p) == ({"cm1", "cm2"}, {"s1"})
