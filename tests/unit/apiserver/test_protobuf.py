"""Protobuf request bodies (what kubectl's typed clients send) decode to the JSON form."""

from __future__ import annotations

import pytest

from svcnet.api.errors import BadRequest
from svcnet.apiserver import protobuf


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _bytes(num: int, data: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _int(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _bytes(1, api_version.encode()) + _bytes(2, kind.encode())
    return protobuf.MAGIC + _bytes(1, type_meta) + _bytes(2, raw)


def test_configmap_with_map_and_zero_values_dropped() -> None:
    meta = _bytes(1, b"c") + _bytes(2, b"") + _bytes(3, b"ns")
    entry = _bytes(1, b"a") + _bytes(2, b"b")
    raw = _bytes(1, meta) + _bytes(2, entry)
    assert protobuf.decode_object(_envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns"},
        "data": {"a": "b"},
    }


def test_service_ports_with_int_or_string_target_port() -> None:
    target_int = _int(1, 0) + _int(2, 8080)
    target_str = _int(1, 1) + _bytes(3, b"http")
    port1 = _bytes(1, b"a") + _bytes(2, b"TCP") + _int(3, 80) + _bytes(4, target_int)
    port2 = _bytes(1, b"b") + _bytes(2, b"UDP") + _int(3, 53) + _bytes(4, target_str)
    spec = _bytes(1, port1) + _bytes(1, port2) + _bytes(4, b"NodePort")
    raw = _bytes(1, _bytes(1, b"s")) + _bytes(2, spec)
    obj = protobuf.decode_object(_envelope("v1", "Service", raw))
    assert obj["spec"] == {
        "ports": [
            {"name": "a", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "b", "protocol": "UDP", "port": 53, "targetPort": "http"},
        ],
        "type": "NodePort",
    }


def test_secret_bytes_are_base64() -> None:
    entry = _bytes(1, b"k") + _bytes(2, b"\x00\xff")
    raw = _bytes(1, _bytes(1, b"s")) + _bytes(2, entry)
    assert protobuf.decode_object(_envelope("v1", "Secret", raw))["data"] == {"k": "AP8="}


def test_body_without_magic_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        protobuf.decode_object(b"not protobuf")


def test_unknown_type_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        protobuf.decode_object(_envelope("example.com/v1", "Widget", b""))


def test_pointer_field_zero_is_kept_non_pointer_zero_dropped() -> None:
    # kubectl create deployment x --image=y --replicas=0: DeploymentSpec.replicas (*int32) = 0
    # is set; minReadySeconds (int32, not a pointer) = 0 is Go's zero value, written always.
    template = _bytes(2, _bytes(2, _bytes(1, b"c") + _bytes(2, b"img")))
    spec = _int(1, 0) + _bytes(3, template) + _int(5, 0) + _int(6, 0)
    raw = _bytes(1, _bytes(1, b"x")) + _bytes(2, spec)
    obj = protobuf.decode_object(_envelope("apps/v1", "Deployment", raw))
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["revisionHistoryLimit"] == 0
    assert "minReadySeconds" not in obj["spec"]


def test_pointer_bool_false_is_kept() -> None:
    # Secret.immutable is *bool: false on the wire was set by the client.
    raw = _bytes(1, _bytes(1, b"s")) + _int(5, 0)
    obj = protobuf.decode_object(_envelope("v1", "Secret", raw))
    assert obj["immutable"] is False


@pytest.mark.parametrize("message", sorted(protobuf.POINTER_FIELDS))
def test_pointer_fields_name_known_fields(message: str) -> None:
    fields = {spec[0] for spec in protobuf.schema()[message]["fields"].values()}
    assert protobuf.POINTER_FIELDS[message] <= fields
