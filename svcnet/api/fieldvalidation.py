"""``?fieldValidation=Strict|Warn|Ignore``: unknown and duplicate fields, as kube-apiserver.

Upstream decodes every write into the kind's Go struct; a field the struct lacks is dropped
and a field given twice keeps its last value. The directive only decides what the client is
told (``k8s.io/apiserver/pkg/endpoints/handlers/{create,update,patch}.go``):

* ``Ignore``: nothing; ``Warn`` (the default when the parameter is absent): one ``Warning``
  header per finding, e.g. ``unknown field "spec.foo"``; ``Strict``: the write is refused,
  every finding named, joined with ``", "`` after ``strict decoding error: ``.
* The refusal of a create or update is 400 BadRequest
  ``Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.foo"``
  (``transformDecodeError``); of a patch it is 422 Invalid over the field ``patch``:
  `` "" is invalid: patch: Invalid value: "<patched object or patch>": strict decoding error: ...``.
* A value outside the three is 422:
  ``CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "x": supported values: "", "Ignore", "Strict", "Warn"``.

Paths are written as ``sigs.k8s.io/json`` writes them: ``spec.ports[0].foo``. Kinds without a
schema are not checked for unknown fields. The checks are pure and walk the object once with the
schema; duplicates need the raw body (Python's parsers keep the last value silently), so
:func:`find_duplicate_fields` reparses it with a pairs hook.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import yaml

from svcnet.api import schema as sch
from svcnet.api.errors import BadRequest, Invalid, invalid, not_supported
from svcnet.api.jsonvalue import copy_json

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
DIRECTIVES = (IGNORE, STRICT, WARN)


def parse_directive(raw: str | None, options_kind: str = "CreateOptions") -> str:
    """The directive in force for ``?fieldValidation=<raw>``; absent or empty means Warn.

    ``options_kind`` is ``CreateOptions``, ``UpdateOptions`` or ``PatchOptions`` (for the 422).
    """
    if raw is None or raw == "":
        return WARN
    if raw in DIRECTIVES:
        return raw
    raise Invalid(
        options_kind,
        "",
        [not_supported("fieldValidation", raw, ["", *DIRECTIVES])],
        group="meta.k8s.io",
    )


# --- unknown fields ---------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(
    value: Any, node: sch.Node | None, path: str
) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Yield (path, parent dict, key) for every unknown field under ``value``."""
    if isinstance(value, dict):
        n = sch.resolve(node)
        if sch.accepts_any(n):
            return
        props = n.get("properties") or {}
        extra = n.get("additionalProperties")
        for key, child in value.items():
            if key in props:
                yield from _walk(child, props[key], _join(path, key))
            elif isinstance(extra, dict):
                yield from _walk(child, extra, _join(path, key))
            elif extra is True:
                continue
            else:
                yield _join(path, key), value, key
    elif isinstance(value, list):
        item = sch.items(node)
        if not item:
            return
        for i, child in enumerate(value):
            yield from _walk(child, item, f"{path}[{i}]")


class _Check:
    """What ``_walk`` looks up in one schema node, looked up once per node."""

    __slots__ = ("any", "extra", "extra_any", "extra_check", "item", "kids", "node", "props")

    def __init__(self, node: sch.Node | None) -> None:
        self.node = node  # held, so that the node's id stays its cache key
        n = sch.resolve(node)
        self.any = sch.accepts_any(n)
        self.props: Any = n.get("properties") or {}
        extra = n.get("additionalProperties")
        self.extra = extra if isinstance(extra, dict) else None
        self.extra_any = extra is True
        item = sch.items(node)
        self.item = item if item else None
        # The checks of the declared properties met so far (a finite set: never map keys).
        self.kids: dict[str, _Check] = {}
        self.extra_check: _Check | None = None

    def kid(self, key: str) -> _Check | None:
        """The check of the child ``key``; None when the schema has no such field."""
        node = self.props.get(key, _NO_PROP)
        if node is not _NO_PROP:
            kid = self.kids[key] = _check(node)
            return kid
        if self.extra is not None:
            if self.extra_check is None:
                self.extra_check = _check(self.extra)
            return self.extra_check
        if self.extra_any:
            return _ANY
        return None


_CHECKS: dict[int, _Check] = {}
_NO_PROP = object()


def _check(node: sch.Node | None) -> _Check:
    check = _CHECKS.get(id(node))
    if check is None or check.node is not node:
        check = _CHECKS[id(node)] = _Check(node)
    return check


_ANY = _Check(None)  # the empty schema accepts anything


def _has_unknown(value: Any, check: _Check) -> bool:
    """Whether ``_walk`` would find anything: the same decisions, no paths, no generators."""
    return _count_known(value, check) < 0


