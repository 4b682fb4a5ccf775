"""The ingress add-on end to end: requests from the machine to the controller's LoadBalancer
address, with Host headers and SNI, reach the backends' pods as the Ingresses say.

One 2-node cluster for the module (cluster_fixture: its own ranges, ``svcnet down`` and a leak
check at the end); backends are Deployments of a small echo server (tests/e2e/ingress_echo.py)
that names its Service. Certificates are made here with ``cryptography``.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cluster_fixture import Cluster, running_cluster
from cryptography import x509
from cryptography.x509.oid import NameOID

from svcnet.cluster.addons import INGRESS_NAME, INGRESS_NAMESPACE
from svcnet.dataplane.haproxy import ProcInfo, parse_show_proc
from svcnet.ingress.certs import self_signed
from svcnet.ingress.gatewayclass import SUPPORTED_FEATURES
from svcnet.testing.cluster_process import cluster_process
from svcnet.testing.polling import eventually_sync

ECHO = str(Path(__file__).with_name("ingress_echo.py"))
GRPC_ECHO = str(Path(__file__).with_name("ingress_grpc.py"))
BACKENDS = ("backend-api", "frontend", "exact", "prefix", "impl", "longer", "fallback", "web",
            "canary")  # fmt: skip


def backends_manifest(
    names: tuple[str, ...],
    namespace: str = "default",
    *,
    script: str = "",
    env: dict[str, str] | None = None,
) -> str:
    """Deployments and Services of the echo server (or ``script``), ``env`` added."""
    docs: list[dict[str, Any]] = []
    for name in names:
        labels = {"app": name}
        env_list = [{"name": "SERVICE", "value": name}]
        env_list += [{"name": k, "value": v} for k, v in (env or {}).items()]
        docs.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "echo", "image": "echo",
                        "command": [sys.executable, script or ECHO, "8080"],
                        "env": env_list,
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                        # Kubernetes' graceful shutdown: keep serving while the endpoint's
                        # removal reaches the proxies (the server itself stops at SIGTERM).
                        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "2"]}}},
                    }],
                }},
            },
        })  # fmt: skip
        docs.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        })  # fmt: skip
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


# The seed's Ingress, as written (no class: the default IngressClass serves it).
MAIN_INGRESS = (Path(__file__).parents[2] / "examples" / "seed" / "ingress-main.yaml").read_text()


def ingress(name: str, spec: dict[str, Any]) -> str:
    return json.dumps({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"}, "spec": spec,
    })  # fmt: skip


def route(path: str, service: str, path_type: str = "Prefix") -> dict[str, Any]:
    return {
        "path": path,
        "pathType": path_type,
        "backend": {"service": {"name": service, "port": {"number": 80}}},
    }


class Ingress:
    def __init__(self, cluster: Cluster, address: str) -> None:
        self.cluster = cluster
        self.address = address

    def get(
        self, host: str, path: str = "/", *, tls: bool = False, sni: str | None = None
    ) -> tuple[int, dict[str, Any] | None, http.client.HTTPResponse]:
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = _SniConnection(
                self.address, 443, sni or host, ctx, timeout=5
            )
        else:
            conn = http.client.HTTPConnection(self.address, 80, timeout=5)
        try:
            conn.request("GET", path, headers={"Host": host})
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        return resp.status, data, resp

    def reaches(self, host: str, path: str, **kw: Any) -> str:
        """The Service a request lands on, or its status code when it lands on none."""
        status, data, _ = self.get(host, path, **kw)
        return str(data["service"]) if status == 200 and data else str(status)

    def wait(self, host: str, path: str, want: str, timeout: float = 30.0) -> None:
        def got() -> str | None:
            try:
                answer = self.reaches(host, path)
            except OSError as e:
                answer = repr(e)
            return answer if answer == want else None

        eventually_sync(got, timeout, what=f"{host}{path} reaching {want}")

    def certificate_cn(self, sni: str) -> str:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection((self.address, 443), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=sni) as s,
        ):
            der = s.getpeercert(binary_form=True)
        assert der is not None
        cert = x509.load_der_x509_certificate(der)
        return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


class _SniConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, sni: str, ctx: ssl.SSLContext, timeout: float):
        super().__init__(host, port, context=ctx, timeout=timeout)
        self._sni = sni
        self._ctx = ctx

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self._sni)


def haproxy_master(cluster: Cluster) -> Path:
    """The master CLI socket of the add-on's HAProxy (the socket is in the pod's own /tmp,
    reached through the process's root)."""
    pid = cluster_process(cluster.service_cidr, lambda argv: b"-W" in argv and b"-S" in argv)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    sock = argv[argv.index(b"-S") + 1].decode().split(",")[0]
    return Path(f"/proc/{pid}/root") / sock.lstrip("/")


