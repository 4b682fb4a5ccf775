"""Gateway API objects → frontends of the routing model, and the status each object shows. Pure.

:func:`build_gateways` takes Gateways, HTTPRoutes, ReferenceGrants, Namespaces, Services,
EndpointSlices and Secrets as the caches hold them and returns a :class:`GatewayModel`: one
:class:`Frontend` per (Gateway, port) that can be served, the backends its rules use, and the
status conditions of every Gateway, listener and route parent. The rules follow the Gateway
API v1 specification (standard channel):

* **Listeners.** ``HTTP`` and ``HTTPS`` (TLS mode ``Terminate``); any other protocol is not
  accepted (``UnsupportedProtocol``). Listeners on one port must agree on the protocol
  (``ProtocolConflict``) and differ in hostname (``HostnameConflict``). An HTTPS listener
  serves the ``kubernetes.io/tls`` Secrets of ``certificateRefs`` by SNI; a Secret in another
  namespace needs a ReferenceGrant (``RefNotPermitted``); a missing or unusable one is
  ``InvalidCertificateRef`` and the listener is not programmed.
* **Attachment.** A route's ``parentRef`` names a Gateway, optionally a listener
  (``sectionName``) or a ``port``. A listener takes it when ``allowedRoutes.kinds`` allows
  HTTPRoute and ``allowedRoutes.namespaces.from`` (``Same``, the default; ``All``;
  ``Selector`` on the namespace's labels) allows the route's namespace
  (``NotAllowedByListeners``) and their hostnames intersect (``NoMatchingListenerHostname``).
* **Hostnames.** A route's hostnames intersected with the listener's: a wildcard
  ``*.example.com`` matches one or more labels in front of ``example.com``. A request is
  routed by the most specific hostname that matches it: an exact one, else the longest
  wildcard, else the rules with no hostname; there is no fall-through to a less specific one.
* **Matches.** Path ``Exact``, ``PathPrefix`` (element-wise) and ``RegularExpression``;
  headers (``Exact``, ``RegularExpression``), query parameters, method. Precedence across all
  rules of a hostname: ``Exact`` path, then ``RegularExpression`` then ``PathPrefix`` paths by
  length (the specification leaves regular expressions' place open), then a method match, more
  header matches, more query matches, the older route, the route first by namespace/name, the
  rule and match first listed.
* **Filters.** RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite.
  A filter this controller does not implement makes the route ``Accepted=False``
  (``UnsupportedValue``) on every parent.
* **Backends.** ``backendRefs`` of kind Service, weighted; a Service in another namespace
  needs a ReferenceGrant. A reference that cannot be resolved answers 500 for its share of
  the requests (``ResolvedRefs=False`` with ``BackendNotFound``, ``RefNotPermitted`` or
  ``InvalidKind``); a rule with no backendRefs answers 500.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.ingress.gatewayclass import GATEWAY_CONTROLLER_NAME, is_accepted_gateway_class
from svcnet.ingress.model import Backend, Certificate, _Backends, _secret_pem

GROUP = "gateway.networking.k8s.io"
HTTP, HTTPS, TLS = "HTTP", "HTTPS", "TLS"
ROUTE_KIND, GRPC_ROUTE_KIND, TLS_ROUTE_KIND = "HTTPRoute", "GRPCRoute", "TLSRoute"
# The route kinds each listener protocol serves (its supportedKinds when allowedRoutes.kinds is
# empty), as the specification pairs them.
PROTOCOL_KINDS = {
    HTTP: (ROUTE_KIND, GRPC_ROUTE_KIND),
    HTTPS: (ROUTE_KIND, GRPC_ROUTE_KIND),
    TLS: (TLS_ROUTE_KIND,),
}
H2, TCP = "h2", "tcp"  # backend protocols besides HTTP/1.1: gRPC's h2c, TLS passthrough
GATEWAY_PORT_BASE = 20000  # the pod ports HAProxy binds for Gateway listeners
ERROR_500 = ""  # a weighted backend that cannot be resolved: its share answers 500

# Condition types and reasons, as the specification spells them.
ACCEPTED, PROGRAMMED, RESOLVED_REFS, CONFLICTED = (
    "Accepted", "Programmed", "ResolvedRefs", "Conflicted")  # fmt: skip
R_ACCEPTED, R_PROGRAMMED, R_RESOLVED = "Accepted", "Programmed", "ResolvedRefs"
R_LISTENERS_NOT_VALID = "ListenersNotValid"
R_ADDRESS_NOT_ASSIGNED = "AddressNotAssigned"
R_UNSUPPORTED_ADDRESS = "UnsupportedAddress"
R_INVALID = "Invalid"
R_UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
R_PROTOCOL_CONFLICT, R_HOSTNAME_CONFLICT, R_NO_CONFLICTS = (
    "ProtocolConflict", "HostnameConflict", "NoConflicts")  # fmt: skip
R_INVALID_CERT, R_REF_NOT_PERMITTED, R_INVALID_ROUTE_KINDS = (
    "InvalidCertificateRef", "RefNotPermitted", "InvalidRouteKinds")  # fmt: skip
R_NOT_ALLOWED, R_NO_HOSTNAME, R_NO_PARENT = (
    "NotAllowedByListeners", "NoMatchingListenerHostname", "NoMatchingParent")  # fmt: skip
R_UNSUPPORTED_VALUE, R_BACKEND_NOT_FOUND, R_INVALID_KIND = (
    "UnsupportedValue", "BackendNotFound", "InvalidKind")  # fmt: skip


# -- the model ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    path: str = "/"
    path_type: str = "PathPrefix"  # Exact, PathPrefix, RegularExpression
    method: str = ""
    headers: tuple[tuple[str, str, str], ...] = ()  # (name lowercased, type, value)
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, value)


@dataclass(frozen=True, slots=True)
class HeaderChanges:
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PathChange:
    kind: str  # ReplaceFullPath or ReplacePrefixMatch
    value: str


@dataclass(frozen=True, slots=True)
class Redirect:
    scheme: str = ""
    hostname: str = ""
    port: int = 0
    path: PathChange | None = None
    status: int = 302


@dataclass(frozen=True, slots=True)
class Rewrite:
    hostname: str = ""
    path: PathChange | None = None


@dataclass(frozen=True, slots=True)
class Mirror:
    """A copy of ``numerator`` in ``denominator`` of a rule's requests goes to ``backend``."""

    backend: str  # a Backend name
    numerator: int = 100
    denominator: int = 100


