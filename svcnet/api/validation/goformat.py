"""Values printed the way Go's ``%#v`` prints them inside upstream's field errors.

kube-apiserver 1.32 formats a non-scalar bad value with ``%#v``, so kubectl shows e.g.
``Invalid value: map[string]string{"app":"web"}`` or ``[]string{"None"}``. These small wrappers
carry the value and render that text when a :class:`~svcnet.api.errors.FieldError` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class GoValue:
    """A value with its Go rendering; ``str()`` gives the rendering."""

    value: Any
    text: str

    def __str__(self) -> str:
        return self.text


def go_strings(values: Sequence[str] | None) -> GoValue:
    if values is None:
        return GoValue(None, "[]string(nil)")
    return GoValue(list(values), "[]string{" + ", ".join(_q(str(v)) for v in values) + "}")


def _string_map(values: Mapping[str, Any] | None) -> str:
    if values is None:
        return "map[string]string(nil)"
    # Go's fmt prints map keys sorted.
    inner = ", ".join(f"{_q(str(k))}:{_q(str(values[k]))}" for k in sorted(values))
    return "map[string]string{" + inner + "}"


def go_string_map(values: Mapping[str, Any] | None) -> GoValue:
    return GoValue(dict(values) if values is not None else None, _string_map(values))


def go_label_selector(selector: Mapping[str, Any] | None) -> GoValue:
    """A ``metav1.LabelSelector`` as ``v1.LabelSelector{MatchLabels:..., MatchExpressions:...}``."""
    if selector is None:
        return GoValue(None, "null")
    exprs = selector.get("matchExpressions")
    if exprs is None:
        exprs_text = "[]v1.LabelSelectorRequirement(nil)"
    else:
        items = []
        for e in exprs:
            values = e.get("values")
            values_text = go_strings(values).text if values is not None else "[]string(nil)"
            items.append(
                f"v1.LabelSelectorRequirement{{Key:{_q(str(e.get('key', '')))}, "
                f"Operator:{_q(str(e.get('operator', '')))}, Values:{values_text}}}"
            )
        exprs_text = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    labels_text = _string_map(selector.get("matchLabels"))
    return GoValue(
        dict(selector),
        f"v1.LabelSelector{{MatchLabels:{labels_text}, MatchExpressions:{exprs_text}}}",
    )