def show_proc(master: Path) -> ProcInfo:
    """The master CLI's ``show proc``; a master in the middle of a reload re-creates its socket
    (a refused or reset connection), so the question is asked again."""

    def ask() -> ProcInfo | None:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(master))
                s.sendall(b"show proc;quit\n")
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return None
        return parse_show_proc(b"".join(chunks).decode())

    return eventually_sync(ask, 10, what="the HAProxy master CLI answering")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("ingress-cluster"), nodes=2) as c:
        yield c


def addon_address(cluster: Cluster) -> str:
    """The add-on's LoadBalancer address, once its controller is rolled out."""
    svc = cluster.wait_for(
        f"service/{INGRESS_NAME}",
        lambda s: (s.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip"),
        60,
        "-n",
        INGRESS_NAMESPACE,
    )
    cluster.kubectl(
        "rollout", "status", f"deployment/{INGRESS_NAME}", "-n", INGRESS_NAMESPACE,
        "--timeout=240s", timeout=250,
    )  # fmt: skip
    return str(svc["status"]["loadBalancer"]["ingress"][0]["ip"])


@pytest.fixture(scope="module")
def ing(cluster: Cluster) -> Ingress:
    cluster.apply(backends_manifest(BACKENDS))
    for name in BACKENDS:
        cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=100)
    return Ingress(cluster, addon_address(cluster))


def test_seed_main_ingress_as_written_serves_both_hosts(ing: Ingress) -> None:
    ing.cluster.apply(MAIN_INGRESS)
    ing.wait("api.example.com", "/", "backend-api")
    assert ing.reaches("app.example.com", "/") == "frontend"
    assert ing.reaches("api.example.com", "/users/7") == "backend-api"
    obj = ing.cluster.wait_for(
        "ingress/main-ingress",
        lambda o: o.get("status", {}).get("loadBalancer", {}).get("ingress"),
    )
    assert obj["status"]["loadBalancer"]["ingress"] == [{"ip": ing.address}]
    assert obj["spec"].get("ingressClassName") in (None, "svcnet")


PATHS = {
    "rules": [{"host": "paths.example.com", "http": {"paths": [
        route("/exact", "exact", "Exact"),
        route("/foo", "prefix"),
        route("/foo/bar/", "longer"),
        route("/impl", "impl", "ImplementationSpecific"),
        route("/same", "prefix"),
        route("/same", "exact", "Exact"),
    ]}}],
}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/exact", "exact"),
        ("/exact/", "404"),
        ("/foo", "prefix"),
        ("/foo/", "prefix"),
        ("/foo/x", "prefix"),
        ("/foobar", "404"),
        ("/foo/bar", "longer"),
        ("/foo/bar/baz", "longer"),
        ("/foo/barbaz", "prefix"),
        ("/impl/a/b", "impl"),
        ("/same", "exact"),
        ("/same/x", "prefix"),
        ("/", "404"),
    ],
)
def test_path_types_and_precedence(ing: Ingress, path: str, want: str) -> None:
    ing.cluster.apply(ingress("paths", PATHS))
    ing.wait("paths.example.com", "/foo", "prefix")
    assert ing.reaches("paths.example.com", path) == want


