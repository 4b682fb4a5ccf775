"""Response building: content negotiation (object, Table, metadata) and JSON bodies.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` for ``get`` and plain JSON
for everything else; controllers may ask for ``as=PartialObjectMetadata``. Bodies are written
with orjson; lists are assembled from already-encoded item bytes where possible. A handler's
answer is a :class:`Response`, which the HTTP layer (:mod:`svcnet.apiserver.http1`) writes in
one piece.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import orjson

from svcnet.api.errors import NotAcceptable

JSON = "application/json"


class Response:
    """A complete answer: status, body, content type and any further headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        body: bytes = b"",
        status: int = 200,
        content_type: str = JSON,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = headers if headers is not None else []


class Rendering(enum.Enum):
    OBJECT = "object"
    TABLE = "table"
    METADATA = "metadata"


def negotiate(accept: str) -> Rendering:
    """What the Accept header asks for; the first acceptable entry wins, as upstream."""
    if not accept:
        return Rendering.OBJECT
    for entry in accept.split(","):
        parts = [p.strip() for p in entry.split(";")]
        mt = parts[0].lower()
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if mt not in ("application/json", "*/*", "application/*", "application/yaml"):
            continue
        as_ = params.get("as")
        if as_ is None:
            return Rendering.OBJECT
        if as_ == "Table" and params.get("g") == "meta.k8s.io":
            return Rendering.TABLE
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and (
            params.get("g") == "meta.k8s.io"
        ):
            return Rendering.METADATA
    if "protobuf" in accept:
        # kubectl and client-go always offer JSON as a fallback; a client that only wants
        # protobuf gets upstream's 406.
        raise NotAcceptable("only the following media types are accepted: application/json")
    return Rendering.OBJECT


def json_body(obj: Any) -> bytes:
    return orjson.dumps(obj)


def respond(body: bytes, status: int = 200, warnings: Iterable[str] = ()) -> Response:
    # RFC 7234 warn-code 299 with the agent "-", as kube-apiserver sends them.
    headers = [
        ("Warning", '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"') for w in warnings
    ]
    return Response(body, status, JSON, headers)


def respond_object(obj: Any, status: int = 200, warnings: Iterable[str] = ()) -> Response:
    return respond(orjson.dumps(obj), status, warnings)


def list_bytes(
    api_version: str,
    list_kind: str,
    items: list[bytes],
    resource_version: str,
    continue_token: str = "",
    remaining: int | None = None,
) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    head = orjson.dumps({"kind": list_kind, "apiVersion": api_version, "metadata": meta})
    # {"kind":...,"metadata":{...}} -> {...,"items":[...]}
    return head[:-1] + b',"items":[' + b",".join(items) + b"]}"


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }
