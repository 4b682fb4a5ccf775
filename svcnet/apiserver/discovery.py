"""Discovery documents, built once from the registry (pure).

* legacy: ``/api`` (APIVersions), ``/apis`` (APIGroupList), ``/api/v1`` and ``/apis/<g>/<v>``
  (APIResourceList);
* aggregated (``apidiscovery.k8s.io/v2`` and ``v2beta1``, what kubectl 1.32 asks for first):
  ``/api`` and ``/apis`` as an APIGroupDiscoveryList.
"""

from __future__ import annotations

from typing import Any

from svcnet.api.registry import Registry, ResourceType

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

# Verbs of subresources, as upstream publishes them.
_SUB_VERBS: dict[str, list[str]] = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "finalize": ["update"],
    "binding": ["create"],
    "eviction": ["create"],
    "log": ["get"],
    "exec": ["create", "get"],
    "attach": ["create", "get"],
    "portforward": ["create", "get"],
    "proxy": ["create", "delete", "get", "patch", "update"],
    "ephemeralcontainers": ["get", "patch", "update"],
    "token": ["create"],
}
_SUB_KIND: dict[str, tuple[str, str, str]] = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "log": ("", "v1", "Pod"),
    "exec": ("", "v1", "PodExecOptions"),
    "attach": ("", "v1", "PodAttachOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
    "proxy": ("", "v1", "NodeProxyOptions"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}


def _sub_kind(rt: ResourceType, sub: str) -> tuple[str, str, str]:
    if sub in _SUB_KIND:
        g, v, k = _SUB_KIND[sub]
        if sub == "proxy" and rt.kind == "Service":
            k = "ServiceProxyOptions"
        if sub == "proxy" and rt.kind == "Pod":
            k = "PodProxyOptions"
        return g, v, k
    return rt.group, rt.version, rt.kind


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _versions_of(registry: Registry, group: str) -> list[str]:
    seen: dict[str, None] = {}
    for g, v in registry.group_versions():
        if g == group:
            seen.setdefault(v, None)
    return list(seen)


def _groups(registry: Registry) -> list[str]:
    seen: dict[str, None] = {}
    for g, _ in registry.group_versions():
        if g:
            seen.setdefault(g, None)
    return list(seen)


def api_group(registry: Registry, group: str) -> dict[str, Any]:
    versions = [
        {"groupVersion": f"{group}/{v}", "version": v} for v in _versions_of(registry, group)
    ]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = []
    for g in _groups(registry):
        doc = api_group(registry, g)
        del doc["kind"], doc["apiVersion"]
        groups.append(doc)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    out: list[dict[str, Any]] = []
    for rt in resources:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        out.append(entry)
        for sub in rt.subresources:
            g, v, k = _sub_kind(rt, sub)
            sub_entry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": k,
                "verbs": _SUB_VERBS.get(sub, ["get"]),
            }
            if (g, v) != (group, version):
                sub_entry["group"], sub_entry["version"] = g, v
            out.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": out,
    }


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    if rt.subresources:
        subs = []
        for sub in rt.subresources:
            g, v, k = _sub_kind(rt, sub)
            subs.append(
                {
                    "subresource": sub,
                    "responseKind": {"group": g, "version": v, "kind": k},
                    "verbs": _SUB_VERBS.get(sub, ["get"]),
                }
            )
        entry["subresources"] = subs
    return entry


def aggregated(registry: Registry, legacy: bool, version: str = "v2") -> dict[str, Any]:
    """The APIGroupDiscoveryList of ``/api`` (``legacy``) or ``/apis``."""
    groups = [""] if legacy else _groups(registry)
    items = []
    for g in groups:
        versions = []
        for v in _versions_of(registry, g):
            versions.append(
                {
                    "version": v,
                    "resources": [
                        _aggregated_resource(rt) for rt in registry.in_group_version(g, v)
                    ],
                    "freshness": "Current",
                }
            )
        items.append({"metadata": {"name": g, "creationTimestamp": None}, "versions": versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }


def wants_aggregated(accept: str) -> str | None:
    """The aggregated discovery version the Accept header prefers first, if any."""
    for entry in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in entry.split(";")[1:] if "=" in p)
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
            if params.get("v") in ("v2", "v2beta1"):
                return params["v"]
        elif entry.strip().split(";")[0].strip() in ("application/json", "*/*"):
            return None
    return None