def test_hosts_wildcard_and_the_default_backend(ing: Ingress) -> None:
    ing.cluster.apply(ingress("hosts", {"rules": [
        {"host": "*.wild.example.com", "http": {"paths": [route("/", "web")]}},
    ]}))  # fmt: skip
    ing.wait("a.wild.example.com", "/", "web")
    assert ing.reaches("A.Wild.Example.com:80", "/x") == "web"
    assert ing.reaches("a.b.wild.example.com", "/") == "404"
    assert ing.reaches("unknown.example.org", "/") == "404"
    ing.cluster.apply(ingress("fallback", {"defaultBackend": {
        "service": {"name": "fallback", "port": {"number": 80}}}}))  # fmt: skip
    try:
        ing.wait("unknown.example.org", "/", "fallback")
        assert ing.reaches("a.b.wild.example.com", "/") == "fallback"
    finally:
        ing.cluster.kubectl("delete", "ingress", "fallback")
    ing.wait("unknown.example.org", "/", "404")


def test_forwarded_headers(ing: Ingress) -> None:
    ing.wait("api.example.com", "/", "backend-api")
    _, data, _ = ing.get("app.example.com", "/h")
    assert data is not None
    headers = data["headers"]
    assert headers["x-forwarded-host"] == "app.example.com"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-for"] == headers["x-real-ip"]
    assert data["path"] == "/h"


def _secret(name: str, host: str) -> str:
    pem = self_signed(host, datetime.datetime.now(datetime.UTC))
    cert, _, key = pem.partition(b"-----BEGIN PRIVATE KEY")
    key = b"-----BEGIN PRIVATE KEY" + key
    return json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"tls.crt": base64.b64encode(cert).decode(),
                 "tls.key": base64.b64encode(key).decode()},
    })  # fmt: skip


def test_tls_per_host_with_its_certificate_and_the_redirect(ing: Ingress) -> None:
    ing.cluster.apply(_secret("one-tls", "one.example.com"))
    ing.cluster.apply(_secret("two-tls", "two.example.com"))
    ing.cluster.apply(ingress("tls", {
        "tls": [{"hosts": ["one.example.com"], "secretName": "one-tls"},
                {"hosts": ["two.example.com"], "secretName": "two-tls"}],
        "rules": [{"host": h, "http": {"paths": [route("/", "web")]}}
                  for h in ("one.example.com", "two.example.com")],
    }))  # fmt: skip
    eventually_sync(
        lambda: ing.certificate_cn("one.example.com") == "one.example.com",
        30,
        what="the certificate of one.example.com served",
    )
    assert ing.certificate_cn("two.example.com") == "two.example.com"
    assert ing.certificate_cn("other.example.com") == "svcnet-ingress-default"
    status, data, _ = ing.get("one.example.com", "/x", tls=True)
    assert status == 200 and data is not None and data["service"] == "web"
    assert data["headers"]["x-forwarded-proto"] == "https"
    status, _, resp = ing.get("one.example.com", "/x?q=1")
    assert (status, resp.getheader("Location")) == (308, "https://one.example.com/x?q=1")
    assert ing.reaches("api.example.com", "/") == "backend-api"  # not a TLS host: no redirect


def test_missing_backend_service_is_503_on_that_route_only(ing: Ingress) -> None:
    ing.cluster.apply(ingress("broken", {"rules": [{"host": "broken.example.com", "http": {
        "paths": [route("/gone", "no-such-service"), route("/ok", "web")]}}]}))  # fmt: skip
    ing.wait("broken.example.com", "/ok", "web")
    assert ing.reaches("broken.example.com", "/gone") == "503"
    events = ing.cluster.wait_for(
        "events",
        lambda e: any(i.get("reason") == "ServiceNotFound" for i in e["items"]),
        20,
        "--field-selector",
        "involvedObject.name=broken",
    )
    assert any("no-such-service" in i["message"] for i in events["items"])


def test_gateway_class_svcnet_is_accepted(ing: Ingress) -> None:
    gc = ing.cluster.wait_for(
        "gatewayclass/svcnet",
        lambda o: any(
            c.get("type") == "Accepted" and c.get("status") == "True"
            for c in o.get("status", {}).get("conditions") or []
        ),
    )
    assert gc["spec"]["controllerName"] == "svcnet.io/gateway-controller"


