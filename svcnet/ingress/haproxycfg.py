"""A routing model → an HAProxy configuration (:class:`svcnet.dataplane.haproxy.HaproxyConfig`).
Pure.

One ``frontend`` serves HTTP (80) and HTTPS (443, SNI from a ``crt-list``, the default
self-signed certificate first, so a host without a certificate of its own gets it). Routing:

1. ``txn.host`` = the Host header without its port, lowercased;
2. ``txn.vhost`` = the virtual host: ``hosts.map`` (exact hosts), else ``wildcards.map`` keyed
   by the host minus its first label (so ``*.example.com`` matches exactly one label), else the
   host-less rules' virtual host;
3. TLS hosts reached over plain HTTP are redirected (308, the code ingress-nginx uses);
4. ``X-Forwarded-For``/``-Proto``/``-Host``/``-Port`` and ``X-Real-IP`` are set (replacing
   what the client sent: the client is not trusted to say where it came from);
5. one ``use_backend`` per route in precedence order (a ``Prefix`` route is two lines, the path
   itself and the path followed by ``/``); no match → the default backend, else a 404.

Backends hold **server slots**: ``max(MIN_SLOTS, next power of two)`` servers, the endpoints in
some and the rest disabled. Endpoints come and go through the Runtime API
(``set server addr``/``state``), with no reload, until a backend needs more slots than it has;
:func:`assign_slots` keeps each endpoint in its slot across changes and never shrinks a
backend, so scaling down and up again does not reload either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from svcnet.dataplane.haproxy_config import MAIN_FILE, HaproxyConfig, ServerSlot
from svcnet.ingress.model import Endpoint, PathType, RoutingModel

MIN_SLOTS = 16
HOSTS_MAP = "hosts.map"
WILDCARDS_MAP = "wildcards.map"
CRT_LIST = "crt-list"
DEFAULT_CERT = "default.pem"
CERT_DIR = "certs"
NOT_FOUND_BACKEND = "svcnet_default_404"
FREE_SLOT_ADDR = "127.0.0.1:1"  # a disabled server's address until it is given an endpoint

Slots = Mapping[str, tuple[Endpoint | None, ...]]


@dataclass(frozen=True)
class Layout:
    """What the configuration depends on besides the model."""

    admin_socket: str  # absolute: the Runtime API the applier uses
    default_pem: bytes  # the self-signed certificate (and key) for hosts with none
    http_port: int = 80
    https_port: int = 443
    health_port: int = 10254
    timeout_connect: str = "5s"
    timeout_client: str = "60s"
    timeout_server: str = "60s"


def _slot_count(n: int) -> int:
    size = MIN_SLOTS
    while size < n:
        size *= 2
    return size


def assign_slots(previous: Slots, model: RoutingModel) -> dict[str, tuple[Endpoint | None, ...]]:
    """Each backend's slots: an endpoint stays in its slot (its weight may change), new ones
    take free slots, a backend grows (to the next power of two) only when full."""
    out: dict[str, tuple[Endpoint | None, ...]] = {}
    for backend in model.backends:
        if backend.unavailable:
            continue
        wanted = {(e.ip, e.port): e for e in backend.endpoints}
        prev = list(previous.get(backend.name, ()))
        size = max(len(prev), _slot_count(len(wanted)))
        slots: list[Endpoint | None] = [None] * size
        for i, held in enumerate(prev):
            if held is not None and (held.ip, held.port) in wanted:
                slots[i] = wanted.pop((held.ip, held.port))
        free = (i for i, s in enumerate(slots) if s is None)
        for ep in sorted(wanted.values()):
            slots[next(free)] = ep
        out[backend.name] = tuple(slots)
    return out


def quote(text: str) -> str:
    """An HAProxy configuration word: single quotes keep everything literal (no ``$`` or
    ``\\`` expansion); a ``'`` closes them, is itself double-quoted, and they reopen."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _server_name(i: int) -> str:
    return f"s{i + 1}"


