"""API errors in Kubernetes' own form.

Every error a client can see is an :class:`ApiError` that renders to a ``Status`` object the
way kube-apiserver writes it (``k8s.io/apimachinery/pkg/api/errors``), so kubectl prints the
messages users already know. Field errors follow ``k8s.io/apimachinery/pkg/util/validation/field``:
``spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive``.

This module is pure. The HTTP layer (``svcnet.apiserver.status``) is the one place that turns
these into responses, and the client turns responses back into these classes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class FieldErrorType(enum.Enum):
    """The ``reason`` of a Status cause, with the text upstream prints for it."""

    NOT_FOUND = ("FieldValueNotFound", "Not found")
    REQUIRED = ("FieldValueRequired", "Required value")
    DUPLICATE = ("FieldValueDuplicate", "Duplicate value")
    INVALID = ("FieldValueInvalid", "Invalid value")
    NOT_SUPPORTED = ("FieldValueNotSupported", "Unsupported value")
    FORBIDDEN = ("FieldValueForbidden", "Forbidden")
    TOO_LONG = ("FieldValueTooLong", "Too long")
    TOO_MANY = ("FieldValueTooMany", "Too many")
    TYPE_INVALID = ("FieldValueTypeInvalid", "Invalid value")

    @property
    def reason(self) -> str:
        return self.value[0]

    @property
    def text(self) -> str:
        return self.value[1]


_OMIT = object()


def _format_value(value: Any) -> str:
    # Upstream prints strings quoted (%q) and everything else with %v-like formatting.
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


@dataclass(frozen=True)
class FieldError:
    """One invalid field. ``field`` is a path such as ``spec.ports[0].port``."""

    type: FieldErrorType
    field: str
    detail: str = ""
    bad_value: Any = _OMIT

    def body(self) -> str:
        """The message without the field path: what a Status cause carries."""
        parts = [self.type.text]
        # Required, Forbidden, TooLong and TooMany print no value upstream.
        shows_value = self.type not in (
            FieldErrorType.REQUIRED,
            FieldErrorType.FORBIDDEN,
            FieldErrorType.TOO_LONG,
            FieldErrorType.TOO_MANY,
        )
        if shows_value and self.bad_value is not _OMIT:
            parts.append(_format_value(self.bad_value))
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, Any]:
        # metav1.StatusCause: reason, message, field, each omitted when empty.
        cause = {"reason": self.type.reason, "message": self.body(), "field": self.field}
        return {k: v for k, v in cause.items() if v}


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(FieldErrorType.REQUIRED, path, detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(FieldErrorType.INVALID, path, detail, value)


def not_supported(path: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(_format_value(s) for s in supported)
    return FieldError(FieldErrorType.NOT_SUPPORTED, path, detail, value)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(FieldErrorType.DUPLICATE, path, "", value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(FieldErrorType.FORBIDDEN, path, detail)


def not_found(path: str, value: Any) -> FieldError:
    return FieldError(FieldErrorType.NOT_FOUND, path, "", value)


def too_long(path: str, limit: int) -> FieldError:
    return FieldError(FieldErrorType.TOO_LONG, path, f"must have at most {limit} bytes")


# The text of a node agent's refusal of a stream upgrade (exec, attach, port-forward), also
# carried in this header: the API server's WebSocket client sees only the status of a refused
# upgrade, and relays the kubelet's words to the client as kube-apiserver relays its body.
AGENT_REFUSAL_HEADER = "X-Svcnet-Refusal"


class ApiError(Exception):
    """An error with an HTTP code and a Kubernetes ``reason``, rendered as a ``Status``."""

    code: int = 500
    reason: str = "InternalError"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        return status_object("Failure", self.message, self.reason, self.details, self.code)

    @staticmethod
    def from_status(status: dict[str, Any]) -> ApiError:
        """The error a client raises for a ``Status`` it received."""
        code = int(status.get("code") or 500)
        reason = str(status.get("reason") or "")
        cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or ApiError
        err = ApiError.__new__(cls)
        ApiError.__init__(err, str(status.get("message", "")), status.get("details"))
        err.code, err.reason = code, reason or cls.reason
        return err


# The fields of metav1.Status and metav1.StatusDetails in the order of their Go structs, which
# is the order encoding/json writes them in: clients (the Python client's own tests among them)
# compare error bodies as text.
_STATUS_FIELDS = (
    "kind",
    "apiVersion",
    "metadata",
    "status",
    "message",
    "reason",
    "details",
    "code",
)
_DETAILS_FIELDS = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")


def status_object(
    status: str,
    message: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
    code: int = 0,
) -> dict[str, Any]:
    """A ``Status`` as kube-apiserver writes it: fields in Go's order, empty ones omitted
    (every field but ``metadata`` is ``omitempty``)."""
    fields: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": status,
        "message": message,
        "reason": reason,
        "details": None if details is None else _ordered_details(details),
        "code": code,
    }
    return {
        k: fields[k] for k in _STATUS_FIELDS if k == "metadata" or fields[k] not in (None, "", 0)
    }


def _ordered_details(details: dict[str, Any]) -> dict[str, Any]:
    known = {k: details[k] for k in _DETAILS_FIELDS if details.get(k)}
    return known | {k: v for k, v in details.items() if k not in known and k not in _DETAILS_FIELDS}


def _resource_details(resource: str, name: str, group: str = "") -> dict[str, Any]:
    return {"name": name, "group": group, "kind": resource}


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"

    def __init__(self, message: str = "Unauthorized") -> None:
        super().__init__(message)


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class NotFound(ApiError):
    code, reason = 404, "NotFound"

    @classmethod
    def for_object(cls, resource: str, name: str, group: str = "") -> NotFound:
        return cls(
            f'{_qualified(resource, group)} "{name}" not found',
            _resource_details(resource, name, group),
        )


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(ApiError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"

    @classmethod
    def for_object(cls, resource: str, name: str, group: str = "") -> AlreadyExists:
        return cls(
            f'{_qualified(resource, group)} "{name}" already exists',
            _resource_details(resource, name, group),
        )


class Conflict(ApiError):
    code, reason = 409, "Conflict"

    @classmethod
    def for_object(cls, resource: str, name: str, why: str, group: str = "") -> Conflict:
        return cls(
            f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
            _resource_details(resource, name, group),
        )

    @classmethod
    def modified(cls, resource: str, name: str, group: str = "") -> Conflict:
        return cls.for_object(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version "
            "and try again",
            group,
        )


class Gone(ApiError):
    """410: a watch or list from a revision that compaction removed (reason ``Expired``)."""

    code, reason = 410, "Expired"


class RequestEntityTooLarge(ApiError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(ApiError):
    code, reason = 422, "Invalid"

    def __init__(self, kind: str, name: str, errors: list[FieldError], group: str = "") -> None:
        self.errors = list(errors)
        qualified_kind = f"{kind}.{group}" if group else kind
        if len(errors) == 1:
            summary = str(errors[0])
        else:
            summary = "[" + ", ".join(str(e) for e in errors) + "]"
        details = {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [e.cause() for e in errors],
        }
        super().__init__(f'{qualified_kind} "{name}" is invalid: {summary}', details)


class TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"


class InternalError(ApiError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(ApiError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(ApiError):
    code, reason = 504, "Timeout"


_BY_REASON: dict[str, type[ApiError]] = {
    cls.reason: cls
    for cls in (
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable,
        AlreadyExists, Conflict, Gone, RequestEntityTooLarge, UnsupportedMediaType, Invalid,
        TooManyRequests, InternalError, ServiceUnavailable, Timeout,
    )
}  # fmt: skip
_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    406: NotAcceptable, 409: Conflict, 410: Gone, 413: RequestEntityTooLarge,
    415: UnsupportedMediaType, 422: Invalid, 429: TooManyRequests, 500: InternalError,
    503: ServiceUnavailable, 504: Timeout,
}  # fmt: skip


@dataclass
class FieldErrors:
    """Collects field errors while validating one object."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, error: FieldError) -> None:
        self.errors.append(error)

    def extend(self, errors: list[FieldError]) -> None:
        self.errors.extend(errors)

    def __bool__(self) -> bool:
        return bool(self.errors)
