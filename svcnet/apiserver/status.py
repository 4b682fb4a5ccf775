"""The one place where errors become HTTP responses.

Handlers raise :class:`~svcnet.api.errors.ApiError` (or let a store error escape); the
:func:`error_answer` turns each into the ``Status`` body and code kube-apiserver would send.
Store errors are translated at this boundary (``raise ... from`` keeps the cause for logs).
Anything else is a bug: it is logged with its traceback and answered as a 500 ``InternalError``
so that one bad request never takes the server down.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from svcnet.api.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Gone,
    InternalError,
    NotFound,
    status_object,
)
from svcnet.api.registry import ResourceType
from svcnet.apiserver.response import Response
from svcnet.store.interface import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    RevisionMismatchError,
    StoreError,
)

log = logging.getLogger(__name__)

JSON = "application/json"


def status_body(err: ApiError) -> bytes:
    # kube-apiserver's JSON serializer is a json.Encoder, which ends what it writes with a
    # newline; clients that print an error body verbatim show it.
    return orjson.dumps(err.to_status()) + b"\n"


def error_response(err: ApiError) -> Response:
    return Response(status_body(err), err.code, JSON)


def success_status(details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``Status`` a delete answers when the object is gone at once (upstream's shape)."""
    return status_object("Success", details=details)


def gone_for_revision(requested: int, oldest: int) -> Gone:
    # Upstream's text: "too old resource version: 5 (130)".
    return Gone(f"too old resource version: {requested} ({oldest})")


def translate_store_error(exc: StoreError, rt: ResourceType, name: str) -> ApiError:
    """The API error a store error means for an object of ``rt`` named ``name``."""
    if isinstance(exc, KeyExistsError):
        return AlreadyExists.for_object(rt.plural, name, rt.group)
    if isinstance(exc, KeyNotFoundError):
        return NotFound.for_object(rt.plural, name, rt.group)
    if isinstance(exc, RevisionMismatchError):
        return Conflict.modified(rt.plural, name, rt.group)
    if isinstance(exc, CompactedError):
        return gone_for_revision(exc.requested, exc.compact_revision)
    return InternalError(str(exc))


def error_answer(method: str, path: str, exc: Exception) -> Response:
    """The Status response for an error a handler raised (re-raised when there is none)."""
    if isinstance(exc, ApiError):
        return error_response(exc)
    if isinstance(exc, ConnectionResetError):
        raise exc  # the client went away: nothing to answer
    if isinstance(exc, StoreError):
        # A store error nobody translated with the object's name: still a Status, not a crash.
        log.error("untranslated store error on %s %s", method, path, exc_info=exc)
        return error_response(InternalError(str(exc)))
    log.error("internal error on %s %s", method, path, exc_info=exc)
    return error_response(InternalError(f"Internal error occurred: {exc}"))
