"""A pod's volumes as data: from the pod and the objects it names to what the node must hold.

Pure: no I/O. The kubelet's volume plugins, reduced to what they decide:
- ``emptyDir``: an empty folder per pod (``medium: Memory``: a tmpfs, ``sizeLimit`` its size);
- ``hostPath``: a node path, with its ``type`` checked by the writer
  (:mod:`svcnet.runtime.volumes.writer`);
- ``persistentVolumeClaim``: the claim's bound PersistentVolume, a ``hostPath`` or ``local``
  folder on the node (what the local-path provisioner makes), mounted writable unless the
  source says ``readOnly``; a claim missing or not Bound is a :class:`MountError` with
  kubelet's ``error processing PVC ns/name: ...`` (retried: the claim's watch wakes it);
- ``configMap``, ``secret``, ``downwardAPI``, ``projected``: a *payload* (relative path →
  bytes and mode) that the writer lays down as kubelet's ``AtomicWriter`` does, so an edited
  object reaches the mounted files in place. The error texts are the volume plugins' and the
  watch-based object cache's (``configmap "x" not found``, singular resource name), which
  kubelet prefixes with ``MountVolume.SetUp failed for volume "v" :`` in its FailedMount
  event;
- a ``serviceAccountToken`` projection takes its token from the caller (the agent requests it
  with TokenRequest), keyed by :class:`TokenKey`; :func:`token_refresh_at` is kubelet's token
  manager rule (refresh past 80 % of the lifetime, or after 24 h).

What a container mounts is :func:`container_mounts`: volume folders, ``subPath`` joined on,
``readOnly`` honoured and the API-data volumes always read-only (kubelet mounts them so since
1.10).
"""

from __future__ import annotations

import base64
import json
import math
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from svcnet.api.validation.quantity import QuantityError, parse_quantity

ObjView = Mapping[str, Any]

DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3600
# kubelet's plugin folder names under pods/<uid>/volumes/.
PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
UNSUPPORTED_DIR = "svcnet~unsupported"
# Volume sources with a node path of their own (nothing written by the agent).
KNOWN_SOURCES = ("emptyDir", "hostPath", *PLUGIN_DIRS)


class MountError(Exception):
    """MountVolume.SetUp failed: the pod waits in ContainerCreating, retried until it mounts."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(message)
        self.volume = volume

    @property
    def event_message(self) -> str:
        """kubelet's FailedMount message (operation_generator's GenerateMsgSimple)."""
        return f'MountVolume.SetUp failed for volume "{self.volume}" : {self}'


class VolumeKind(Enum):
    EMPTY_DIR = "emptyDir"
    HOST_PATH = "hostPath"
    FILES = "files"  # configMap, secret, downwardAPI, projected: a payload
    CLAIM = "claim"  # persistentVolumeClaim: its volume's folder on the node
    UNSUPPORTED = "unsupported"  # e.g. nfs: an empty folder, with a warning


@dataclass(frozen=True)
class FileEntry:
    data: bytes
    mode: int


Payload = Mapping[str, FileEntry]


@dataclass(frozen=True)
class TokenKey:
    """One token a pod needs: kubelet's token cache key (service account, audience, TTL)."""

    service_account: str
    audience: str
    expiration_seconds: int


@dataclass(frozen=True)
class VolumeInputs:
    """What the payloads are made of: the pod's ConfigMaps and Secrets by name (absent: not
    found) and its tokens."""

    config_maps: Mapping[str, ObjView] = field(default_factory=dict)
    secrets: Mapping[str, ObjView] = field(default_factory=dict)
    tokens: Mapping[TokenKey, str] = field(default_factory=dict)
    claims: Mapping[str, ObjView] = field(default_factory=dict)  # by name, in the pod's ns
    persistent_volumes: Mapping[str, ObjView] = field(default_factory=dict)  # by name


@dataclass(frozen=True)
class VolumePlan:
    name: str
    kind: VolumeKind
    plugin_dir: str = ""  # kubelet's folder name under volumes/ (not for hostPath)
    host_path: str = ""
    host_type: str = ""
    memory: bool = False  # emptyDir medium Memory: a tmpfs
    size_limit: int | None = None  # bytes, for a tmpfs
    payload: Payload = field(default_factory=dict)
    source: str = ""  # the source's field name (for an unsupported one's warning)
    read_only: bool = False  # persistentVolumeClaim.readOnly

    @property
    def api_data(self) -> bool:
        """configMap, secret, downwardAPI, projected: always mounted read-only."""
        return self.kind is VolumeKind.FILES

    @property
    def always_read_only(self) -> bool:
        """Read-only in every container: API data, or a claim the pod mounts readOnly."""
        return self.api_data or self.read_only


