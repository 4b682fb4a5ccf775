"""Kubernetes protobuf request bodies, decoded into the JSON form of the object.

``kubectl create deployment|namespace|secret|service ...`` (client-go's typed clients) send
``application/vnd.kubernetes.protobuf``: the 4 bytes ``k8s\\0`` then a ``runtime.Unknown``
(typeMeta{apiVersion, kind}, raw = the object's own protobuf). The field numbers and types come
from ``protobuf_schema.json``, extracted from kubectl's embedded descriptors by
:mod:`protobuf_gen`. The wire format is decoded here by hand (pure, no protobuf library).

Which zero values are kept. The messages are proto2 (every field ``optional``), and Go's
generated marshalling writes a field by what it is in the Go struct: a non-pointer field always,
even holding its zero value, a pointer field only when it is set (non-nil). So a zero on the wire
means "not set" for a non-pointer field — its JSON form drops it (``omitempty``), and so does
this decoder — but it is an explicit value for a pointer field: ``kubectl create deployment
--replicas=0`` sends ``replicas`` (``*int32``) = 0, which must stay 0, not be defaulted to 1.
The descriptors do not say which fields are Go pointers, so :data:`POINTER_FIELDS` lists the
scalar (and IntOrString) pointer fields of upstream's Go types (``k8s.io/api``,
``k8s.io/apimachinery``) for the kinds svcnet serves: those are kept whenever present.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# Go structs embedded with `json:",inline"`: a message field in protobuf, flattened in JSON.
_INLINE = frozenset(
    {"ingressRuleValue", "volumeSource", "probeHandler", "handler", "persistentVolumeSource"}
)


def _pointers(prefix: str, table: dict[str, str]) -> dict[str, frozenset[str]]:
    return {prefix + message: frozenset(fields.split()) for message, fields in table.items()}


# Go pointer fields of scalar type (``*int32``, ``*bool``, ``*string`` and string enums) and
# ``*intstr.IntOrString``, by message, from upstream's types.go (1.32): present on the wire means
# set, whatever the value. Non-pointer fields are not listed: their zero values are dropped.
POINTER_FIELDS: dict[str, frozenset[str]] = {
    **_pointers(
        "k8s.io.api.apps.v1.",
        {
            "DeploymentSpec": "replicas revisionHistoryLimit progressDeadlineSeconds",
            "RollingUpdateDeployment": "maxUnavailable maxSurge",
            "ReplicaSetSpec": "replicas",
            "StatefulSetSpec": "replicas revisionHistoryLimit",
            "RollingUpdateStatefulSetStrategy": "partition maxUnavailable",
            "DeploymentStatus": "collisionCount",
            "StatefulSetStatus": "collisionCount",
        },
    ),
    **_pointers(
        "k8s.io.api.core.v1.",
        {
            "PodSpec": "terminationGracePeriodSeconds activeDeadlineSeconds "
            "automountServiceAccountToken shareProcessNamespace priority enableServiceLinks "
            "preemptionPolicy setHostnameAsFQDN hostUsers runtimeClassName",
            "Container": "restartPolicy",
            "EphemeralContainerCommon": "restartPolicy",
            "SecurityContext": "privileged runAsUser runAsGroup runAsNonRoot "
            "readOnlyRootFilesystem allowPrivilegeEscalation procMount",
            "PodSecurityContext": "runAsUser runAsGroup runAsNonRoot fsGroup "
            "fsGroupChangePolicy supplementalGroupsPolicy",
            "Probe": "terminationGracePeriodSeconds",
            "Toleration": "tolerationSeconds",
            "PodDNSConfigOption": "value",
            "ConfigMapKeySelector": "optional",
            "SecretKeySelector": "optional",
            "ConfigMapEnvSource": "optional",
            "SecretEnvSource": "optional",
            "ConfigMapVolumeSource": "defaultMode optional",
            "SecretVolumeSource": "defaultMode optional",
            "ProjectedVolumeSource": "defaultMode",
            "DownwardAPIVolumeSource": "defaultMode",
            "DownwardAPIVolumeFile": "mode",
            "KeyToPath": "mode",
            "ConfigMapProjection": "optional",
            "SecretProjection": "optional",
            "ServiceAccountTokenProjection": "expirationSeconds",
            "ServiceSpec": "allocateLoadBalancerNodePorts ipFamilyPolicy loadBalancerClass "
            "internalTrafficPolicy trafficDistribution",
            "ServicePort": "appProtocol",
            "EndpointPort": "appProtocol",
            "ClientIPConfig": "timeoutSeconds",
            "Secret": "immutable",
            "ConfigMap": "immutable",
            "ServiceAccount": "automountServiceAccountToken",
        },
    ),
    **_pointers(
        "k8s.io.api.discovery.v1.",
        {
            "EndpointPort": "name protocol port appProtocol",
            "Endpoint": "hostname nodeName zone",
            "EndpointConditions": "ready serving terminating",
        },
    ),
    **_pointers(
        "k8s.io.api.networking.v1.",
        {
            "IngressSpec": "ingressClassName",
            "HTTPIngressPath": "pathType",
            "NetworkPolicyPort": "protocol port endPort",
            # apiGroup is a pointer too; its proto name is "aPIGroup".
            "IngressClassParametersReference": "aPIGroup scope namespace",
        },
    ),
    **_pointers(
        "k8s.io.api.coordination.v1.",
        {
            "LeaseSpec": "holderIdentity leaseDurationSeconds leaseTransitions strategy "
            "preferredHolder",
        },
    ),
    **_pointers(
        "k8s.io.apimachinery.pkg.apis.meta.v1.",
        {
            "ObjectMeta": "deletionGracePeriodSeconds",
            "OwnerReference": "controller blockOwnerDeletion",
            "DeleteOptions": "gracePeriodSeconds orphanDependents propagationPolicy "
            "ignoreStoreReadErrorWithClusterBreakingPotential",
        },
    ),
}
_NO_POINTERS: frozenset[str] = frozenset()


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
            yield num, wt, data[i : i + n]
            i += n
        elif wt == 1:
            yield num, wt, int.from_bytes(data[i : i + 8], "little")
            i += 8
        elif wt == 5:
            yield num, wt, int.from_bytes(data[i : i + 4], "little")
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")


@functools.cache
def schema() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(_SCHEMA_FILE.read_text())
    return {
        name: {"map": m["map"], "fields": {f[0]: tuple(f[1:]) for f in m["fields"]}}
        for name, m in raw.items()
    }


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


def decode_message(type_name: str, data: bytes) -> Any:
    special, value = _special(type_name, data)
    if special:
        return value
    msg = schema().get(type_name)
    if msg is None:
        raise BadRequest(f"unsupported protobuf type {type_name}")
    fields = msg["fields"]
    out: dict[str, Any] = {}
    for num, wt, value in iter_fields(data):
        spec = fields.get(num)
        if spec is None:
            continue  # unknown field: dropped, as Go's decoder does
        name, ftype, repeated, sub = spec
        if ftype == _MESSAGE:
            assert isinstance(value, bytes)
            sub_msg = schema().get(sub)
            if sub_msg is not None and sub_msg["map"]:
                entry = {n: v for n, _, v in iter_fields(value)}
                k_spec, v_spec = sub_msg["fields"][1], sub_msg["fields"][2]
                key = _scalar(k_spec[1], entry.get(1, b"" if k_spec[1] == _STRING else 0))
                if v_spec[1] == _MESSAGE:
                    val = decode_message(v_spec[3], entry.get(2, b""))  # type: ignore[arg-type]
                else:
                    val = _scalar(
                        v_spec[1], entry.get(2, b"" if v_spec[1] in (_STRING, _BYTES) else 0)
                    )
                out.setdefault(name, {})[key] = val
                continue
            decoded = decode_message(sub, value)
        elif wt == 2 and ftype not in (_STRING, _BYTES):
            # packed repeated scalars
            items = []
            j = 0
            while j < len(value):  # type: ignore[arg-type]
                v, j = _varint(value, j)  # type: ignore[arg-type]
                items.append(_scalar(ftype, v))
            out.setdefault(name, []).extend(items)
            continue
        else:
            decoded = _scalar(ftype, value)
        if repeated:
            out.setdefault(name, []).append(decoded)
        elif name in _INLINE and isinstance(decoded, dict):
            out.update(decoded)
        elif decoded is not None:
            out[name] = decoded
    # Go writes zero values of non-pointer fields; JSON (omitempty) has none of them. A pointer
    # field is on the wire only when set: its zero value is the value (see the module docstring).
    pointers = POINTER_FIELDS.get(type_name, _NO_POINTERS)
    return {k: v for k, v in out.items() if k in pointers or not _empty(v)}


_PACKAGES = {
    "": "core",
    "apps": "apps",
    "networking.k8s.io": "networking",
    "discovery.k8s.io": "discovery",
    "coordination.k8s.io": "coordination",
    "autoscaling": "autoscaling",
    "policy": "policy",
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