# -- Gateway API ----------------------------------------------------------------------------

GW_API = "gateway.networking.k8s.io/v1"


def gateway_manifest(name: str, listeners: list[dict[str, Any]]) -> str:
    return json.dumps({
        "apiVersion": GW_API, "kind": "Gateway",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"gatewayClassName": "svcnet", "listeners": listeners},
    })  # fmt: skip


def http_route(name: str, spec: dict[str, Any], namespace: str = "default") -> str:
    return json.dumps({
        "apiVersion": GW_API, "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec,
    })  # fmt: skip


def _conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["reason"] for c in obj.get("conditions") or []}


@pytest.fixture(scope="module")
def gw(ing: Ingress) -> Ingress:
    """Gateway ``web`` (HTTP 80, HTTPS 443 for gw.example.com) at its own address."""
    ing.cluster.apply(_secret("gw-tls", "gw.example.com"))
    ing.cluster.apply(gateway_manifest("web", [
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "gw.example.com",
         "tls": {"certificateRefs": [{"name": "gw-tls"}]},
         "allowedRoutes": {"namespaces": {"from": "All"}}},
    ]))  # fmt: skip
    obj = ing.cluster.wait_for(
        "gateway/web", lambda o: _conditions(o.get("status", {})).get("Programmed") == "Programmed",
        60,
    )  # fmt: skip
    [address] = [a["value"] for a in obj["status"]["addresses"]]
    assert address != ing.address  # its own address from the LoadBalancer pool
    return Ingress(ing.cluster, address)


