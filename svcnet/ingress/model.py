"""Ingress objects → a routing model: which host and path go to which endpoints. Pure.

:func:`build_model` takes the API objects as the informer caches hold them and returns a
:class:`RoutingModel`; the HAProxy configuration is rendered from that model alone
(:mod:`svcnet.ingress.haproxycfg`). The rules, as the Ingress API and the big controllers
define them:

* **Class.** An Ingress is ours when ``spec.ingressClassName`` (or the deprecated
  ``kubernetes.io/ingress.class`` annotation) names an IngressClass whose ``spec.controller``
  is ours, or when it names none and one of our classes is marked default
  (``ingressclass.kubernetes.io/is-default-class``). Others are ignored.
* **Hosts.** A request's host (the Host header, port stripped, lowercased) selects one virtual
  host: an exact host first, else a wildcard ``*.example.com`` (which matches exactly one
  label: ``a.example.com``, not ``example.com`` nor ``a.b.example.com``), else the rules with
  no host. There is no fall-through between hosts: a path no rule of the selected host matches
  goes to the default backend, as an nginx ``server`` block does.
* **Paths.** ``Exact`` matches the path exactly; ``Prefix`` element-wise on ``/``-separated
  elements with a trailing ``/`` ignored (``/foo`` matches ``/foo``, ``/foo/`` and
  ``/foo/bar``, not ``/foobar``); ``ImplementationSpecific`` is ``Prefix`` here. Precedence:
  the longest path first, ``Exact`` before ``Prefix`` on a tie.
* **Merging and conflicts.** The rules of every Ingress of the class are merged per host. Two
  rules for the same host, path and type conflict; the rule of the oldest Ingress
  (``creationTimestamp``, then namespace/name) wins, and within one Ingress the first listed.
  The same rule decides between two ``defaultBackend`` s and two certificates for one host.
  Each loser gets a Warning (``problems``).
* **Default backend.** The winning ``spec.defaultBackend`` serves requests no rule matches;
  without one they get 404.
* **Backends** are a Service port's ready endpoints (pod IPs and the endpoint port), as
  ingress-nginx and HAProxy's controller do — not the ClusterIP. A Service or port that does
  not exist makes its routes answer 503 (and a Warning); other routes are unaffected.
* **TLS.** ``spec.tls[].hosts`` are served with the ``kubernetes.io/tls`` Secret
  ``secretName`` (same namespace) by SNI; a Secret that is missing, of another type or whose
  key does not match its certificate leaves the host on the default (self-signed) certificate,
  with a Warning. Plain-HTTP requests for a TLS host are redirected to HTTPS (308).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from svcnet.api import objects
from svcnet.api.objects import ObjView
from svcnet.api.wellknown import (
    DEFAULT_INGRESS_CLASS_ANNOTATION,
    INGRESS_CLASS_ANNOTATION,
    SERVICE_NAME_LABEL,
)
from svcnet.ingress.annotations import (
    REASON_INVALID_ANNOTATION,
    BackendSettings,
    read_settings,
)

CONTROLLER_NAME = "svcnet.io/ingress-controller"
"""``spec.controller`` of the IngressClasses this controller serves."""

TLS_SECRET_TYPE = "kubernetes.io/tls"
MAX_WEIGHT = 256  # HAProxy's largest server weight

# Event reasons (ingress-nginx uses the same words where it has one).
REASON_SERVICE_NOT_FOUND = "ServiceNotFound"
REASON_PORT_NOT_FOUND = "PortNotFound"
REASON_UNSUPPORTED_BACKEND = "UnsupportedBackend"
REASON_CONFLICT = "RuleConflict"
REASON_TLS_SECRET = "InvalidTLSSecret"


class PathType(enum.Enum):
    EXACT = "Exact"
    PREFIX = "Prefix"


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    ip: str
    port: int
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Backend:
    """One HAProxy backend: the endpoints of a Service port, or an unavailable one (503)."""

    name: str
    namespace: str
    service: str
    port: str  # the Ingress's port: a number or a name, as written
    endpoints: tuple[Endpoint, ...] = ()
    unavailable: str = ""  # why the backend cannot exist: it answers 503
    proto: str = ""  # "" HTTP/1.1; "h2" cleartext HTTP/2 (gRPC); "tcp" a TCP backend (passthrough)
    settings: BackendSettings = field(default_factory=BackendSettings)  # from annotations


@dataclass(frozen=True, slots=True)
class Route:
    path: str  # normalized: a Prefix path has no trailing "/" (except "/" itself)
    path_type: PathType
    backend: str
    source: str  # namespace/name of the Ingress the rule comes from

    @property
    def precedence(self) -> tuple[int, int]:
        """Sort key: longest path first, Exact before Prefix on a tie."""
        return (-len(self.path), 0 if self.path_type is PathType.EXACT else 1)


@dataclass(frozen=True, slots=True)
class VirtualHost:
    host: str  # "" matches any host; "*.example.com" one label
    routes: tuple[Route, ...]  # in precedence order
    tls: bool = False  # plain HTTP is redirected to HTTPS (unless ssl_redirect is off)
    ssl_redirect: bool = True

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")


@dataclass(frozen=True, slots=True)
class Certificate:
    """A key pair served by SNI for ``hosts``; ``name`` is unique and safe as a file name."""

    name: str
    pem: bytes  # certificate chain then key, as HAProxy's ``crt`` reads it
    hosts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """A Warning event to record on an Ingress."""

    namespace: str
    name: str
    reason: str
    message: str


@dataclass(frozen=True)
class RoutingModel:
    vhosts: tuple[VirtualHost, ...] = ()  # exact hosts, then wildcards, then "" (sorted)
    backends: tuple[Backend, ...] = ()  # sorted by name
    default_backend: str = ""  # a backend name; "" → 404
    certificates: tuple[Certificate, ...] = ()
    ingresses: tuple[tuple[str, str], ...] = ()  # (namespace, name) of the Ingresses served
    problems: tuple[Problem, ...] = field(default=(), compare=False)

    def backend(self, name: str) -> Backend:
        for b in self.backends:
            if b.name == name:
                return b
        raise KeyError(name)


# -- which Ingresses are ours ---------------------------------------------------------------


def our_classes(
    classes: Iterable[ObjView], controller: str = CONTROLLER_NAME
) -> tuple[set[str], bool]:
    """The names of our IngressClasses, and whether one of them is the default class."""
    names: set[str] = set()
    default = False
    for ic in classes:
        if objects.spec(ic).get("controller") != controller:
            continue
        names.add(objects.name(ic))
        if objects.annotations_of(ic).get(DEFAULT_INGRESS_CLASS_ANNOTATION) == "true":
            default = True
    return names, default


def is_ours(ing: ObjView, classes: set[str], default: bool) -> bool:
    class_name = objects.spec(ing).get("ingressClassName") or objects.annotations_of(ing).get(
        INGRESS_CLASS_ANNOTATION
    )
    if class_name:
        return class_name in classes
    return default


# -- paths and hosts ------------------------------------------------------------------------


def normalize_path(path: str, path_type: str) -> tuple[str, PathType]:
    if path_type == "Exact":
        return path, PathType.EXACT
    # Prefix and ImplementationSpecific: a trailing "/" does not change what matches.
    p = path or "/"
    if not p.startswith("/"):
        p = "/" + p
    while len(p) > 1 and p.endswith("/"):
        p = p[:-1]
    return p, PathType.PREFIX


def path_matches(route_path: str, path_type: PathType, request_path: str) -> bool:
    """What the rendered HAProxy rule does, for tests and ``explain``."""
    if path_type is PathType.EXACT:
        return request_path == route_path
    if route_path == "/":
        return True
    return request_path == route_path or request_path.startswith(route_path + "/")


def host_matches(vhost: str, request_host: str) -> bool:
    if not vhost:
        return True
    if vhost.startswith("*."):
        label, _, rest = request_host.partition(".")
        return bool(label) and rest == vhost[2:]
    return vhost == request_host


def select(model: RoutingModel, host: str, path: str) -> str:
    """The backend a request reaches ("" = 404): the model's own reading of its rules, the
    reference the rendered configuration is tested against."""
    host = host.split(":", 1)[0].lower()
    candidates = [v for v in model.vhosts if v.host == host]
    if not candidates:
        candidates = [v for v in model.vhosts if v.wildcard and host_matches(v.host, host)]
    if not candidates:
        candidates = [v for v in model.vhosts if not v.host]
    for vhost in candidates[:1]:
        for route in vhost.routes:
            if path_matches(route.path, route.path_type, path):
                return route.backend
    return model.default_backend


# -- Services and endpoints -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ServicePort:
    name: str
    port: int
    target_port: int | str


def _service_ports(svc: ObjView) -> list[_ServicePort]:
    out = []
    for p in objects.spec(svc).get("ports") or []:
        if not isinstance(p, Mapping) or (p.get("protocol") or "TCP") != "TCP":
            continue
        port = int(p.get("port") or 0)
        out.append(_ServicePort(str(p.get("name") or ""), port, p.get("targetPort") or port))
    return out


def _endpoints_of(slices: Sequence[ObjView], port: _ServicePort) -> tuple[Endpoint, ...]:
    """Ready endpoints of the slices for the Service port (matched by port name, as kube-proxy
    does: a slice's port carries the Service port's name and the endpoint's number)."""
    out: set[Endpoint] = set()
    for s in slices:
        if s.get("addressType", "IPv4") != "IPv4":
            continue
        number = None
        for sp in s.get("ports") or []:
            if (
                isinstance(sp, Mapping)
                and str(sp.get("name") or "") == port.name
                and (sp.get("protocol") or "TCP") == "TCP"
                and sp.get("port")
            ):
                number = int(sp["port"])
        if number is None:
            continue
        for ep in s.get("endpoints") or []:
            if not isinstance(ep, Mapping):
                continue
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            for addr in ep.get("addresses") or []:
                out.add(Endpoint(str(addr), number))
    return tuple(sorted(out))


def backend_name(namespace: str, service: str, port: str) -> str:
    # "_" cannot appear in a namespace, Service name or port name: the name is unambiguous.
    return f"{namespace}_{service}_{port}"


class _Backends:
    """The backends the rules refer to, built once per (namespace, service, port)."""

    def __init__(
        self,
        services: Mapping[tuple[str, str], ObjView],
        slices: Mapping[tuple[str, str], list[ObjView]],
    ) -> None:
        self.services = services
        self.slices = slices
        self.built: dict[str, Backend] = {}

    @classmethod
    def of(cls, services: Iterable[ObjView], endpoint_slices: Iterable[ObjView]) -> _Backends:
        svc_index = {(objects.namespace(s), objects.name(s)): s for s in services}
        slice_index: dict[tuple[str, str], list[ObjView]] = {}
        for s in endpoint_slices:
            svc = objects.labels(s).get(SERVICE_NAME_LABEL)
            if svc:
                slice_index.setdefault((objects.namespace(s), svc), []).append(s)
        return cls(svc_index, slice_index)

    def ref(
        self, namespace: str, backend: ObjView, source: ObjView, problems: list[Problem]
    ) -> str:
        svc_ref = backend.get("service")
        if not isinstance(svc_ref, Mapping):
            name = backend_name(namespace, "resource", "0")
            problems.append(
                _problem(source, REASON_UNSUPPORTED_BACKEND, "only Service backends are served")
            )
            self.built.setdefault(
                name, Backend(name, namespace, "", "", unavailable="resource backend")
            )
            return name
        svc_name = str(svc_ref.get("name") or "")
        port_ref = svc_ref.get("port") or {}
        port_key = str(port_ref.get("number") or port_ref.get("name") or "")
        name = backend_name(namespace, svc_name, port_key)
        if name in self.built:
            if self.built[name].unavailable:
                problems.append(_problem(source, *self._why(namespace, svc_name, port_key)))
            return name
        svc = self.services.get((namespace, svc_name))
        port = None
        if svc is not None:
            for p in _service_ports(svc):
                if str(p.port) == port_key or (p.name and p.name == port_key):
                    port = p
                    break
        if port is None:
            problems.append(_problem(source, *self._why(namespace, svc_name, port_key)))
            self.built[name] = Backend(name, namespace, svc_name, port_key, unavailable="missing")
            return name
        eps = _endpoints_of(self.slices.get((namespace, svc_name), []), port)
        self.built[name] = Backend(name, namespace, svc_name, port_key, eps)
        return name

    def variant(self, name: str, settings: BackendSettings) -> str:
        """The backend ``name`` with an Ingress's annotation settings: a backend of its own
        (the same endpoints), named by a digest of the settings."""
        plain = self.built[name]
        if settings.empty or plain.unavailable:
            return name
        digest = hashlib.sha256(repr(settings).encode()).hexdigest()[:8]
        # "_" cannot be in a port name: the suffix cannot clash with another Service port.
        out = f"{name}_{digest}"
        self.built.setdefault(out, replace(plain, name=out, settings=settings))
        return out

    def _why(self, namespace: str, svc: str, port: str) -> tuple[str, str]:
        if (namespace, svc) not in self.services:
            return REASON_SERVICE_NOT_FOUND, f'Service "{namespace}/{svc}" not found'
        return REASON_PORT_NOT_FOUND, f'Service "{namespace}/{svc}" has no TCP port {port}'


def _problem(ing: ObjView, reason: str, message: str) -> Problem:
    return Problem(objects.namespace(ing), objects.name(ing), reason, message)


# -- the model ------------------------------------------------------------------------------


def _age_key(ing: ObjView) -> tuple[str, str, str]:
    # RFC 3339 timestamps in UTC with a "Z" sort as strings; a missing one sorts first, as
    # an object being created is the oldest claim there can be.
    return (
        str(objects.meta(ing).get("creationTimestamp") or ""),
        objects.namespace(ing),
        objects.name(ing),
    )


def _secret_pem(secret: ObjView | None) -> tuple[bytes, str]:
    """(certificate chain + key, "") or (b"", why the Secret cannot be served)."""
    if secret is None:
        return b"", "not found"
    if secret.get("type") != TLS_SECRET_TYPE:
        return b"", f"type is {secret.get('type')!r}, not {TLS_SECRET_TYPE!r}"
    data = secret.get("data") or {}
    try:
        crt = base64.b64decode(str(data.get("tls.crt") or ""), validate=True)
        key = base64.b64decode(str(data.get("tls.key") or ""), validate=True)
    except (binascii.Error, ValueError):
        return b"", "tls.crt or tls.key is not base64"
    # Imported here: cryptography costs an idle controller ~12 MiB, and only TLS hosts need it.
    from svcnet.ingress.certs import CertificateError, check_key_pair

    try:
        check_key_pair(crt, key)
    except CertificateError as e:
        return b"", str(e)
    return crt.rstrip(b"\n") + b"\n" + key.rstrip(b"\n") + b"\n", ""


def build_model(
    *,
    ingress_classes: Iterable[ObjView],
    ingresses: Iterable[ObjView],
    services: Iterable[ObjView],
    endpoint_slices: Iterable[ObjView],
    secrets: Iterable[ObjView],
    controller: str = CONTROLLER_NAME,
) -> RoutingModel:
    classes, default = our_classes(ingress_classes, controller)
    ours = sorted((i for i in ingresses if is_ours(i, classes, default)), key=_age_key)
    secret_index = {(objects.namespace(s), objects.name(s)): s for s in secrets}

    problems: list[Problem] = []
    backends = _Backends.of(services, endpoint_slices)
    routes: dict[str, dict[tuple[str, PathType], Route]] = {}
    tls_hosts: dict[str, tuple[str, str, str]] = {}  # host → (namespace, secret, ingress key)
    default_backend = ""
    default_source = ""

    no_redirect: set[str] = set()  # TLS hosts whose Ingress turns ssl-redirect off

    for ing in ours:
        ns = objects.namespace(ing)
        key = f"{ns}/{objects.name(ing)}"
        spec = objects.spec(ing)
        settings, warnings = read_settings(objects.annotations_of(ing), key)
        problems += [_problem(ing, REASON_INVALID_ANNOTATION, w) for w in warnings]
        db = spec.get("defaultBackend")
        if isinstance(db, Mapping):
            if default_backend:
                problems.append(
                    _problem(
                        ing,
                        REASON_CONFLICT,
                        f"defaultBackend ignored: the older Ingress {default_source} sets one",
                    )
                )
            else:
                default_backend = backends.variant(
                    backends.ref(ns, db, ing, problems), settings.backend
                )
                default_source = key
        for rule in spec.get("rules") or []:
            if not isinstance(rule, Mapping):
                continue
            host = str(rule.get("host") or "").lower()
            http = rule.get("http") or {}
            for p in http.get("paths") or []:
                if not isinstance(p, Mapping) or not isinstance(p.get("backend"), Mapping):
                    continue
                path, ptype = normalize_path(
                    str(p.get("path") or ""), str(p.get("pathType") or "Prefix")
                )
                held = routes.setdefault(host, {})
                winner = held.get((path, ptype))
                if winner is not None:
                    problems.append(
                        _problem(
                            ing,
                            REASON_CONFLICT,
                            f"rule {host or '*'}{path} ({ptype.value}) ignored: "
                            f"{winner.source} serves it (the oldest Ingress wins)",
                        )
                    )
                    continue
                backend = backends.variant(
                    backends.ref(ns, p["backend"], ing, problems), settings.backend
                )
                held[(path, ptype)] = Route(path, ptype, backend, key)
        for tls in spec.get("tls") or []:
            if not isinstance(tls, Mapping):
                continue
            for h in tls.get("hosts") or []:
                h = str(h).lower()
                if h in tls_hosts:
                    if tls_hosts[h][1] != tls.get("secretName"):
                        problems.append(
                            _problem(
                                ing,
                                REASON_CONFLICT,
                                f"TLS for {h} ignored: {tls_hosts[h][2]} sets its certificate",
                            )
                        )
                    continue
                tls_hosts[h] = (ns, str(tls.get("secretName") or ""), key)
                if not settings.ssl_redirect:
                    no_redirect.add(h)

    # Certificates: one per Secret, with every host it serves.
    by_secret: dict[tuple[str, str], list[str]] = {}
    first_user: dict[tuple[str, str], str] = {}
    for h, (ns, secret, src) in tls_hosts.items():
        by_secret.setdefault((ns, secret), []).append(h)
        first_user.setdefault((ns, secret), src)
    certificates = []
    for (ns, secret), hosts in sorted(by_secret.items()):
        pem, why = _secret_pem(secret_index.get((ns, secret)) if secret else None)
        if why:
            src_ns, _, src_name = first_user[(ns, secret)].partition("/")
            problems.append(
                Problem(
                    src_ns,
                    src_name,
                    REASON_TLS_SECRET,
                    f'TLS Secret "{ns}/{secret}": {why}; serving '
                    f"{', '.join(sorted(hosts))} with the default certificate",
                )
            )
            continue
        certificates.append(Certificate(f"{ns}_{secret}", pem, tuple(sorted(hosts))))

    vhosts = [
        VirtualHost(
            host,
            tuple(sorted(held.values(), key=lambda r: (r.precedence, r.path))),
            tls=bool(host) and host in tls_hosts,
            ssl_redirect=host not in no_redirect,
        )
        for host, held in routes.items()
    ]
    vhosts.sort(key=lambda v: (2 if not v.host else 1 if v.wildcard else 0, v.host))
    return RoutingModel(
        vhosts=tuple(vhosts),
        backends=tuple(sorted(backends.built.values(), key=lambda b: b.name)),
        default_backend=default_backend,
        certificates=tuple(certificates),
        ingresses=tuple((objects.namespace(i), objects.name(i)) for i in ours),
        problems=tuple(problems),
    )
