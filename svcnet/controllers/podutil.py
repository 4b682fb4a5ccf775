"""Pure functions the controllers share: safe accessors of an object's metadata, spec and
status (every controller reads the informer caches through them), pod readiness and
availability, the deletion ranking, controller references and claims, and pod-template
hashing.

All of it is upstream behaviour (``pkg/api/v1/pod``, ``pkg/controller/controller_utils.go``,
``controller_ref_manager.go``, ``pkg/util/hash``); objects are the wire-form dicts the
informer caches hold, and times are epoch seconds passed in by the caller (no clock here).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from svcnet.api.objects import ObjView, annotations_of, labels, meta, name, spec, status, uid
from svcnet.api.selectors import LabelSelector

# Upstream's label and annotation keys.
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


def parse_time(value: Any) -> float | None:
    """Epoch seconds of a ``metav1.Time`` string; None when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def creation_time(obj: ObjView) -> float | None:
    return parse_time(meta(obj).get("creationTimestamp"))


def is_terminating(obj: ObjView) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def phase(pod: ObjView) -> str:
    return str(status(pod).get("phase") or "")


def is_pod_active(pod: ObjView) -> bool:
    """``IsPodActive``: not finished and not being deleted."""
    return phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def _ready_condition(pod: ObjView) -> Mapping[str, Any] | None:
    for c in status(pod).get("conditions") or ():
        if c.get("type") == "Ready":
            return c  # type: ignore[no-any-return]
    return None


def is_pod_ready(pod: ObjView) -> bool:
    c = _ready_condition(pod)
    return c is not None and c.get("status") == "True"


def pod_ready_time(pod: ObjView) -> float | None:
    """When the pod last became Ready (the condition's lastTransitionTime), if it is."""
    c = _ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    return parse_time(c.get("lastTransitionTime"))


def is_pod_available(pod: ObjView, min_ready_seconds: int, now: float) -> bool:
    """``IsPodAvailable``: Ready for at least ``minReadySeconds`` (strictly before now)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + min_ready_seconds < now


def available_in(pod: ObjView, min_ready_seconds: int, now: float) -> float | None:
    """Seconds until a Ready but not yet available pod becomes available (for requeues)."""
    if not is_pod_ready(pod) or min_ready_seconds <= 0:
        return None
    since = pod_ready_time(pod)
    if since is None:
        return None
    left = since + min_ready_seconds - now
    return left if left >= 0 else None


# -- controller references and claims ----------------------------------------------------


def controller_ref(obj: ObjView) -> Mapping[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def owner_reference(owner: ObjView, api_version: str, kind: str) -> dict[str, Any]:
    """``NewControllerRef``: controller and blockOwnerDeletion both true."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


@dataclass(frozen=True)
class Claims:
    """``ClaimObjects``: what a controller owns, must adopt, and must release."""

    owned: tuple[ObjView, ...]
    adopt: tuple[ObjView, ...]
    release: tuple[ObjView, ...]

    @property
    def claimed(self) -> list[ObjView]:
        """Owned plus adopted: what the controller manages once the adoptions succeed."""
        return [*self.owned, *self.adopt]


def claim(
    owner: ObjView,
    selector: LabelSelector,
    candidates: Iterable[ObjView],
    *,
    can_adopt: bool = True,
) -> Claims:
    """Upstream's ``ClaimObject`` for each candidate of the owner's namespace.

    Owned and matching: keep. Owned but no longer matching: release (unless it is being
    deleted). Orphan matching: adopt, unless it or the owner is being deleted. Objects
    controlled by someone else are never touched.
    """
    owner_uid = uid(owner)
    owned: list[ObjView] = []
    adopt: list[ObjView] = []
    release: list[ObjView] = []
    for obj in candidates:
        ref = controller_ref(obj)
        matches = selector.matches(labels(obj))
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches:
                owned.append(obj)
            elif not is_terminating(obj) and not is_terminating(owner):
                release.append(obj)
            continue
        if not matches or is_terminating(obj) or is_terminating(owner) or not can_adopt:
            continue
        if meta(obj).get("namespace") != meta(owner).get("namespace"):
            continue
        adopt.append(obj)
    return Claims(tuple(owned), tuple(adopt), tuple(release))


