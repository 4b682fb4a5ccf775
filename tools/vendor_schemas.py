"""Vendor the OpenAPI schemas of the kinds svcnet serves from upstream's published schemas.

Source: the ``kubernetes-validate`` package ships kube-apiserver v1.32's definitions,
JSON-Schema-ified (``"type": ["object", "null"]``, ``$ref: "#/$defs/NAME"``). This tool takes
the transitive closure of the definitions the registry's kinds need, turns them back into the
OpenAPI form kube-apiserver publishes (plain ``type`` strings, ``$ref: "#/definitions/NAME"``,
``IntOrString`` as ``type: string, format: int-or-string``), and writes
``svcnet/api/schemas/kubernetes-1.32.json``. Gateway API kinds are CRDs upstream and are not in
that source; their schemas are hand-written in ``gateway-api.json``.

Run: ``.venv/bin/python tools/vendor_schemas.py`` (needs kubernetes-validate installed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svcnet.api.registry import REGISTRY  # noqa: E402

OUT = ROOT / "svcnet" / "api" / "schemas" / "kubernetes-1.32.json"
SOURCE_VERSION = "v1.32.0-local"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
# Types the API server itself answers with, beyond the kinds and their lists.
EXTRA_ROOTS = [
    META + n
    for n in (
        "Status",
        "DeleteOptions",
        "WatchEvent",
        "APIResourceList",
        "APIGroupList",
        "APIGroup",
        "APIVersions",
        "Patch",
        "Condition",
    )
] + [
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.api.core.v1.Binding",
    "io.k8s.api.policy.v1.Eviction",
]
# The scalar wrappers kube-openapi publishes with an OpenAPI format instead of a JSON-Schema
# oneOf (k8s.io/apimachinery OpenAPISchemaType/OpenAPISchemaFormat).
SCALARS: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "type": "string",
        "format": "int-or-string",
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
}
# Keys kubernetes-validate adds that upstream's OpenAPI does not have.
DROP_KEYS = {"$schema", "$id"}


def source_path() -> Path:
    import kubernetes_validate

    base = Path(kubernetes_validate.__file__).parent
    return base / "kubernetes-json-schema" / SOURCE_VERSION / "_definitions.json"


def convert(node: Any, *, in_properties: bool = False, field_name: str = "") -> Any:
    """Turn one JSON-Schema node back into OpenAPI form."""
    if isinstance(node, list):
        return [convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROP_KEYS:
            continue
        if key == "type" and isinstance(value, list):
            plain = [t for t in value if t != "null"]
            out["type"] = plain[0] if len(plain) == 1 else plain
        elif key == "$ref":
            out["$ref"] = "#/definitions/" + value.rsplit("/", 1)[-1]
        elif key == "properties":
            out[key] = {k: convert(v, field_name=k) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = convert(value)
        elif key == "enum" and field_name in ("apiVersion", "kind"):
            # kubernetes-validate pins apiVersion/kind with an enum; upstream does not.
            continue
        else:
            out[key] = convert(value) if isinstance(value, (dict, list)) else value
    return out


def refs_of(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                found |= refs_of(value)
    elif isinstance(node, list):
        for v in node:
            found |= refs_of(v)
    return found


def roots(defs: dict[str, Any]) -> list[str]:
    wanted: set[tuple[str, str, str]] = set()
    for r in REGISTRY.resources:
        wanted.add((r.group, r.version, r.kind))
        wanted.add((r.group, r.version, r.list_kind))
    names = list(EXTRA_ROOTS)
    for name, schema in defs.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            if (gvk["group"], gvk["version"], gvk["kind"]) in wanted:
                names.append(name)
    return names


def closure(defs: dict[str, Any], start: list[str]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in defs:
            raise SystemExit(f"definition {name} not in the source")
        seen[name] = defs[name]
        todo.extend(refs_of(defs[name]) - seen.keys())
    return seen


def main() -> None:
    data = json.loads(source_path().read_text())
    defs: dict[str, Any] = data["$defs"]
    picked = closure(defs, roots(defs))
    out: dict[str, Any] = {}
    for name in sorted(picked):
        if name in SCALARS:
            schema = dict(SCALARS[name])
            if "description" in picked[name]:
                schema["description"] = picked[name]["description"]
            out[name] = schema
        else:
            out[name] = convert(picked[name])
    text = json.dumps({"definitions": out}, sort_keys=True, separators=(",", ":"))
    OUT.write_text(text + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(out)} definitions, {len(text)} bytes")


# --- Gateway API (standard channel v1.2), hand-written after the upstream CRDs -------------
# Structure and list semantics follow gateway-api's config/crd/standard/*.yaml; validation
# patterns and descriptions are left out. Lists the CRDs mark `x-kubernetes-list-type: map`
# keep their keys, the others are atomic as in the CRDs.

GW = "io.k8s.networking.gateway."
META_REF = {"$ref": "#/definitions/" + META + "ObjectMeta"}
LIST_META_REF = {"$ref": "#/definitions/" + META + "ListMeta"}
CONDITIONS = {
    "type": "array",
    "items": {"$ref": "#/definitions/" + META + "Condition"},
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
    "maxItems": 8,
}
LABEL_SELECTOR = {"$ref": "#/definitions/" + META + "LabelSelector"}


def s(fmt: str | None = None, enum: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string"}
    if fmt:
        out["format"] = fmt
    if enum:
        out["enum"] = enum
    return out


def i(fmt: str = "int32") -> dict[str, Any]:
    return {"type": "integer", "format": fmt}


def obj(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def obj_of(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """``obj`` for property names that are Python keywords (``from``)."""
    return obj(required, **props)


def arr(
    item: dict[str, Any], keys: list[str] | None = None, max_items: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "array", "items": item}
    if keys:
        out["x-kubernetes-list-type"] = "map"
        out["x-kubernetes-list-map-keys"] = keys
    if max_items:
        out["maxItems"] = max_items
    return out


def smap() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": "string"}}


def gateway_definitions() -> dict[str, Any]:
    parent_ref = obj(
        ["name"], group=s(), kind=s(), namespace=s(), name=s(), sectionName=s(), port=i()
    )
    header = obj(["name", "value"], name=s(), value=s())
    header_filter = obj(
        set=arr(header, ["name"], 16),
        add=arr(header, ["name"], 16),
        remove={"type": "array", "items": s(), "x-kubernetes-list-type": "set", "maxItems": 16},
    )
    path_modifier = obj(
        ["type"],
        type=s(enum=["ReplaceFullPath", "ReplacePrefixMatch"]),
        replaceFullPath=s(),
        replacePrefixMatch=s(),
    )
    backend_object_ref = obj(["name"], group=s(), kind=s(), name=s(), namespace=s(), port=i())
    local_object_ref = obj(["group", "kind", "name"], group=s(), kind=s(), name=s())
    fraction = obj(["numerator"], numerator=i(), denominator=i())
    filter_ = obj(
        ["type"],
        type=s(
            enum=[
                "RequestHeaderModifier",
                "ResponseHeaderModifier",
                "RequestMirror",
                "RequestRedirect",
                "URLRewrite",
                "ExtensionRef",
            ]
        ),
        requestHeaderModifier=header_filter,
        responseHeaderModifier=header_filter,
        requestMirror=obj(
            ["backendRef"], backendRef=backend_object_ref, percent=i(), fraction=fraction
        ),
        requestRedirect=obj(
            scheme=s(enum=["http", "https"]),
            hostname=s(),
            path=path_modifier,
            port=i(),
            statusCode={"type": "integer", "enum": [301, 302]},
        ),
        urlRewrite=obj(hostname=s(), path=path_modifier),
        extensionRef=local_object_ref,
    )
    header_matches = arr(
        obj(["name", "value"], type=s(enum=["Exact", "RegularExpression"]), name=s(), value=s()),
        ["name"],
        16,
    )
    match = obj(
        path=obj(type=s(enum=["Exact", "PathPrefix", "RegularExpression"]), value=s()),
        headers=header_matches,
        queryParams=arr(
            obj(
                ["name", "value"], type=s(enum=["Exact", "RegularExpression"]), name=s(), value=s()
            ),
            ["name"],
            16,
        ),
        method=s(
            enum=["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
        ),
    )
    backend_ref = obj(
        ["name"],
        group=s(),
        kind=s(),
        name=s(),
        namespace=s(),
        port=i(),
        weight=i(),
        filters=arr(filter_, max_items=16),
    )
    rule = obj(
        matches=arr(match, max_items=64),
        filters=arr(filter_, max_items=16),
        backendRefs=arr(backend_ref, max_items=16),
        timeouts=obj(request=s(), backendRequest=s()),
    )
    route_parent_status = obj(
        ["parentRef", "controllerName"],
        parentRef=parent_ref,
        controllerName=s(),
        conditions=CONDITIONS,
    )
    secret_ref = obj(["name"], group=s(), kind=s(), name=s(), namespace=s())
    listener = obj(
        ["name", "port", "protocol"],
        name=s(),
        hostname=s(),
        port=i(),
        protocol=s(),
        tls=obj(
            mode=s(enum=["Terminate", "Passthrough"]),
            certificateRefs=arr(secret_ref, max_items=64),
            options=smap(),
        ),
        allowedRoutes=obj(
            namespaces=obj_of(
                {"from": s(enum=["All", "Selector", "Same"]), "selector": LABEL_SELECTOR}
            ),
            kinds=arr(obj(["kind"], group=s(), kind=s()), max_items=8),
        ),
    )
    address = obj(["value"], type=s(), value=s())
    params_ref = obj(["group", "kind", "name"], group=s(), kind=s(), name=s(), namespace=s())

    def kind(
        version: str,
        name: str,
        spec: dict[str, Any],
        status: dict[str, Any] | None,
        required_spec: bool = True,
    ) -> dict[str, dict[str, Any]]:
        gvk = [{"group": "gateway.networking.k8s.io", "version": version, "kind": name}]
        props: dict[str, Any] = {"apiVersion": s(), "kind": s(), "metadata": META_REF, "spec": spec}
        if status is not None:
            props["status"] = status
        root = {"type": "object", "properties": props, "x-kubernetes-group-version-kind": gvk}
        if required_spec:
            root["required"] = ["spec"]
        lst = {
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": s(),
                "kind": s(),
                "metadata": LIST_META_REF,
                "items": {
                    "type": "array",
                    "items": {"$ref": "#/definitions/" + GW + version + "." + name},
                },
            },
            "x-kubernetes-group-version-kind": [{**gvk[0], "kind": name + "List"}],
        }
        return {GW + version + "." + name: root, GW + version + "." + name + "List": lst}

    out: dict[str, dict[str, Any]] = {}
    out |= kind(
        "v1",
        "GatewayClass",
        obj(["controllerName"], controllerName=s(), parametersRef=params_ref, description=s()),
        obj(conditions=CONDITIONS, supportedFeatures=arr(obj(["name"], name=s()), ["name"], 64)),
    )
    out |= kind(
        "v1",
        "Gateway",
        obj(
            ["gatewayClassName", "listeners"],
            gatewayClassName=s(),
            listeners=arr(listener, ["name"], 64),
            addresses=arr(address, max_items=16),
            infrastructure=obj(labels=smap(), annotations=smap(), parametersRef=local_object_ref),
        ),
        obj(
            addresses=arr(address, max_items=16),
            conditions=CONDITIONS,
            listeners=arr(
                obj(
                    ["name", "supportedKinds", "attachedRoutes", "conditions"],
                    name=s(),
                    supportedKinds=arr(obj(["kind"], group=s(), kind=s()), max_items=8),
                    attachedRoutes=i(),
                    conditions=CONDITIONS,
                ),
                ["name"],
                64,
            ),
        ),
    )
    out |= kind(
        "v1",
        "HTTPRoute",
        obj(
            parentRefs=arr(parent_ref, max_items=32),
            hostnames=arr(s(), max_items=16),
            rules=arr(rule, max_items=16),
        ),
        obj(["parents"], parents=arr(route_parent_status, max_items=32)),
    )
    grpc_match = obj(
        method=obj(type=s(enum=["Exact", "RegularExpression"]), service=s(), method=s()),
        headers=header_matches,
    )
    grpc_rule = obj(
        matches=arr(grpc_match, max_items=8),
        filters=arr(filter_, max_items=16),
        backendRefs=arr(backend_ref, max_items=16),
    )
    out |= kind(
        "v1",
        "GRPCRoute",
        obj(
            parentRefs=arr(parent_ref, max_items=32),
            hostnames=arr(s(), max_items=16),
            rules=arr(grpc_rule, max_items=16),
        ),
        obj(["parents"], parents=arr(route_parent_status, max_items=32)),
    )
    # TLSRoute: the experimental channel's v1alpha2.
    tls_rule = obj(["backendRefs"], name=s(), backendRefs=arr(backend_ref, max_items=16))
    out |= kind(
        "v1alpha2",
        "TLSRoute",
        obj(
            ["rules"],
            parentRefs=arr(parent_ref, max_items=32),
            hostnames=arr(s(), max_items=16),
            rules=arr(tls_rule, max_items=16),
        ),
        obj(["parents"], parents=arr(route_parent_status, max_items=32)),
    )
    out |= kind(
        "v1beta1",
        "ReferenceGrant",
        obj_of(
            {
                "from": arr(
                    obj(["group", "kind", "namespace"], group=s(), kind=s(), namespace=s()),
                    max_items=16,
                ),
                "to": arr(obj(["group", "kind"], group=s(), kind=s(), name=s()), max_items=16),
            },
            ["from", "to"],
        ),
        None,
    )
    return out


def write_gateway() -> None:
    out_path = OUT.parent / "gateway-api.json"
    text = json.dumps({"definitions": gateway_definitions()}, sort_keys=True, indent=1)
    out_path.write_text(text + "\n")
    print(f"wrote {out_path.relative_to(ROOT)}: {len(text)} bytes")


if __name__ == "__main__":
    main()
    write_gateway()
