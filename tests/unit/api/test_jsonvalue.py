"""copy_json: an independent deep copy of JSON data."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.jsonvalue import copy_json

CASES: list[Any] = [
    {},
    {"a": {"b": [1, 2.5, "x", None, True, False, {"c": []}]}},
    [{"k": "v"}, [], [[1]]],
    {"metadata": {"labels": {"app": "web"}}, "spec": {"ports": [{"port": 80}]}},
]


@pytest.mark.parametrize("value", CASES)
def test_copy_is_equal(value: Any) -> None:
    assert copy_json(value) == value


def test_copy_shares_no_container() -> None:
    value = {"spec": {"ports": [{"port": 80}]}}
    copied = copy_json(value)
    copied["spec"]["ports"][0]["port"] = 81
    copied["spec"]["ports"].append({"port": 1})
    assert value == {"spec": {"ports": [{"port": 80}]}}
