"""Ingress annotations: reading them (svcnet's and ingress-nginx's spellings), and what they
change in the model and the rendered backends.

Fixture ranges: endpoints 10.244.1.0/24.
"""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.dataplane.haproxy_config import MAIN_FILE
from svcnet.ingress.annotations import BackendSettings, read_settings
from svcnet.ingress.haproxycfg import assign_slots, render
from svcnet.ingress.model import RoutingModel
from tests.unit.ingress.builders import ingress, path, rule, tls_secret, trace
from tests.unit.ingress.test_model import LAYOUT
from tests.unit.ingress.test_model import model_of as build

NGINX = "nginx.ingress.kubernetes.io/"
OURS = "ingress.svcnet.io/"


def annotated(
    name: str, annotations: dict[str, str], *rules: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    ing = ingress(name, *rules, **kw)
    ing["metadata"]["annotations"] = annotations
    return ing


@pytest.mark.parametrize(
    ("annotations", "want"),
    [
        ({NGINX + "rewrite-target": "/"}, BackendSettings(rewrite_target="/")),
        ({OURS + "rewrite-target": "/v2/api"}, BackendSettings(rewrite_target="/v2/api")),
        ({NGINX + "proxy-connect-timeout": "3", NGINX + "proxy-read-timeout": "120"},
         BackendSettings(timeout_connect=3, timeout_server=120)),
        ({NGINX + "limit-rps": "10"}, BackendSettings(rate_limit=10, limit_scope="default/a")),
        ({OURS + "limit-rps": "5", NGINX + "limit-rps": "50"},
         BackendSettings(rate_limit=5, limit_scope="default/a")),
        ({"example.com/rewrite-target": "/x"}, BackendSettings()),
    ],
)  # fmt: skip
def test_annotations_are_read_in_both_spellings(
    annotations: dict[str, str], want: BackendSettings
) -> None:
    settings, warnings = read_settings(annotations, "default/a")
    assert (settings.backend, warnings) == (want, [])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("rewrite-target", "/$2"),
        ("rewrite-target", "relative"),
        ("rewrite-target", "/a b"),
        ("proxy-read-timeout", "60s"),
        ("proxy-connect-timeout", "0"),
        ("limit-rps", "-1"),
        ("ssl-redirect", "maybe"),
    ],
)
def test_a_value_that_cannot_be_read_is_ignored_with_a_warning(name: str, value: str) -> None:
    settings, warnings = read_settings({NGINX + name: value}, "default/a")
    assert settings.backend == BackendSettings() and settings.ssl_redirect
    assert len(warnings) == 1 and warnings[0].startswith(name)


def test_annotated_rules_get_a_backend_of_their_own_with_the_same_endpoints() -> None:
    model = build(
        annotated("slow", {NGINX + "proxy-read-timeout": "120", NGINX + "rewrite-target": "/"},
                  rule("a.example.com", path("/old", "web"))),
        ingress("plain", rule("b.example.com", path("/", "web"))),
    )  # fmt: skip
    config = render(model, LAYOUT, assign_slots({}, model))
    slow, plain = trace(config, "a.example.com", "/old/x"), trace(config, "b.example.com", "/")
    assert plain == "default_web_80" and slow.startswith("default_web_80_") and slow != plain
    assert model.backend(slow).endpoints == model.backend(plain).endpoints
    text = config.files[MAIN_FILE].decode()
    section = text.split(f"backend {slow}\n", 1)[1].split("\nbackend ", 1)[0]
    assert "    timeout server 120s" in section
    assert "    http-request set-path '/'" in section
    assert (
        "timeout server 120s"
        not in text.split(f"backend {plain}\n", 1)[1].split("\nbackend ", 1)[0]
    )


def test_limit_rps_counts_per_client_address_in_its_backend() -> None:
    model = build(
        annotated("api", {NGINX + "limit-rps": "7"}, rule("a.example.com", path("/", "web")))
    )
    config = render(model, LAYOUT, assign_slots({}, model))
    name = trace(config, "a.example.com", "/")
    text = config.files[MAIN_FILE].decode()
    section = text.split(f"backend {name}\n", 1)[1].split("\nbackend ", 1)[0].splitlines()
    assert section[1:4] == [
        "    stick-table type ip size 100k expire 10s store http_req_rate(1s)",
        "    http-request track-sc0 src",
        "    http-request deny deny_status 503 if { sc_http_req_rate(0) gt 7 }",
    ]


def test_two_ingresses_with_the_same_limit_keep_their_own_counters() -> None:
    model = build(
        annotated("one", {NGINX + "limit-rps": "7"}, rule("a.example.com", path("/", "web"))),
        annotated("two", {NGINX + "limit-rps": "7"}, rule("b.example.com", path("/", "web"))),
    )
    config = render(model, LAYOUT, assign_slots({}, model))
    assert trace(config, "a.example.com", "/") != trace(config, "b.example.com", "/")


def test_ssl_redirect_false_serves_the_tls_host_over_http_too() -> None:
    tls = [{"hosts": ["s.example.com"], "secretName": "s-tls"}]
    secrets = (tls_secret("s-tls", "s.example.com"),)
    on = build(ingress("s", rule("s.example.com", path("/", "web")), tls=tls), secrets=secrets)
    off = build(annotated("s", {NGINX + "ssl-redirect": "false"},
                          rule("s.example.com", path("/", "web")), tls=tls), secrets=secrets)  # fmt: skip
    for model, want in ((on, "redirect"), (off, "default_web_80")):
        config = render(model, LAYOUT, assign_slots({}, model))
        assert trace(config, "s.example.com", "/", ssl=False) == want
        assert trace(config, "s.example.com", "/", ssl=True) == "default_web_80"


def test_an_unreadable_annotation_is_a_warning_on_its_ingress() -> None:
    model = build(
        annotated("bad", {NGINX + "limit-rps": "lots"}, rule("a.example.com", path("/", "web")))
    )
    assert [(p.name, p.reason) for p in model.problems] == [("bad", "InvalidAnnotation")]
    assert isinstance(model, RoutingModel)
