"""The schema generator: Go pointers from gogoproto options, JSON names from OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.schema import definitions
from svcnet.apiserver import protobuf, protobuf_gen
from svcnet.testing.protowire import field_bytes, field_int


def _field_descriptor(
    name: str, number: int, ftype: int, *, repeated: bool = False, nullable: bool | None = None
) -> bytes:
    """A FieldDescriptorProto as go-to-protobuf compiles it (customname, maybe nullable)."""
    options = field_bytes(protobuf_gen._GOGO_CUSTOMNAME, name.capitalize())
    if nullable is not None:
        options = field_int(protobuf_gen._GOGO_NULLABLE, int(nullable)) + options
    return (
        field_bytes(1, name)
        + field_int(3, number)
        + field_int(4, 3 if repeated else 1)
        + field_int(5, ftype)
        + field_bytes(8, options)
    )


@pytest.mark.parametrize(
    ("descriptor", "how"),
    [
        # *int32 replicas: no nullable option, so gogo made it a pointer, as types.go has it.
        (_field_descriptor("replicas", 1, 5), "pointer"),
        # int32 minReadySeconds: go-to-protobuf wrote (gogoproto.nullable) = false.
        (_field_descriptor("minReadySeconds", 5, 5, nullable=False), ""),
        (_field_descriptor("finalizers", 14, 9, repeated=True), ""),
        # a []byte is never a pointer, whatever the option says
        (_field_descriptor("raw", 2, 12), ""),
        # a hand-written proto without gogo options (resource.Quantity): not known, not kept
        (field_bytes(1, "string") + field_int(3, 1) + field_int(4, 1) + field_int(5, 9), ""),
    ],
)
def test_pointer_from_gogoproto_nullable(descriptor: bytes, how: str) -> None:
    assert protobuf_gen._field_row(descriptor)[5] == how


def _messages() -> dict[str, Any]:
    core = "k8s.io.api.core.v1."
    return {
        "k8s.io.api.networking.v1.IngressClassParametersReference": {
            "map": False,
            "fields": [[1, "aPIGroup", 9, False, "", "pointer"], [2, "kind", 9, False, "", ""]],
        },
        core + "Volume": {
            "map": False,
            "fields": [
                [1, "name", 9, False, "", ""],
                [2, "volumeSource", 11, False, core + "VolumeSource", ""],
            ],
        },
        core + "VolumeSource": {
            "map": False,
            "fields": [[19, "configMap", 11, False, core + "ConfigMapVolumeSource", "pointer"]],
        },
        core + "ConfigMapVolumeSource": {
            "map": False,
            "fields": [
                [1, "localObjectReference", 11, False, core + "LocalObjectReference", ""],
                [3, "defaultMode", 5, False, "", "pointer"],
            ],
        },
        core + "LocalObjectReference": {"map": False, "fields": [[1, "name", 9, False, "", ""]]},
    }


def test_json_names_follow_openapi_not_proto_names() -> None:
    out = protobuf_gen.with_json_names(_messages())
    ref = out["k8s.io.api.networking.v1.IngressClassParametersReference"]["fields"]
    assert ref[0][1:] == ["apiGroup", 9, False, "", "pointer"]


def test_embedded_structs_are_marked_inline() -> None:
    out = protobuf_gen.with_json_names(_messages())
    assert out["k8s.io.api.core.v1.Volume"]["fields"][1][5] == "inline"
    assert out["k8s.io.api.core.v1.ConfigMapVolumeSource"]["fields"][0][5] == "inline"
    # a pointer stays a pointer; VolumeSource (no definition of its own) resolved via Volume
    assert out["k8s.io.api.core.v1.VolumeSource"]["fields"][0][1:] == [
        "configMap",
        11,
        False,
        "k8s.io.api.core.v1.ConfigMapVolumeSource",
        "pointer",
    ]


def test_field_without_json_property_stops_the_generator() -> None:
    messages = _messages()
    messages["k8s.io.api.networking.v1.IngressClassParametersReference"]["fields"].append(
        [2, "noSuchField", 9, False, "", ""]
    )
    with pytest.raises(SystemExit, match="noSuchField"):
        protobuf_gen.with_json_names(messages)


def test_committed_schema_uses_openapi_json_names() -> None:
    # Every key the decoder emits is a property of the upstream definition of its object (or,
    # for an inline struct, of the object that embeds it).
    defs = definitions()
    schema = protobuf.schema()
    hosts: dict[str, str] = {}
    for name, msg in schema.items():
        definition = defs.get(protobuf_gen.openapi_name(name))
        if msg.map_entry or name in protobuf.SPECIAL_TYPES or definition is None:
            continue
        properties = definition.get("properties", {})
        for field in msg.fields.values():
            if field.inline:
                hosts[field.type_name] = name
                inner = schema[field.type_name].fields.values()
                assert {f.json_key for f in inner} <= properties.keys(), (name, field)
            else:
                assert field.json_key in properties, (name, field.json_key)
    assert set(hosts) == {
        "k8s.io.api.core.v1.EphemeralContainerCommon",
        "k8s.io.api.core.v1.LocalObjectReference",
        "k8s.io.api.core.v1.PersistentVolumeSource",
        "k8s.io.api.core.v1.ProbeHandler",
        "k8s.io.api.core.v1.VolumeSource",
        "k8s.io.api.networking.v1.IngressRuleValue",
    }
