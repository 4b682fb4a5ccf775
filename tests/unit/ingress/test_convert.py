"""``svcnet ingress convert``: the translated Gateway and HTTPRoutes route every request of
a table where the Ingresses did (both read by their own models), and what cannot be
translated is named.

Fixture ranges: endpoints 10.244.1.0/24, namespace ``default``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from svcnet.cli.main import cli
from svcnet.ingress.convert import convert, ingresses_in
from svcnet.ingress.gateway import allocate_ports, build_gateways, select_rule
from svcnet.ingress.model import select
from tests.unit.ingress.builders import backend, endpoint_slice, ingress, path, rule, service
from tests.unit.ingress.gwbuilders import GW_CLASS
from tests.unit.ingress.test_model import model_of

SEED = Path(__file__).parents[3] / "examples" / "seed" / "ingress-main.yaml"
SERVICES = ("api", "web", "docs", "exact", "fallback")

INGRESSES = [
    ingress(
        "site",
        rule("api.example.com", path("/", "api"), path("/v1/exact", "exact", "Exact")),
        rule("docs.example.com", path("/docs", "docs", "ImplementationSpecific")),
        rule(None, path("/any", "web")),
        default_backend=backend("fallback"),
    )
]


def gateway_reaches(objs: list[dict[str, Any]], host: str, req: str) -> str:
    gateways = [o for o in objs if o["kind"] == "Gateway"]
    ports = allocate_ports(
        [(g["metadata"]["namespace"], g["metadata"]["name"],
          [li["port"] for li in g["spec"]["listeners"]]) for g in gateways], {})  # fmt: skip
    gw = build_gateways(
        gateway_classes=[GW_CLASS], gateways=gateways,
        routes=[o for o in objs if o["kind"] == "HTTPRoute"], grants=[], namespaces=[],
        services=[service(s) for s in SERVICES],
        endpoint_slices=[endpoint_slice(s, "10.244.1.2") for s in SERVICES], secrets=[],
        addresses={}, target_ports=ports,
    )  # fmt: skip
    [fe] = [f for f in gw.frontends if f.port == 80]
    hit = select_rule(fe, host, req)
    return hit.backends[0].backend.split("_")[1] if hit else "404"


@pytest.mark.parametrize(
    ("host", "req"),
    [
        ("api.example.com", "/"), ("api.example.com", "/v1/exact"), ("api.example.com", "/v1"),
        ("docs.example.com", "/docs/a"), ("docs.example.com", "/docsx"),
        ("other.example.com", "/any/x"), ("other.example.com", "/"),
    ],
)  # fmt: skip
def test_the_translation_routes_as_the_ingress_did(host: str, req: str) -> None:
    model = model_of(*INGRESSES, services=SERVICES)
    by_ingress = select(model, host, req)
    want = model.backend(by_ingress).service if by_ingress else "404"
    assert gateway_reaches(convert(INGRESSES).objects, host, req) == want


def test_tls_hosts_get_an_https_listener_and_a_redirect_route() -> None:
    ing = ingress("secure", rule("s.example.com", path("/", "web")),
                  tls=[{"hosts": ["s.example.com"], "secretName": "s-tls"}])  # fmt: skip
    out = convert([ing])
    [gw] = [o for o in out.objects if o["kind"] == "Gateway"]
    https = gw["spec"]["listeners"][1]
    assert (https["port"], https["protocol"], https["hostname"]) == (443, "HTTPS", "s.example.com")
    assert https["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "s-tls"}]
    routes = {o["metadata"]["name"]: o["spec"] for o in out.objects if o["kind"] == "HTTPRoute"}
    assert routes["secure-s-example-com"]["parentRefs"] == [
        {"name": "svcnet", "sectionName": "https-s-example-com"}]  # fmt: skip
    redirect = routes["secure-s-example-com-redirect"]
    assert redirect["parentRefs"] == [{"name": "svcnet", "sectionName": "http"}]
    assert redirect["rules"][0]["filters"][0]["requestRedirect"] == {
        "scheme": "https", "statusCode": 301}  # fmt: skip
    ing["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/ssl-redirect": "false"}
    assert not any(o["metadata"]["name"].endswith("-redirect") for o in convert([ing]).objects)


def test_what_cannot_be_translated_is_named() -> None:
    ing = ingress("odd", rule("o.example.com", path("/", "web", port="http"),
                              {"path": "/r", "pathType": "Prefix",
                               "backend": {"resource": {"kind": "Bucket", "name": "b"}}}))  # fmt: skip
    ing["metadata"]["annotations"] = {
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "30",
        "nginx.ingress.kubernetes.io/rewrite-target": "/$2",
    }
    notes = "\n".join(convert([ing]).notes)
    assert "port 'http' is named" in notes
    assert "resource backend" in notes
    assert "proxy-read-timeout not translated" in notes
    assert "rewrite-target '/$2' uses capture groups" in notes


def test_the_command_converts_the_seed_ingress_file() -> None:
    result = CliRunner().invoke(cli, ["ingress", "convert", "-f", str(SEED)])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    seed = ingresses_in(yaml.safe_load_all(SEED.read_text()))
    assert docs == convert(seed).objects
    assert {d["spec"].get("hostnames", [""])[0] for d in docs if d["kind"] == "HTTPRoute"} == {
        "api.example.com", "app.example.com"}  # fmt: skip


def test_a_missing_file_is_an_error() -> None:
    result = CliRunner().invoke(cli, ["ingress", "convert", "-f", "/nonexistent/x.yaml"])
    assert result.exit_code == 2
    assert "No such file" in result.output


def test_a_plain_rewrite_target_becomes_a_full_path_rewrite() -> None:
    # ingress-nginx replaces the whole path with a target that has no capture groups.
    ing = ingress("rw", rule("r.example.com", path("/old", "web")))
    ing["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/rewrite-target": "/new"}
    routes = [o for o in convert([ing]).objects if o["kind"] == "HTTPRoute"]
    filters = [f for r in routes for rule_ in r["spec"]["rules"] for f in rule_.get("filters", [])]
    assert filters == [{"type": "URLRewrite", "urlRewrite": {
        "path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}}}]  # fmt: skip
