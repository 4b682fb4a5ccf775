"""The routing model and its HAProxy rendering: every row is checked twice, against the
model's own reading (:func:`select`) and against a trace of the rendered frontend rules.

Fixture ranges: endpoints 10.244.1.0/24, namespace ``default``.
"""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.ingress.certs import self_signed
from svcnet.ingress.haproxycfg import CRT_LIST, Layout, assign_slots, render
from svcnet.ingress.model import (
    REASON_CONFLICT,
    REASON_PORT_NOT_FOUND,
    REASON_SERVICE_NOT_FOUND,
    REASON_TLS_SECRET,
    RoutingModel,
    backend_name,
    build_model,
    select,
)
from tests.unit.ingress.builders import (
    NOW,
    backend,
    endpoint_slice,
    ingress,
    ingress_class,
    path,
    rule,
    service,
    tls_secret,
    trace,
)

LAYOUT = Layout(admin_socket="/run/test/admin.sock", default_pem=self_signed("default", NOW))
SERVICES = ("api", "web", "docs", "exact", "foo", "foobar", "impl", "root", "pa", "ea", "pab",
            "wild", "any", "old", "new", "fallback", "other")  # fmt: skip


def model_of(
    *ingresses: dict[str, Any],
    classes: tuple[dict[str, Any], ...] = (ingress_class(),),
    services: tuple[str, ...] = SERVICES,
    slices: tuple[dict[str, Any], ...] | None = None,
    secrets: tuple[dict[str, Any], ...] = (),
) -> RoutingModel:
    if slices is None:
        slices = tuple(endpoint_slice(s, f"10.244.1.{i + 2}") for i, s in enumerate(services))
    return build_model(
        ingress_classes=classes,
        ingresses=ingresses,
        services=[service(s) for s in services],
        endpoint_slices=slices,
        secrets=secrets,
    )


def where(model: RoutingModel, host: str, request_path: str) -> str:
    """The Service a request reaches ("404" for none), by the model and by the rendered
    configuration, which must agree."""
    config = render(model, LAYOUT, assign_slots({}, model))
    by_model = select(model, host, request_path) or "404"
    by_config = trace(config, host, request_path, ssl=True)
    assert by_model == by_config, f"model says {by_model}, configuration says {by_config}"
    return by_model if by_model == "404" else model.backend(by_model).service


PATH_TYPES = ingress(
    "paths",
    rule(
        "example.com",
        path("/exact", "exact", "Exact"),
        path("/foo", "foo"),
        path("/foo/bar/", "foobar"),
        path("/impl", "impl", "ImplementationSpecific"),
    ),
)


@pytest.mark.parametrize(
    ("request_path", "want"),
    [
        ("/exact", "exact"),
        ("/exact/", "404"),  # Exact: the path as written, nothing more
        ("/exactly", "404"),
        ("/foo", "foo"),
        ("/foo/", "foo"),
        ("/foo/x", "foo"),
        ("/foobar", "404"),  # Prefix is element-wise
        ("/foo/bar", "foobar"),  # a trailing "/" in a Prefix path is ignored
        ("/foo/bar/baz", "foobar"),
        ("/foo/barbaz", "foo"),
        ("/impl/x", "impl"),  # ImplementationSpecific is Prefix
        ("/implx", "404"),
        ("/", "404"),
    ],
)
def test_path_types(request_path: str, want: str) -> None:
    assert where(model_of(PATH_TYPES), "example.com", request_path) == want


PRECEDENCE = ingress(
    "precedence",
    rule(
        "p.example.com",
        path("/", "root"),
        path("/a", "pa"),
        path("/a/b", "pab"),
        path("/a", "ea", "Exact"),
    ),
)


@pytest.mark.parametrize(
    ("request_path", "want"),
    [
        ("/a", "ea"),  # same length: Exact before Prefix
        ("/a/", "pa"),
        ("/a/b", "pab"),  # the longest path wins
        ("/a/b/c", "pab"),
        ("/a/bc", "pa"),
        ("/b", "root"),
        ("/", "root"),
    ],
)
def test_precedence(request_path: str, want: str) -> None:
    assert where(model_of(PRECEDENCE), "p.example.com", request_path) == want


HOSTS = ingress(
    "hosts",
    rule("api.example.com", path("/api", "api")),
    rule("*.example.com", path("/", "wild")),
    rule(None, path("/", "any")),
)


