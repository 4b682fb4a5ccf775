"""Label and field selectors, compiled once and matched many times.

Label selectors come in two forms that compile to the same frozen :class:`LabelSelector`:

* the query-string form of ``?labelSelector=`` and ``kubectl -l`` (``a=b,c!=d,e in (f,g),!h``),
  parsed with the grammar, tokenizer and error texts of ``k8s.io/apimachinery/pkg/labels``;
* the ``metav1.LabelSelector`` form of objects (``matchLabels`` + ``matchExpressions``), checked
  by :func:`validate_label_selector` and converted as ``LabelSelectorAsSelector`` does: an
  absent selector selects nothing, an empty one selects everything.

Field selectors (``?fieldSelector=metadata.name=web,status.phase!=Running``) follow
``k8s.io/apimachinery/pkg/fields``: only ``=``, ``==`` and ``!=``, values with ``\\`` escapes, and
a field that is absent from an object compares as the empty string, as upstream's field sets do.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from svcnet.api.errors import BadRequest, FieldError, forbidden, invalid, required
from svcnet.api.names import is_qualified_name, is_valid_label_value
from svcnet.api.registry import ResourceType


class SelectorError(BadRequest):
    """A selector string that does not parse (HTTP 400, as kube-apiserver answers)."""


class Operator(enum.Enum):
    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


# The order upstream lists them in "expected: ..." messages.
_BINARY_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        # gt / lt: both sides must be integers, otherwise the requirement does not match.
        if self.key not in labels or len(self.values) != 1:
            return False
        try:
            have = int(labels[self.key])
            want = int(next(iter(self.values)))
        except ValueError:
            return False
        return have > want if op is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        values = ",".join(sorted(self.values))
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({values})"
        if op is Operator.GREATER_THAN:
            return f"{self.key}>{values}"
        if op is Operator.LESS_THAN:
            return f"{self.key}<{values}"
        return f"{self.key}{op.value}{values}"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; ``selects_nothing`` marks :meth:`nothing`."""

    requirements: tuple[Requirement, ...] = ()
    selects_nothing: bool = False

    @staticmethod
    def everything() -> LabelSelector:
        return _EVERYTHING

    @staticmethod
    def nothing() -> LabelSelector:
        return _NOTHING

    @property
    def empty(self) -> bool:
        """True when the selector puts no restriction (selects everything)."""
        return not self.requirements and not self.selects_nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.selects_nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return self.matches(meta.get("labels") or {})

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have, when the selector pins it (for indexes)."""
        for r in self.requirements:
            if r.key == key:
                exact = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                if r.operator in exact and len(r.values) == 1:
                    return next(iter(r.values))
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_EVERYTHING = LabelSelector()
_NOTHING = LabelSelector(selects_nothing=True)


def _sorted(reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
    # Upstream sorts by key (stably) so the string form is deterministic.
    return tuple(sorted(reqs, key=lambda r: r.key))


def selector_from_set(labels: Mapping[str, str]) -> LabelSelector:
    """``SelectorFromSet``: every label must be present with that value; empty selects all."""
    return LabelSelector(
        _sorted(Requirement(k, Operator.EQUALS, frozenset((v,))) for k, v in labels.items())
    )


# -- the query-string form ---------------------------------------------------------------


class _Tok(enum.Enum):
    ERROR = enum.auto()
    END = enum.auto()
    CLOSE_PAR = enum.auto()
    COMMA = enum.auto()
    NOT = enum.auto()
    DOUBLE_EQUALS = enum.auto()
    EQUALS = enum.auto()
    GREATER = enum.auto()
    IDENT = enum.auto()
    IN = enum.auto()
    LESS = enum.auto()
    NOT_EQUALS = enum.auto()
    NOT_IN = enum.auto()
    OPEN_PAR = enum.auto()


_STRING_TO_TOKEN = {
    ")": _Tok.CLOSE_PAR,
    ",": _Tok.COMMA,
    "!": _Tok.NOT,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER,
    "in": _Tok.IN,
    "<": _Tok.LESS,
    "!=": _Tok.NOT_EQUALS,
    "notin": _Tok.NOT_IN,
    "(": _Tok.OPEN_PAR,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(s: str) -> list[tuple[_Tok, str]]:
    """The tokens of ``s``, ending with END, the way upstream's Lexer splits it."""
    out: list[tuple[_Tok, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in _WHITESPACE:
            i += 1
        if i >= n:
            out.append((_Tok.END, ""))
            return out
        if s[i] in _SPECIAL:
            # Longest run of special symbols that still forms a token ("!=" before "!").
            buf, last, last_len = "", None, 0
            j = i
            while j < n and s[j] in _SPECIAL:
                buf += s[j]
                if buf in _STRING_TO_TOKEN:
                    last, last_len = _STRING_TO_TOKEN[buf], len(buf)
                elif last is not None:
                    break
                j += 1
            if last is None:
                out.append((_Tok.ERROR, f"error expected: keyword found '{buf}'"))
                i = j
            else:
                out.append((last, buf[:last_len]))
                i += last_len
            continue
        j = i
        while j < n and s[j] not in _SPECIAL and s[j] not in _WHITESPACE:
            j += 1
        word = s[i:j]
        out.append((_STRING_TO_TOKEN.get(word, _Tok.IDENT), word))
        i = j


class _Parser:
    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def _look(self, values: bool) -> tuple[_Tok, str]:
        tok, lit = self.items[self.pos]
        # In a values context, "in" and "notin" are ordinary identifiers.
        if values and tok in (_Tok.IN, _Tok.NOT_IN):
            tok = _Tok.IDENT
        return tok, lit

    def _consume(self, values: bool) -> tuple[_Tok, str]:
        out = self._look(values)
        self.pos += 1
        return out

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self._look(True)
            if tok in (_Tok.IDENT, _Tok.NOT):
                try:
                    reqs.append(self._requirement())
                except _ParseError as exc:
                    raise _ParseError("unable to parse requirement: " + str(exc)) from None
                t, lit2 = self._consume(True)
                if t is _Tok.END:
                    return reqs
                if t is _Tok.COMMA:
                    t2, l2 = self._look(True)
                    if t2 not in (_Tok.IDENT, _Tok.NOT):
                        raise _ParseError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise _ParseError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok is _Tok.END:
                return reqs
            else:
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def _requirement(self) -> Requirement:
        key, op = self._key_and_inferred_operator()
        if op is not None:
            return Requirement(key, op)
        op = self._operator()
        values = self._values() if op in (Operator.IN, Operator.NOT_IN) else self._exact_value()
        return _new_requirement(key, op, values)

    def _key_and_inferred_operator(self) -> tuple[str, Operator | None]:
        op: Operator | None = None
        tok, lit = self._consume(True)
        if tok is _Tok.NOT:
            op = Operator.DOES_NOT_EXIST
            tok, lit = self._consume(True)
        if tok is not _Tok.IDENT:
            raise _ParseError(f"found '{lit}', expected: identifier")
        key_errors = is_qualified_name(lit)
        if key_errors:
            raise _ParseError(str(invalid("<nil>", lit, "; ".join(key_errors))))
        t, _ = self._look(True)
        if t in (_Tok.END, _Tok.COMMA) and op is None:
            op = Operator.EXISTS
        return lit, op

    def _operator(self) -> Operator:
        tok, lit = self._consume(False)
        by_token = {
            _Tok.IN: Operator.IN,
            _Tok.EQUALS: Operator.EQUALS,
            _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
            _Tok.GREATER: Operator.GREATER_THAN,
            _Tok.LESS: Operator.LESS_THAN,
            _Tok.NOT_IN: Operator.NOT_IN,
            _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
        }
        if tok not in by_token:
            raise _ParseError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return by_token[tok]

    def _values(self) -> set[str]:
        tok, lit = self._consume(True)
        if tok is not _Tok.OPEN_PAR:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self._look(True)
        if tok in (_Tok.IDENT, _Tok.COMMA):
            values = self._identifier_list()
            if self._consume(True)[0] is not _Tok.CLOSE_PAR:
                raise _ParseError(f"found '{lit}', expected: ')'")
            return values
        if tok is _Tok.CLOSE_PAR:
            self._consume(True)
            return {""}
        raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")

    def _identifier_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._consume(True)
            if tok is _Tok.IDENT:
                values.add(lit)
                tok2, lit2 = self._look(True)
                if tok2 is _Tok.COMMA:
                    continue
                if tok2 is _Tok.CLOSE_PAR:
                    return values
                raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok is _Tok.COMMA:
                # "(,a)", "(a,)" and "(a,,b)" each hold the empty value too.
                if not values:
                    values.add("")
                tok2, _ = self._look(True)
                if tok2 is _Tok.CLOSE_PAR:
                    values.add("")
                    return values
                if tok2 is _Tok.COMMA:
                    values.add("")
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        tok, _ = self._look(True)
        if tok in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, lit = self._consume(True)
        if tok is _Tok.IDENT:
            return {lit}
        raise _ParseError(f"found '{lit}', expected: identifier")


class _ParseError(Exception):
    pass


def _new_requirement(key: str, op: Operator, values: set[str]) -> Requirement:
    """``NewRequirement``'s checks of the values, with its messages."""
    errors: list[FieldError] = []
    shown = sorted(values)
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(values) != 1:
            errors.append(
                invalid(
                    "values",
                    _GoStrings(shown),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                )
            )
        for i, v in enumerate(shown):
            try:
                int(v)
            except ValueError:
                errors.append(
                    invalid(
                        f"values[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer"
                    )
                )
    for i, v in enumerate(shown):
        msgs = is_valid_label_value(v)
        if msgs:
            errors.append(invalid(f"values[{i}][{key}]", v, "; ".join(msgs)))
    if errors:
        if len(errors) == 1:
            raise _ParseError(str(errors[0]))
        raise _ParseError("[" + ", ".join(str(e) for e in errors) + "]")
    return Requirement(key, op, frozenset(values))


class _GoStrings:
    """A []string printed as Go's %#v, the way upstream's messages show values."""

    def __init__(self, values: list[str]) -> None:
        self.values = values

    def __str__(self) -> str:
        return "[]string{" + ", ".join(f'"{v}"' for v in self.values) + "}"


def parse_label_selector(selector: str) -> LabelSelector:
    """Parse ``?labelSelector=``; raises :class:`SelectorError` with upstream's message."""
    if not selector.strip():
        return _EVERYTHING
    try:
        reqs = _Parser(selector).parse()
    except _ParseError as exc:
        raise SelectorError(str(exc)) from None
    return LabelSelector(_sorted(reqs))


# -- the metav1.LabelSelector form ---------------------------------------------------------

_EXPRESSION_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


# Label keys and values already found valid. A cluster uses a small vocabulary of both (the
# same app/tier/version labels on every object and in every selector), and validating them is
# regular-expression work on every write: a known-good string skips it. Bounded: cleared when
# full, so a stream of unique values costs one set insertion each, never memory.
_VALID_KEYS: set[str] = set()
_VALID_VALUES: set[str] = set()
_VALID_MAX = 8192


def validate_labels(labels: Mapping[str, Any], path: str) -> list[FieldError]:
    """``ValidateLabels``: every key a qualified name, every value a label value."""
    errors: list[FieldError] = []
    for key, value in labels.items():
        if type(value) is str and key in _VALID_KEYS and value in _VALID_VALUES:
            continue
        key_errors = is_qualified_name(str(key))
        errors.extend(invalid(path, key, m) for m in key_errors)
        if not isinstance(value, str):
            errors.append(invalid(path, value, "must be a string"))
            continue
        value_errors = is_valid_label_value(value)
        errors.extend(invalid(path, value, m) for m in value_errors)
        if not key_errors and type(key) is str:
            if len(_VALID_KEYS) >= _VALID_MAX:
                _VALID_KEYS.clear()
            _VALID_KEYS.add(key)
        if not value_errors and type(value) is str:
            if len(_VALID_VALUES) >= _VALID_MAX:
                _VALID_VALUES.clear()
            _VALID_VALUES.add(value)
    return errors


def validate_label_selector(selector: Mapping[str, Any] | None, path: str) -> list[FieldError]:
    """``ValidateLabelSelector`` (metav1 validation) with upstream's paths and messages."""
    if selector is None:
        return []
    errors = validate_labels(selector.get("matchLabels") or {}, f"{path}.matchLabels")
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        op = expr.get("operator", "")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errors.append(
                    required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errors.append(
                    forbidden(
                        f"{p}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errors.append(invalid(f"{p}.operator", op, "not a valid selector operator"))
        key = expr.get("key", "")
        errors.extend(invalid(f"{p}.key", key, m) for m in is_qualified_name(str(key)))
        for j, value in enumerate(values):
            errors.extend(
                invalid(f"{p}.values[{j}]", value, m) for m in is_valid_label_value(str(value))
            )
    return errors


def label_selector_from_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """``LabelSelectorAsSelector``: None selects nothing, ``{}`` selects everything.

    The selector should have passed :func:`validate_label_selector`; an unknown operator
    raises ``ValueError`` rather than silently matching.
    """
    if selector is None:
        return _NOTHING
    match_labels: Mapping[str, str] = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if not match_labels and not exprs:
        return _EVERYTHING
    reqs = [Requirement(k, Operator.EQUALS, frozenset((v,))) for k, v in match_labels.items()]
    for expr in exprs:
        op = _EXPRESSION_OPERATORS.get(expr.get("operator", ""))
        if op is None:
            raise ValueError(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr.get("key", ""), op, frozenset(expr.get("values") or ())))
    return LabelSelector(_sorted(reqs))


# -- field selectors ----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{'=' if self.equal else '!='}{escaped}"


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all((field_value(obj, r.field) == r.value) == r.equal for r in self.requirements)

    def requires_exact_match(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and r.equal:
                return r.value
        return None

    def check_supported(self, resource: ResourceType) -> None:
        """Raise :class:`BadRequest` for a field the resource does not index, as upstream."""
        allowed = resource.field_selectors
        for r in self.requirements:
            if r.field in allowed:
                continue
            if resource.group and not resource.extra_field_selectors:
                # DefaultMetaV1FieldSelectorConversion's wording (apps, networking, ...).
                raise BadRequest(
                    f'"{r.field}" is not a known field selector: only "metadata.name", '
                    '"metadata.namespace"'
                )
            raise BadRequest(f"field label not supported: {r.field}")

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_terms(s: str) -> list[str]:
    """Split on commas that are not escaped with a backslash."""
    terms: list[str] = []
    start, i = 0, 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == ",":
            terms.append(s[start:i])
            start = i + 1
        i += 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
        i += 1
    return None


def _unescape(value: str) -> str:
    if "\\" not in value and "=" not in value and "," not in value:
        return value
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in ("\\", ",", "="):
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in (",", "="):
            raise SelectorError(f"invalid field selector: unescaped character in value: {ch}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(selector: str) -> FieldSelector:
    """Parse ``?fieldSelector=``; raises :class:`SelectorError` with upstream's message."""
    reqs: list[FieldRequirement] = []
    for part in sorted(_split_terms(selector)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{part}'")
        lhs, op, rhs = split
        reqs.append(FieldRequirement(lhs, op != "!=", _unescape(rhs)))
    return FieldSelector(tuple(reqs))


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string an object's field set holds for ``path`` (absent fields are ``""``)."""
    if path == "source" and obj.get("kind") == "Event":
        # Events index their source's component under the bare name "source".
        source = obj.get("source") or {}
        return str(source.get("component", ""))
    if path == "status.podIP":
        # Upstream indexes the first of status.podIPs (the same value as status.podIP).
        ips = (obj.get("status") or {}).get("podIPs") or []
        if ips:
            return str(ips[0].get("ip", ""))
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
        if node is None:
            return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, (dict, list)):
        return ""
    return str(node)