@dataclass(frozen=True)
class PodSources:
    """What a pod's volumes read: ConfigMaps and Secrets by name, tokens by key."""

    config_maps: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()
    tokens: frozenset[TokenKey] = frozenset()
    claims: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Mount:
    """One volumeMount resolved against its volume's folder on the node."""

    volume: str
    source: str  # folder of the volume on the node, with subPath joined
    target: str
    readonly: bool
    sub_path: str = ""
    volume_root: str = ""  # the folder a subPath must stay within


# -- what a pod reads ----------------------------------------------------------------------------
def _volumes(pod: ObjView) -> list[ObjView]:
    return list((pod.get("spec") or {}).get("volumes") or [])


def service_account(pod: ObjView) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def token_key(pod: ObjView, source: ObjView) -> TokenKey:
    return TokenKey(
        service_account(pod),
        str(source.get("audience") or ""),
        int(source.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS),
    )


def pod_sources(pod: ObjView) -> PodSources:
    return volume_sources(pod, _volumes(pod))


def volume_sources(pod: ObjView, volumes: Sequence[ObjView]) -> PodSources:
    """What ``volumes`` of ``pod`` read (all of them: :func:`pod_sources`)."""
    cms: set[str] = set()
    secrets: set[str] = set()
    tokens: set[TokenKey] = set()
    claims: set[str] = set()
    for v in volumes:
        if isinstance(v.get("persistentVolumeClaim"), Mapping):
            claims.add(str(v["persistentVolumeClaim"].get("claimName", "")))
        if isinstance(v.get("configMap"), Mapping):
            cms.add(str(v["configMap"].get("name", "")))
        if isinstance(v.get("secret"), Mapping):
            secrets.add(str(v["secret"].get("secretName", "")))
        for s in (v.get("projected") or {}).get("sources") or ():
            if isinstance(s.get("configMap"), Mapping):
                cms.add(str(s["configMap"].get("name", "")))
            if isinstance(s.get("secret"), Mapping):
                secrets.add(str(s["secret"].get("name", "")))
            if isinstance(s.get("serviceAccountToken"), Mapping):
                tokens.add(token_key(pod, s["serviceAccountToken"]))
    return PodSources(frozenset(cms), frozenset(secrets), frozenset(tokens), frozenset(claims))


# -- payloads ----------------------------------------------------------------------------------
def _go_quote(value: str) -> str:
    """Go's %q for the common case (JSON string escaping differs only for exotic runes)."""
    return json.dumps(value, ensure_ascii=False)


def format_map(m: Mapping[str, Any]) -> str:
    """fieldpath.FormatMap: ``key="value"`` lines in key order, no trailing newline."""
    return "\n".join(f"{k}={_go_quote(str(m[k]))}" for k in sorted(m))


def _field_value(pod: ObjView, path: str) -> str:
    """The fieldPaths a downwardAPI volume accepts (no status or spec fields, unlike env)."""
    meta = pod.get("metadata") or {}
    simple = {
        "metadata.name": "name",
        "metadata.namespace": "namespace",
        "metadata.uid": "uid",
    }
    if path in simple:
        return str(meta.get(simple[path], ""))
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".", 1)[1]) or {})
    for kind in ("labels", "annotations"):
        prefix = f"metadata.{kind}['"
        if path.startswith(prefix) and path.endswith("']"):
            return str((meta.get(kind) or {}).get(path[len(prefix) : -2], ""))
    raise MountError("", f"unsupported fieldPath: {path}")


def _resource_value(pod: ObjView, ref: ObjView) -> str:
    """resourceFieldRef: the container's own request or limit, divided and rounded up as
    kubelet's ExtractContainerResourceValue does; an unset limit is 0 here (svcnet keeps no
    node allocatable to default it to)."""
    spec = pod.get("spec") or {}
    name = str(ref.get("containerName") or "")
    containers = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None:
        raise MountError("", f"container {name} not found")
    kind, _, resource = str(ref.get("resource") or "").partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(resource, 0)
    try:
        amount = parse_quantity(value)
        divisor = parse_quantity(ref.get("divisor") or 1)
    except QuantityError as e:
        raise MountError("", str(e)) from e
    if divisor == 0:
        raise MountError("", "divisor must be positive")
    quotient = amount / divisor
    return str(math.ceil(quotient))


def _data_of(obj: ObjView, secret: bool) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if secret:
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(str(v))
    else:
        for k, v in (obj.get("data") or {}).items():
            out[k] = str(v).encode()
        for k, v in (obj.get("binaryData") or {}).items():
            out[k] = base64.b64decode(str(v))
    return out