def with_controller_ref(obj: ObjView, ref: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ownerReferences of ``obj`` once ``ref`` is added (adoption)."""
    refs = [dict(r) for r in meta(obj).get("ownerReferences") or () if r.get("uid") != ref["uid"]]
    return [*refs, dict(ref)]


def without_owner(obj: ObjView, owner_uid: str) -> list[dict[str, Any]]:
    """The ownerReferences of ``obj`` without the owner's (release)."""
    return [dict(r) for r in meta(obj).get("ownerReferences") or () if r.get("uid") != owner_uid]


# -- deletion ranking ---------------------------------------------------------------------

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_cost(pod: ObjView) -> int:
    raw = annotations_of(pod).get(POD_DELETION_COST_ANNOTATION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _max_restarts(pod: ObjView) -> int:
    return max(
        (int(c.get("restartCount") or 0) for c in status(pod).get("containerStatuses") or ()),
        default=0,
    )


def _log_rank(t: float, now: float) -> int:
    # LogarithmicScaleDown: ages within the same power of two (in nanoseconds) tie, so that
    # scale-down is random among pods of about the same age rather than strictly newest first.
    d = (now - t) * 1e9
    return int(math.log2(d)) if d > 0 else -1


def _cmp_times(t1: float | None, t2: float | None, now: float | None) -> int | None:
    """Negative when the first pod should go first: a zero time, then the newer one."""
    if t1 == t2:
        return None
    if t1 is None or t2 is None:
        return -1 if t1 is None else 1
    if now is not None:
        diff = _log_rank(t1, now) - _log_rank(t2, now)
        if diff == 0:
            return 0  # tie broken by uid below
        return -1 if diff < 0 else 1
    return -1 if t1 > t2 else 1


def _deletion_key_cmp(a: tuple[ObjView, int], b: tuple[ObjView, int], now: float) -> int:
    """``ActivePodsWithRanks.Less`` as a three-way compare (negative: ``a`` goes first)."""
    pa, ra = a
    pb, rb = b
    na, nb = spec(pa).get("nodeName") or "", spec(pb).get("nodeName") or ""
    # 1. Unassigned < assigned.
    if na != nb and (not na or not nb):
        return -1 if not na else 1
    # 2. Pending < Unknown < Running.
    oa, ob = _PHASE_ORDINAL.get(phase(pa), 0), _PHASE_ORDINAL.get(phase(pb), 0)
    if oa != ob:
        return -1 if oa < ob else 1
    # 3. Not ready < ready.
    ready_a, ready_b = is_pod_ready(pa), is_pod_ready(pb)
    if ready_a != ready_b:
        return -1 if not ready_a else 1
    # 4. Lower pod-deletion-cost < higher.
    ca, cb = _deletion_cost(pa), _deletion_cost(pb)
    if ca != cb:
        return -1 if ca < cb else 1
    # 5. Doubled up (more related pods on the same node) < not doubled up.
    if ra != rb:
        return -1 if ra > rb else 1
    # 6. Ready for less time < more time.
    if ready_a and ready_b:
        c = _cmp_times(pod_ready_time(pa), pod_ready_time(pb), now)
        if c is not None:
            if c == 0:
                return _cmp_uid(pa, pb)
            return c
    # 7. More container restarts < fewer.
    xa, xb = _max_restarts(pa), _max_restarts(pb)
    if xa != xb:
        return -1 if xa > xb else 1
    # 8. Empty creation time < newer < older.
    c = _cmp_times(creation_time(pa), creation_time(pb), now)
    if c is not None:
        if c == 0:
            return _cmp_uid(pa, pb)
        return c
    return 0


def _cmp_uid(a: ObjView, b: ObjView) -> int:
    ua, ub = uid(a), uid(b)
    return -1 if ua < ub else (1 if ua > ub else 0)


def rank_for_deletion(
    pods: Sequence[ObjView], related: Sequence[ObjView], now: float
) -> list[ObjView]:
    """The pods in the order a ReplicaSet deletes them (``getPodsToDelete``): the rank of a
    pod is the number of active related pods on its node."""
    on_node: dict[str, int] = {}
    for p in related:
        if is_pod_active(p):
            node = str(spec(p).get("nodeName") or "")
            on_node[node] = on_node.get(node, 0) + 1
    ranked: list[tuple[ObjView, int]] = [
        (p, on_node.get(str(spec(p).get("nodeName") or ""), 0)) for p in pods
    ]

    def cmp(a: tuple[ObjView, int], b: tuple[ObjView, int]) -> int:
        return _deletion_key_cmp(a, b, now)

    ranked.sort(key=functools.cmp_to_key(cmp))
    return [p for p, _ in ranked]


# -- template hashing ---------------------------------------------------------------------

# rand.SafeEncodeString's alphabet: no vowels (no words) and no 0/1/3 (no confusion).
_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode_string(s: str) -> str:
    return "".join(_SAFE_ALPHANUMS[ord(ch) % len(_SAFE_ALPHANUMS)] for ch in s)


def template_hash(template: Any, collision_count: int | None = None) -> str:
    """``controller.ComputeHash``: FNV-32a of the template, then the collision count as four
    little-endian bytes, printed in decimal and re-encoded with SafeEncodeString.

    Upstream hashes a spew dump of the Go struct; we hash the canonical JSON (sorted keys)
    instead, so values differ from upstream's but are stable across restarts and processes.
    """
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little", signed=False)
    return safe_encode_string(str(fnv32a(data)))