@pytest.mark.parametrize(
    ("host", "request_path", "want"),
    [
        ("api.example.com", "/api/v1", "api"),
        ("API.Example.COM:8443", "/api", "api"),  # case and port do not matter
        ("api.example.com", "/other", "404"),  # no fall-through to wildcard or host-less rules
        ("x.example.com", "/anything", "wild"),  # a wildcard matches one label…
        ("a.b.example.com", "/", "any"),  # …not two
        ("example.com", "/", "any"),  # …nor none
        (".example.com", "/", "any"),
        ("other.org", "/x", "any"),
    ],
)
def test_hosts(host: str, request_path: str, want: str) -> None:
    assert where(model_of(HOSTS), host, request_path) == want


def test_seed_main_ingress_serves_both_hosts_through_the_default_class() -> None:
    main = ingress(
        "main-ingress",
        rule("api.example.com", path("/", "backend-api")),
        rule("app.example.com", path("/", "frontend")),
        class_name=None,
    )
    model = model_of(
        main, classes=(ingress_class(default=True),), services=("backend-api", "frontend")
    )
    assert where(model, "api.example.com", "/users") == "backend-api"
    assert where(model, "app.example.com", "/") == "frontend"
    assert where(model, "other.example.com", "/") == "404"


@pytest.mark.parametrize(
    ("class_name", "classes", "served"),
    [
        ("svcnet", (ingress_class(),), True),
        ("nginx", (ingress_class(), ingress_class("nginx", "k8s.io/ingress-nginx")), False),
        (None, (ingress_class(default=True),), True),  # no class: ours when ours is default
        (None, (ingress_class(),), False),
        (None, (ingress_class("nginx", "k8s.io/ingress-nginx", default=True),), False),
        ("svcnet", (ingress_class("svcnet", "k8s.io/ingress-nginx"),), False),
        ("missing", (ingress_class(),), False),
    ],
)
def test_ingress_class(
    class_name: str | None, classes: tuple[dict[str, Any], ...], served: bool
) -> None:
    ing = ingress("x", rule("h.example.com", path("/", "web")), class_name=class_name)
    model = model_of(ing, classes=classes)
    assert (where(model, "h.example.com", "/") == "web") is served
    assert bool(model.ingresses) is served


