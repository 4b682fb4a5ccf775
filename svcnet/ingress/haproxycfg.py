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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from svcnet.dataplane.haproxy_config import MAIN_FILE, HaproxyConfig, ServerSlot
from svcnet.ingress.gateway import ERROR_500, Frontend, GatewayRule, HeaderChanges, Match
from svcnet.ingress.model import Endpoint, PathType, RoutingModel

MIN_SLOTS = 16
HOSTS_MAP = "hosts.map"
WILDCARDS_MAP = "wildcards.map"
CRT_LIST = "crt-list"
DEFAULT_CERT = "default.pem"
CERT_DIR = "certs"
NOT_FOUND_BACKEND = "svcnet_default_404"
ERROR_BACKEND = "svcnet_gateway_500"  # a backendRef that cannot be resolved
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


def render(
    model: RoutingModel, layout: Layout, slots: Slots, frontends: Sequence[Frontend] = ()
) -> HaproxyConfig:
    vhost_ids = {v.host: f"v{i}" for i, v in enumerate(model.vhosts)}
    head = _head(model, layout, vhost_ids)
    for fe in frontends:
        head += gateway_frontend(fe)
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
        f"backend {ERROR_BACKEND}",
        "    http-request return status 500 content-type text/plain string 'backend not resolved'",
        "",
    ]
    full = "\n".join([*head, *backends_full, *tail])
    shape = "\n".join([*head, *backends_shape, *tail])
    files = _side_files(model, layout, vhost_ids, frontends)
    files[MAIN_FILE] = full.encode()
    structure = b"".join(
        name.encode() + b"\0" + (shape.encode() if name == MAIN_FILE else content) + b"\0"
        for name, content in sorted(files.items())
    )
    return HaproxyConfig(files=files, structure=structure, servers=tuple(servers))


