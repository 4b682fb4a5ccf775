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
from svcnet.ingress.annotations import BackendSettings
from svcnet.ingress.gateway import (
    ERROR_500,
    H2,
    TCP,
    Frontend,
    GatewayRule,
    HeaderChanges,
    Match,
    Mirror,
    path_regex,
)
from svcnet.ingress.model import Endpoint, PathType, RoutingModel

MIN_SLOTS = 16
MIN_RETRIES = 3  # HAProxy's default, for a backend without slots
HOSTS_MAP = "hosts.map"
WILDCARDS_MAP = "wildcards.map"
CRT_LIST = "crt-list"
DEFAULT_CERT = "default.pem"
CERT_DIR = "certs"
NOT_FOUND_BACKEND = "svcnet_default_404"
ERROR_BACKEND = "svcnet_gateway_500"  # a backendRef that cannot be resolved
TCP_REJECT_BACKEND = "svcnet_tcp_reject"  # a passthrough connection no route takes: closed
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
    mirror_port: int = 10255  # on 127.0.0.1: where RequestMirror copies enter (pod-local)
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
    mirrored = any(r.filters.mirrors for fe in frontends for r in fe.rules)
    head = _head(model, layout, vhost_ids, mirrored)
    for fe in frontends:
        head += passthrough_frontend(fe) if fe.passthrough else gateway_frontend(fe)
    backends_full: list[str] = []
    backends_shape: list[str] = []
    servers: list[ServerSlot] = []
    for backend in model.backends:
        held_slots = slots.get(backend.name, ())
        lines = [f"backend {backend.name}", "    balance roundrobin"]
        if backend.proto == TCP:
            lines.append("    mode tcp")
        lines += _settings_lines(backend.settings)
        # Scaling down stops several endpoints at once, often neighbours in round-robin
        # order: a request may meet each of them before their removal lands.
        lines.append(f"    retries {max(MIN_RETRIES, len(held_slots) - 1)}")
        # gRPC backends speak cleartext HTTP/2 with prior knowledge (h2c).
        proto = " proto h2" if backend.proto == H2 else ""
        backends_full += lines
        backends_shape += lines
        for i, held in enumerate(held_slots):
            name = _server_name(i)
            backends_shape.append(f"    server {name}{proto}")
            if held is None:
                backends_full.append(f"    server {name} {FREE_SLOT_ADDR} disabled{proto}")
                servers.append(ServerSlot(backend.name, name))
            else:
                backends_full.append(
                    f"    server {name} {held.ip}:{held.port} weight {held.weight}{proto}"
                )
                servers.append(ServerSlot(backend.name, name, held.ip, held.port, held.weight))
    tail = [
        f"backend {NOT_FOUND_BACKEND}",
        "    http-request return status 404 content-type text/plain string 'default backend - 404'",
        "",
        f"backend {ERROR_BACKEND}",
        "    http-request return status 500 content-type text/plain string 'backend not resolved'",
        "",
        f"backend {TCP_REJECT_BACKEND}",
        "    mode tcp",
        "    tcp-request content reject",
        "",
    ]
    full = "\n".join([*head, *backends_full, *tail])
    shape = "\n".join([*head, *backends_shape, *tail])
    files = _side_files(model, layout, vhost_ids, frontends)
    if mirrored:
        files[MIRROR_LUA] = mirror_lua(layout).encode()
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