def _object_payload(
    kind: str,
    source: ObjView,
    objects: Mapping[str, ObjView],
    default_mode: int,
) -> dict[str, FileEntry]:
    """configMap and secret volumes (and projections): MakePayload of their plugins."""
    secret = kind == "secret"
    name = str(source.get("secretName" if secret and "secretName" in source else "name") or "")
    optional = bool(source.get("optional"))
    obj = objects.get(name)
    if obj is None:
        if optional:
            return {}
        raise MountError("", f'{kind} "{name}" not found')
    data = _data_of(obj, secret)
    items = source.get("items") or ()
    if not items:
        return {k: FileEntry(v, default_mode) for k, v in data.items()}
    out = {}
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            if optional:
                continue
            what = (
                "secret references non-existent secret key"
                if secret
                else ("configmap references non-existent config key")
            )
            raise MountError("", f"{what}: {key}")
        mode = item.get("mode")
        out[str(item.get("path", key))] = FileEntry(
            data[key], default_mode if mode is None else int(mode)
        )
    return out


def _downward_payload(pod: ObjView, source: ObjView, default_mode: int) -> dict[str, FileEntry]:
    out = {}
    for item in source.get("items") or ():
        if item.get("fieldRef"):
            value = _field_value(pod, str(item["fieldRef"].get("fieldPath", "")))
        elif item.get("resourceFieldRef"):
            value = _resource_value(pod, item["resourceFieldRef"])
        else:
            continue
        mode = item.get("mode")
        out[str(item.get("path", ""))] = FileEntry(
            value.encode(), default_mode if mode is None else int(mode)
        )
    return out