def render(model: RoutingModel, layout: Layout, slots: Slots) -> HaproxyConfig:
    vhost_ids = {v.host: f"v{i}" for i, v in enumerate(model.vhosts)}
    head = _head(model, layout, vhost_ids)
    backends_full: list[str] = []
    backends_shape: list[str] = []
    servers: list[ServerSlot] = []
    for backend in model.backends:
        lines = [f"backend {backend.name}", "    balance roundrobin"]
        backends_full += lines
        backends_shape += lines
        for i, held in enumerate(slots.get(backend.name, ())):
            name = _server_name(i)
            backends_shape.append(f"    server {name}")
            if held is None:
                backends_full.append(f"    server {name} {FREE_SLOT_ADDR} disabled")
                servers.append(ServerSlot(backend.name, name))
            else:
                backends_full.append(
                    f"    server {name} {held.ip}:{held.port} weight {held.weight}"
                )
                servers.append(ServerSlot(backend.name, name, held.ip, held.port, held.weight))
    tail = [
        f"backend {NOT_FOUND_BACKEND}",
        "    http-request return status 404 content-type text/plain string 'default backend - 404'",
        "",
    ]
    full = "\n".join([*head, *backends_full, *tail])
    shape = "\n".join([*head, *backends_shape, *tail])
    files = _side_files(model, layout, vhost_ids)
    files[MAIN_FILE] = full.encode()
    structure = b"".join(
        name.encode() + b"\0" + (shape.encode() if name == MAIN_FILE else content) + b"\0"
        for name, content in sorted(files.items())
    )
    return HaproxyConfig(files=files, structure=structure, servers=tuple(servers))


def _side_files(
    model: RoutingModel, layout: Layout, vhost_ids: Mapping[str, str]
) -> dict[str, bytes]:
    exact = [f"{v.host} {vhost_ids[v.host]}\n" for v in model.vhosts if v.host and not v.wildcard]
    wild = [f"{v.host[2:]} {vhost_ids[v.host]}\n" for v in model.vhosts if v.wildcard]
    files = {
        HOSTS_MAP: "".join(exact).encode(),
        WILDCARDS_MAP: "".join(wild).encode(),
        DEFAULT_CERT: layout.default_pem,
    }
    crt_list = []
    for cert in model.certificates:
        rel = f"{CERT_DIR}/{cert.name}.pem"
        files[rel] = cert.pem
        crt_list.append(f"{rel} [] {' '.join(cert.hosts)}\n")
    files[CRT_LIST] = "".join(crt_list).encode()
    return files


def _head(model: RoutingModel, layout: Layout, vhost_ids: Mapping[str, str]) -> list[str]:
    lines = [
        "global",
        "    master-worker",
        # Paths (maps, certificates) are relative to this file's directory: the version the
        # applier checked and switched to.
        "    default-path config",
        f"    stats socket {layout.admin_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        "    hard-stop-after 30s",
        "    ssl-default-bind-options ssl-min-ver TLSv1.2",
        "",
        "defaults",
        "    mode http",
        f"    timeout connect {layout.timeout_connect}",
        f"    timeout client {layout.timeout_client}",
        f"    timeout server {layout.timeout_server}",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 60s",
        # An endpoint that went away between two updates costs a retry on another, not a 502.
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout",
        "",
        "frontend healthz",
        f"    bind :{layout.health_port}",
        "    monitor-uri /healthz",
        "",
        "frontend ingress",
        f"    bind :{layout.http_port}",
        f"    bind :{layout.https_port} ssl crt {DEFAULT_CERT} crt-list {CRT_LIST}"
        " alpn h2,http/1.1",
        "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower",
        f"    http-request set-var(txn.vhost) var(txn.host),map_str({HOSTS_MAP})",
        f"    http-request set-var(txn.vhost) var(txn.host),field(2,.,0),map_str({WILDCARDS_MAP})"
        " if !{ var(txn.vhost) -m found } !{ var(txn.host) -m beg . }",
    ]
    if "" in vhost_ids:
        lines.append(
            f"    http-request set-var(txn.vhost) str({vhost_ids['']})"
            " if !{ var(txn.vhost) -m found }"
        )
    tls = [vhost_ids[v.host] for v in model.vhosts if v.tls]
    if tls:
        lines.append(
            "    http-request redirect scheme https code 308"
            f" if !{{ ssl_fc }} {{ var(txn.vhost) -m str {' '.join(tls)} }}"
        )
    lines += [
        "    http-request set-header X-Forwarded-For %[src]",
        "    http-request set-header X-Real-IP %[src]",
        "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
        "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
        "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        "    http-request set-header X-Forwarded-Port %[dst_port]",
    ]
    for vhost in model.vhosts:
        on_host = f"{{ var(txn.vhost) -m str {vhost_ids[vhost.host]} }}"
        for route in vhost.routes:
            use = f"    use_backend {route.backend} if {on_host}"
            if route.path_type is PathType.EXACT:
                lines.append(f"{use} {{ path -m str {quote(route.path)} }}")
            elif route.path == "/":
                lines.append(use)
            else:
                lines.append(f"{use} {{ path -m str {quote(route.path)} }}")
                lines.append(f"{use} {{ path -m beg {quote(route.path + '/')} }}")
    lines.append(f"    default_backend {model.default_backend or NOT_FOUND_BACKEND}")
    lines.append("")
    return lines