@dataclass(frozen=True, slots=True)
class Filters:
    request_headers: HeaderChanges = HeaderChanges()
    response_headers: HeaderChanges = HeaderChanges()
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    mirrors: tuple[Mirror, ...] = ()


@dataclass(frozen=True, slots=True)
class WeightedBackend:
    backend: str  # a Backend name, or ERROR_500
    weight: int


@dataclass(frozen=True, slots=True)
class GatewayRule:
    """One match of one HTTPRoute rule on one hostname of a frontend."""

    host: str  # "" any, "*.example.com", or exact
    match: Match
    filters: Filters
    backends: tuple[WeightedBackend, ...]
    source: str  # namespace/name of the HTTPRoute


@dataclass(frozen=True, slots=True)
class Frontend:
    name: str  # unique, safe in HAProxy names and file names
    gateway: tuple[str, str]
    port: int  # the listeners' port, as the Gateway's Service exposes it
    target_port: int  # the port HAProxy binds
    tls: bool  # TLS terminated here (HTTPS)
    certificates: tuple[Certificate, ...]  # hosts () = every SNI
    hosts: tuple[str, ...]  # most specific first: exact, wildcards by length, ""
    rules: tuple[GatewayRule, ...]  # per host, in precedence order
    passthrough: bool = False  # TLS listeners: TCP mode, routed by SNI, TLS left to the pods


RouteStatus = Mapping[tuple[str, str], list[dict[str, Any]]]


