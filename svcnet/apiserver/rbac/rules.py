"""Policy rules: matching a request against a rule, and one rule set covering another (pure).

Upstream's ``rbac/v1`` helpers (``VerbMatches``, ``APIGroupMatches``, ``ResourceMatches``,
``ResourceNameMatches``, ``NonResourceURLMatches``) and ``registry/rbac/validation``
(``Covers``, ``CompactString``). Rules enter as frozen :class:`Rule` values with sets, so a
decision is a few set lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ALL = "*"


@dataclass(frozen=True)
class Attributes:
    """What the authorizer decides on (upstream's ``authorizer.Attributes``)."""

    user: str
    groups: tuple[str, ...]
    verb: str
    # Resource requests: group, resource, subresource, namespace and name.
    resource_request: bool = True
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    # Non-resource requests: the URL path.
    path: str = ""


@dataclass(frozen=True)
class Rule:
    """One ``PolicyRule``, its lists kept in order (for output) and as sets (for matching)."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_verbs", frozenset(self.verbs))
        object.__setattr__(self, "_groups", frozenset(self.api_groups))
        object.__setattr__(self, "_resources", frozenset(self.resources))
        object.__setattr__(self, "_names", frozenset(self.resource_names))
        # "*/status" rules name a subresource of every resource.
        object.__setattr__(
            self,
            "_any_subresource",
            frozenset(r[2:] for r in self.resources if r.startswith("*/")),
        )
        object.__setattr__(
            self,
            "_url_prefixes",
            tuple(u.rstrip("*") for u in self.non_resource_urls if u.endswith("*")),
        )

    @classmethod
    def from_dict(cls, rule: Mapping[str, Any]) -> Rule:
        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in rule.get(key) or ())

        return cls(
            strings("verbs"),
            strings("apiGroups"),
            strings("resources"),
            strings("resourceNames"),
            strings("nonResourceURLs"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": list(self.verbs)}
        if self.api_groups:
            out["apiGroups"] = list(self.api_groups)
        if self.resources:
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        return out

    # -- matching (rbac.go RuleAllows) ---------------------------------------------------

    def allows(self, a: Attributes) -> bool:
        if a.resource_request:
            return (
                self._verb(a.verb)
                and self._group(a.api_group)
                and self._resource(a.resource, a.subresource)
                and self._name(a.name)
            )
        return self._verb(a.verb) and self._url(a.path)

    def _verb(self, verb: str) -> bool:
        v: frozenset[str] = self._verbs  # type: ignore[attr-defined]
        return ALL in v or verb in v

    def _group(self, group: str) -> bool:
        g: frozenset[str] = self._groups  # type: ignore[attr-defined]
        return ALL in g or group in g

    def _resource(self, resource: str, subresource: str) -> bool:
        r: frozenset[str] = self._resources  # type: ignore[attr-defined]
        if ALL in r:
            return True
        if not subresource:
            return resource in r
        if f"{resource}/{subresource}" in r:
            return True
        return subresource in self._any_subresource  # type: ignore[attr-defined]

    def _name(self, name: str) -> bool:
        n: frozenset[str] = self._names  # type: ignore[attr-defined]
        return not n or name in n

    def _url(self, path: str) -> bool:
        if ALL in self.non_resource_urls or path in self.non_resource_urls:
            return True
        prefixes: tuple[str, ...] = self._url_prefixes  # type: ignore[attr-defined]
        return any(path.startswith(p) for p in prefixes)


def rules_of(raw: Iterable[Mapping[str, Any]] | None) -> tuple[Rule, ...]:
    return tuple(Rule.from_dict(r) for r in raw or ())


# -- covering (registry/rbac/validation/policy_comparator.go) -----------------------------


def _breakdown(rule: Rule) -> list[Rule]:
    """One rule per (group, resource, name, verb) or (url, verb): the smallest units a set
    of owner rules must cover (upstream's BreakdownRule)."""
    out: list[Rule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out.extend(
                        Rule((verb,), (group,), (resource,), (name,))
                        for name in rule.resource_names
                    )
                else:
                    out.append(Rule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        out.extend(Rule((verb,), non_resource_urls=(url,)) for verb in rule.verbs)
    return out


def _has_all(have: Sequence[str], want: Sequence[str]) -> bool:
    return ALL in have or set(want) <= set(have)


def _resource_covers(owner: Sequence[str], requested: Sequence[str]) -> bool:
    if ALL in owner:
        return True
    for r in requested:
        if r in owner:
            continue
        # "*/foo" covers "pods/foo"; "pods/*"-style rules are not wildcards upstream.
        if "/" in r and f"*/{r.split('/', 1)[1]}" in owner:
            continue
        return False
    return True


def _url_covers(owner: Sequence[str], requested: Sequence[str]) -> bool:
    for r in requested:
        if r in owner or ALL in owner:
            continue
        if any(o.endswith("*") and r.startswith(o.rstrip("*")) for o in owner):
            continue
        return False
    return True


def _rule_covers(owner: Rule, sub: Rule) -> bool:
    """upstream's ruleCovers: every field of ``sub`` is within ``owner``."""
    return (
        _has_all(owner.verbs, sub.verbs)
        and _has_all(owner.api_groups, sub.api_groups)
        and _resource_covers(owner.resources, sub.resources)
        and _url_covers(owner.non_resource_urls, sub.non_resource_urls)
        and (
            not owner.resource_names
            or (bool(sub.resource_names) and set(sub.resource_names) <= set(owner.resource_names))
        )
    )


def uncovered(owner: Sequence[Rule], requested: Iterable[Rule]) -> list[Rule]:
    """The pieces of ``requested`` no owner rule covers (empty: the owner holds them all)."""
    missing: list[Rule] = []
    for rule in requested:
        for sub in _breakdown(rule):
            if not any(_rule_covers(o, sub) for o in owner):
                missing.append(sub)
    return missing


def _go_quoted_list(items: Sequence[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(s) for s in items) + "]"


def go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def compact_string(rule: Rule) -> str:
    """upstream's rbacv1helpers.CompactString: ``{APIGroups:[""], Resources:["pods"],
    Verbs:["get"]}``, fields left out when empty."""
    parts = []
    for label, values in (
        ("APIGroups", rule.api_groups),
        ("Resources", rule.resources),
        ("NonResourceURLs", rule.non_resource_urls),
        ("ResourceNames", rule.resource_names),
        ("Verbs", rule.verbs),
    ):
        if values:
            parts.append(f"{label}:{_go_quoted_list(values)}")
    return "{" + ", ".join(parts) + "}"


def compact(rules: Sequence[Rule]) -> list[Rule]:
    """upstream's CompactRules: simple resource rules (one group, one resource, at most one
    name) merge their verbs into one rule; the rest stay as they are."""
    merged: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    out: list[Rule] = []
    for r in rules:
        simple = (
            len(r.api_groups) == 1
            and len(r.resources) == 1
            and len(r.resource_names) <= 1
            and not r.non_resource_urls
        )
        if not simple:
            out.append(r)
            continue
        merged.setdefault((r.api_groups[0], r.resources[0], r.resource_names), []).extend(r.verbs)
    out.extend(Rule(tuple(v), (g,), (res,), names) for (g, res, names), v in merged.items())
    return out