ROUTES = {
    "hostnames": ["gw.example.com"],
    "rules": [
        {"matches": [{"path": {"type": "Exact", "value": "/exact"}}],
         "backendRefs": [{"name": "exact", "port": 80}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
         "backendRefs": [{"name": "backend-api", "port": 80}]},
        {"matches": [{"path": {"type": "RegularExpression", "value": "/items/[0-9]+"}}],
         "backendRefs": [{"name": "longer", "port": 80}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                      "headers": [{"name": "X-Canary", "value": "yes"}]}],
         "backendRefs": [{"name": "canary", "port": 80}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/hdr"}}],
         "filters": [
             {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                 "set": [{"name": "X-Route", "value": "hdr"}], "remove": ["X-Secret"]}},
             {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                 "add": [{"name": "X-Served-By", "value": "svcnet"}]}}],
         "backendRefs": [{"name": "web", "port": 80}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {
             "scheme": "https", "statusCode": 301,
             "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}}}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/strip"}}],
         "filters": [{"type": "URLRewrite", "urlRewrite": {
             "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
         "backendRefs": [{"name": "web", "port": 80}]},
        {"backendRefs": [{"name": "fallback", "port": 80}]},
    ],
}  # fmt: skip


def test_gateway_routes_matches_and_filters(gw: Ingress) -> None:
    gw.cluster.apply(http_route("site", {"parentRefs": [{"name": "web"}], **ROUTES}))
    gw.wait("gw.example.com", "/exact", "exact")
    table = {
        "/exact": "exact", "/exact/x": "fallback", "/api/v1": "backend-api", "/apix": "fallback",
        "/items/12": "longer", "/items/x": "fallback", "/": "fallback",
    }  # fmt: skip
    assert {p: gw.reaches("gw.example.com", p) for p in table} == table
    assert gw.reaches("other.example.com", "/") == "404"
    conn = http.client.HTTPConnection(gw.address, 80, timeout=5)
    conn.request("GET", "/api", headers={"Host": "gw.example.com", "X-Canary": "yes"})
    assert json.loads(conn.getresponse().read())["service"] == "canary"
    conn.request("GET", "/hdr", headers={"Host": "gw.example.com", "X-Secret": "s"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    assert data["headers"]["x-route"] == "hdr" and "x-secret" not in data["headers"]
    assert resp.getheader("X-Served-By") == "svcnet"
    status, _, resp = gw.get("gw.example.com", "/old/a")
    assert (status, resp.getheader("Location")) == (301, "https://gw.example.com/new/a")
    status, data, _ = gw.get("gw.example.com", "/strip/a/b")
    assert status == 200 and data is not None and data["path"] == "/a/b"
    # HTTPS: the listener's certificate by SNI, the same routes.
    assert gw.certificate_cn("gw.example.com") == "gw.example.com"
    status, data, _ = gw.get("gw.example.com", "/api/x", tls=True)
    assert status == 200 and data is not None and data["service"] == "backend-api"
    route = gw.cluster.get("httproute/site")
    [parent] = route["status"]["parents"]
    assert _conditions(parent) == {"Accepted": "Accepted", "ResolvedRefs": "ResolvedRefs"}
    gateway = gw.cluster.get("gateway/web")
    assert [li["attachedRoutes"] for li in gateway["status"]["listeners"]] == [1, 1]


def test_gateway_weighted_split_within_tolerance(gw: Ingress) -> None:
    gw.cluster.apply(http_route("split", {
        "parentRefs": [{"name": "web", "sectionName": "http"}], "hostnames": ["split.example.com"],
        "rules": [{"backendRefs": [{"name": "web", "port": 80, "weight": 90},
                                   {"name": "canary", "port": 80, "weight": 10}]}],
    }))  # fmt: skip
    gw.wait("split.example.com", "/", "web")
    counts: dict[str, int] = {}
    conn = http.client.HTTPConnection(gw.address, 80, timeout=5)
    try:
        for _ in range(1000):
            conn.request("GET", "/", headers={"Host": "split.example.com"})
            service = json.loads(conn.getresponse().read())["service"]
            counts[service] = counts.get(service, 0) + 1
    finally:
        conn.close()
    # Binomial(1000, 0.1): within 5 standard deviations (9.5 each).
    assert set(counts) == {"web", "canary"} and 52 <= counts["canary"] <= 148, counts


def test_cross_namespace_backend_needs_a_reference_grant(gw: Ingress) -> None:
    gw.cluster.kubectl("create", "namespace", "shop", check=False)
    gw.cluster.apply(backends_manifest(("shop",), namespace="shop"))
    gw.cluster.kubectl("rollout", "status", "deployment/shop", "-n", "shop", "--timeout=90s",
                       timeout=100)  # fmt: skip
    gw.cluster.apply(http_route("cross", {
        "parentRefs": [{"name": "web"}], "hostnames": ["cross.example.com"],
        "rules": [{"backendRefs": [{"name": "shop", "namespace": "shop", "port": 80}]}],
    }))  # fmt: skip
    gw.cluster.wait_for(
        "httproute/cross",
        lambda o: [_conditions(p).get("ResolvedRefs") for p in o.get("status", {}).get("parents") or []]
        == ["RefNotPermitted"],
    )  # fmt: skip
    gw.wait("cross.example.com", "/", "500")
    gw.cluster.apply(json.dumps({
        "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"name": "from-default", "namespace": "shop"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                           "namespace": "default"}],
                 "to": [{"group": "", "kind": "Service"}]},
    }))  # fmt: skip
    gw.wait("cross.example.com", "/", "shop")


def test_route_to_a_missing_parent_or_listener_says_why(gw: Ingress) -> None:
    gw.cluster.apply(http_route("lost", {
        "parentRefs": [{"name": "nowhere"}, {"name": "web", "sectionName": "nope"}],
        "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
    }))  # fmt: skip
    obj = gw.cluster.wait_for(
        "httproute/lost", lambda o: len(o.get("status", {}).get("parents") or []) == 2
    )
    assert [_conditions(p)["Accepted"] for p in obj["status"]["parents"]] == [
        "NoMatchingParent", "NoMatchingParent"]  # fmt: skip


def test_gateway_class_lists_the_supported_features(ing: Ingress) -> None:
    gc = ing.cluster.wait_for(
        "gatewayclass/svcnet", lambda o: o.get("status", {}).get("supportedFeatures")
    )
    names = [f["name"] for f in gc["status"]["supportedFeatures"]]
    assert names == list(SUPPORTED_FEATURES)


def test_request_mirror_copies_requests_and_the_client_gets_the_primary(gw: Ingress) -> None:
    gw.cluster.apply(http_route("mirror", {
        "parentRefs": [{"name": "web", "sectionName": "http"}], "hostnames": ["mirror.example.com"],
        "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/copied"}}],
             "filters": [{"type": "RequestMirror", "requestMirror": {
                 "backendRef": {"name": "canary", "port": 80}}}],
             "backendRefs": [{"name": "web", "port": 80}]},
            {"matches": [{"path": {"type": "Exact", "value": "/__seen"}}],
             "backendRefs": [{"name": "canary", "port": 80}]},
        ],
    }))  # fmt: skip
    gw.wait("mirror.example.com", "/copied/warmup", "web")
    marker = f"/copied/{os.getpid()}-{time.monotonic_ns()}"
    status, data, _ = gw.get("mirror.example.com", marker)
    assert status == 200 and data is not None and data["service"] == "web"

    def mirrored() -> bool:
        _, seen, _ = gw.get("mirror.example.com", "/__seen")
        return seen is not None and marker in seen["seen"]

    eventually_sync(mirrored, 20, what=f"{marker} copied to canary")