def _side_files(
    model: RoutingModel,
    layout: Layout,
    vhost_ids: Mapping[str, str],
    frontends: Sequence[Frontend] = (),
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
    for fe in frontends:
        if not fe.tls:
            continue
        lines = []
        for cert in fe.certificates:
            rel = f"{CERT_DIR}/{cert.name}.pem"
            files[rel] = cert.pem
            lines.append(f"{rel} [] {' '.join(cert.hosts)}".rstrip() + "\n")
        files[f"{fe.name}.crt-list"] = "".join(lines).encode()
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


_FORWARDED = [
    "    http-request set-header X-Forwarded-For %[src]",
    "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
    "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
    "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
]


def literal(text: str) -> str:
    """A log-format argument that is ``text`` itself (``%`` is the format's escape)."""
    return quote(text.replace("%", "%%"))


def _match_conditions(m: Match) -> list[str]:
    """Alternatives (OR) of ANDed ACLs that select ``m``; [""] is "always"."""
    rest = []
    if m.method:
        rest.append(f"{{ method {m.method} }}")
    for name, kind, value in m.headers:
        how = "reg" if kind == "RegularExpression" else "str"
        rest.append(f"{{ req.hdr({name}) -m {how} {quote(value)} }}")
    for name, kind, value in m.query:
        how = "reg" if kind == "RegularExpression" else "str"
        rest.append(f"{{ urlp({name}) -m {how} {quote(value)} }}")
    tail = " ".join(rest)
    if m.path_type == "Exact":
        paths = [f"{{ path -m str {quote(m.path)} }}"]
    elif m.path_type == "RegularExpression":
        paths = [f"{{ path -m reg {quote('^(?:' + m.path + ')$')} }}"]
    else:
        prefix = m.path.rstrip("/")
        paths = (
            [f"{{ path -m str {quote(prefix)} }}", f"{{ path -m beg {quote(prefix + '/')} }}"]
            if prefix
            else [""]
        )
    return [" ".join(w for w in (p, tail) if w) for p in paths]


def _header_lines(phase: str, changes: HeaderChanges, cond: str) -> list[str]:
    out = [f"    {phase} set-header {n} {literal(v)} if {cond}" for n, v in changes.set]
    out += [f"    {phase} add-header {n} {literal(v)} if {cond}" for n, v in changes.add]
    out += [f"    {phase} del-header {n} if {cond}" for n in changes.remove]
    return out


def _replace_prefix(prefix: str, value: str, cond: str) -> str:
    p = re.escape(prefix.rstrip("/"))
    repl = value.rstrip("/")
    if not repl:
        return f"    http-request replace-path {quote('^' + p + '/?(.*)$')} '/\\1' if {cond}"
    return (
        f"    http-request replace-path {quote('^' + p + '(.*)$')} {literal(repl)}'\\1' if {cond}"
    )


def _filter_lines(fe: Frontend, rule: GatewayRule, cond: str) -> list[str]:
    f = rule.filters
    out = _header_lines("http-request", f.request_headers, cond)
    out += _header_lines("http-response", f.response_headers, cond)
    change = (f.redirect.path if f.redirect else None) or (f.rewrite.path if f.rewrite else None)
    if change is not None and change.kind == "ReplaceFullPath":
        out.append(f"    http-request set-path {literal(change.value)} if {cond}")
    elif change is not None:
        out.append(_replace_prefix(rule.match.path, change.value, cond))
    if f.rewrite and f.rewrite.hostname:
        out.append(f"    http-request set-header Host {literal(f.rewrite.hostname)} if {cond}")
    if f.redirect:
        r = f.redirect
        scheme = r.scheme or ("https" if fe.tls else "http")
        port = r.port or (0 if r.scheme else fe.port)
        host = literal(r.hostname) if r.hostname else "%[var(txn.host)]"
        if port and port != {"http": 80, "https": 443}.get(scheme):
            host += f":{port}"
        where = "%[path]" if change is not None else "%[pathq]"
        out.append(
            f"    http-request redirect location {scheme}://{host}{where} code {r.status} if {cond}"
        )
    return out


def gateway_frontend(fe: Frontend) -> list[str]:
    """One Gateway port: the host, then the first rule matching (in precedence order) is
    recorded in ``txn.rule``; its filters and backend follow from that variable alone, so a
    header a filter changes cannot change which rule applies."""
    bind = f"    bind :{fe.target_port}"
    if fe.tls:
        bind += f" ssl crt {DEFAULT_CERT} crt-list {fe.name}.crt-list alpn h2,http/1.1"
    lines = [
        f"frontend {fe.name}",
        bind,
        "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower",
    ]
    host_ids = {h: f"h{i}" for i, h in enumerate(fe.hosts)}
    for h, hid in host_ids.items():
        if not h:
            test = ""
        elif h.startswith("*."):
            test = f" {{ var(txn.host) -m end {quote(h[1:])} }}"
        else:
            test = f" {{ var(txn.host) -m str {quote(h)} }}"
        lines.append(
            f"    http-request set-var(txn.vhost) str({hid}) if !{{ var(txn.vhost) -m found }}{test}"
        )
    for i, rule in enumerate(fe.rules):
        on = f"!{{ var(txn.rule) -m found }} {{ var(txn.vhost) -m str {host_ids[rule.host]} }}"
        for alt in _match_conditions(rule.match):
            lines.append(f"    http-request set-var(txn.rule) str(r{i}) if {on} {alt}".rstrip())
    lines += _FORWARDED
    uses = []
    for i, rule in enumerate(fe.rules):
        cond = f"{{ var(txn.rule) -m str r{i} }}"
        lines += _filter_lines(fe, rule, cond)
        total = sum(b.weight for b in rule.backends)
        if len(rule.backends) > 1:
            lines.append(f"    http-request set-var(txn.pick) rand({total}) if {cond}")
        upto = 0
        for j, b in enumerate(rule.backends):
            upto += b.weight
            name = b.backend if b.backend != ERROR_500 else ERROR_BACKEND
            last = j == len(rule.backends) - 1
            pick = "" if last else f" {{ var(txn.pick) -m int lt {upto} }}"
            uses.append(f"    use_backend {name} if {cond}{pick}")
    lines += uses
    lines += [f"    default_backend {NOT_FOUND_BACKEND}", ""]
    return lines
