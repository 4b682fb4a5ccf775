"""The one place where errors become HTTP responses.

Handlers raise :class:`~svcnet.api.errors.ApiError` (or let a store error escape); the
middleware here turns each into the ``Status`` body and code kube-apiserver would send.
Store errors are translated at this boundary (``raise ... from`` keeps the cause for logs).
Anything else is a bug: it is logged with its traceback and answered as a 500 ``InternalError``
so that one bad request never takes the server down.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from svcnet.api.errors import AlreadyExists, ApiError, Conflict, Gone, InternalError, NotFound
from svcnet.api.registry import ResourceType
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
    return orjson.dumps(err.to_status())


def error_response(err: ApiError) -> web.Response:
    return web.Response(body=status_body(err), status=err.code, content_type=JSON)


def success_status(details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``Status`` a delete answers when the object is gone at once (upstream's shape)."""
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details is not None:
        status["details"] = details
    return status


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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def status_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await _answer(request, handler)


def status_middleware_with(check: Callable[[web.Request], web.Response | None]) -> Any:
    """``status_middleware`` that first runs ``check`` (authentication): its answer, when it
    has one, is the response. One middleware layer instead of two (typed Any: aiohttp's
    middleware type is private)."""

    @web.middleware
    async def checked(request: web.Request, handler: Handler) -> web.StreamResponse:
        denied = check(request)
        if denied is not None:
            return denied
        try:
            return await handler(request)
        except Exception as exc:
            return _error_answer(request, exc)

    return checked


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:
        return _error_answer(request, exc)


def _error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The Status response for an error a handler raised (re-raised when there is none)."""
    if isinstance(exc, ApiError):
        return error_response(exc)
    if isinstance(exc, web.HTTPException):
        # aiohttp's own errors (413 from the body limit, 404 from the router) get a Status too.
        return _from_http_exception(exc)
    if isinstance(exc, ConnectionResetError):
        raise exc  # the client went away: nothing to answer
    if isinstance(exc, StoreError):
        # A store error nobody translated with the object's name: still a Status, not a crash.
        log.error("untranslated store error on %s %s", request.method, request.path, exc_info=exc)
        return error_response(InternalError(str(exc)))
    log.error("internal error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(InternalError(f"Internal error occurred: {exc}"))


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    from svcnet.api import errors

    by_code: dict[int, type[ApiError]] = {
        400: errors.BadRequest,
        404: errors.NotFound,
        405: errors.MethodNotAllowed,
        406: errors.NotAcceptable,
        413: errors.RequestEntityTooLarge,
        415: errors.UnsupportedMediaType,
    }
    cls = by_code.get(exc.status, InternalError)
    message = "the server could not find the requested resource" if exc.status == 404 else exc.text
    if exc.status == 413:
        message = "the server has received too large of a request body"
    err = cls(message or exc.reason)
    if cls is InternalError:
        err.code = exc.status
    return error_response(err)