def test_tls_passthrough_reaches_the_pod_that_terminates_tls(ing: Ingress) -> None:
    pem = self_signed("pass.example.com", datetime.datetime.now(datetime.UTC)).decode()
    ing.cluster.apply(backends_manifest(("tlsecho",), env={"TLS_PEM": pem}))
    rollout(ing.cluster, "tlsecho")
    ing.cluster.apply(gateway_manifest("pass", [
        {"name": "tls", "port": 443, "protocol": "TLS", "hostname": "*.example.com",
         "tls": {"mode": "Passthrough"}},
    ]))  # fmt: skip
    obj = ing.cluster.wait_for("gateway/pass", lambda o: o.get("status", {}).get("addresses"), 60)
    address = obj["status"]["addresses"][0]["value"]
    ing.cluster.apply(json.dumps({
        "apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TLSRoute",
        "metadata": {"name": "pass", "namespace": "default"},
        "spec": {"parentRefs": [{"name": "pass"}], "hostnames": ["pass.example.com"],
                 "rules": [{"backendRefs": [{"name": "tlsecho", "port": 80}]}]},
    }))  # fmt: skip
    passthrough = Ingress(ing.cluster, address)
    eventually_sync(
        lambda: _answers(lambda: passthrough.certificate_cn("pass.example.com")),
        60, what="the pod's certificate through the passthrough listener",
    )  # fmt: skip
    # The pod's own certificate and its own answer: HAProxy did not terminate TLS.
    assert passthrough.certificate_cn("pass.example.com") == "pass.example.com"
    status, data, _ = passthrough.get("pass.example.com", "/x", tls=True)
    assert status == 200 and data is not None and data["service"] == "tlsecho"
    assert "x-forwarded-for" not in data["headers"]
    with pytest.raises(OSError):  # no route for that SNI: the connection is closed
        passthrough.certificate_cn("other.example.com")
    route = ing.cluster.wait_for(
        "tlsroute/pass", lambda o: o.get("status", {}).get("parents"),
    )  # fmt: skip
    assert _conditions(route["status"]["parents"][0])["Accepted"] == "Accepted"


def rollout(cluster: Cluster, name: str) -> None:
    """Wait for a Deployment; when it does not come up, say why (its pods and their logs)."""
    res = cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=90s",
                          timeout=100, check=False)  # fmt: skip
    if res.returncode != 0:
        pods = cluster.kubectl("describe", "pods", "-l", f"app={name}", check=False).stdout
        logs = cluster.kubectl("logs", f"deployment/{name}", check=False)
        raise AssertionError(f"{name} not ready: {res.stderr}\n{pods}\n{logs.stdout}{logs.stderr}")


def _answers(call: Any) -> bool:
    try:
        call()
    except OSError:
        return False
    return True


