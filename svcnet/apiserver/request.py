"""Request parsing: the URL into a :class:`RequestInfo`, the query into options, the body
into an object. Pure (no aiohttp): handlers pass in the path, method, query and bytes.

The path grammar is upstream's ``RequestInfoFactory``: ``/api/v1`` or ``/apis/<g>/<v>``, an
optional legacy ``watch`` segment, ``namespaces/<ns>/`` for namespaced resources (except the
namespace's own subresources ``status`` and ``finalize``), then ``<resource>[/<name>[/<sub>]]``.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from svcnet.api.errors import BadRequest, UnsupportedMediaType
from svcnet.api.fieldvalidation import parse_directive

MAX_BODY_BYTES = 3 * 1024 * 1024  # upstream's default --max-request-body-bytes


class Verb(enum.Enum):
    GET = "get"
    LIST = "list"
    WATCH = "watch"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    DELETECOLLECTION = "deletecollection"


@dataclass(frozen=True)
class RequestInfo:
    group: str
    version: str
    resource: str
    namespace: str | None
    name: str
    subresource: str
    verb: Verb


_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


# Parsed paths, by (path, method, watch): clients repeat the same few (the collection they
# create in, the objects whose status they patch). Bounded, cleared when full.
_PARSED: dict[tuple[str, str, bool], RequestInfo | None] = {}


def parse_resource_path(path: str, method: str, query: Mapping[str, str]) -> RequestInfo | None:
    """The resource request a path names, or None for a non-resource path (discovery etc.)."""
    key = (path, method, _truthy(query.get("watch", "")) if query else False)
    try:
        return _PARSED[key]
    except KeyError:
        pass
    info = _parse_resource_path(path, method, key[2])
    if len(_PARSED) >= 4096:
        _PARSED.clear()
    _PARSED[key] = info
    return info


def _parse_resource_path(path: str, method: str, watch_param: bool) -> RequestInfo | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch, rest = True, rest[1:]
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = "/".join(rest[2:]) if len(rest) > 2 else ""
    watch = legacy_watch or watch_param
    verb = _verb(method, bool(name), watch)
    return RequestInfo(group, version, resource, namespace, name, subresource, verb)


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "t", "yes")


def _verb(method: str, has_name: bool, watch: bool) -> Verb:
    if method in ("GET", "HEAD"):
        if watch:
            return Verb.WATCH
        return Verb.GET if has_name else Verb.LIST
    if method == "POST":
        return Verb.CREATE
    if method == "PUT":
        return Verb.UPDATE
    if method == "PATCH":
        return Verb.PATCH
    if method == "DELETE":
        return Verb.DELETE if has_name else Verb.DELETECOLLECTION
    raise BadRequest(f"unsupported method {method}")


# -- query options -----------------------------------------------------------------------


@dataclass(frozen=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    allow_bookmarks: bool = False
    timeout_seconds: int = 0
    send_initial_events: bool | None = None


def _int_param(query: Mapping[str, str], name: str) -> int:
    raw = query.get(name, "")
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f'invalid value for {name}: "{raw}"') from None


def list_options(query: Mapping[str, str]) -> ListOptions:
    limit = _int_param(query, "limit")
    match = query.get("resourceVersionMatch", "")
    rv = query.get("resourceVersion", "")
    if match and match not in ("NotOlderThan", "Exact"):
        raise BadRequest(f'unsupported resourceVersionMatch "{match}"')
    if match and not rv:
        # Upstream's validation text for the same request.
        raise BadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
    if rv and rv != "0":
        try:
            int(rv)
        except ValueError:
            raise BadRequest(f'invalid resource version "{rv}"') from None
    sie = query.get("sendInitialEvents")
    return ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        limit=max(limit, 0),
        continue_token=query.get("continue", ""),
        resource_version=rv,
        resource_version_match=match,
        allow_bookmarks=_truthy(query.get("allowWatchBookmarks", "")),
        timeout_seconds=_int_param(query, "timeoutSeconds"),
        send_initial_events=None if sie is None else _truthy(sie),
    )


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    # "Strict", "Warn" or "Ignore" (svcnet.api.fieldvalidation's directives).
    field_validation: str = "Warn"
    force: bool = False


# The options of writes without query parameters (nearly all of them), by user agent.
_PLAIN_WRITES: dict[str, WriteOptions] = {}


def write_options(
    query: Mapping[str, str], user_agent: str = "", options_kind: str = "CreateOptions"
) -> WriteOptions:
    if not query:
        plain = _PLAIN_WRITES.get(user_agent)
        if plain is None:
            if len(_PLAIN_WRITES) >= 256:
                _PLAIN_WRITES.clear()
            plain = _PLAIN_WRITES[user_agent] = WriteOptions(
                field_manager=default_field_manager(user_agent)
            )
        return plain
    getall = getattr(query, "getall", None)
    dry = list(getall("dryRun", [])) if getall is not None else [query.get("dryRun", "")]
    dry_values = [d for d in dry if d]
    for d in dry_values:
        if d != "All":
            raise BadRequest(f'Invalid dryRun value: "{d}"; the only supported value is "All"')
    manager = query.get("fieldManager", "") or default_field_manager(user_agent)
    return WriteOptions(
        dry_run=bool(dry_values),
        field_manager=manager,
        field_validation=parse_directive(query.get("fieldValidation"), options_kind),
        force=_truthy(query.get("force", "")),
    )


def default_field_manager(user_agent: str) -> str:
    # Upstream uses the user agent up to the first "/" ("kubectl-client-side-apply/v1.32 ...").
    head = user_agent.split("/", 1)[0].strip()
    return head[:128] or "unknown"


# -- continue tokens -----------------------------------------------------------------------


@dataclass(frozen=True)
class ContinueToken:
    revision: int
    start_after: str


def encode_continue(revision: int, last_key: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> ContinueToken:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError
        return ContinueToken(int(data["rv"]), str(data["start"]))
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest(
            "continue key is not valid: incorrect encoded start resourceVersion "
            "(version meta.k8s.io/v1)"
        ) from None


# -- bodies --------------------------------------------------------------------------------


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def decode_body(body: bytes, content_type: str) -> dict[str, Any]:
    """The object in a create/update body (JSON, or YAML as kubectl may send)."""
    mt = media_type(content_type) or "application/json"
    if mt == "application/json":
        return _decode_json(body)
    if mt in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
        return _decode_yaml(body)
    if mt == "application/vnd.kubernetes.protobuf":
        # kubectl's typed clients (kubectl create deployment/namespace/secret ...) send these.
        from svcnet.apiserver.protobuf import decode_object

        return decode_object(body)
    raise UnsupportedMediaType(f'the media type "{mt}" is not supported')


def _decode_json(body: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the object provided is unrecognized (invalid JSON: {exc})") from None
    if not isinstance(obj, dict):
        raise BadRequest(
            "the object provided is unrecognized (json: cannot unmarshal "
            f"{type(obj).__name__} into Go value of type struct)"
        )
    return obj


def _decode_yaml(body: bytes) -> dict[str, Any]:
    try:
        obj = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise BadRequest(f"error converting YAML to JSON: {exc}".replace("\n", " ")) from None
    if not isinstance(obj, dict):
        raise BadRequest("the object provided is unrecognized (yaml: not an object)")
    # YAML may produce non-JSON types (dates); a JSON round trip keeps stored objects plain.
    try:
        return orjson.loads(orjson.dumps(obj, default=str))  # type: ignore[no-any-return]
    except TypeError as exc:
        raise BadRequest(f"error converting YAML to JSON: {exc}") from None


def decode_patch(body: bytes, content_type: str) -> Any:
    """A patch document: a JSON array (json-patch) or object (merge/strategic), or YAML (apply)."""
    mt = media_type(content_type)
    if mt == "application/apply-patch+yaml":
        return _decode_yaml(body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"error decoding patch: {exc}") from None