def test_deprecated_class_annotation_is_honoured() -> None:
    ing = ingress("x", rule("h.example.com", path("/", "web")), class_name=None)
    ing["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "svcnet"}
    assert where(model_of(ing), "h.example.com", "/") == "web"


@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_conflicting_rules_the_oldest_ingress_wins(order: str) -> None:
    old = ingress(
        "zzz-old", rule("c.example.com", path("/x", "old")), created="2026-01-01T00:00:00Z"
    )
    new = ingress("aaa-new", rule("c.example.com", path("/x", "new"), path("/y", "new")),
                  created="2026-01-02T00:00:00Z")  # fmt: skip
    model = model_of(*((old, new) if order == "old-first" else (new, old)))
    assert where(model, "c.example.com", "/x") == "old"
    assert where(model, "c.example.com", "/y") == "new"  # rules of both are merged
    assert [(p.name, p.reason) for p in model.problems] == [("aaa-new", REASON_CONFLICT)]


def test_conflicting_rules_of_the_same_age_go_to_the_first_name() -> None:
    a = ingress("a", rule("c.example.com", path("/x", "old")))
    b = ingress("b", rule("c.example.com", path("/x", "new")))
    assert where(model_of(b, a), "c.example.com", "/x") == "old"


@pytest.mark.parametrize(
    ("ingresses", "want"),
    [
        ((), "404"),
        ((ingress("d", default_backend=backend("fallback")),), "fallback"),
        (
            (
                ingress("new", default_backend=backend("other"), created="2026-02-01T00:00:00Z"),
                ingress("old", default_backend=backend("fallback")),
            ),
            "fallback",
        ),
    ],
)
def test_default_backend_else_404(ingresses: tuple[dict[str, Any], ...], want: str) -> None:
    routes = ingress("routes", rule("r.example.com", path("/r", "web")))
    model = model_of(routes, *ingresses)
    assert where(model, "r.example.com", "/r") == "web"
    assert where(model, "r.example.com", "/unmatched") == want
    assert where(model, "unknown.example.com", "/") == want


def test_missing_service_makes_its_route_unavailable_and_warns() -> None:
    ing = ingress(
        "m",
        rule("m.example.com", path("/gone", "gone"), path("/badport", "web", port=81),
             path("/ok", "web")),
    )  # fmt: skip
    model = model_of(ing)
    gone = model.backend(select(model, "m.example.com", "/gone"))
    bad_port = model.backend(select(model, "m.example.com", "/badport"))
    assert gone.unavailable and bad_port.unavailable
    assert not model.backend(select(model, "m.example.com", "/ok")).unavailable
    assert sorted(p.reason for p in model.problems) == [
        REASON_PORT_NOT_FOUND,
        REASON_SERVICE_NOT_FOUND,
    ]
    # Rendered: a backend with no server, which HAProxy answers with 503.
    config = render(model, LAYOUT, assign_slots({}, model))
    assert [s for s in config.servers if s.backend == gone.name] == []
    assert f"backend {gone.name}" in config.files["haproxy.cfg"].decode()


def test_backends_are_the_ready_endpoints_of_the_service_port() -> None:
    ing = ingress("e", rule("e.example.com", path("/", "web", port="http")))
    svc = service("web", port=80, port_name="http")
    slices = [
        endpoint_slice("web", "10.244.1.2", "10.244.1.3", port=9000, port_name="http",
                       not_ready=("10.244.1.4",), name="web-1"),
        endpoint_slice("web", "10.244.1.5", port=9000, port_name="http", name="web-2"),
        endpoint_slice("web", "10.244.1.6", port=9999, port_name="metrics", name="web-3"),
    ]  # fmt: skip
    model = build_model(
        ingress_classes=[ingress_class()], ingresses=[ing], services=[svc],
        endpoint_slices=slices, secrets=[],
    )  # fmt: skip
    eps = model.backend(backend_name("default", "web", "http")).endpoints
    assert [(e.ip, e.port) for e in eps] == [
        ("10.244.1.2", 9000),
        ("10.244.1.3", 9000),
        ("10.244.1.5", 9000),
    ]


TLS = ingress(
    "tls",
    rule("secure.example.com", path("/", "web")),
    rule("plain.example.com", path("/", "web")),
    rule("broken.example.com", path("/", "web")),
    tls=[
        {"hosts": ["secure.example.com"], "secretName": "secure"},
        {"hosts": ["broken.example.com"], "secretName": "broken"},
    ],
)


@pytest.mark.parametrize(
    ("host", "ssl", "want"),
    [
        ("secure.example.com", False, "redirect"),
        ("secure.example.com", True, "default_web_80"),
        ("plain.example.com", False, "default_web_80"),
        ("broken.example.com", False, "redirect"),  # TLS asked for: served with the default
    ],
)
def test_tls_hosts_are_redirected_from_http(host: str, ssl: bool, want: str) -> None:
    model = model_of(TLS, secrets=(tls_secret("secure", "secure.example.com"),))
    assert trace(render(model, LAYOUT, {}), host, "/", ssl=ssl) == want


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        (None, "not found"),
        (tls_secret("broken", "broken.example.com", secret_type="Opaque"), "type is 'Opaque'"),
        ("mismatch", "is not the key of tls.crt"),
        ("garbage", "tls.crt is not a PEM certificate"),
    ],
)
def test_unusable_tls_secret_leaves_the_host_on_the_default_certificate(
    secret: dict[str, Any] | str | None, why: str
) -> None:
    secrets = [tls_secret("secure", "secure.example.com")]
    if secret == "mismatch":
        other = tls_secret("x", "other.example.com")
        broken = tls_secret("broken", "broken.example.com")
        broken["data"]["tls.key"] = other["data"]["tls.key"]
        secrets.append(broken)
    elif secret == "garbage":
        broken = tls_secret("broken", "broken.example.com")
        broken["data"]["tls.crt"] = "bm90IGEgY2VydA=="
        secrets.append(broken)
    elif isinstance(secret, dict):
        secrets.append(secret)
    model = model_of(TLS, secrets=tuple(secrets))
    assert [(c.name, c.hosts) for c in model.certificates] == [
        ("default_secure", ("secure.example.com",))
    ]
    [problem] = model.problems
    assert problem.reason == REASON_TLS_SECRET and why in problem.message
    config = render(model, LAYOUT, {})
    assert config.files[CRT_LIST] == b"certs/default_secure.pem [] secure.example.com\n"
    assert config.files["certs/default_secure.pem"] == model.certificates[0].pem


def test_tls_for_one_host_from_two_ingresses_the_oldest_wins() -> None:
    a = ingress("a", tls=[{"hosts": ["t.example.com"], "secretName": "one"}])
    b = ingress("b", tls=[{"hosts": ["t.example.com"], "secretName": "two"}],
                created="2026-03-01T00:00:00Z")  # fmt: skip
    model = model_of(b, a, secrets=(tls_secret("one", "t.example.com"),
                                    tls_secret("two", "t.example.com")))  # fmt: skip
    assert [c.name for c in model.certificates] == ["default_one"]
    assert [(p.name, p.reason) for p in model.problems] == [("b", REASON_CONFLICT)]
