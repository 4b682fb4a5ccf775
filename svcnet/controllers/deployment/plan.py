"""Deployment planning, pure: one sync of a Deployment as an ordered list of writes.

This follows upstream ``pkg/controller/deployment`` (``sync.go``, ``rolling.go``,
``recreate.go``, ``progress.go``, ``util/deployment_util.go``) step by step. Upstream writes
as it goes; here the same steps run against local copies of the Deployment and its
ReplicaSets and *record* the writes (:class:`CreateReplicaSet`, :class:`UpdateReplicaSet`,
:class:`DeleteReplicaSet`, :class:`PatchDeploymentAnnotations`, :class:`UpdateDeploymentStatus`,
:class:`Event`); the controller applies them in order and stops at the first failure, so the
next sync (which re-reads everything) carries on. Upstream's intermediate status writes fold
into the one status write at the end, which is compared against the cached status.

ReplicaSets are named ``<deployment>-<hash>`` where the hash is
:func:`svcnet.controllers.podutil.template_hash` of the pod template and
``status.collisionCount``: the name is deterministic, so a sync that runs on a stale cache
gets ``AlreadyExists`` instead of making a second ReplicaSet.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from svcnet.api.objects import ObjView, annotations_of, meta, name, spec, status, uid
from svcnet.api.wellknown import LAST_APPLIED_ANNOTATION
from svcnet.controllers.podutil import (
    POD_TEMPLATE_HASH_LABEL,
    creation_time,
    is_terminating,
    owner_reference,
    parse_time,
    phase,
    template_hash,
)

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
CHANGE_CAUSE = "kubernetes.io/change-cause"
# Annotations of the Deployment that are not copied to its ReplicaSets (upstream's
# annotationsToSkip); kubernetes.io/change-cause *is* copied, which is what
# `kubectl rollout history` shows.
SKIP_COPY = frozenset(
    {
        LAST_APPLIED_ANNOTATION,
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        ROLLBACK_TO,
    }
)
MAX_REV_HISTORY_LENGTH = 2000

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"

# Condition reasons (util/deployment_util.go).
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_CREATED = "NewReplicaSetCreated"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "ReplicaSetCreateError"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

MAX_INT32 = 2**31 - 1


# -- the writes a plan records -----------------------------------------------------------


@dataclass(frozen=True)
class CreateReplicaSet:
    rs: dict[str, Any]


@dataclass(frozen=True)
class UpdateReplicaSet:
    """A PUT of the whole ReplicaSet (spec.replicas and annotations changed)."""

    rs: dict[str, Any]


@dataclass(frozen=True)
class DeleteReplicaSet:
    name: str
    uid: str


@dataclass(frozen=True)
class PatchDeploymentAnnotations:
    annotations: dict[str, str]


@dataclass(frozen=True)
class UpdateDeploymentStatus:
    status: dict[str, Any]


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


Action = (
    CreateReplicaSet
    | UpdateReplicaSet
    | DeleteReplicaSet
    | PatchDeploymentAnnotations
    | UpdateDeploymentStatus
    | Event
)


@dataclass
class DeploymentPlan:
    actions: list[Action] = field(default_factory=list)
    # Look again after this many seconds (a progress deadline that may pass).
    requeue_after: float | None = None


class InvalidDeployment(ValueError):
    """A spec the controller cannot act on (a bad maxSurge…): permanent until edited."""


# -- small upstream helpers ----------------------------------------------------------------


def replicas(obj: ObjView) -> int:
    r = spec(obj).get("replicas")
    return 1 if r is None else int(r)


def _int_status(obj: ObjView, key: str) -> int:
    return int(status(obj).get(key) or 0)


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """``GetScaledValueFromIntOrPercent``: an int, or ``"N%"`` of ``total``."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidDeployment(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        raise InvalidDeployment(
            f"invalid value for IntOrString: invalid type: string is not a percentage ({text!r})"
        )
    try:
        pct = int(text[:-1])
    except ValueError as e:
        raise InvalidDeployment(f"invalid value {text!r} for IntOrString") from e
    if round_up:
        return -(-pct * total // 100)
    return pct * total // 100


def is_rolling(d: ObjView) -> bool:
    return bool((spec(d).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate")


def resolve_fenceposts(d: ObjView) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for the desired count: surge rounds up, unavailable down,
    and both zero would deadlock so unavailable becomes 1."""
    rolling = (spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(d)
    surge = scaled_value(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: ObjView) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    _, unavailable = resolve_fenceposts(d)
    return min(unavailable, replicas(d))


def max_surge(d: ObjView) -> int:
    if not is_rolling(d):
        return 0
    return resolve_fenceposts(d)[0]


def has_progress_deadline(d: ObjView) -> bool:
    deadline = spec(d).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != MAX_INT32


def revision_of(rs: ObjView) -> int:
    try:
        return int(annotations_of(rs).get(REVISION, "0") or 0)
    except ValueError:
        return 0


def _strip_hash(template: Any) -> dict[str, Any]:
    t = copy.deepcopy(dict(template or {}))
    tmeta = t.get("metadata")
    if isinstance(tmeta, dict):
        lbls = dict(tmeta.get("labels") or {})
        lbls.pop(POD_TEMPLATE_HASH_LABEL, None)
        # Semantic equality treats an empty map like an absent one.
        if lbls:
            tmeta["labels"] = lbls
        else:
            tmeta.pop("labels", None)
        for k in [k for k, v in tmeta.items() if v in (None, {}, [])]:
            del tmeta[k]
        if not tmeta:
            t.pop("metadata")
    return t


def equal_ignore_hash(t1: Any, t2: Any) -> bool:
    """``EqualIgnoreHash``: templates equal once the pod-template-hash label is removed."""
    return _strip_hash(t1) == _strip_hash(t2)


def _created_key(rs: ObjView) -> tuple[float, str]:
    t = creation_time(rs)
    return (t if t is not None else float("inf"), name(rs))


def by_creation(rss: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rss, key=_created_key)


def find_new_replica_set(d: ObjView, rss: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The oldest ReplicaSet whose template equals the Deployment's (several can, after a
    hash collision; the oldest wins, as upstream)."""
    template = spec(d).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash(spec(rs).get("template"), template):
            return rs
    return None


def _sum(rss: Sequence[ObjView | None], fn: Any) -> int:
    return sum(int(fn(rs)) for rs in rss if rs is not None)


def spec_replicas_sum(rss: Sequence[ObjView | None]) -> int:
    return _sum(rss, replicas)


def _active(rss: Sequence[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def get_condition(st: Mapping[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in st.get("conditions") or ():
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


def new_condition(ctype: str, cstatus: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": cstatus,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(st: dict[str, Any], cond: dict[str, Any]) -> None:
    """``SetDeploymentCondition``: no change when status and reason are the same; keep the
    transition time when only the reason changes."""
    current = get_condition(st, cond["type"])
    if (
        current is not None
        and current.get("status") == cond["status"]
        and current.get("reason") == cond["reason"]
    ):
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    st["conditions"] = [c for c in st.get("conditions") or () if c.get("type") != cond["type"]]
    st["conditions"].append(cond)


def remove_condition(st: dict[str, Any], ctype: str) -> None:
    st["conditions"] = [c for c in st.get("conditions") or () if c.get("type") != ctype]


def deployment_complete(d: ObjView, st: Mapping[str, Any]) -> bool:
    want = replicas(d)
    return (
        int(st.get("updatedReplicas") or 0) == want
        and int(st.get("replicas") or 0) == want
        and int(st.get("availableReplicas") or 0) == want
        and int(st.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 0)
    )


def deployment_progressing(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def g(st: Mapping[str, Any], k: str) -> int:
        return int(st.get(k) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return (
        g(new, "updatedReplicas") > g(old, "updatedReplicas")
        or new_old < old_old
        or g(new, "readyReplicas") > g(old, "readyReplicas")
        or g(new, "availableReplicas") > g(old, "availableReplicas")
    )


def _timed_out(d: ObjView, st: Mapping[str, Any], now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(st, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + int(spec(d).get("progressDeadlineSeconds") or 0) < now


# -- the sync, against local copies ---------------------------------------------------------


class _Sync:
    def __init__(
        self,
        d: ObjView,
        rss: Sequence[ObjView],
        pods_by_rs: Mapping[str, Sequence[ObjView]],
        now: float,
        now_text: str,
    ) -> None:
        self.d: dict[str, Any] = copy.deepcopy(dict(d))
        self.d.setdefault("status", {})
        self.orig_status = copy.deepcopy(dict(status(d)))
        self.rss = [copy.deepcopy(dict(rs)) for rs in rss]
        self.pods_by_rs = pods_by_rs
        self.now = now
        self.now_text = now_text
        self.plan = DeploymentPlan()

    @property
    def st(self) -> dict[str, Any]:
        return self.d["status"]  # type: ignore[no-any-return]

    def event(self, etype: str, reason: str, message: str) -> None:
        self.plan.actions.append(Event(etype, reason, message))

    # -- annotations ---------------------------------------------------------------------

    def set_replicas_annotations(self, rs: dict[str, Any]) -> bool:
        want = {
            DESIRED_REPLICAS: str(replicas(self.d)),
            MAX_REPLICAS: str(replicas(self.d) + max_surge(self.d)),
        }
        ann = rs["metadata"].setdefault("annotations", {})
        changed = any(ann.get(k) != v for k, v in want.items())
        ann.update(want)
        return changed

    def set_new_rs_annotations(self, rs: dict[str, Any], new_revision: int, exists: bool) -> bool:
        """``SetNewReplicaSetAnnotations``: copy the Deployment's annotations, raise the
        revision (keeping the old one in revision-history when this is a rollback to it)."""
        ann: dict[str, str] = rs["metadata"].setdefault("annotations", {})
        changed = False
        for k, v in annotations_of(self.d).items():
            if k in SKIP_COPY or ann.get(k) == v:
                continue
            ann[k] = v
            changed = True
        old_text = ann.get(REVISION)
        try:
            old_rev = int(old_text) if old_text else 0
        except ValueError:
            return changed
        if old_rev < new_revision:
            ann[REVISION] = str(new_revision)
            changed = True
            if old_text:
                history = ann.get(REVISION_HISTORY, "")
                revs = [r for r in history.split(",") if r] + [old_text]
                while len(",".join(revs)) > MAX_REV_HISTORY_LENGTH and len(revs) > 1:
                    revs.pop(0)
                ann[REVISION_HISTORY] = ",".join(revs)
        if not exists and self.set_replicas_annotations(rs):
            changed = True
        return changed

    def set_deployment_revision(self, revision: str) -> None:
        if annotations_of(self.d).get(REVISION) != revision:
            self.d["metadata"].setdefault("annotations", {})[REVISION] = revision
            self.plan.actions.append(PatchDeploymentAnnotations({REVISION: revision}))

    # -- finding and creating the new ReplicaSet -------------------------------------------

    def split(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        new = find_new_replica_set(self.d, self.rss)
        return new, [rs for rs in self.rss if rs is not new]

    def get_all(self, create: bool) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """``getAllReplicaSetsAndSyncRevision``."""
        new, old = self.split()
        max_old = max((revision_of(rs) for rs in old), default=0)
        new_revision = max_old + 1
        if new is not None:
            annotated = self.set_new_rs_annotations(new, new_revision, True)
            msr = int(spec(self.d).get("minReadySeconds") or 0)
            if annotated or int(spec(new).get("minReadySeconds") or 0) != msr:
                new["spec"]["minReadySeconds"] = msr
                self.plan.actions.append(UpdateReplicaSet(copy.deepcopy(new)))
                return new, old
            self.set_deployment_revision(annotations_of(new).get(REVISION, ""))
            if has_progress_deadline(self.d) and get_condition(self.st, PROGRESSING) is None:
                set_condition(
                    self.st,
                    new_condition(
                        PROGRESSING,
                        "True",
                        FOUND_NEW_RS,
                        f'Found new replica set "{name(new)}"',
                        self.now_text,
                    ),
                )
            return new, old
        if not create:
            return None, old
        new = self.new_replica_set(old, new_revision)
        self.rss.append(new)
        return new, old

    def new_replica_set(self, old: list[dict[str, Any]], revision: int) -> dict[str, Any]:
        d = self.d
        template = copy.deepcopy(dict(spec(d).get("template") or {}))
        collision = status(d).get("collisionCount")
        h = template_hash(template, None if collision is None else int(collision))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), POD_TEMPLATE_HASH_LABEL: h}
        selector = copy.deepcopy(dict(spec(d).get("selector") or {}))
        selector["matchLabels"] = {
            **(selector.get("matchLabels") or {}),
            POD_TEMPLATE_HASH_LABEL: h,
        }
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name(d)}-{h}",
                "namespace": meta(d).get("namespace"),
                "ownerReferences": [owner_reference(d, "apps/v1", "Deployment")],
                "labels": dict(tmeta["labels"]),
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(spec(d).get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        count = self.new_rs_new_replicas([*old, rs], rs)
        rs["spec"]["replicas"] = count
        self.set_new_rs_annotations(rs, revision, False)
        self.plan.actions.append(CreateReplicaSet(copy.deepcopy(rs)))
        if count > 0:
            self.event(
                "Normal", "ScalingReplicaSet", f"Scaled up replica set {name(rs)} to {count}"
            )
        self.set_deployment_revision(str(revision))
        if has_progress_deadline(d):
            set_condition(
                self.st,
                new_condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_CREATED,
                    f'Created new replica set "{name(rs)}"',
                    self.now_text,
                ),
            )
        return rs

    def new_rs_new_replicas(self, all_rss: list[dict[str, Any]], new: ObjView) -> int:
        """``NewRSNewReplicas``: how far the new ReplicaSet may grow now."""
        if not is_rolling(self.d):
            return replicas(self.d)
        current = spec_replicas_sum(all_rss)
        max_total = replicas(self.d) + max_surge(self.d)
        if current >= max_total:
            return replicas(new)
        up = min(max_total - current, replicas(self.d) - replicas(new))
        return replicas(new) + up

    # -- scaling ---------------------------------------------------------------------------

    def scale_and_record(self, rs: dict[str, Any], new_scale: int) -> bool:
        if replicas(rs) == new_scale:
            return False
        op = "up" if replicas(rs) < new_scale else "down"
        return self.scale(rs, new_scale, op)

    def scale(self, rs: dict[str, Any], new_scale: int, op: str) -> bool:
        size_changes = replicas(rs) != new_scale
        annotations_change = self.set_replicas_annotations(rs)
        if not (size_changes or annotations_change):
            return False
        old_scale = replicas(rs)
        rs["spec"]["replicas"] = new_scale
        self.plan.actions.append(UpdateReplicaSet(copy.deepcopy(rs)))
        if size_changes:
            self.event(
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {op} replica set {name(rs)} to {new_scale} from {old_scale}",
            )
        return size_changes

    def scale_deployment(self, new: dict[str, Any] | None, old: list[dict[str, Any]]) -> None:
        """``scale``: a change of spec.replicas, spread proportionally during a rollout."""
        d = self.d
        latest = self.active_or_latest(new, old)
        if latest is not None:
            if replicas(latest) != replicas(d):
                self.scale_and_record(latest, replicas(d))
            return
        if self.is_saturated(new):
            for rs in _active(old):
                self.scale_and_record(rs, 0)
            return
        if not is_rolling(d):
            return
        all_rss = _active([*old, new])
        allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
        to_add = allowed - spec_replicas_sum(all_rss)
        op = ""
        if to_add > 0:
            # ReplicaSetsBySizeNewer: larger first, then newer first.
            all_rss.sort(key=lambda rs: (-replicas(rs), -_created_key(rs)[0], name(rs)))
            op = "up"
        elif to_add < 0:
            # ReplicaSetsBySizeOlder: larger first, then older first.
            all_rss.sort(key=lambda rs: (-replicas(rs), _created_key(rs)))
            op = "down"
        added = 0
        sizes: dict[str, int] = {}
        for rs in all_rss:
            if to_add != 0:
                proportion = self.proportion(rs, to_add, added)
                sizes[name(rs)] = replicas(rs) + proportion
                added += proportion
            else:
                sizes[name(rs)] = replicas(rs)
        for i, rs in enumerate(all_rss):
            if i == 0 and to_add != 0:
                sizes[name(rs)] = max(0, sizes[name(rs)] + to_add - added)
            self.scale(rs, sizes[name(rs)], op)

    def proportion(self, rs: ObjView, to_add: int, added: int) -> int:
        """``GetProportion``: this ReplicaSet's share of a scaling, by its max-replicas."""
        if replicas(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        d = self.d
        if replicas(d) == 0:
            fraction = -replicas(rs)
        else:
            deployment_replicas = replicas(d) + max_surge(d)
            try:
                annotated = int(annotations_of(rs).get(MAX_REPLICAS, ""))
            except ValueError:
                annotated = _int_status(d, "replicas")
            if annotated == 0:
                fraction = 0
            else:
                # integer.RoundToInt32: round half away from zero.
                exact = replicas(rs) * deployment_replicas / annotated
                fraction = int(exact + 0.5) if exact >= 0 else -int(-exact + 0.5)
                fraction -= replicas(rs)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    def active_or_latest(
        self, new: dict[str, Any] | None, old: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        if new is None and not old:
            return None
        newest_first = sorted(old, key=_created_key, reverse=True)
        active = _active([*newest_first, new])
        if not active:
            return new if new is not None else newest_first[0]
        return active[0] if len(active) == 1 else None

    def is_saturated(self, rs: ObjView | None) -> bool:
        if rs is None:
            return False
        try:
            desired = int(annotations_of(rs).get(DESIRED_REPLICAS, ""))
        except ValueError:
            return False
        want = replicas(self.d)
        return (
            desired == want
            and _int_status(rs, "availableReplicas") == want
            and replicas(rs) == want
        )

    def is_scaling_event(self) -> bool:
        new, old = self.split()
        for rs in _active([*old, new]):
            try:
                desired = int(annotations_of(rs).get(DESIRED_REPLICAS, ""))
            except ValueError:
                continue
            if desired != replicas(self.d):
                return True
        return False

    # -- rolling update --------------------------------------------------------------------

    def reconcile_new(self, all_rss: list[dict[str, Any]], new: dict[str, Any]) -> bool:
        want = replicas(self.d)
        if replicas(new) == want:
            return False
        if replicas(new) > want:
            return self.scale_and_record(new, want)
        return self.scale_and_record(new, self.new_rs_new_replicas(all_rss, new))

    def reconcile_old(
        self, all_rss: list[dict[str, Any]], old: list[dict[str, Any]], new: dict[str, Any]
    ) -> bool:
        old_pods = spec_replicas_sum(old)
        if old_pods == 0:
            return False
        all_pods = spec_replicas_sum(all_rss)
        min_available = replicas(self.d) - max_unavailable(self.d)
        new_unavailable = replicas(new) - _int_status(new, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = self.cleanup_unhealthy(old, max_scaled_down)
        scaled = self.scale_down_old_for_rolling([*old, new], old)
        return cleaned + scaled > 0

    def cleanup_unhealthy(self, old: list[dict[str, Any]], max_cleanup: int) -> int:
        """Scale down the unavailable replicas of old ReplicaSets first: they serve nobody."""
        total = 0
        for rs in by_creation(old):
            if max_cleanup - total <= 0:
                break
            if replicas(rs) == 0 or replicas(rs) == _int_status(rs, "availableReplicas"):
                continue
            down = min(max_cleanup - total, replicas(rs) - _int_status(rs, "availableReplicas"))
            self.scale_and_record(rs, replicas(rs) - down)
            total += down
        return total

    def scale_down_old_for_rolling(
        self, all_rss: list[dict[str, Any]], old: list[dict[str, Any]]
    ) -> int:
        min_available = replicas(self.d) - max_unavailable(self.d)
        available = _sum(all_rss, lambda rs: _int_status(rs, "availableReplicas"))
        if available <= min_available:
            return 0
        total, target = 0, available - min_available
        for rs in by_creation(old):
            if total >= target:
                break
            if replicas(rs) == 0:
                continue
            down = min(replicas(rs), target - total)
            self.scale_and_record(rs, replicas(rs) - down)
            total += down
        return total

    def rollout_rolling(self) -> None:
        new, old = self.get_all(True)
        assert new is not None
        all_rss = [*old, new]
        if self.reconcile_new(all_rss, new):
            self.sync_rollout_status(all_rss, new)
            return
        if self.reconcile_old(all_rss, _active(old), new):
            self.sync_rollout_status(all_rss, new)
            return
        if deployment_complete(self.d, self.st):
            self.cleanup(old)
        self.sync_rollout_status(all_rss, new)

    # -- recreate --------------------------------------------------------------------------

    def old_pods_running(self, new: ObjView | None, old: list[dict[str, Any]]) -> bool:
        if _sum(old, lambda rs: _int_status(rs, "replicas")) > 0:
            return True
        for rs_uid, pods in self.pods_by_rs.items():
            if new is not None and rs_uid == uid(new):
                continue
            for pod in pods:
                if phase(pod) in ("Failed", "Succeeded"):
                    continue
                return True
        return False

    def rollout_recreate(self) -> None:
        new, old = self.get_all(False)
        all_rss: list[dict[str, Any] | None] = [*old, new]
        scaled_down = False
        for rs in _active(old):
            if self.scale_and_record(rs, 0):
                scaled_down = True
        if scaled_down or self.old_pods_running(new, old):
            self.sync_rollout_status(all_rss, new)
            return
        if new is None:
            new, old = self.get_all(True)
            all_rss = [*old, new]
        assert new is not None
        self.scale_and_record(new, replicas(self.d))
        if deployment_complete(self.d, self.st):
            self.cleanup(old)
        self.sync_rollout_status(all_rss, new)

    # -- history, status -------------------------------------------------------------------

    def cleanup(self, old: list[dict[str, Any]]) -> None:
        """``cleanupDeployment``: delete the oldest revisions beyond revisionHistoryLimit,
        only those already scaled to zero."""
        limit = spec(self.d).get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [rs for rs in old if not is_terminating(rs)]
        diff = len(cleanable) - int(limit)
        if diff <= 0:
            return
        cleanable.sort(key=lambda rs: (revision_of(rs), _created_key(rs)))
        for rs in cleanable[:diff]:
            if (
                _int_status(rs, "replicas") != 0
                or replicas(rs) != 0
                or int(meta(rs).get("generation") or 0) > _int_status(rs, "observedGeneration")
            ):
                continue
            self.plan.actions.append(DeleteReplicaSet(name(rs), uid(rs)))

    def calculate_status(
        self, all_rss: Sequence[ObjView | None], new: ObjView | None
    ) -> dict[str, Any]:
        available = _sum(all_rss, lambda rs: _int_status(rs, "availableReplicas"))
        total = spec_replicas_sum(all_rss)
        st: dict[str, Any] = {
            "observedGeneration": int(meta(self.d).get("generation") or 0),
            "replicas": _sum(all_rss, lambda rs: _int_status(rs, "replicas")),
            "updatedReplicas": _int_status(new, "replicas") if new is not None else 0,
            "readyReplicas": _sum(all_rss, lambda rs: _int_status(rs, "readyReplicas")),
            "availableReplicas": available,
            "unavailableReplicas": max(total - available, 0),
            "conditions": [dict(c) for c in self.st.get("conditions") or ()],
        }
        if self.st.get("collisionCount") is not None:
            st["collisionCount"] = self.st["collisionCount"]
        if available >= replicas(self.d) - max_unavailable(self.d):
            set_condition(
                st,
                new_condition(
                    AVAILABLE,
                    "True",
                    MIN_AVAILABLE,
                    "Deployment has minimum availability.",
                    self.now_text,
                ),
            )
        else:
            set_condition(
                st,
                new_condition(
                    AVAILABLE,
                    "False",
                    MIN_UNAVAILABLE,
                    "Deployment does not have minimum availability.",
                    self.now_text,
                ),
            )
        return st

    def write_status(self, new_status: dict[str, Any]) -> bool:
        if not new_status.get("conditions"):
            new_status.pop("conditions", None)
        if new_status == self.orig_status:
            return False
        self.d["status"] = new_status
        self.plan.actions.append(UpdateDeploymentStatus(copy.deepcopy(new_status)))
        return True

    def sync_status(self, all_rss: Sequence[ObjView | None], new: ObjView | None) -> None:
        self.write_status(self.calculate_status(all_rss, new))

    def sync_rollout_status(self, all_rss: Sequence[ObjView | None], new: ObjView | None) -> None:
        d = self.d
        st = self.calculate_status(all_rss, new)
        if not has_progress_deadline(d):
            remove_condition(st, PROGRESSING)
        current = get_condition(self.st, PROGRESSING)
        complete_before = (
            st["replicas"] == st["updatedReplicas"]
            and current is not None
            and current.get("reason") == NEW_RS_AVAILABLE
        )
        if has_progress_deadline(d) and not complete_before:
            rs_name = name(new) if new is not None else ""
            if deployment_complete(d, st):
                msg = (
                    f'ReplicaSet "{rs_name}" has successfully progressed.'
                    if new is not None
                    else f'Deployment "{name(d)}" has successfully progressed.'
                )
                set_condition(
                    st, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, self.now_text)
                )
            elif deployment_progressing(self.st, st):
                msg = (
                    f'ReplicaSet "{rs_name}" is progressing.'
                    if new is not None
                    else f'Deployment "{name(d)}" is progressing.'
                )
                cond = new_condition(PROGRESSING, "True", RS_UPDATED, msg, self.now_text)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    remove_condition(st, PROGRESSING)
                set_condition(st, cond)
            elif _timed_out(d, st, self.now):
                msg = (
                    f'ReplicaSet "{rs_name}" has timed out progressing.'
                    if new is not None
                    else f'Deployment "{name(d)}" has timed out progressing.'
                )
                set_condition(
                    st, new_condition(PROGRESSING, "False", TIMED_OUT, msg, self.now_text)
                )
        failure = next(
            (
                get_condition(status(rs), REPLICA_FAILURE)
                for rs in all_rss
                if rs is not None and get_condition(status(rs), REPLICA_FAILURE)
            ),
            None,
        )
        if failure is not None:
            set_condition(
                st,
                new_condition(
                    REPLICA_FAILURE,
                    str(failure.get("status")),
                    str(failure.get("reason")),
                    str(failure.get("message")),
                    self.now_text,
                ),
            )
        else:
            remove_condition(st, REPLICA_FAILURE)
        if not self.write_status(st):
            self.requeue_stuck(st)

    def requeue_stuck(self, st: Mapping[str, Any]) -> None:
        """A rollout making no progress is looked at again when its deadline passes."""
        cond = get_condition(st, PROGRESSING)
        if not has_progress_deadline(self.d) or cond is None:
            return
        if deployment_complete(self.d, st) or cond.get("reason") == TIMED_OUT:
            return
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return
        after = since + int(spec(self.d).get("progressDeadlineSeconds") or 0) - self.now
        self.plan.requeue_after = max(after, 0.0) + 1.0

    def check_paused_conditions(self) -> None:
        if not has_progress_deadline(self.d):
            return
        cond = get_condition(self.st, PROGRESSING)
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return
        paused_exists = cond is not None and cond.get("reason") == PAUSED
        if spec(self.d).get("paused") and not paused_exists:
            set_condition(
                self.st,
                new_condition(
                    PROGRESSING, "Unknown", PAUSED, "Deployment is paused", self.now_text
                ),
            )
        elif not spec(self.d).get("paused") and paused_exists:
            set_condition(
                self.st,
                new_condition(
                    PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", self.now_text
                ),
            )

    def sync_only(self) -> None:
        """``sync``: scaling and cleanup without rolling (paused, or a scaling event)."""
        new, old = self.get_all(False)
        self.scale_deployment(new, old)
        if spec(self.d).get("paused"):
            self.cleanup(old)
        self.sync_status([*old, new], new)


def plan_deployment(
    d: ObjView,
    replica_sets: Sequence[ObjView],
    pods_by_rs: Mapping[str, Sequence[ObjView]],
    now: float,
    now_text: str,
) -> DeploymentPlan:
    """One ``syncDeployment``: ``replica_sets`` are those the Deployment controls (after
    claiming), ``pods_by_rs`` their pods by ReplicaSet uid (only Recreate looks at them)."""
    s = _Sync(d, replica_sets, pods_by_rs, now, now_text)
    sel = spec(d).get("selector")
    if isinstance(sel, Mapping) and not sel.get("matchLabels") and not sel.get("matchExpressions"):
        s.event(
            "Warning",
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.",
        )
        gen = int(meta(d).get("generation") or 0)
        if _int_status(d, "observedGeneration") < gen:
            s.write_status({**s.orig_status, "observedGeneration": gen})
        return s.plan
    if is_terminating(d):
        new, old = s.get_all(False)
        s.sync_status([*old, new], new)
        return s.plan
    s.check_paused_conditions()
    if spec(d).get("paused") or s.is_scaling_event():
        s.sync_only()
        return s.plan
    if is_rolling(d):
        s.rollout_rolling()
    else:
        s.rollout_recreate()
    return s.plan


def revision_history(replica_sets: Sequence[ObjView]) -> list[tuple[int, str, str]]:
    """(revision, ReplicaSet name, change-cause) sorted by revision: what
    ``kubectl rollout history`` prints."""
    rows = [
        (revision_of(rs), name(rs), annotations_of(rs).get(CHANGE_CAUSE, "")) for rs in replica_sets
    ]
    return sorted(rows)