def _projected_payload(
    pod: ObjView, source: ObjView, inputs: VolumeInputs, default_mode: int
) -> dict[str, FileEntry]:
    """Every source's files in one folder; the errors of all sources together, as
    utilerrors.NewAggregate words them (one error alone is just its message)."""
    out: dict[str, FileEntry] = {}
    errors: list[str] = []
    for s in source.get("sources") or ():
        try:
            if isinstance(s.get("configMap"), Mapping):
                out.update(
                    _object_payload("configmap", s["configMap"], inputs.config_maps, default_mode)
                )
            elif isinstance(s.get("secret"), Mapping):
                out.update(_object_payload("secret", s["secret"], inputs.secrets, default_mode))
            elif isinstance(s.get("downwardAPI"), Mapping):
                out.update(_downward_payload(pod, s["downwardAPI"], default_mode))
            elif isinstance(s.get("serviceAccountToken"), Mapping):
                sat = s["serviceAccountToken"]
                key = token_key(pod, sat)
                token = inputs.tokens.get(key)
                if token is None:
                    raise MountError(
                        "",
                        f'failed to fetch token: no token for serviceaccount "{key.service_account}"',
                    )
                out[str(sat.get("path", "token"))] = FileEntry(token.encode(), default_mode)
        except MountError as e:
            errors.append(str(e))
    if errors:
        raise MountError("", errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    return out


def check_payload_paths(payload: Payload) -> None:
    """AtomicWriter's validatePath: relative, no '..' element, not starting with '..'."""
    for path in payload:
        if not path:
            raise MountError("", "invalid path: must not be empty")
        if posixpath.isabs(path):
            raise MountError("", f"invalid path: must be relative path: {path}")
        if ".." in path.split("/"):
            raise MountError("", f"invalid path: must not contain '..': {path}")
        if path.startswith(".."):
            raise MountError("", f"invalid path: must not start with '..': {path}")


# -- one volume ----------------------------------------------------------------------------------
def _size(value: object) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(parse_quantity(str(value)))
    except QuantityError:
        return None


def plan_volume(pod: ObjView, volume: ObjView, inputs: VolumeInputs) -> VolumePlan:
    """What one volume needs on the node; :class:`MountError` when it cannot be set up now
    (a missing object: retried until it appears)."""
    name = str(volume.get("name", ""))
    try:
        return _plan_volume(pod, name, volume, inputs)
    except MountError as e:
        raise MountError(name, str(e)) from None


def claim_volume_path(pod: ObjView, source: ObjView, inputs: VolumeInputs) -> tuple[str, str]:
    """The node folder of a claim's bound volume and its hostPath type; :class:`MountError`
    with kubelet's texts (desired_state_of_world_populator's getPVCExtractPV) otherwise."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    claim_name = str(source.get("claimName") or "")
    prefix = f"error processing PVC {namespace}/{claim_name}: "
    pvc = inputs.claims.get(claim_name)
    if pvc is None:
        raise MountError(
            "",
            prefix + "failed to fetch PVC from API server: "
            f'persistentvolumeclaims "{claim_name}" not found',
        )
    if (pvc.get("metadata") or {}).get("deletionTimestamp"):
        raise MountError("", prefix + "PVC is being deleted")
    volume_name = str((pvc.get("spec") or {}).get("volumeName") or "")
    if (pvc.get("status") or {}).get("phase") != "Bound" or not volume_name:
        raise MountError("", prefix + "PVC is not bound")
    pv = inputs.persistent_volumes.get(volume_name)
    if pv is None:
        raise MountError(
            "",
            prefix + f"failed to fetch PV {volume_name} from API server: "
            f'persistentvolumes "{volume_name}" not found',
        )
    spec = pv.get("spec") or {}
    for kind in ("hostPath", "local"):
        if isinstance(spec.get(kind), Mapping) and spec[kind].get("path"):
            return str(spec[kind]["path"]), str(spec[kind].get("type") or "")
    raise MountError("", prefix + f"volume {volume_name} has no node path svcnet can mount")


def _plan_volume(pod: ObjView, name: str, volume: ObjView, inputs: VolumeInputs) -> VolumePlan:
    if isinstance(volume.get("persistentVolumeClaim"), Mapping):
        source = volume["persistentVolumeClaim"]
        path, host_type = claim_volume_path(pod, source, inputs)
        return VolumePlan(
            name,
            VolumeKind.CLAIM,
            host_path=path,
            host_type=host_type,
            read_only=bool(source.get("readOnly")),
        )
    if isinstance(volume.get("hostPath"), Mapping):
        hp = volume["hostPath"]
        return VolumePlan(
            name,
            VolumeKind.HOST_PATH,
            host_path=str(hp.get("path") or ""),
            host_type=str(hp.get("type") or ""),
        )
    if isinstance(volume.get("emptyDir"), Mapping):
        ed = volume["emptyDir"]
        return VolumePlan(
            name,
            VolumeKind.EMPTY_DIR,
            PLUGIN_DIRS["emptyDir"],
            memory=ed.get("medium") == "Memory",
            size_limit=_size(ed.get("sizeLimit")),
        )
    payload: dict[str, FileEntry] | None = None
    for source in ("configMap", "secret", "downwardAPI", "projected"):
        spec = volume.get(source)
        if not isinstance(spec, Mapping):
            continue
        mode = spec.get("defaultMode")
        default_mode = DEFAULT_MODE if mode is None else int(mode)
        if source == "configMap":
            payload = _object_payload("configmap", spec, inputs.config_maps, default_mode)
        elif source == "secret":
            payload = _object_payload("secret", spec, inputs.secrets, default_mode)
        elif source == "downwardAPI":
            payload = _downward_payload(pod, spec, default_mode)
        else:
            payload = _projected_payload(pod, spec, inputs, default_mode)
        check_payload_paths(payload)
        return VolumePlan(name, VolumeKind.FILES, PLUGIN_DIRS[source], payload=payload)
    kinds = sorted(k for k in volume if k != "name")
    return VolumePlan(name, VolumeKind.UNSUPPORTED, UNSUPPORTED_DIR, source=",".join(kinds))


def volume_dir(pods_root: str, pod_uid: str, plan: VolumePlan) -> str:
    """Where a volume lives on the node: kubelet's pods/<uid>/volumes/<plugin>/<name>."""
    if plan.kind in (VolumeKind.HOST_PATH, VolumeKind.CLAIM):
        return plan.host_path
    return posixpath.join(pods_root, pod_uid, "volumes", plan.plugin_dir, plan.name)


# -- what a container mounts ----------------------------------------------------------------------
def check_sub_path(sub_path: str) -> str | None:
    """The reason a subPath is refused (validation's wording), None when it is fine."""
    if posixpath.isabs(sub_path):
        return f"{sub_path}: must be a relative path"
    if ".." in sub_path.split("/"):
        return f"{sub_path}: must not contain '..'"
    return None


def container_mounts(container: ObjView, volumes: Mapping[str, tuple[str, bool]]) -> list[Mount]:
    """``volumes``: volume name → (its folder on the node, whether it is API data). A mount
    of a volume not set up (none in a pod that passed validation) is left out."""
    out = []
    mounts: Sequence[ObjView] = container.get("volumeMounts") or ()
    for m in mounts:
        name = str(m.get("name", ""))
        if name not in volumes:
            continue
        root, api_data = volumes[name]
        sub_path = str(m.get("subPath") or "")
        source = posixpath.join(root, sub_path) if sub_path else root
        out.append(
            Mount(
                volume=name,
                source=source,
                target=str(m.get("mountPath") or ""),
                readonly=bool(m.get("readOnly")) or api_data,
                sub_path=sub_path,
                volume_root=root,
            )
        )
    return out


def token_refresh_at(issued: float, expiration: float) -> float:
    """kubelet's token manager (requiresRefresh): a token is refreshed once 80 % of its
    lifetime has passed, or once it is 24 h old, whichever comes first."""
    ttl = expiration - issued
    return issued + min(ttl * 0.8, 24 * 3600.0)
