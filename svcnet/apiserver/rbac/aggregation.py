"""ClusterRole aggregation (upstream's clusterrole-aggregation controller), as a pure plan.

A ClusterRole with an ``aggregationRule`` has as rules the union of the rules of every other
ClusterRole its selectors match: selectors in order, the matched roles of each sorted by name,
a rule added once (``controller/clusterroleaggregation``). Aggregated roles can themselves be
aggregated (``view`` is labelled into ``edit``, ``edit`` into ``admin``), so the plan is
repeated until nothing changes, as the controller's requeues converge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from svcnet.api.selectors import label_selector_from_dict


def _name(role: Mapping[str, Any]) -> str:
    return str((role.get("metadata") or {}).get("name", ""))


def aggregated_rules(
    role: Mapping[str, Any], roles: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]] | None:
    """The rules ``role`` should hold, or None when it has no aggregationRule."""
    rule = role.get("aggregationRule")
    if rule is None:
        return None
    out: list[dict[str, Any]] = []
    by_name = sorted(roles, key=_name)
    for selector in rule.get("clusterRoleSelectors") or ():
        sel = label_selector_from_dict(selector)
        if sel.empty:
            # An empty selector selects nothing here: upstream skips it rather than taking
            # every ClusterRole.
            continue
        for other in by_name:
            if _name(other) == _name(role) or not sel.matches_object(other):
                continue
            for r in other.get("rules") or ():
                if r not in out:
                    out.append(dict(r))
    return out


def plan_aggregation(roles: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """ClusterRole name → the rules to write, for every aggregated role whose stored rules
    differ from what its selectors gather (applied transitively)."""
    current = {_name(r): dict(r) for r in roles}
    changed: dict[str, list[dict[str, Any]]] = {}
    for _ in range(len(current) + 1):
        progress = False
        snapshot = list(current.values())
        for name, role in current.items():
            want = aggregated_rules(role, snapshot)
            if want is not None and want != list(role.get("rules") or []):
                role["rules"] = want
                changed[name] = want
                progress = True
        if not progress:
            break
    return changed