def test_grpc_route_calls_an_h2c_backend(gw: Ingress) -> None:
    gw.cluster.apply(backends_manifest(("grpcecho",), script=GRPC_ECHO))
    rollout(gw.cluster, "grpcecho")
    gw.cluster.apply(json.dumps({
        "apiVersion": GW_API, "kind": "GRPCRoute",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {"parentRefs": [{"name": "web", "sectionName": "http"}],
                 "hostnames": ["grpc.example.com"],
                 "rules": [{"matches": [{"method": {"service": "svcnet.Echo", "method": "Say"}}],
                            "backendRefs": [{"name": "grpcecho", "port": 80}]}]},
    }))  # fmt: skip
    channel = grpc.insecure_channel(
        f"{gw.address}:80", options=[("grpc.default_authority", "grpc.example.com")]
    )
    try:
        say = channel.unary_unary("/svcnet.Echo/Say")
        other = channel.unary_unary("/svcnet.Echo/Shout")

        def call() -> bytes | None:
            try:
                return bytes(say(b"hello", timeout=5))
            except grpc.RpcError:
                return None

        assert eventually_sync(call, 60, what="the gRPC call answered") == b"grpcecho: hello"
        with pytest.raises(grpc.RpcError) as e:
            other(b"x", timeout=5)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED  # HAProxy's 404: no route
    finally:
        channel.close()
    # The status is written after HAProxy serves the route, so it may come a moment later.
    gw.cluster.wait_for(
        "grpcroute/echo",
        lambda r: (
            [_conditions(p) for p in (r.get("status") or {}).get("parents") or []]
            == [{"Accepted": "Accepted", "ResolvedRefs": "ResolvedRefs"}]
        ),
    )


def test_a_regex_haproxy_refuses_refuses_that_route_and_the_rest_is_served(gw: Ingress) -> None:
    # Python's re takes \u0041, PCRE2 does not: only HAProxy's own check can say no.
    gw.cluster.apply(http_route("pcre", {
        "parentRefs": [{"name": "web", "sectionName": "http"}], "hostnames": ["pcre.example.com"],
        "rules": [{"matches": [{"path": {"type": "RegularExpression", "value": "/\\u0041"}}],
                   "backendRefs": [{"name": "web", "port": 80}]}],
    }))  # fmt: skip
    gw.cluster.apply(http_route("pcre-ok", {
        "parentRefs": [{"name": "web", "sectionName": "http"}], "hostnames": ["pcre-ok.example.com"],
        "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
    }))  # fmt: skip
    obj = gw.cluster.wait_for(
        "httproute/pcre",
        lambda o: [_conditions(p).get("Accepted") for p in o.get("status", {}).get("parents") or []]
        == ["UnsupportedValue"],
        60,
    )  # fmt: skip
    [accepted] = [c for c in obj["status"]["parents"][0]["conditions"] if c["type"] == "Accepted"]
    assert "PCRE2" in accepted["message"]
    gw.wait("pcre-ok.example.com", "/", "web")
    assert gw.reaches("pcre.example.com", "/A") == "404"


def test_annotations_rewrite_target_and_ssl_redirect_off(ing: Ingress) -> None:
    ing.cluster.apply(_secret("annotated-tls", "annotated.example.com"))
    doc = json.loads(ingress("annotated", {
        "tls": [{"hosts": ["annotated.example.com"], "secretName": "annotated-tls"}],
        "rules": [{"host": "annotated.example.com", "http": {"paths": [route("/old", "web")]}}],
    }))  # fmt: skip
    doc["metadata"]["annotations"] = {
        "nginx.ingress.kubernetes.io/rewrite-target": "/new",
        "nginx.ingress.kubernetes.io/ssl-redirect": "false",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "120",
    }
    ing.cluster.apply(json.dumps(doc))
    ing.wait("annotated.example.com", "/old", "web")  # plain HTTP served: no redirect
    status, data, _ = ing.get("annotated.example.com", "/old/x?q=1")
    assert status == 200 and data is not None and data["path"] == "/new?q=1"
    status, data, _ = ing.get("annotated.example.com", "/old", tls=True)
    assert status == 200 and data is not None and data["path"] == "/new"