@dataclass(frozen=True)
class GatewayModel:
    frontends: tuple[Frontend, ...] = ()
    backends: tuple[Backend, ...] = ()
    gateway_status: Mapping[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    routes_status: Mapping[str, RouteStatus] = field(default_factory=dict)  # by route kind

    @property
    def route_status(self) -> RouteStatus:
        """The HTTPRoutes' ``status.parents`` entries of this controller."""
        return self.routes_status.get(ROUTE_KIND, {})


# -- hostnames ------------------------------------------------------------------------------


def host_matches(pattern: str, host: str) -> bool:
    """Gateway API hostname matching: ``*.example.com`` takes one or more labels."""
    if not pattern:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def intersect(listener: str, route_hosts: Sequence[str]) -> list[str]:
    """The hostnames a route serves on a listener (``[""]`` = any); ``[]`` = none."""
    if not route_hosts:
        return [listener]
    if not listener:
        return list(route_hosts)
    out = []
    for h in route_hosts:
        if host_matches(listener, h) or (
            h.startswith("*.") and listener.startswith("*.") and h.endswith(listener[1:])
        ):
            out.append(h)
        elif h.startswith("*.") and host_matches(h, listener):
            out.append(listener)
    return sorted(set(out))


def _host_rank(host: str) -> tuple[int, int, str]:
    if not host:
        return (2, 0, "")
    if host.startswith("*."):
        return (1, -len(host), host)
    return (0, 0, host)


def select_host(hosts: Sequence[str], host: str) -> str | None:
    """The most specific of ``hosts`` (already in :func:`_host_rank` order) matching ``host``."""
    for h in hosts:
        if host_matches(h, host):
            return h
    return None


# -- matching, the model's own reading ------------------------------------------------------


def path_matches(m: Match, path: str) -> bool:
    if m.path_type == "Exact":
        return path == m.path
    if m.path_type == "RegularExpression":
        return re.fullmatch(m.path, path) is not None
    prefix = m.path.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def request_matches(
    m: Match, path: str, method: str, headers: Mapping[str, str], query: Mapping[str, str]
) -> bool:
    if not path_matches(m, path) or (m.method and m.method != method):
        return False
    for name, kind, value in m.headers:
        have = {k.lower(): v for k, v in headers.items()}.get(name)
        if have is None or not _value_matches(kind, value, have):
            return False
    for name, kind, value in m.query:
        got = query.get(name)
        if got is None or not _value_matches(kind, value, got):
            return False
    return True


def _value_matches(kind: str, want: str, have: str) -> bool:
    if kind == "RegularExpression":
        return re.search(want, have) is not None
    return want == have


def select_rule(
    frontend: Frontend,
    host: str,
    path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> GatewayRule | None:
    """The rule a request reaches (None: 404), the reference the rendering is tested against."""
    vhost = select_host(frontend.hosts, host.split(":", 1)[0].lower())
    if vhost is None:
        return None
    for rule in frontend.rules:
        if rule.host == vhost and request_matches(
            rule.match, path, method, headers or {}, query or {}
        ):
            return rule
    return None


def _precedence(m: Match) -> tuple[int, int, int, int, int]:
    kind = {"Exact": 0, "RegularExpression": 1}.get(m.path_type, 2)
    return (kind, -len(m.path), 0 if m.method else 1, -len(m.headers), -len(m.query))


# -- references -----------------------------------------------------------------------------


class Grants:
    """ReferenceGrants: may an object of ``kind`` in ``from_ns`` refer to ``to``?"""

    def __init__(self, grants: Iterable[ObjView]) -> None:
        self.by_ns: dict[str, list[ObjView]] = {}
        for g in grants:
            self.by_ns.setdefault(objects.namespace(g), []).append(g)

    def allows(self, from_kind: str, from_ns: str, to_kind: str, to_ns: str, to_name: str) -> bool:
        if from_ns == to_ns:
            return True
        for g in self.by_ns.get(to_ns, []):
            spec = objects.spec(g)
            froms = [
                f
                for f in spec.get("from") or []
                if isinstance(f, Mapping)
                and f.get("group") == GROUP
                and f.get("kind") == from_kind
                and f.get("namespace") == from_ns
            ]
            tos = [
                t
                for t in spec.get("to") or []
                if isinstance(t, Mapping)
                and (t.get("group") or "") == ""
                and t.get("kind") == to_kind
                and t.get("name") in (None, "", to_name)
            ]
            if froms and tos:
                return True
        return False


def condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def merge_conditions(
    have: Iterable[Any], want: Sequence[Mapping[str, Any]], now: str
) -> list[dict[str, Any]]:
    """``want`` with ``lastTransitionTime`` kept from ``have`` where the status did not change,
    as ``meta.SetStatusCondition`` does."""
    before = {c.get("type"): c for c in have if isinstance(c, Mapping)}
    out = []
    for c in want:
        prev = before.get(c["type"])
        same = prev is not None and prev.get("status") == c["status"]
        kept = prev.get("lastTransitionTime") if prev is not None and same else now
        out.append({**c, "lastTransitionTime": kept})
    return out


# -- listeners ------------------------------------------------------------------------------


@dataclass
class _Listener:
    name: str
    port: int
    protocol: str
    hostname: str
    allowed_from: str
    selector: Mapping[str, Any]
    kinds_ok: bool
    supported_kinds: list[dict[str, str]]
    conditions: list[dict[str, Any]] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    usable: bool = True
    attached: int = 0


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _listeners(
    gw: ObjView, secrets: Mapping[tuple[str, str], ObjView], grants: Grants, generation: int
) -> list[_Listener]:
    ns = objects.namespace(gw)
    out = []
    for raw in objects.spec(gw).get("listeners") or []:
        if not isinstance(raw, Mapping):
            continue
        allowed = raw.get("allowedRoutes") or {}
        nsel = allowed.get("namespaces") or {}
        protocol = str(raw.get("protocol") or "")
        served = PROTOCOL_KINDS.get(protocol, ())
        kinds = allowed.get("kinds") or [{"group": GROUP, "kind": k} for k in served]
        ok_kinds = [
            {"group": GROUP, "kind": str(k.get("kind"))}
            for k in kinds
            if (k.get("group") or GROUP) == GROUP and k.get("kind") in served
        ]
        lis = _Listener(
            name=str(raw.get("name") or ""),
            port=int(raw.get("port") or 0),
            protocol=protocol,
            hostname=str(raw.get("hostname") or "").lower(),
            allowed_from=str(nsel.get("from") or "Same"),
            selector=nsel.get("selector") or {},
            kinds_ok=len(ok_kinds) == len(kinds),
            supported_kinds=ok_kinds,
        )
        out.append(lis)
        tls_mode = (raw.get("tls") or {}).get("mode") or "Terminate"
        unsupported = (
            f"protocol {lis.protocol!r} is not served"
            if lis.protocol not in PROTOCOL_KINDS
            else "a TLS listener serves TLS mode Passthrough only (HTTPS terminates)"
            if lis.protocol == TLS and tls_mode != "Passthrough"
            else ""
        )
        if unsupported:
            lis.usable = False
            lis.supported_kinds = []
            lis.conditions = [
                condition(ACCEPTED, False, R_UNSUPPORTED_PROTOCOL, unsupported, generation),
                condition(RESOLVED_REFS, True, R_RESOLVED, "", generation),
                condition(PROGRAMMED, False, R_INVALID, "not accepted", generation),
            ]  # fmt: skip
            continue
        resolved = condition(RESOLVED_REFS, True, R_RESOLVED, "", generation)
        if not lis.kinds_ok:
            resolved = condition(
                RESOLVED_REFS, False, R_INVALID_ROUTE_KINDS,
                f"a {lis.protocol} listener serves {' and '.join(served)} only", generation,
            )  # fmt: skip
        if lis.protocol == HTTPS:
            tls = raw.get("tls") or {}
            why = ""
            if (tls.get("mode") or "Terminate") != "Terminate":
                why = "TLS mode Passthrough is not served on an HTTPS listener"
                reason = R_INVALID_CERT
            for ref in tls.get("certificateRefs") or []:
                ref_ns = str(ref.get("namespace") or ns)
                ref_name = str(ref.get("name") or "")
                if (ref.get("group") or "") != "" or (ref.get("kind") or "Secret") != "Secret":
                    why, reason = f"{ref.get('kind')} is not a Secret", R_INVALID_CERT
                    continue
                if not grants.allows("Gateway", ns, "Secret", ref_ns, ref_name):
                    why = f'Secret "{ref_ns}/{ref_name}" is not granted to namespace {ns}'
                    reason = R_REF_NOT_PERMITTED
                    continue
                pem, bad = _secret_pem(secrets.get((ref_ns, ref_name)))
                if bad:
                    why, reason = f'Secret "{ref_ns}/{ref_name}": {bad}', R_INVALID_CERT
                    continue
                hosts = (lis.hostname,) if lis.hostname else ()
                lis.certificates.append(
                    Certificate(_safe(f"{ref_ns}_{ref_name}_{lis.hostname or 'any'}"), pem, hosts)
                )
            if not tls.get("certificateRefs") and not why:
                why, reason = "no certificateRefs", R_INVALID_CERT
            if why:
                resolved = condition(RESOLVED_REFS, False, reason, why, generation)
                lis.usable = False
        lis.usable = lis.usable and lis.kinds_ok
        lis.conditions = [
            condition(ACCEPTED, True, R_ACCEPTED, "", generation),
            resolved,
            condition(
                PROGRAMMED,
                lis.usable,
                R_PROGRAMMED if lis.usable else R_INVALID,
                "" if lis.usable else resolved["message"],
                generation,
            ),
        ]
    _conflicts(out, generation)
    return out


def _conflicts(listeners: list[_Listener], generation: int) -> None:
    by_port: dict[int, list[_Listener]] = {}
    for lis in listeners:
        if lis.protocol in PROTOCOL_KINDS:
            by_port.setdefault(lis.port, []).append(lis)
    for group in by_port.values():
        protocols = {lis.protocol for lis in group}
        seen: dict[str, int] = {}
        for lis in group:
            seen[lis.hostname] = seen.get(lis.hostname, 0) + 1
        for lis in group:
            reason = ""
            if len(protocols) > 1:
                reason = R_PROTOCOL_CONFLICT
            elif seen[lis.hostname] > 1:
                reason = R_HOSTNAME_CONFLICT
            if reason:
                lis.usable = False
                lis.conditions = [c for c in lis.conditions if c["type"] != PROGRAMMED] + [
                    condition(PROGRAMMED, False, R_INVALID, reason, generation)
                ]
            lis.conditions.append(
                condition(CONFLICTED, bool(reason), reason or R_NO_CONFLICTS, "", generation)
            )


def _safe(text: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_.-]", "-", text)
    if len(out) > 60:
        out = out[:48] + "-" + hashlib.sha256(text.encode()).hexdigest()[:10]
    return out


# -- routes ---------------------------------------------------------------------------------


class UnsupportedError(ValueError):
    pass


def _path_change(raw: Any) -> PathChange | None:
    if not isinstance(raw, Mapping):
        return None
    kind = str(raw.get("type") or "")
    if kind == "ReplaceFullPath":
        return PathChange(kind, str(raw.get("replaceFullPath") or "/"))
    if kind == "ReplacePrefixMatch":
        return PathChange(kind, str(raw.get("replacePrefixMatch") or "/"))
    raise UnsupportedError(f"path modifier type {kind!r}")


def _headers(raw: Any) -> HeaderChanges:
    raw = raw or {}

    def pairs(key: str) -> tuple[tuple[str, str], ...]:
        return tuple(
            (_check_name(str(h["name"])), str(h.get("value") or "")) for h in raw.get(key) or []
        )

    removed = tuple(_check_name(str(n)) for n in raw.get("remove") or [])
    return HeaderChanges(pairs("set"), pairs("add"), removed)


Resolver = Callable[[Mapping[str, Any]], tuple[str, str, str]]
"""A backendRef → (backend name or ERROR_500, reason, message), reason "" when resolved."""


def _mirror(
    raw: Mapping[str, Any], resolve: Resolver, unresolved: list[tuple[str, str]]
) -> Mirror | None:
    name, reason, why = resolve(raw.get("backendRef") or {})
    if reason:
        unresolved.append((reason, f"RequestMirror: {why}"))
        return None
    fraction = raw.get("fraction") or {}
    if "percent" in raw:
        return Mirror(name, int(raw["percent"]), 100)
    if fraction:
        return Mirror(
            name, int(fraction.get("numerator") or 0), int(fraction.get("denominator") or 100)
        )
    return Mirror(name)


def _filters(
    raw: Iterable[Any],
    resolve: Resolver | None = None,
    unresolved: list[tuple[str, str]] | None = None,
) -> Filters:
    """``resolve`` turns a RequestMirror's backendRef into a backend; the references it cannot
    resolve are appended to ``unresolved`` as (reason, message) and that mirror dropped."""
    f = Filters()
    for flt in raw:
        kind = flt.get("type")
        if kind == "RequestMirror" and resolve is not None:
            m = _mirror(
                flt.get("requestMirror") or {}, resolve, [] if unresolved is None else unresolved
            )
            if m is not None:
                f = replace(f, mirrors=(*f.mirrors, m))
        elif kind == "RequestHeaderModifier":
            f = replace(f, request_headers=_headers(flt.get("requestHeaderModifier")))
        elif kind == "ResponseHeaderModifier":
            f = replace(f, response_headers=_headers(flt.get("responseHeaderModifier")))
        elif kind == "RequestRedirect":
            r = flt.get("requestRedirect") or {}
            redirect = Redirect(
                scheme=str(r.get("scheme") or ""),
                hostname=str(r.get("hostname") or ""),
                port=int(r.get("port") or 0),
                path=_path_change(r.get("path")),
                status=int(r.get("statusCode") or 302),
            )
            f = replace(f, redirect=redirect)
        elif kind == "URLRewrite":
            r = flt.get("urlRewrite") or {}
            rewrite = Rewrite(str(r.get("hostname") or ""), _path_change(r.get("path")))
            f = replace(f, rewrite=rewrite)
        else:
            raise UnsupportedError(f"filter {kind!r} is not supported")
    return f


def _check_prefix_rewrite(filters: Filters, matches: list[Match]) -> None:
    changes = [f.path for f in (filters.redirect, filters.rewrite) if f is not None and f.path]
    if any(c.kind == "ReplacePrefixMatch" for c in changes if c is not None) and any(
        m.path_type != "PathPrefix" for m in matches
    ):
        raise UnsupportedError("ReplacePrefixMatch needs PathPrefix matches only")


def path_regex(value: str) -> str:
    """The PCRE HAProxy matches a RegularExpression path with: the whole path."""
    return "^(?:" + value + ")$"


def _header_matches(raw: Any, refused: Mapping[str, str]) -> list[tuple[str, str, str]]:
    headers = []
    for h in raw or []:
        kind = str(h.get("type") or "Exact")
        if kind == "RegularExpression":
            _check_regex(str(h.get("value") or ""), refused)
        headers.append((_check_name(str(h["name"])).lower(), kind, str(h.get("value") or "")))
    return headers


def _matches(raw: Iterable[Any], refused: Mapping[str, str] | None = None) -> list[Match]:
    """``refused``: regular expressions (as HAProxy sees them) that HAProxy's check refused,
    with its message: a match using one is unsupported."""
    refused = refused or {}
    out = []
    for m in raw:
        p = m.get("path") or {}
        ptype = str(p.get("type") or "PathPrefix")
        value = str(p.get("value") or "/")
        if ptype not in ("Exact", "PathPrefix", "RegularExpression"):
            raise UnsupportedError(f"path match type {ptype!r}")
        if ptype == "RegularExpression":
            _check_regex(value, refused, path_regex(value))
        method = str(m.get("method") or "")
        if method and method not in _METHODS:
            raise UnsupportedError(f"method {method!r}")
        headers = _header_matches(m.get("headers"), refused)
        query = []
        for q in m.get("queryParams") or []:
            kind = str(q.get("type") or "Exact")
            if kind == "RegularExpression":
                _check_regex(str(q.get("value") or ""), refused)
            query.append((_check_name(str(q["name"])), kind, str(q.get("value") or "")))
        out.append(
            Match(
                value,
                ptype,
                method,
                tuple(sorted(headers)),
                tuple(sorted(query)),
            )
        )
    return out or [Match()]


_GRPC_NAME = re.compile(r"[A-Za-z0-9_.]+")


def _grpc_matches(raw: Iterable[Any], refused: Mapping[str, str] | None = None) -> list[Match]:
    """GRPCRoute matches as HTTP matches on the request path ``/<service>/<method>``: both
    names exact, a path; a service alone, its prefix; otherwise a regular expression."""
    refused = refused or {}
    out = []
    for m in raw:
        method = m.get("method") or {}
        kind = str(method.get("type") or "Exact")
        service, name = str(method.get("service") or ""), str(method.get("method") or "")
        if kind == "Exact":
            for part in (service, name):
                if part and not _GRPC_NAME.fullmatch(part):
                    raise UnsupportedError(f"gRPC name {part!r}")
            if service and name:
                path, ptype = f"/{service}/{name}", "Exact"
            elif service:
                path, ptype = f"/{service}", "PathPrefix"
            elif name:
                path, ptype = f"/[^/]+/{re.escape(name)}", "RegularExpression"
            else:
                path, ptype = "/", "PathPrefix"
        elif kind == "RegularExpression":
            path, ptype = f"/(?:{service or '[^/]+'})/(?:{name or '[^/]+'})", "RegularExpression"
        else:
            raise UnsupportedError(f"method match type {kind!r}")
        if ptype == "RegularExpression":
            _check_regex(path, refused, path_regex(path))
        headers = _header_matches(m.get("headers"), refused)
        out.append(Match(path, ptype, "", tuple(sorted(headers))))
    return out or [Match()]


_TOKEN = re.compile(r"[A-Za-z0-9!#$%&*+.^_`|~-]+")
_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}


def _check_name(name: str) -> str:
    # Header and query names become HAProxy fetch arguments: an HTTP token is safe there.
    if not _TOKEN.fullmatch(name):
        raise UnsupportedError(f"name {name!r} is not an HTTP token")
    return name


def _check_regex(value: str, refused: Mapping[str, str], rendered: str | None = None) -> None:
    # HAProxy compiles with PCRE2; Python's dialect is close enough to refuse most of what
    # neither takes, and a quote or newline would not survive the configuration's quoting.
    # What PCRE2 alone refuses comes back from HAProxy's own check as ``refused``.
    if any(c in value for c in "\n\r\0"):
        raise UnsupportedError(f"regular expression {value!r} has a control character")
    try:
        re.compile(value)
    except re.error as e:
        raise UnsupportedError(f"regular expression {value!r}: {e}") from e
    why = refused.get(value if rendered is None else rendered)
    if why is not None:
        raise UnsupportedError(f"regular expression {value!r}: HAProxy refused it: {why}")


# -- the whole ------------------------------------------------------------------------------


def build_gateways(
    *,
    gateway_classes: Iterable[ObjView],
    gateways: Iterable[ObjView],
    routes: Iterable[ObjView],
    grants: Iterable[ObjView],
    namespaces: Iterable[ObjView],
    services: Iterable[ObjView],
    endpoint_slices: Iterable[ObjView],
    secrets: Iterable[ObjView],
    addresses: Mapping[tuple[str, str], Sequence[str]],
    target_ports: Mapping[tuple[str, str, int], int],
    controller: str = GATEWAY_CONTROLLER_NAME,
    grpc_routes: Iterable[ObjView] = (),
    tls_routes: Iterable[ObjView] = (),
    refused_regexes: Mapping[str, str] | None = None,
) -> GatewayModel:
    """``addresses``: each Gateway's LoadBalancer addresses; ``target_ports``: the pod port
    HAProxy binds for each (namespace, Gateway, listener port); ``refused_regexes``: the
    regular expressions HAProxy's configuration check refused (as rendered), with why."""
    classes = {objects.name(c) for c in gateway_classes if is_accepted_gateway_class(c, controller)}
    ours = sorted(
        (g for g in gateways if objects.spec(g).get("gatewayClassName") in classes),
        key=lambda g: (objects.namespace(g), objects.name(g)),
    )
    ns_labels = {objects.name(n): objects.labels(n) for n in namespaces}
    secret_index = {(objects.namespace(s), objects.name(s)): s for s in secrets}
    grant_index = Grants(grants)
    backends = _Backends.of(services, endpoint_slices)

    listeners: dict[tuple[str, str], list[_Listener]] = {}
    for gw in ours:
        gen = int(objects.meta(gw).get("generation") or 0)
        key = (objects.namespace(gw), objects.name(gw))
        listeners[key] = _listeners(gw, secret_index, grant_index, gen)

    # (gateway, port) → rules; the route order is the tie-break the specification names.
    rules: dict[tuple[str, str, int], list[tuple[tuple[Any, ...], GatewayRule]]] = {}
    routes_status: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    every = [(ROUTE_KIND, r) for r in routes]
    every += [(GRPC_ROUTE_KIND, r) for r in grpc_routes]
    every += [(TLS_ROUTE_KIND, r) for r in tls_routes]
    ordered = sorted(
        every,
        key=lambda kr: (
            str(objects.meta(kr[1]).get("creationTimestamp") or ""),
            objects.namespace(kr[1]),
            objects.name(kr[1]),
            kr[0],
        ),
    )
    for age, (kind, route) in enumerate(ordered):
        rns, rname = objects.namespace(route), objects.name(route)
        gen = int(objects.meta(route).get("generation") or 0)
        route_hosts = [str(h).lower() for h in objects.spec(route).get("hostnames") or []]
        unsupported, compiled, resolved = _compile_rules(
            kind, route, backends, grant_index, refused_regexes or {}
        )
        parents: list[dict[str, Any]] = []
        for pref in objects.spec(route).get("parentRefs") or []:
            status = {
                "parentRef": {k: v for k, v in pref.items()},
                "controllerName": controller,
            }
            gkey = (str(pref.get("namespace") or rns), str(pref.get("name") or ""))
            if (pref.get("group") or GROUP) != GROUP or (pref.get("kind") or "Gateway") != (
                "Gateway"
            ):
                continue  # not a parent of ours to speak for
            if gkey not in listeners:
                status["conditions"] = [
                    condition(ACCEPTED, False, R_NO_PARENT,
                              f'Gateway "{gkey[0]}/{gkey[1]}" not found', gen),
                    resolved,
                ]  # fmt: skip
                parents.append(status)
                continue
            accepted, reason, why = _attach(
                kind, route, pref, route_hosts, listeners[gkey], ns_labels, unsupported
            )
            if accepted:
                for lis, hosts in accepted:
                    lis.attached += 1
                    for ri, matches, filters, shares in compiled:
                        for mi, m in enumerate(matches):
                            for h in hosts:
                                rule = GatewayRule(h, m, filters, shares, f"{rns}/{rname}")
                                order = (_precedence(m), age, ri, mi)
                                rules.setdefault((*gkey, lis.port), []).append((order, rule))
                status["conditions"] = [condition(ACCEPTED, True, R_ACCEPTED, "", gen), resolved]
            else:
                status["conditions"] = [condition(ACCEPTED, False, reason, why, gen), resolved]
            parents.append(status)
        routes_status.setdefault(kind, {})[(rns, rname)] = parents

    frontends = []
    gateway_status: dict[tuple[str, str], dict[str, Any]] = {}
    for gw in ours:
        key = (objects.namespace(gw), objects.name(gw))
        gen = int(objects.meta(gw).get("generation") or 0)
        lis_list = listeners[key]
        by_port: dict[int, list[_Listener]] = {}
        for lis in lis_list:
            if lis.usable:
                by_port.setdefault(lis.port, []).append(lis)
        for port, group in sorted(by_port.items()):
            entries = rules.get((*key, port), [])
            hosts = sorted({r.host for _, r in entries}, key=_host_rank)
            ordered_rules = [
                r for _, r in sorted(entries, key=lambda e: (_host_rank(e[1].host), e[0]))
            ]
            # Rules that two hosts share are kept once per host, in order.
            target = target_ports.get((*key, port))
            if target is None:
                continue
            frontends.append(
                Frontend(
                    name=_safe(f"gw_{key[0]}_{key[1]}_{port}"),
                    gateway=key,
                    port=port,
                    target_port=target,
                    tls=group[0].protocol == HTTPS,
                    passthrough=group[0].protocol == TLS,
                    certificates=tuple(c for lis in group for c in lis.certificates),
                    hosts=tuple(hosts),
                    rules=tuple(_dedupe(ordered_rules)),
                )
            )
        gateway_status[key] = _gateway_status(gw, lis_list, addresses.get(key, ()), gen)
    return GatewayModel(
        frontends=tuple(frontends),
        backends=tuple(sorted(backends.built.values(), key=lambda b: b.name)),
        gateway_status=gateway_status,
        routes_status=routes_status,
    )


Compiled = list[tuple[int, list[Match], Filters, tuple[WeightedBackend, ...]]]


def _compile_rules(
    kind: str,
    route: ObjView,
    backends: _Backends,
    grants: Grants,
    refused: Mapping[str, str],
) -> tuple[str, Compiled, dict[str, Any]]:
    """A route's rules as matches, filters and weighted backends, what makes the route
    unsupported ("" when nothing) and its ResolvedRefs condition: the same on every parent."""
    rns = objects.namespace(route)
    gen = int(objects.meta(route).get("generation") or 0)
    proto = {GRPC_ROUTE_KIND: H2, TLS_ROUTE_KIND: TCP}.get(kind, "")
    unsupported = ""
    compiled: Compiled = []
    unresolved: list[tuple[str, str]] = []

    def resolve(ref: Mapping[str, Any]) -> tuple[str, str, str]:
        # Mirrors too: a gRPC request's copy goes to its backend in h2c.
        return _backend_ref(ref, kind, rns, backends, grants, proto)

    for ri, raw_rule in enumerate(objects.spec(route).get("rules") or []):
        try:
            if kind == TLS_ROUTE_KIND:
                matches, filters = [Match()], Filters()
            else:
                to_matches = _grpc_matches if kind == GRPC_ROUTE_KIND else _matches
                matches = to_matches(raw_rule.get("matches") or [], refused)
                filters = _filters(raw_rule.get("filters") or [], resolve, unresolved)
                _check_prefix_rewrite(filters, matches)
        except UnsupportedError as e:
            unsupported = unsupported or f"rule {ri}: {e}"
            continue
        weighted: list[WeightedBackend] = []
        for ref in raw_rule.get("backendRefs") or []:
            weight = int(ref.get("weight", 1))
            name, reason, why = resolve(ref)
            if reason:
                unresolved.append((reason, why))
            if weight > 0:
                weighted.append(WeightedBackend(name, weight))
        if not weighted:
            weighted.append(WeightedBackend(ERROR_500, 1))
        compiled.append((ri, matches, filters, tuple(weighted)))
    resolved = (
        condition(RESOLVED_REFS, False, unresolved[0][0], unresolved[0][1], gen)
        if unresolved
        else condition(RESOLVED_REFS, True, R_RESOLVED, "", gen)
    )
    return unsupported, compiled, resolved


def _dedupe(rules: list[GatewayRule]) -> list[GatewayRule]:
    seen: set[GatewayRule] = set()
    out = []
    for r in rules:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def _backend_ref(
    ref: Mapping[str, Any],
    route_kind: str,
    route_ns: str,
    backends: _Backends,
    grants: Grants,
    proto: str = "",
) -> tuple[str, str, str]:
    """(backend name or ERROR_500, reason, message) of one backendRef; reason "" = resolved.
    ``proto``: the protocol HAProxy speaks to it (HTTP/1.1, ``h2`` or ``tcp``), a backend of
    its own."""
    kind, group = ref.get("kind") or "Service", ref.get("group") or ""
    name = str(ref.get("name") or "")
    ns = str(ref.get("namespace") or route_ns)
    if kind != "Service" or group != "":
        return ERROR_500, R_INVALID_KIND, f"backendRef kind {group}/{kind} is not supported"
    if not grants.allows(route_kind, route_ns, "Service", ns, name):
        return (
            ERROR_500,
            R_REF_NOT_PERMITTED,
            f'Service "{ns}/{name}" is not granted to {route_kind}s of namespace {route_ns}',
        )
    ingress_ref = {"service": {"name": name, "port": {"number": ref.get("port")}}}
    built = backends.ref(ns, ingress_ref, {"metadata": {}}, [])
    if backends.built[built].unavailable:
        return (
            ERROR_500,
            R_BACKEND_NOT_FOUND,
            f'Service "{ns}/{name}" port {ref.get("port")} not found',
        )
    if proto:
        plain = backends.built[built]
        variant = f"{built}_{proto}"  # "_" cannot be in a port name: no clash
        backends.built.setdefault(variant, replace(plain, name=variant, proto=proto))
        return variant, "", ""
    return built, "", ""


def _attach(
    kind: str,
    route: ObjView,
    pref: Mapping[str, Any],
    route_hosts: list[str],
    listeners: list[_Listener],
    ns_labels: Mapping[str, Mapping[str, str]],
    unsupported: str,
) -> tuple[list[tuple[_Listener, list[str]]], str, str]:
    """The listeners a parentRef attaches the route to, with the hostnames on each; or
    ``[]`` and the reason why none."""
    section = pref.get("sectionName")
    port = pref.get("port")
    candidates = [
        lis
        for lis in listeners
        if (section is None or lis.name == section) and (port is None or lis.port == port)
    ]
    if not candidates:
        return [], R_NO_PARENT, f"no listener named {section!r}" if section else "no listener"
    if unsupported:
        return [], R_UNSUPPORTED_VALUE, unsupported
    rns = objects.namespace(route)
    gw_ns = str(pref.get("namespace") or rns)
    allowed = []
    for lis in candidates:
        if kind not in [k["kind"] for k in lis.supported_kinds]:
            continue
        if lis.allowed_from == "Same" and rns != gw_ns:
            continue
        if lis.allowed_from == "Selector" and not _selector_matches(
            lis.selector, ns_labels.get(rns, {})
        ):
            continue
        if lis.allowed_from not in ("Same", "All", "Selector"):
            continue
        allowed.append(lis)
    if not allowed:
        return [], R_NOT_ALLOWED, f"no listener allows {kind}s from namespace {rns}"
    out = []
    for lis in allowed:
        hosts = intersect(lis.hostname, route_hosts)
        if hosts and lis.usable:
            out.append((lis, hosts))
        elif hosts:
            out.append((lis, []))  # attached, not served: the listener is not programmed
    if not out:
        return [], R_NO_HOSTNAME, "no hostname of the route matches a listener"
    return out, "", ""


def _gateway_status(
    gw: ObjView, listeners: list[_Listener], addresses: Sequence[str], gen: int
) -> dict[str, Any]:
    if objects.spec(gw).get("addresses"):
        accepted = condition(
            ACCEPTED, False, R_UNSUPPORTED_ADDRESS,
            "spec.addresses is not supported: addresses come from the LoadBalancer pool", gen,
        )  # fmt: skip
    elif all(lis.usable for lis in listeners):
        accepted = condition(ACCEPTED, True, R_ACCEPTED, "", gen)
    else:
        accepted = condition(
            ACCEPTED, True, R_LISTENERS_NOT_VALID, "some listeners are invalid", gen
        )
    programmed = (
        condition(PROGRAMMED, True, R_PROGRAMMED, "", gen)
        if addresses and accepted["status"] == "True"
        else condition(
            PROGRAMMED, False, R_ADDRESS_NOT_ASSIGNED, "waiting for a LoadBalancer address", gen
        )
    )
    return {
        "addresses": [{"type": "IPAddress", "value": a} for a in addresses],
        "conditions": [accepted, programmed],
        "listeners": [
            {
                "name": lis.name,
                "supportedKinds": lis.supported_kinds,
                "attachedRoutes": lis.attached,
                "conditions": lis.conditions,
            }
            for lis in listeners
        ],
    }


def allocate_ports(
    gateways: Iterable[tuple[str, str, Sequence[int]]],
    held: Mapping[tuple[str, str, int], int],
) -> dict[tuple[str, str, int], int]:
    """A pod port for every (namespace, Gateway, listener port): the one ``held`` (read from
    the Gateways' Services) if any, else the lowest free one from :data:`GATEWAY_PORT_BASE`."""
    out: dict[tuple[str, str, int], int] = {}
    wanted = [(ns, name, p) for ns, name, ports in gateways for p in sorted(set(ports))]
    used = set()
    for k in wanted:
        if k in held and held[k] not in used:
            out[k] = held[k]
            used.add(held[k])
    nxt = GATEWAY_PORT_BASE
    for k in wanted:
        if k in out:
            continue
        while nxt in used:
            nxt += 1
        out[k] = nxt
        used.add(nxt)
    return out


GATEWAY_NAMESPACE_LABEL = "gateway.svcnet.io/namespace"
GATEWAY_NAME_LABEL = "gateway.svcnet.io/name"


def service_owner(svc: ObjView) -> tuple[str, str] | None:
    """The Gateway a Service was made for, from its labels."""
    labels = objects.labels(svc)
    ns, name = labels.get(GATEWAY_NAMESPACE_LABEL), labels.get(GATEWAY_NAME_LABEL)
    return (ns, name) if ns and name else None


def gateway_service_name(gateway: tuple[str, str]) -> str:
    """``gw-<namespace>-<name>``, cut to a DNS label with a hash when too long."""
    text = f"gw-{gateway[0]}-{gateway[1]}"
    if len(text) <= 63:
        return text
    return text[:52] + "-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def gateway_service(
    gateway: tuple[str, str],
    frontends: Sequence[Frontend],
    namespace: str,
    selector: Mapping[str, str],
) -> dict[str, Any]:
    """The LoadBalancer Service that gives ``gateway`` its address: each listener port to the
    pod port its frontend binds, selecting the controller's pods."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": gateway_service_name(gateway),
            "namespace": namespace,
            "labels": {GATEWAY_NAMESPACE_LABEL: gateway[0], GATEWAY_NAME_LABEL: gateway[1]},
        },
        "spec": {
            "type": "LoadBalancer",
            "selector": dict(selector),
            "ports": [
                {
                    "name": f"port-{f.port}",
                    "port": f.port,
                    "protocol": "TCP",
                    "targetPort": f.target_port,
                }
                for f in sorted(frontends, key=lambda f: f.port)
            ],
        },
    }


_OWN_PORT_FIELDS = ("name", "port", "protocol", "targetPort")


def service_spec_patch(have: ObjView, want: Mapping[str, Any]) -> dict[str, Any] | None:
    """The spec merge patch that takes a Gateway's Service from ``have`` to ``want``, or None.
    Only the fields this controller sets are compared; a port keeps the ``nodePort`` the API
    server allocated (a merge patch replaces the whole list)."""
    spec = objects.spec(have)
    allocated = {p.get("port"): p.get("nodePort") for p in spec.get("ports") or []}
    mine = [{k: p.get(k) for k in _OWN_PORT_FIELDS} for p in spec.get("ports") or []]
    if mine == want["spec"]["ports"] and spec.get("selector") == want["spec"]["selector"]:
        return None
    ports = [
        {**p, "nodePort": allocated[p["port"]]} if allocated.get(p["port"]) else dict(p)
        for p in want["spec"]["ports"]
    ]
    return {"spec": {**want["spec"], "ports": ports}}