def _count_known(value: Any, check: _Check) -> int:
    """The number of object keys in ``value`` at every depth, or -1 as soon as one is a field
    the schema does not have (the decisions of ``_walk``, without paths or generators).
    Types are tested against tuples, not ``dict | list``, which builds a union per call."""
    if isinstance(value, dict):
        if check.any:
            return count_keys(value)
        n = len(value)
        kids = check.kids
        for key, child in value.items():
            kid = kids.get(key)
            if kid is None:
                kid = check.kid(key)
                if kid is None:
                    return -1
            if isinstance(child, (dict, list)):
                c = _count_known(child, kid)
                if c < 0:
                    return -1
                n += c
        return n
    if isinstance(value, list):
        if check.item is None:
            return count_keys(value)
        item = _check(check.item)
        n = 0
        for child in value:
            if isinstance(child, (dict, list)):
                c = _count_known(child, item)
                if c < 0:
                    return -1
                n += c
        return n
    return 0


def count_keys(value: Any) -> int:
    """The number of object keys in a decoded JSON value, at every depth."""
    # Loops rather than sum() over a generator, and no call per scalar: this runs on every
    # JSON write.
    n = 0
    if isinstance(value, dict):
        n = len(value)
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return 0
    for v in children:
        if isinstance(v, (dict, list)):
            n += count_keys(v)
    return n


def known_key_count(obj: dict[str, Any], gvk: sch.HasGVK) -> int:
    """The number of object keys in ``obj`` (at every depth), or -1 when it has a field its
    kind's schema does not have. One walk answers both questions a write asks: unknown fields,
    and (with the raw body) whether a key may be repeated."""
    root = sch.root_schema(gvk)
    if root is None:
        return count_keys(obj)
    return _count_known(obj, _check(root))


def find_unknown_fields(obj: dict[str, Any], gvk: sch.HasGVK) -> list[str]:
    """Paths of the fields of ``obj`` its kind's schema does not have (``spec.foo``)."""
    root = sch.root_schema(gvk)
    if root is None:
        return []
    # Nearly every write has no unknown field: answer that with the cheap walk first.
    if not _has_unknown(obj, _check(root)):
        return []
    return [p for p, _, _ in _walk(obj, root, "")]


def prune_unknown(obj: dict[str, Any], gvk: sch.HasGVK) -> dict[str, Any]:
    """A copy of ``obj`` without unknown fields: what upstream stores after decoding."""
    root = sch.root_schema(gvk)
    out = copy_json(obj)
    if root is None:
        return out
    for _, parent, key in list(_walk(out, root, "")):
        parent.pop(key, None)
    return out


# --- duplicate fields -------------------------------------------------------------------------


class _Pairs(list[tuple[str, Any]]):
    """A JSON/YAML object as parsed, keys in order and repeated keys kept."""


def _duplicates(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, _Pairs):
        seen: set[str] = set()
        for key, child in value:
            if key in seen:
                out.append(_join(path, str(key)))
            seen.add(key)
            _duplicates(child, _join(path, str(key)), out)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _duplicates(child, f"{path}[{i}]", out)


class _PairsLoader(yaml.SafeLoader):
    pass


def _construct_pairs(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Pairs:
    return _Pairs(
        (loader.construct_object(k, deep=True), loader.construct_object(v, deep=True))
        for k, v in node.value
    )


_PairsLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_pairs)


def find_duplicate_fields(raw: bytes, *, is_yaml: bool = False) -> list[str]:
    """Paths of the fields given more than once in a JSON (or YAML) body.

    A body that does not parse has no duplicates here: the decoder reports it.
    """
    try:
        if is_yaml:
            # A SafeLoader subclass: constructs plain data only.
            parsed = yaml.load(raw, Loader=_PairsLoader)
        else:
            parsed = json.loads(raw, object_pairs_hook=_Pairs)
    except (ValueError, yaml.YAMLError):
        return []
    out: list[str] = []
    _duplicates(parsed, "", out)
    return out


# --- the directive ----------------------------------------------------------------------------


def findings(unknown: Sequence[str], duplicates: Sequence[str] = ()) -> list[str]:
    """The texts upstream reports: ``unknown field "p"`` then ``duplicate field "p"``."""
    return [f'unknown field "{p}"' for p in unknown] + [
        f'duplicate field "{p}"' for p in duplicates
    ]


def strict_decoding_error(found: Sequence[str]) -> str:
    return "strict decoding error: " + ", ".join(found)


def check_unknown_fields(
    obj: dict[str, Any],
    gvk: sch.HasGVK,
    directive: str,
    *,
    duplicates: Sequence[str] = (),
    patch: str | None = None,
) -> list[str]:
    """Apply the directive to ``obj``'s unknown fields (and the body's ``duplicates``).

    Returns the warnings to send (``Warn``), ``[]`` for ``Ignore`` or nothing found; raises for
    ``Strict``: BadRequest for a create/update body, or — when ``patch`` is given (the text
    upstream quotes: the patched object's JSON for JSON/merge patches, the patch as a Go map for
    strategic merge patches) — 422 Invalid on ``patch``. Callers then store
    :func:`prune_unknown` of the object.
    """
    if directive == IGNORE:
        return []
    found = findings(find_unknown_fields(obj, gvk), duplicates)
    if not found:
        return []
    if directive != STRICT:
        return found
    message = strict_decoding_error(found)
    if patch is not None:
        raise Invalid("", "", [invalid("patch", patch, message)])
    raise BadRequest(
        f'{gvk.kind} in version "{gvk.version}" cannot be handled as a {gvk.kind}: {message}'
    )