def _head(
    model: RoutingModel, layout: Layout, vhost_ids: Mapping[str, str], mirrored: bool = False
) -> list[str]:
    lines = [
        "global",
        "    master-worker",
        # Paths (maps, certificates) are relative to this file's directory: the version the
        # applier checked and switched to.
        "    default-path config",
        *([f"    lua-load {MIRROR_LUA}"] if mirrored else []),
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
        # An endpoint that went away before its removal reached HAProxy (Kubernetes signals
        # the pod and removes its endpoint at the same time) costs a retry on another, not a
        # 503: a refused connection, or a connection closed with no response (the server
        # exited with the request in flight, or closed an idle connection HAProxy reused).
        # Each backend allows one attempt per server slot (its ``retries``, below); a slow
        # answer is not retried (``response-timeout`` would repeat a request that may have
        # done its work).
        "    option redispatch 1",
        "    retry-on conn-failure empty-response",
        # ... and is out of rotation from its first failed connection on (passive health:
        # ``observe`` needs ``check``), so that the next attempt, this request's or another's,
        # goes to a server not yet tried. The active check only brings a server back after a
        # blip; Kubernetes' readiness decides which endpoints are in the backend at all.
        "    default-server check inter 2s rise 1 fall 3"
        " observe layer4 error-limit 1 on-error mark-down",
        # A client's first request may take an idle connection to the endpoint that another
        # client's request left (HAProxy's default, ``safe``, opens a new one for it): with a
        # new client connection per request that is one handshake instead of two, as nginx's
        # upstream ``keepalive``. A reused connection the endpoint closed meanwhile is what
        # ``empty-response`` retries.
        "    http-reuse always",
        "",
        "frontend healthz",
        f"    bind :{layout.health_port}",
        "    monitor-uri /healthz",
        "",
        *(_mirror_frontend(layout) if mirrored else []),
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
    tls = [vhost_ids[v.host] for v in model.vhosts if v.tls and v.ssl_redirect]
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
        paths = [f"{{ path -m reg {quote(path_regex(m.path))} }}"]
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
    # The copy is taken first: it is the request as the client sent it, the specification's
    # order for a mirror listed before the other filters, and HAProxy's for any order.
    out = _mirror_lines(f.mirrors, cond)
    out += _header_lines("http-request", f.request_headers, cond)
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


# -- RequestMirror ---------------------------------------------------------------------------
# HAProxy 2.6 has no mirror directive (SPOE-based mirroring needs a separate agent). A Lua
# action copies the request (method, path and query, headers, body) and hands it to a task of
# its own that sends it with Lua's HTTP client to a local frontend, which picks the mirror's
# backend from a header it then removes: the copy goes through the same backend slots (Runtime
# API updates apply to it too) and its response is dropped. The client's request goes on at
# once; it never waits for the copy, and a failed copy does not touch it.

MIRROR_LUA = "mirror.lua"
MIRROR_HEADER = "x-svcnet-mirror-backend"
MIRROR_FRONTEND = "svcnet_mirror"

MIRROR_LUA_TEMPLATE = """\
-- svcnet RequestMirror: the request copied to a local frontend, from a task of its own.
local sent_by_client = {get = true, head = true, put = true, post = true, delete = true}
core.register_action("svcnet_mirror", {"http-req"}, function(txn, backend)
    local method = string.lower(txn.f:method())
    if not sent_by_client[method] then return end -- what Lua's HTTP client can send
    local headers = {}
    for name, values in pairs(txn.http:req_get_headers()) do
        local list = {}
        for _, v in pairs(values) do list[#list + 1] = v end
        headers[name] = list
    end
    headers["%(header)s"] = {backend}
    local url, body = "http://127.0.0.1" .. txn.f:pathq(), txn.f:req_body()
    core.register_task(function()
        local client = core.httpclient()
        pcall(client[method], client,
              {url = url, headers = headers, body = body, dst = "%(target)s", timeout = 10000})
    end)
end, 1)
"""


def mirror_lua(layout: Layout) -> str:
    return MIRROR_LUA_TEMPLATE % {
        "header": MIRROR_HEADER,
        "target": f"127.0.0.1:{layout.mirror_port}",
    }


def _mirror_frontend(layout: Layout) -> list[str]:
    return [
        f"frontend {MIRROR_FRONTEND}",
        f"    bind 127.0.0.1:{layout.mirror_port}",
        f"    http-request set-var(txn.mirror) req.hdr({MIRROR_HEADER})",
        f"    http-request del-header {MIRROR_HEADER}",
        "    use_backend %[var(txn.mirror)]",
        f"    default_backend {NOT_FOUND_BACKEND}",
        "",
    ]


def _mirror_lines(mirrors: Sequence[Mirror], cond: str) -> list[str]:
    if not mirrors:
        return []
    out = [f"    http-request wait-for-body time 1s if {cond}"]
    for m in mirrors:
        share = ""
        if m.numerator < m.denominator:
            share = f" {{ rand({m.denominator}) -m int lt {m.numerator} }}"
        out.append(f"    http-request lua.svcnet_mirror {m.backend} if {cond}{share}")
    return out


# -- TLS passthrough -------------------------------------------------------------------------

_PICK_RANGE = 1_000_000  # one draw per connection, split by each rule's weights


def passthrough_frontend(fe: Frontend) -> list[str]:
    """A TLS listener in TCP mode: HAProxy reads the ClientHello's SNI (waiting for it up to
    the inspect delay) and forwards the connection, still encrypted, to the backend of the
    most specific hostname; the pods terminate TLS. No SNI matching a route: closed."""
    lines = [
        f"frontend {fe.name}",
        "    mode tcp",
        f"    bind :{fe.target_port}",
        "    tcp-request inspect-delay 5s",
        f"    tcp-request content set-var(sess.pick) rand({_PICK_RANGE})",
        "    tcp-request content accept if { req.ssl_hello_type 1 }",
    ]
    seen: set[str] = set()
    for rule in fe.rules:  # most specific host first; a TLSRoute's first rule serves it
        if rule.host in seen:
            continue
        seen.add(rule.host)
        if not rule.host:
            on_host = ""
        elif rule.host.startswith("*."):
            on_host = f" {{ req.ssl_sni,lower -m end {quote(rule.host[1:])} }}"
        else:
            on_host = f" {{ req.ssl_sni,lower -m str {quote(rule.host)} }}"
        total = sum(b.weight for b in rule.backends)
        upto = 0
        for j, b in enumerate(rule.backends):
            upto += b.weight
            last = j == len(rule.backends) - 1
            pick = "" if last else f" {{ var(sess.pick) -m int lt {upto * _PICK_RANGE // total} }}"
            name = b.backend if b.backend != ERROR_500 else TCP_REJECT_BACKEND
            lines.append(f"    use_backend {name}{' if' if on_host or pick else ''}{on_host}{pick}")
    lines += [f"    default_backend {TCP_REJECT_BACKEND}", ""]
    return lines


# -- what HAProxy's check refused ------------------------------------------------------------

_ALERT_LINE = re.compile(r"parsing \[[^\]]*?:(\d+)\]\s*:\s*(.*)")
_REGEX_WORD = re.compile(r"-m reg ('(?:[^']|'\"'\"')*')")


def refused_regexes(config: HaproxyConfig, error: str) -> dict[str, str]:
    """The regular expressions (as rendered) on the lines of ``haproxy.cfg`` that HAProxy's
    check refused as regular expressions (``parsing [file:line] : … regex … is invalid``),
    each with HAProxy's message."""
    text = config.files[MAIN_FILE].decode().splitlines()
    out: dict[str, str] = {}
    for m in _ALERT_LINE.finditer(error):
        number, message = int(m.group(1)), m.group(2).strip()
        if "regex" not in message or not 0 < number <= len(text):
            continue
        regexes = [unquote(w) for w in _REGEX_WORD.findall(text[number - 1])]
        named = [r for r in regexes if f"'{r}'" in message]  # HAProxy names the one it refused
        for regex in named or regexes:
            out[regex] = message
    return out


def unquote(word: str) -> str:
    """The text of a word :func:`quote` made."""
    return word[1:-1].replace("'\"'\"'", "'")


# -- Ingress annotations ---------------------------------------------------------------------


def _settings_lines(s: BackendSettings) -> list[str]:
    """A backend's lines for an Ingress's annotations: they apply to the requests routed to
    it, after the route was chosen, so they live in the backend."""
    out = []
    if s.timeout_connect:
        out.append(f"    timeout connect {s.timeout_connect}s")
    if s.timeout_server:
        out.append(f"    timeout server {s.timeout_server}s")
    if s.rate_limit:
        # One counter per client address, over a sliding second, in this backend's own table.
        out += [
            "    stick-table type ip size 100k expire 10s store http_req_rate(1s)",
            "    http-request track-sc0 src",
            f"    http-request deny deny_status 503 if {{ sc_http_req_rate(0) gt {s.rate_limit} }}",
        ]
    if s.rewrite_target:
        out.append(f"    http-request set-path {literal(s.rewrite_target)}")
    return out
