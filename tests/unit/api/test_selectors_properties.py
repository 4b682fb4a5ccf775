"""Property tests of the label selector parser (hypothesis)."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from svcnet.api.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_names = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(_LOWER),
    st.text(alphabet=_LOWER + "0123456789", max_size=5),
)
_keys = st.one_of(_names, st.builds(lambda p, n: f"{p}.io/{n}", _names, _names))
_values = st.one_of(st.just(""), _names)


@st.composite
def _requirements(draw: st.DrawFn) -> Requirement:
    key = draw(_keys)
    op = draw(
        st.sampled_from(
            [o for o in Operator if o not in (Operator.GREATER_THAN, Operator.LESS_THAN)]
        )
    )
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        return Requirement(key, op)
    if op in (Operator.IN, Operator.NOT_IN):
        return Requirement(key, op, frozenset(draw(st.lists(_names, min_size=1, max_size=3))))
    return Requirement(key, op, frozenset({draw(_values)}))


@given(st.lists(_requirements(), max_size=4))
def test_string_form_parses_back_to_the_same_selector(reqs: list[Requirement]) -> None:
    selector = LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))
    assert parse_label_selector(str(selector)) == selector


@given(st.text(alphabet="ab=!(),<> \tinotx", max_size=20))
def test_parser_only_raises_selector_errors(text: str) -> None:
    with contextlib.suppress(SelectorError):
        parse_label_selector(text)


@given(st.text(max_size=30))
def test_field_selector_parser_only_raises_selector_errors(text: str) -> None:
    with contextlib.suppress(SelectorError):
        parse_field_selector(text)


@given(st.lists(_requirements(), max_size=4), st.dictionaries(_keys, _values, max_size=4))
def test_a_selector_matches_exactly_when_every_requirement_does(
    reqs: list[Requirement], labels: dict[str, str]
) -> None:
    selector = LabelSelector(tuple(reqs))
    assert selector.matches(labels) == all(r.matches(labels) for r in reqs)
