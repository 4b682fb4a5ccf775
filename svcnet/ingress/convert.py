"""Ingresses → the equivalent Gateway API objects, and what could not be translated. Pure.

The translation ``svcnet ingress convert`` prints, following the mapping ingress2gateway uses:

* one Gateway per namespace (named after ``--gateway``, class ``--gateway-class``) with an
  ``HTTP`` listener on port 80 for every host, and an ``HTTPS`` listener on 443 per TLS host
  whose ``certificateRefs`` is the Ingress's ``secretName``;
* one HTTPRoute per Ingress and host (``<ingress>-<host>``; the host-less rules
  ``<ingress>-all``): each path one rule, ``Exact`` → ``Exact``, ``Prefix`` →
  ``PathPrefix``, ``ImplementationSpecific`` → ``PathPrefix`` (what svcnet serves it as);
  a Service backend → a ``backendRef``; ``defaultBackend`` → a route ``<ingress>-default``
  with no hostname, and the last rule of every host's route (a Gateway host does not fall
  through to the host-less routes; an Ingress host falls to the default backend);
* a TLS host's route attaches to its HTTPS listener, and a second route
  ``<ingress>-<host>-redirect`` on the HTTP listener answers with a redirect to HTTPS (301:
  the Gateway API has no 308), unless ``ssl-redirect`` is ``"false"``;
* ``rewrite-target`` with a plain path → a ``URLRewrite`` filter (``ReplaceFullPath``).

Everything else is named in the notes: resource backends, ports given by name (a backendRef
needs a number), other annotations, rewrite targets with capture groups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from svcnet.api import objects
from svcnet.api.objects import ObjView

GW_API = "gateway.networking.k8s.io/v1"
ANNOTATION_PREFIXES = ("nginx.ingress.kubernetes.io/", "svcnet.io/")
TRANSLATED = ("ssl-redirect", "rewrite-target")


@dataclass
class Conversion:
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _slug(host: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", host.replace("*", "wildcard")).strip("-") or "all"


def _annotation(ing: ObjView, key: str) -> str | None:
    ann = objects.annotations_of(ing)
    for prefix in ANNOTATION_PREFIXES:
        if prefix + key in ann:
            return ann[prefix + key]
    return None


def _backend_ref(backend: Mapping[str, Any], where: str, notes: list[str]) -> dict[str, Any] | None:
    svc = backend.get("service")
    if not isinstance(svc, Mapping):
        notes.append(f"{where}: a resource backend has no Gateway API equivalent; left out")
        return None
    port = svc.get("port") or {}
    if port.get("number"):
        return {"name": svc.get("name"), "port": int(port["number"])}
    notes.append(
        f"{where}: Service {svc.get('name')} port {port.get('name')!r} is named; a backendRef "
        "needs the number: left out"
    )
    return None


def convert(
    ingresses: Iterable[ObjView], gateway: str = "svcnet", gateway_class: str = "svcnet"
) -> Conversion:
    out = Conversion()
    listeners: dict[str, dict[str, dict[str, Any]]] = {}  # namespace → name → listener
    routes: list[dict[str, Any]] = []
    default: tuple[str, str, dict[str, Any]] | None = None  # (Ingress, namespace, backendRef)
    for ing in sorted(ingresses, key=lambda i: (objects.namespace(i), objects.name(i))):
        ns, name = objects.namespace(ing) or "default", objects.name(ing)
        where = f"Ingress {ns}/{name}"
        spec = objects.spec(ing)
        ns_listeners = listeners.setdefault(
            ns, {"http": {"name": "http", "port": 80, "protocol": "HTTP"}}
        )
        for key in sorted(objects.annotations_of(ing)):
            prefix = next((p for p in ANNOTATION_PREFIXES if key.startswith(p)), None)
            if prefix and key[len(prefix) :] not in TRANSLATED:
                out.notes.append(f"{where}: annotation {key} not translated")
        rewrite = _annotation(ing, "rewrite-target")
        filters: list[dict[str, Any]] = []
        if rewrite is not None:
            if "$" in rewrite or not rewrite.startswith("/"):
                out.notes.append(
                    f"{where}: rewrite-target {rewrite!r} uses capture groups; not translated"
                )
            else:
                # ingress-nginx replaces the whole path (query kept) when the target has no
                # capture groups: ReplaceFullPath, as the controller serves the annotation.
                filters = [{"type": "URLRewrite", "urlRewrite": {"path": {
                    "type": "ReplaceFullPath", "replaceFullPath": rewrite}}}]  # fmt: skip
        redirect = _annotation(ing, "ssl-redirect") != "false"
        tls_hosts: dict[str, str] = {}
        for tls in spec.get("tls") or []:
            for h in tls.get("hosts") or []:
                tls_hosts[str(h).lower()] = str(tls.get("secretName") or "")
            if not tls.get("hosts"):
                out.notes.append(f"{where}: a tls entry with no hosts has no listener; left out")
        by_host: dict[str, list[dict[str, Any]]] = {}
        for rule in spec.get("rules") or []:
            host = str(rule.get("host") or "").lower()
            for p in (rule.get("http") or {}).get("paths") or []:
                ref = _backend_ref(p.get("backend") or {}, where, out.notes)
                kind = {"Exact": "Exact"}.get(str(p.get("pathType")), "PathPrefix")
                r: dict[str, Any] = {
                    "matches": [{"path": {"type": kind, "value": p.get("path") or "/"}}],
                    "backendRefs": [ref] if ref else [],
                }
                if filters:
                    r["filters"] = filters
                by_host.setdefault(host, []).append(r)
        for host, rules in by_host.items():
            rname = f"{name}-{_slug(host)}"
            parent: dict[str, Any] = {"name": gateway}
            if host in tls_hosts:
                section = f"https-{_slug(host)}"
                ns_listeners[section] = {
                    "name": section, "port": 443, "protocol": "HTTPS", "hostname": host,
                    "tls": {"mode": "Terminate",
                            "certificateRefs": [{"kind": "Secret", "name": tls_hosts[host]}]},
                }  # fmt: skip
                parent = {"name": gateway, "sectionName": section}
                if redirect:
                    routes.append(_route(f"{rname}-redirect", ns, [host],
                                         {"name": gateway, "sectionName": "http"},
                                         [{"filters": [{"type": "RequestRedirect",
                                                        "requestRedirect": {"scheme": "https",
                                                                            "statusCode": 301}}]}]))  # fmt: skip
            routes.append(_route(rname, ns, [host] if host else [], parent, rules))
        db = spec.get("defaultBackend")
        if isinstance(db, Mapping):
            ref = _backend_ref(db, where, out.notes)
            if ref and default is not None:
                out.notes.append(f"{where}: defaultBackend ignored: {default[0]} sets one")
            elif ref:
                default = (where, ns, ref)
                routes.append(
                    _route(f"{name}-default", ns, [], {"name": gateway}, [{"backendRefs": [ref]}])
                )
    if default is not None:
        # A host's own route has no fall-through to the host-less one: the default backend is
        # its last rule too, as it is for an Ingress host whose paths do not match.
        for r in routes:
            if (
                r["metadata"]["namespace"] == default[1]
                and r["spec"].get("hostnames")
                and not (r["metadata"]["name"].endswith("-redirect"))
            ):
                r["spec"]["rules"].append({"backendRefs": [default[2]]})
    for ns, lis in sorted(listeners.items()):
        out.objects.append({
            "apiVersion": GW_API, "kind": "Gateway",
            "metadata": {"name": gateway, "namespace": ns},
            "spec": {"gatewayClassName": gateway_class, "listeners": list(lis.values())},
        })  # fmt: skip
    out.objects += routes
    return out


def _route(
    name: str, ns: str, hosts: list[str], parent: dict[str, Any], rules: list[dict[str, Any]]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": [parent]}
    if hosts:
        spec["hostnames"] = hosts
    spec["rules"] = rules
    return {
        "apiVersion": GW_API,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def ingresses_in(docs: Iterable[Any]) -> list[dict[str, Any]]:
    """The Ingresses among YAML documents (``List`` kinds opened)."""
    out: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, Mapping):
            continue
        if str(doc.get("kind", "")).endswith("List"):
            out += ingresses_in(doc.get("items") or [])
        elif doc.get("kind") == "Ingress":
            out.append(dict(doc))
    return out
