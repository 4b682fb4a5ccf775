"""Resource quantities (``k8s.io/apimachinery/pkg/api/resource``): parse and compare.

``"500m"``, ``"1.5Gi"``, ``"2e3"`` become exact :class:`~fractions.Fraction` values, so
comparisons (requests against limits, scheduling fits) never suffer from float rounding.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# The form upstream accepts: a signed decimal number and a binary, decimal or exponent suffix.
QUANTITY_PATTERN = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_EXPONENT = re.compile(r"[eE][+-]?[0-9]+")


class QuantityError(ValueError):
    pass


def parse_quantity(value: str | int | float) -> Fraction:
    """The exact value of a quantity; raises :class:`QuantityError` for a malformed one."""
    if isinstance(value, bool):
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    text = value.strip()
    match = _NUMBER.match(text)
    if not match or not text:
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    number = Fraction(match.group(0))
    suffix = text[match.end() :]
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    if _EXPONENT.fullmatch(suffix):
        return number * Fraction(10) ** int(suffix[1:])
    raise QuantityError(f"unable to parse quantity's suffix: {suffix!r}")
