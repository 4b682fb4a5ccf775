"""Kubernetes protobuf request bodies, decoded into the JSON form of the object.

``kubectl create deployment|namespace|secret|service ...`` (client-go's typed clients) send
``application/vnd.kubernetes.protobuf``: the 4 bytes ``k8s\\0`` then a ``runtime.Unknown``
(typeMeta{apiVersion, kind}, raw = the object's own protobuf). The field numbers and types come
from ``protobuf_schema.json``, extracted from kubectl's embedded descriptors by
:mod:`protobuf_gen`. The wire format is decoded here by hand (pure, no protobuf library).

JSON keys. Each field is emitted under its upstream JSON name, which the schema holds (not the
proto field name: ``IngressClassParametersReference`` has proto ``aPIGroup`` for JSON
``apiGroup``); fields of Go structs embedded with ``json:",inline"`` (``VolumeSource``,
``LocalObjectReference`` in ``ConfigMapKeySelector``, ``ProbeHandler``...) are flattened into
the enclosing object, as upstream's JSON has them.

Which zero values are kept. The messages are proto2 (every field ``optional``), and Go's
generated marshalling writes a field by what it is in the Go struct: a non-pointer field always,
even holding its zero value, a pointer field only when it is set (non-nil). So a zero on the wire
means "not set" for a non-pointer field — its JSON form drops it (``omitempty``), and so does
this decoder — but it is an explicit value for a pointer field: ``kubectl create deployment
--replicas=0`` sends ``replicas`` (``*int32``) = 0, which must stay 0, not be defaulted to 1.
Which fields are Go pointers is read from the gogoproto options in kubectl's descriptors (see
:mod:`protobuf_gen`): the schema in the tree was generated from kubectl v1.32.4, i.e. exactly
k8s.io/api and apimachinery v0.32.4. It was cross-checked against the hand-written table it
replaced (which missed 46 pointer fields in 28 messages and listed none wrongly) and against
upstream's types.go (``NodeName *string`` of EndpointAddress, ``MinDomains *int32``,
``MountPropagation *MountPropagationMode``, ``APIGroup *string ... name=aPIGroup``);
:func:`pointer_fields` lists the result, ``tests/unit/apiserver/test_protobuf.py`` records it.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from svcnet.api.errors import BadRequest

MAGIC = b"k8s\x00"
_SCHEMA_FILE = Path(__file__).with_name("protobuf_schema.json")

# FieldDescriptorProto.Type values used by k8s protos.
_DOUBLE, _FLOAT, _INT64, _UINT64, _INT32 = 1, 2, 3, 4, 5
_BOOL, _STRING, _MESSAGE, _BYTES, _UINT32 = 8, 9, 11, 12, 13
_SINT32, _SINT64 = 17, 18

_INTSTR = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_TIME = "k8s.io.apimachinery.pkg.apis.meta.v1.Time"
_MICROTIME = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime"
_RAW = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_DURATION = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration"
_FIELDS_V1 = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1"

# Messages whose JSON form is not an object of their fields (a string, a number, a timestamp,
# embedded JSON): decoded by :func:`_special`.
SPECIAL_TYPES = frozenset({_INTSTR, _QUANTITY, _TIME, _MICROTIME, _RAW, _DURATION, _FIELDS_V1})


class Field(NamedTuple):
    """One field of a message: its JSON key and how its presence on the wire is read."""

    json_key: str
    type: int
    repeated: bool
    type_name: str
    pointer: bool  # a Go pointer: on the wire means set, a zero value included
    inline: bool  # an embedded Go struct (json:",inline"): its fields join the parent's


class Message(NamedTuple):
    map_entry: bool
    fields: dict[int, Field]


@functools.cache
def schema() -> dict[str, Message]:
    raw: dict[str, Any] = json.loads(_SCHEMA_FILE.read_text())
    return {
        name: Message(
            m["map"],
            {
                num: Field(json_name, ftype, repeated, sub, how == "pointer", how == "inline")
                for num, json_name, ftype, repeated, sub, how in m["fields"]
            },
        )
        for name, m in raw.items()
    }


@functools.cache
def pointer_fields() -> dict[str, frozenset[str]]:
    """Go pointer fields by message (JSON names), as the schema says: kept whenever present, a
    zero value included. Non-pointer fields are not listed: their zero values are dropped."""
    table: dict[str, frozenset[str]] = {}
    for name, msg in schema().items():
        names = frozenset(f.json_key for f in msg.fields.values() if f.pointer)
        if names:
            table[name] = names
    return table


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field of one message."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(data, i)
            yield num, wt, v
        elif wt == 2:
            n, i = _varint(data, i)
            if i + n > len(data):
                raise ValueError("truncated length-delimited field")
            yield num, wt, data[i : i + n]
            i += n
        elif wt in (1, 5):
            size = 8 if wt == 1 else 4
            if i + size > len(data):
                raise ValueError("truncated fixed-size field")
            yield num, wt, int.from_bytes(data[i : i + size], "little")
            i += size
        else:
            raise ValueError(f"unsupported wire type {wt}")


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def _scalar(ftype: int, value: int | bytes) -> Any:
    if ftype == _STRING:
        assert isinstance(value, bytes)
        return value.decode()
    if ftype == _BYTES:
        assert isinstance(value, bytes)
        return base64.b64encode(value).decode()
    assert isinstance(value, int)
    if ftype == _BOOL:
        return bool(value)
    if ftype in (_INT64,):
        return _signed(value, 64)
    if ftype in (_INT32,):
        return _signed(value & 0xFFFFFFFFFFFFFFFF, 64)
    return value


def _special(type_name: str, data: bytes) -> tuple[bool, Any]:
    if type_name == _INTSTR:
        f = {n: v for n, _, v in iter_fields(data)}
        if f.get(1, 0) == 1:
            sv = f.get(3, b"")
            return True, sv.decode() if isinstance(sv, bytes) else ""
        iv = f.get(2, 0)
        return True, _signed(iv, 64) if isinstance(iv, int) else 0
    if type_name == _QUANTITY:
        f = {n: v for n, _, v in iter_fields(data)}
        s = f.get(1, b"")
        return True, s.decode() if isinstance(s, bytes) else ""
    if type_name in (_TIME, _MICROTIME):
        f = {n: v for n, _, v in iter_fields(data)}
        secs = f.get(1, 0)
        if not secs:
            return True, None
        assert isinstance(secs, int)
        t = datetime.datetime.fromtimestamp(_signed(secs, 64), datetime.UTC)
        if type_name == _MICROTIME:
            nanos = f.get(2, 0)
            assert isinstance(nanos, int)
            return True, t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
        return True, t.strftime("%Y-%m-%dT%H:%M:%SZ")
    if type_name == _RAW:
        f = {n: v for n, _, v in iter_fields(data)}
        raw = f.get(1, b"")
        return True, orjson.loads(raw) if isinstance(raw, bytes) and raw else None
    if type_name == _FIELDS_V1:
        f = {n: v for n, _, v in iter_fields(data)}
        raw = f.get(1, b"")
        return True, orjson.loads(raw) if isinstance(raw, bytes) and raw else {}
    if type_name == _DURATION:
        f = {n: v for n, _, v in iter_fields(data)}
        d = f.get(1, 0)
        return True, f"{_signed(d, 64)}ns" if isinstance(d, int) else ""
    return False, None


def _empty(v: Any) -> bool:
    return v is None or v == "" or v is False or (v == 0 and not isinstance(v, bool)) or v == []


def _map_entry(entry_msg: Message, data: bytes) -> tuple[Any, Any]:
    entry = {n: v for n, _, v in iter_fields(data)}
    key_field, value_field = entry_msg.fields[1], entry_msg.fields[2]
    key = _scalar(key_field.type, entry.get(1, b"" if key_field.type == _STRING else 0))
    raw = entry.get(2, b"" if value_field.type in (_STRING, _BYTES, _MESSAGE) else 0)
    if value_field.type == _MESSAGE:
        assert isinstance(raw, bytes)
        return key, decode_message(value_field.type_name, raw)
    return key, _scalar(value_field.type, raw)


def decode_message(type_name: str, data: bytes) -> Any:
    special, value = _special(type_name, data)
    if special:
        return value
    msg = schema().get(type_name)
    if msg is None:
        raise BadRequest(f"unsupported protobuf type {type_name}")
    out: dict[str, Any] = {}
    for num, wt, value in iter_fields(data):
        field = msg.fields.get(num)
        if field is None:
            continue  # unknown field: dropped, as Go's decoder does
        if field.type == _MESSAGE:
            assert isinstance(value, bytes)
            sub_msg = schema().get(field.type_name)
            if sub_msg is not None and sub_msg.map_entry:
                key, val = _map_entry(sub_msg, value)
                out.setdefault(field.json_key, {})[key] = val
                continue
            decoded = decode_message(field.type_name, value)
        elif wt == 2 and field.type not in (_STRING, _BYTES):
            assert isinstance(value, bytes)
            items = []  # packed repeated scalars
            j = 0
            while j < len(value):
                v, j = _varint(value, j)
                items.append(_scalar(field.type, v))
            out.setdefault(field.json_key, []).extend(items)
            continue
        else:
            decoded = _scalar(field.type, value)
        if field.repeated:
            out.setdefault(field.json_key, []).append(decoded)
        elif field.inline:
            # The embedded message already dropped its own zero values, by its own pointers.
            assert isinstance(decoded, dict)
            out.update(decoded)
        elif decoded is None or (not field.pointer and _empty(decoded)):
            # Go writes zero values of non-pointer fields; JSON (omitempty) has none of them.
            # A pointer field is on the wire only when set: its zero value is the value.
            out.pop(field.json_key, None)
        else:
            out[field.json_key] = decoded
    return out


_PACKAGES = {
    "": "core",
    "apps": "apps",
    "networking.k8s.io": "networking",
    "discovery.k8s.io": "discovery",
    "coordination.k8s.io": "coordination",
    "autoscaling": "autoscaling",
    "policy": "policy",
    "authentication.k8s.io": "authentication",
    "authorization.k8s.io": "authorization",
    "rbac.authorization.k8s.io": "rbac",
    "meta.k8s.io": "meta",
}


def decode_object(body: bytes) -> dict[str, Any]:
    """The object of a ``application/vnd.kubernetes.protobuf`` body, as JSON would give it."""
    if not body.startswith(MAGIC):
        raise BadRequest("provided protobuf body does not start with the k8s magic prefix")
    try:
        unknown = {n: v for n, _, v in iter_fields(body[len(MAGIC) :])}
        type_meta = {n: v for n, _, v in iter_fields(unknown.get(1, b""))}  # type: ignore[arg-type]
        api_version = type_meta.get(1, b"").decode()  # type: ignore[union-attr]
        kind = type_meta.get(2, b"").decode()  # type: ignore[union-attr]
        raw = unknown.get(2, b"")
        group, _, version = api_version.rpartition("/")
        if kind == "DeleteOptions" or group == "meta.k8s.io":
            type_name = f"k8s.io.apimachinery.pkg.apis.meta.v1.{kind}"
        else:
            type_name = f"k8s.io.api.{_PACKAGES.get(group, group)}.{version}.{kind}"
        obj = decode_message(type_name, raw)  # type: ignore[arg-type]
    except (ValueError, UnicodeDecodeError, AssertionError, IndexError) as exc:
        raise BadRequest(f"the object provided is unrecognized (protobuf: {exc})") from None
    assert isinstance(obj, dict)
    return {"apiVersion": api_version, "kind": kind, **obj}
