"""Protobuf wire encoding for tests: the bodies kubectl sends as
``application/vnd.kubernetes.protobuf``, built field by field with upstream's field numbers."""

from __future__ import annotations

MAGIC = b"k8s\x00"  # the prefix of every Kubernetes protobuf body


def varint(n: int) -> bytes:
    """A base-128 varint; negative int32/int64 go out as 10-byte two's complement, as in Go."""
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(num: int, data: bytes | str) -> bytes:
    """A length-delimited field: a string, bytes or an embedded message."""
    raw = data.encode() if isinstance(data, str) else data
    return varint(num << 3 | 2) + varint(len(raw)) + raw


def field_int(num: int, value: int) -> bytes:
    """A varint field (ints, bools, enums)."""
    return varint(num << 3) + varint(value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """runtime.Unknown around an object's bytes: what the API server receives."""
    type_meta = field_bytes(1, api_version) + field_bytes(2, kind)
    return MAGIC + field_bytes(1, type_meta) + field_bytes(2, raw)
