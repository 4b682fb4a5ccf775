"""Resource quantities parse to exact values, as apimachinery's resource.Quantity does."""

from __future__ import annotations

from fractions import Fraction

import pytest

from svcnet.api.validation.quantity import QuantityError, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Fraction(1)),
        ("500m", Fraction(1, 2)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("1Ki", Fraction(1024)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1k", Fraction(1000)),
        ("1M", Fraction(10**6)),
        ("2e3", Fraction(2000)),
        ("1E-3", Fraction(1, 1000)),
        ("100n", Fraction(1, 10**7)),
        ("-1", Fraction(-1)),
        (3, Fraction(3)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parse_quantity(text: str | int | float, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1X", "1Kb", "1.2.3", "Gi"])
def test_malformed_quantity(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_binary_and_decimal_forms_compare_exactly() -> None:
    assert parse_quantity("1Gi") == parse_quantity("1024Mi")
    assert parse_quantity("1G") < parse_quantity("1Gi")
