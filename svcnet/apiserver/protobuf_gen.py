"""Generate ``protobuf_schema.json`` from the descriptors compiled into a kubectl binary.

kubectl (client-go) embeds the gzipped ``FileDescriptorProto`` of every ``generated.proto`` of
k8s.io/api and apimachinery. This extracts the messages reachable from the kinds svcnet serves:
``{"<package>.<Message>": {"map": bool, "fields": [[number, name, type, repeated, type_name]]}}``.
Run: ``python -m svcnet.apiserver.protobuf_gen /usr/bin/kubectl`` (rewrites the JSON beside it).
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from pathlib import Path
from typing import Any

from svcnet.api.registry import REGISTRY
from svcnet.apiserver.protobuf import iter_fields

OUT = Path(__file__).with_name("protobuf_schema.json")


def _messages(desc: bytes, package: str, prefix: str, out: dict[str, Any]) -> None:
    name = ""
    fields: list[list[Any]] = []
    nested: list[bytes] = []
    is_map = False
    for num, _, value in iter_fields(desc):
        if num == 1 and isinstance(value, bytes):
            name = value.decode()
        elif num == 2 and isinstance(value, bytes):
            f: dict[int, Any] = {}
            for fnum, _, fval in iter_fields(value):
                f[fnum] = fval
            fields.append(
                [
                    f.get(3, 0),
                    f.get(1, b"").decode(),
                    f.get(5, 0),
                    f.get(4, 1) == 3,
                    f.get(6, b"").decode().lstrip("."),
                ]
            )
        elif num == 3 and isinstance(value, bytes):
            nested.append(value)
        elif num == 7 and isinstance(value, bytes):
            for onum, _, oval in iter_fields(value):
                if onum == 7 and oval:
                    is_map = True
    full = f"{prefix}.{name}"
    out[full] = {"map": is_map, "fields": fields}
    for n in nested:
        _messages(n, package, full, out)


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
                _messages(value, package, package, messages)
    return messages


def _proto_package(group: str, version: str) -> str:
    short = {
        "": "core",
        "apps": "apps",
        "networking.k8s.io": "networking",
        "discovery.k8s.io": "discovery",
        "coordination.k8s.io": "coordination",
    }
    return f"k8s.io.api.{short.get(group, group)}.{version}"


def reachable(messages: dict[str, Any]) -> dict[str, Any]:
    roots = [f"{_proto_package(r.group, r.version)}.{r.kind}" for r in REGISTRY.resources]
    roots += [
        "k8s.io.api.autoscaling.v1.Scale",
        "k8s.io.api.core.v1.Binding",
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
            if field[4] and field[4] in messages:
                todo.append(field[4])
    return dict(sorted(keep.items()))


def main() -> None:
    binary = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/bin/kubectl").read_bytes()
    schema = reachable(extract(binary))
    OUT.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{len(schema)} messages -> {OUT}")


if __name__ == "__main__":
    main()
