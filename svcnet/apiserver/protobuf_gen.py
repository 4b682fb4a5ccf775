"""Generate ``protobuf_schema.json`` from the descriptors compiled into a kubectl binary.

kubectl (client-go) embeds the gzipped ``FileDescriptorProto`` of every ``generated.proto`` of
k8s.io/api and apimachinery. This extracts the messages reachable from the kinds svcnet serves:
``{"<package>.<Message>": {"map": bool, "fields": [[number, json, type, repeated, type_name,
how]]}}``, one message a line. Run: ``python -m svcnet.apiserver.protobuf_gen /usr/bin/kubectl``
(rewrites the JSON beside it). The file in the tree comes from kubectl v1.32.4.

Two things the decoder needs are not in the plain proto, and are derived here:

* ``how`` = ``"pointer"`` for a field that is a Go pointer in upstream's types.go. go-to-protobuf
  compiles the descriptors with gogoproto options and sets ``(gogoproto.nullable) = false`` on
  every field whose Go type is *not* a pointer (gogo would otherwise generate ``*T``). The
  option survives in the embedded descriptors, so "singular and not ``nullable=false``" is
  exactly "a Go pointer" — for the very k8s.io/api version kubectl was built with.
* ``json``: the JSON key, which is not always the proto field name. go-to-protobuf names a proto
  field after the JSON tag, except where a type pins another name in its ``protobuf:"...,name="``
  tag (``IngressClassParametersReference.APIGroup``: json ``apiGroup``, proto ``aPIGroup``), and
  the descriptors' own ``json_name`` is only the proto name camel-cased again. The JSON names
  come from upstream's OpenAPI definitions (``svcnet/api/schemas``): the property of that name,
  else the one that differs only in case. Go structs embedded with ``json:",inline"`` (``Volume``
  ← ``VolumeSource``, ``ConfigMapKeySelector`` ← ``LocalObjectReference``) are a message field
  in protobuf and flattened in JSON; they get ``how`` = ``"inline"``. A field that resolves to
  no JSON property stops the generator, so a new upstream quirk cannot slip in unnoticed.
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svcnet.api.registry import REGISTRY
from svcnet.api.schema import definitions
from svcnet.apiserver.protobuf import SPECIAL_TYPES, iter_fields

OUT = Path(__file__).with_name("protobuf_schema.json")

_MESSAGE, _BYTES = 11, 12
_LABEL_REPEATED = 3
# FieldOptions extension numbers of gogoproto (github.com/gogo/protobuf/gogoproto/gogo.proto).
_GOGO_NULLABLE = 65001
_GOGO_CUSTOMNAME = 65004
# Positions in a field row while generating: [number, name, type, repeated, type_name, how].
_NAME, _TYPE, _TYPE_NAME, _HOW = 1, 2, 4, 5


def _field_row(value: bytes) -> list[Any]:
    f: dict[int, Any] = {fnum: fval for fnum, _, fval in iter_fields(value)}
    options = {onum: oval for onum, _, oval in iter_fields(f.get(8, b""))}
    if _GOGO_CUSTOMNAME not in options and _GOGO_NULLABLE not in options:
        # Every go-to-protobuf field carries gogo options; without them (a hand-written proto
        # such as resource.Quantity) pointer-ness is unknown, and nothing here depends on it.
        how = ""
    else:
        # A bytes field is a []byte in Go whatever the option says, a repeated one a slice.
        singular = f.get(4, 1) != _LABEL_REPEATED and f.get(5, 0) != _BYTES
        how = "pointer" if singular and options.get(_GOGO_NULLABLE, 1) != 0 else ""
    return [
        f.get(3, 0),
        f.get(1, b"").decode(),
        f.get(5, 0),
        f.get(4, 1) == _LABEL_REPEATED,
        f.get(6, b"").decode().lstrip("."),
        how,
    ]


def _messages(desc: bytes, prefix: str, out: dict[str, Any]) -> None:
    name = ""
    fields: list[list[Any]] = []
    nested: list[bytes] = []
    is_map = False
    for num, _, value in iter_fields(desc):
        if num == 1 and isinstance(value, bytes):
            name = value.decode()
        elif num == 2 and isinstance(value, bytes):
            fields.append(_field_row(value))
        elif num == 3 and isinstance(value, bytes):
            nested.append(value)
        elif num == 7 and isinstance(value, bytes):
            for onum, _, oval in iter_fields(value):
                if onum == 7 and oval:
                    is_map = True
    full = f"{prefix}.{name}"
    out[full] = {"map": is_map, "fields": fields}
    for n in nested:
        _messages(n, full, out)


def extract(binary: bytes) -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for m in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", binary):
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                binary[m.start() : m.start() + 600000]
            )
        except zlib.error:
            continue
        if b"generated.proto" not in data[:200]:
            continue
        package = ""
        for num, _, value in iter_fields(data):
            if num == 2 and isinstance(value, bytes):
                package = value.decode()
        for num, _, value in iter_fields(data):
            if num == 4 and isinstance(value, bytes):
                _messages(value, package, messages)
    return messages


def _proto_package(group: str, version: str) -> str:
    short = {
        "": "core",
        "apps": "apps",
        "networking.k8s.io": "networking",
        "discovery.k8s.io": "discovery",
        "coordination.k8s.io": "coordination",
        "rbac.authorization.k8s.io": "rbac",
    }
    return f"k8s.io.api.{short.get(group, group)}.{version}"


def reachable(messages: dict[str, Any]) -> dict[str, Any]:
    roots = [f"{_proto_package(r.group, r.version)}.{r.kind}" for r in REGISTRY.resources]
    roots += [
        "k8s.io.api.autoscaling.v1.Scale",
        "k8s.io.api.core.v1.Binding",
        "k8s.io.api.authentication.v1.TokenRequest",
        "k8s.io.api.authentication.v1.SelfSubjectReview",
        # POSTed by kubectl drain (pods/eviction) and kubectl autoscale (autoscaling/v1).
        "k8s.io.api.policy.v1.Eviction",
        "k8s.io.api.autoscaling.v1.HorizontalPodAutoscaler",
        "k8s.io.api.authorization.v1.SelfSubjectAccessReview",
        "k8s.io.api.authorization.v1.SubjectAccessReview",
        "k8s.io.api.authorization.v1.LocalSubjectAccessReview",
        "k8s.io.api.authorization.v1.SelfSubjectRulesReview",
        "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "k8s.io.apimachinery.pkg.runtime.Unknown",
    ]
    keep: dict[str, Any] = {}
    todo = [r for r in roots if r in messages]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = messages[name]
        for field in messages[name]["fields"]:
            if field[_TYPE_NAME] and field[_TYPE_NAME] in messages:
                todo.append(field[_TYPE_NAME])
    return dict(sorted(keep.items()))


def openapi_name(proto_name: str) -> str:
    """``k8s.io.api.core.v1.Pod`` → ``io.k8s.api.core.v1.Pod`` (the OpenAPI definition name)."""
    return "io.k8s." + proto_name.removeprefix("k8s.io.")


def _json_name(proto: str, properties: Mapping[str, Any]) -> str | None:
    if proto in properties:
        return proto
    same = [p for p in properties if p.lower() == proto.lower()]
    return same[0] if len(same) == 1 else None


def _resolve(
    name: str,
    messages: dict[str, Any],
    properties: Mapping[str, Any],
    hosts: dict[str, Mapping[str, Any]],
) -> None:
    for field in messages[name]["fields"]:
        json_name = _json_name(field[_NAME], properties)
        if json_name is not None:
            field[_NAME] = json_name
            continue
        sub = messages.get(field[_TYPE_NAME])
        if (
            field[_TYPE] == _MESSAGE
            and sub is not None
            and all(_json_name(f[_NAME], properties) is not None for f in sub["fields"])
        ):
            # Embedded with json:",inline": the inner fields are properties of this message.
            field[_HOW] = "inline"
            hosts.setdefault(field[_TYPE_NAME], properties)
            continue
        raise SystemExit(f"{name}.{field[_NAME]}: no JSON property in the OpenAPI definitions")


# The JSON properties of the bodies of subresources and virtual kinds whose definitions are
# not among the vendored ones (upstream's types.go json tags).
_UNVENDORED: dict[str, dict[str, Any]] = {
    "io.k8s.api.authentication.v1." + kind: {"properties": {key: {} for key in props}}
    for kind, props in {
        "TokenRequest": ("metadata", "spec", "status"),
        "TokenRequestSpec": ("audiences", "expirationSeconds", "boundObjectRef"),
        "TokenRequestStatus": ("token", "expirationTimestamp"),
        "BoundObjectReference": ("kind", "apiVersion", "name", "uid"),
        "SelfSubjectReview": ("metadata", "status"),
        "SelfSubjectReviewStatus": ("userInfo",),
        "UserInfo": ("username", "uid", "groups", "extra"),
    }.items()
} | {
    "io.k8s.api.authorization.v1." + kind: {"properties": {key: {} for key in props}}
    for kind, props in {
        "SelfSubjectAccessReview": ("metadata", "spec", "status"),
        "SubjectAccessReview": ("metadata", "spec", "status"),
        "LocalSubjectAccessReview": ("metadata", "spec", "status"),
        "SelfSubjectRulesReview": ("metadata", "spec", "status"),
        "SelfSubjectAccessReviewSpec": ("resourceAttributes", "nonResourceAttributes"),
        "SubjectAccessReviewSpec": (
            "resourceAttributes", "nonResourceAttributes", "user", "groups", "extra", "uid",
        ),
        "SelfSubjectRulesReviewSpec": ("namespace",),
        "ResourceAttributes": (
            "namespace", "verb", "group", "version", "resource", "subresource", "name",
            "fieldSelector", "labelSelector",
        ),
        "FieldSelectorAttributes": ("rawSelector", "requirements"),
        "LabelSelectorAttributes": ("rawSelector", "requirements"),
        "NonResourceAttributes": ("path", "verb"),
        "SubjectAccessReviewStatus": ("allowed", "denied", "reason", "evaluationError"),
        "SubjectRulesReviewStatus": (
            "resourceRules", "nonResourceRules", "incomplete", "evaluationError",
        ),
        "ResourceRule": ("verbs", "apiGroups", "resources", "resourceNames"),
        "NonResourceRule": ("verbs", "nonResourceURLs"),
    }.items()
}  # fmt: skip


def with_json_names(messages: dict[str, Any]) -> dict[str, Any]:
    """Rename every field to its JSON key and mark the inline ones (see the module docstring)."""
    defs = {**definitions(), **_UNVENDORED}
    hosts: dict[str, Mapping[str, Any]] = {}
    for name, msg in messages.items():
        definition = defs.get(openapi_name(name))
        if msg["map"] or name in SPECIAL_TYPES or definition is None:
            continue
        _resolve(name, messages, definition.get("properties", {}), hosts)
    # Messages with no definition of their own are inlined ones (VolumeSource, ProbeHandler):
    # their fields are properties of the message that embeds them.
    for name, properties in list(hosts.items()):
        if openapi_name(name) not in defs:
            _resolve(name, messages, properties, hosts)
    return messages


def main() -> None:
    binary = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/bin/kubectl").read_bytes()
    schema = with_json_names(reachable(extract(binary)))
    if not any(f[_HOW] == "pointer" for m in schema.values() for f in m["fields"]):
        raise SystemExit("the descriptors carry no gogoproto options: cannot tell Go pointers")
    lines = [
        f"{json.dumps(name)}:{json.dumps(msg, separators=(',', ':'), sort_keys=True)}"
        for name, msg in sorted(schema.items())
    ]
    OUT.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"{len(schema)} messages -> {OUT}")


if __name__ == "__main__":
    main()
