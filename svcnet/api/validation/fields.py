"""Small field checks shared by the per-group validators, each with upstream's message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from svcnet.api.errors import FieldError, FieldErrorType, invalid, not_supported, required
from svcnet.api.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_port_name,
    is_valid_port_num,
)
from svcnet.api.objects import Obj

PROTOCOLS = ["SCTP", "TCP", "UDP"]  # sets.List order, as upstream prints them


def each(path: str, value: str, check: Callable[[str], list[str]]) -> list[FieldError]:
    """One ``Invalid`` per problem ``check`` finds, as upstream's loops over messages do."""
    return [invalid(path, value, m) for m in check(value)]


def dns_label(path: str, value: str) -> list[FieldError]:
    return each(path, value, is_dns1123_label)


def dns_subdomain(path: str, value: str) -> list[FieldError]:
    return each(path, value, is_dns1123_subdomain)


def nonnegative(path: str, value: Any) -> list[FieldError]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def positive(path: str, value: Any) -> list[FieldError]:
    if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
        return [invalid(path, value, "must be greater than 0")]
    return []


def port_num(path: str, value: Any) -> list[FieldError]:
    if not isinstance(value, int) or isinstance(value, bool):
        return [invalid(path, value, "must be an integer")]
    return [invalid(path, value, m) for m in is_valid_port_num(value)]


def port_num_or_name(path: str, value: Any) -> list[FieldError]:
    """``ValidatePortNumOrName``: an int 1-65535 or an IANA_SVC_NAME."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [invalid(path, value, m) for m in is_valid_port_num(value)]
    if isinstance(value, str):
        if not value:
            return [required(path)]
        return [invalid(path, value, m) for m in is_valid_port_name(value)]
    return [invalid(path, value, "must be an integer or string")]


def protocol(path: str, value: Any) -> list[FieldError]:
    if not value:
        return [required(path)]
    if value not in PROTOCOLS:
        return [not_supported(path, value, PROTOCOLS)]
    return []


def one_of(path: str, value: Any, allowed: list[str], require: bool = True) -> list[FieldError]:
    if not value:
        return [required(path)] if require else []
    if value not in allowed:
        return [not_supported(path, value, allowed)]
    return []


def too_many(path: str, count: int, limit: int) -> FieldError:
    # Upstream prints the count too: "Too many: 1001: must have at most 1000 items".
    return FieldError(FieldErrorType.TOO_MANY, path, f"{count}: must have at most {limit} items")


def mapping(value: Any) -> Obj:
    """``value`` when it is an object, else an empty one (schemas reject the wrong type)."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Obj]:
    """The entries of a list field as objects (indices kept; a non-object becomes ``{}``)."""
    if not isinstance(value, list):
        return []
    return [mapping(v) for v in value]
