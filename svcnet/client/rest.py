"""The async Kubernetes REST client: the one door through which components reach the cluster.

One aiohttp session with keep-alive per :class:`ApiClient`; TLS verified against the
cluster's CA; a bearer token. Objects are plain dicts (the wire form, decoded by orjson).

Errors are translated here and nowhere else: a non-2xx answer becomes the
:class:`svcnet.api.errors.ApiError` subclass its ``Status`` names (``ApiError.from_status``),
an ``ERROR`` watch event likewise (410 → :class:`~svcnet.api.errors.Gone`), and a transport
failure becomes :class:`ConnectionFailed`. Retries live in one place, :meth:`ApiClient._send`:
only reads (GET without watch) are retried, only on connection failures, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import orjson

from svcnet.api import objects
from svcnet.api.errors import ApiError, InternalError
from svcnet.api.registry import PODS, REGISTRY, NotInRegistry, ResourceType
from svcnet.client.kubeconfig import ClientConfig

if TYPE_CHECKING:
    # Imported where a session is opened, not here: modules that only name ApiClient (the
    # informers, a subclass with its own transport) must not pay aiohttp's ~11 MiB.
    import aiohttp

log = logging.getLogger(__name__)

PatchType = Literal["merge", "json", "strategic", "apply"]
PropagationPolicy = Literal["Background", "Foreground", "Orphan"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


class ClientError(Exception):
    """A client-side failure that is not an API answer."""


class ConnectionFailed(ClientError):
    """The API server could not be reached, or the connection broke mid-request."""


class UnknownResource(ClientError):
    """An object's apiVersion/kind is not in the registry."""


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream: ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``."""

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str:
        return str(self.object.get("metadata", {}).get("resourceVersion", ""))


def resource_of(obj: Mapping[str, Any]) -> ResourceType:
    """The registry row of an object, from its ``apiVersion`` and ``kind``."""
    try:
        return REGISTRY.by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    except NotInRegistry as e:
        raise UnknownResource(str(e)) from e


ResourceRef = ResourceType | str
"""A registry row, or a name as kubectl takes it (``svc``, ``pods``, ``deployments.apps``)."""


def resolve_resource(ref: ResourceRef) -> ResourceType:
    if isinstance(ref, ResourceType):
        return ref
    try:
        return REGISTRY.by_name(ref)
    except NotInRegistry as e:
        raise UnknownResource(f'the server doesn\'t have a resource type "{ref}"') from e


def object_path(
    rt: ResourceType,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/api/v1/namespaces/default/services/web/status`` and friends."""
    parts = [rt.base_path]
    if rt.namespaced and namespace:
        parts.append(f"/namespaces/{quote(namespace, safe='')}")
    parts.append(f"/{rt.plural}")
    if name is not None:
        parts.append(f"/{quote(name, safe='')}")
        if subresource:
            parts.append(f"/{subresource}")
    return "".join(parts)


def _params(**kwargs: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in kwargs.items():
        if value is None or value is False:
            continue
        out[key] = "true" if value is True else str(value)
    return out


def _ssl_context(config: ClientConfig) -> ssl.SSLContext | bool:
    if not config.server.startswith("https"):
        return False
    if config.insecure_skip_tls_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif config.ca_data:
        ctx = ssl.create_default_context(cadata=config.ca_data.decode())
    else:
        ctx = ssl.create_default_context()
    if config.client_cert_data and config.client_key_data:
        # ssl can only load a certificate chain from files. (tempfile here, not at the top:
        # with shutil, bz2 and lzma it is ~0.8 MiB resident that token users never need.)
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert.write_bytes(config.client_cert_data)
            key.write_bytes(config.client_key_data)
            key.chmod(0o600)
            ctx.load_cert_chain(cert, key)
    return ctx


def error_from_response(status: int, body: bytes, reason: str) -> ApiError:
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        decoded.setdefault("code", status)
        return ApiError.from_status(decoded)
    # Not a Status (a proxy in between, a crash): keep the code, quote the body.
    text = body.decode(errors="replace").strip()[:500] or reason
    return ApiError.from_status({"code": status, "message": text})


class ApiClient:
    """``async with ApiClient(config) as c: await c.get(SERVICES, "web", "default")``."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        timeout: float = 30.0,
        read_retries: int = 3,
        retry_backoff: float = 0.2,
        max_connections: int = 100,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.read_retries = read_retries
        self.retry_backoff = retry_backoff
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._ssl = _ssl_context(config)

    async def __aenter__(self) -> ApiClient:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def open(self) -> None:
        if self._session is None:
            import aiohttp

            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self.max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.config.user_agent},
                # orjson both ways: aiohttp's default json is the stdlib's.
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise ClientError("ApiClient is not open: use `async with ApiClient(...)`")
        return self._session

    def _headers(self, content_type: str | None, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    # -- raw requests ------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str | None,
        accept: str,
    ) -> tuple[int, bytes]:
        """One request, retried on connection failures when it only reads."""
        attempts = 1 + (self.read_retries if method == "GET" else 0)
        delay = self.retry_backoff
        for attempt in range(attempts):
            try:
                return await self._exchange(method, path, params, body, content_type, accept)
            except self._transport_errors() as e:
                if attempt + 1 >= attempts:
                    raise ConnectionFailed(f"{method} {self.config.server}{path}: {e!r}") from e
                log.debug("retrying %s %s after %r", method, path, e)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _transport_errors(self) -> tuple[type[BaseException], ...]:
        """What the transport raises when the connection, not the server, failed."""
        import aiohttp

        return (aiohttp.ClientError, OSError, TimeoutError)

    async def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        content_type: str | None,
        accept: str,
    ) -> tuple[int, bytes]:
        """One HTTP exchange over the transport: (status, body)."""
        import aiohttp

        async with self.session.request(
            method,
            self.config.server + path,
            params=params,
            data=body,
            headers=self._headers(content_type, accept),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            return resp.status, await resp.read()

    async def request_bytes(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> bytes:
        """Any request; the raw body of a 2xx answer, else the ApiError it carries."""
        data: bytes | None
        if body is None or isinstance(body, bytes):
            data = body
        else:
            data = orjson.dumps(body)
            content_type = content_type or "application/json"
        status, payload = await self._send(method, path, params, data, content_type, accept)
        if status >= 300:
            raise error_from_response(status, payload, method)
        return payload

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Any request whose answer is a JSON object."""
        payload = await self.request_bytes(
            method, path, params=params, body=body, content_type=content_type
        )
        if not payload:
            return {}
        try:
            decoded = orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            raise InternalError(f"{method} {path}: answer is not JSON: {e}") from e
        if not isinstance(decoded, dict):
            raise InternalError(f"{method} {path}: answer is not a JSON object")
        return decoded

    # -- verbs -------------------------------------------------------------------------------

    async def get(self, rt: ResourceRef, name: str, namespace: str | None = None) -> dict[str, Any]:
        return await self.request("GET", object_path(resolve_resource(rt), namespace, name))

    async def list(
        self,
        rt: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """One page: the ``<Kind>List`` with ``metadata.continue`` when there is more."""
        params = _params(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=limit,
            resourceVersion=resource_version,
        )
        if continue_:
            params["continue"] = continue_
        return await self.request(
            "GET", object_path(resolve_resource(rt), namespace), params=params
        )

    async def list_all(
        self,
        rt: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int | None = 500,
    ) -> dict[str, Any]:
        """Every page joined into one list; ``metadata.resourceVersion`` is the first page's
        (the snapshot all pages were read from, which is where a watch must start)."""
        first = await self.list(
            rt,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=page_size,
        )
        items = list(first.get("items") or [])
        cont = objects.meta(first).get("continue")
        while cont:
            page = await self.list(
                rt,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_=str(cont),
            )
            items.extend(page.get("items") or [])
            cont = objects.meta(page).get("continue")
        result = dict(first)
        result["items"] = items
        result["metadata"] = {"resourceVersion": objects.meta(first).get("resourceVersion", "")}
        return result

    async def create(
        self,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        rt = resource_of(obj)
        ns = (
            namespace
            or objects.meta(obj).get("namespace")
            or (self.config.namespace if rt.namespaced else None)
        )
        params = _params(dryRun="All" if dry_run else None, fieldManager=field_manager)
        return await self.request("POST", object_path(rt, ns), params=params, body=dict(obj))

    async def _put(
        self, obj: Mapping[str, Any], subresource: str | None, field_manager: str | None
    ) -> dict[str, Any]:
        rt = resource_of(obj)
        meta = objects.meta(obj)
        path = object_path(rt, meta.get("namespace"), str(meta.get("name", "")), subresource)
        params = _params(fieldManager=field_manager)
        return await self.request("PUT", path, params=params, body=dict(obj))

    async def update(
        self, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> dict[str, Any]:
        """PUT; ``metadata.resourceVersion`` in ``obj`` makes it a compare-and-swap (409)."""
        return await self._put(obj, None, field_manager)

    async def update_status(
        self, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> dict[str, Any]:
        return await self._put(obj, "status", field_manager)

    async def patch(
        self,
        rt: ResourceRef,
        name: str,
        patch: Any,
        patch_type: PatchType = "merge",
        namespace: str | None = None,
        *,
        field_manager: str | None = None,
        force: bool = False,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        params = _params(fieldManager=field_manager, force=force, dryRun="All" if dry_run else None)
        body = patch if isinstance(patch, bytes) else orjson.dumps(patch)
        return await self.request(
            "PATCH",
            object_path(resolve_resource(rt), namespace, name, subresource),
            params=params,
            body=body,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )

    async def apply(
        self,
        obj: Mapping[str, Any],
        field_manager: str,
        *,
        force: bool = False,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply of ``obj`` (the fields this manager owns)."""
        rt = resource_of(obj)
        meta = objects.meta(obj)
        ns = meta.get("namespace") or (self.config.namespace if rt.namespaced else None)
        return await self.patch(
            rt,
            str(meta.get("name", "")),
            dict(obj),
            "apply",
            ns,
            field_manager=field_manager,
            force=force,
            subresource=subresource,
        )

    async def delete(
        self,
        rt: ResourceRef,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: PropagationPolicy | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE; the answer is the object (still there, with deletionTimestamp, while
        finalizers run) or a success ``Status``. ``preconditions``: ``uid``/``resourceVersion``."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = dict(preconditions)
        if dry_run:
            options["dryRun"] = ["All"]
        return await self.request(
            "DELETE", object_path(resolve_resource(rt), namespace, name), body=options
        )

    # -- subresources ------------------------------------------------------------------------

    async def get_status(
        self, rt: ResourceRef, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        return await self.request(
            "GET", object_path(resolve_resource(rt), namespace, name, "status")
        )

    async def get_scale(
        self, rt: ResourceRef, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        return await self.request(
            "GET", object_path(resolve_resource(rt), namespace, name, "scale")
        )

    async def scale(
        self, rt: ResourceRef, name: str, replicas: int, namespace: str | None = None
    ) -> dict[str, Any]:
        return await self.patch(
            rt, name, {"spec": {"replicas": replicas}}, "merge", namespace, subresource="scale"
        )

    async def bind(
        self, pod_name: str, namespace: str, node_name: str, pod_uid: str | None = None
    ) -> dict[str, Any]:
        """POST pods/<name>/binding, as the scheduler does."""
        pods = PODS
        meta: dict[str, Any] = {"name": pod_name, "namespace": namespace}
        if pod_uid:
            meta["uid"] = pod_uid
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": meta,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        return await self.request(
            "POST", object_path(pods, namespace, pod_name, "binding"), body=binding
        )

    async def logs(
        self,
        pod_name: str,
        namespace: str,
        *,
        container: str | None = None,
        previous: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
    ) -> str:
        params = _params(
            container=container, previous=previous, tailLines=tail_lines, timestamps=timestamps
        )
        body = await self.request_bytes(
            "GET",
            object_path(PODS, namespace, pod_name, "log"),
            params=params,
            accept="text/plain",
        )
        return body.decode(errors="replace")

    # -- watch -------------------------------------------------------------------------------

    async def watch(
        self,
        rt: ResourceRef,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        send_initial_events: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        """The events after ``resource_version`` until the server ends the stream.

        An ``ERROR`` event is raised as its ApiError (410 Gone → relist). The stream ending
        normally (``timeoutSeconds`` reached) just ends the iteration.
        """
        params = _params(
            watch=True,
            resourceVersion=resource_version,
            labelSelector=label_selector,
            fieldSelector=field_selector,
            timeoutSeconds=timeout_seconds,
            allowWatchBookmarks=allow_bookmarks,
            sendInitialEvents=send_initial_events,
        )
        path = object_path(resolve_resource(rt), namespace)
        # The stream lasts as long as the server keeps it. A silent stream is normal (no
        # changes, bookmarks are best-effort), so a read only times out a little after the
        # server should have ended the watch itself: that is how a vanished peer shows.
        read_timeout = timeout_seconds + 30.0 if timeout_seconds else None
        try:
            # aclosing: a consumer that stops early releases the connection at once.
            async with contextlib.aclosing(
                self._watch_stream(path, params, read_timeout)
            ) as events:
                async for event in events:
                    yield event
        except self._transport_errors() as e:
            raise ConnectionFailed(f"watch {self.config.server}{path}: {e!r}") from e

    async def _watch_stream(
        self, path: str, params: Mapping[str, str], read_timeout: float | None
    ) -> AsyncGenerator[WatchEvent, None]:
        """The transport's half of :meth:`watch`: the events of one watch request."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=read_timeout)
        async with self.session.get(
            self.config.server + path,
            params=params,
            headers=self._headers(None, "application/json"),
            timeout=timeout,
        ) as resp:
            if resp.status >= 300:
                raise error_from_response(resp.status, await resp.read(), "watch")
            async for event in watch_events(resp.content.iter_any()):
                yield event


async def watch_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[WatchEvent]:
    """The events of a watch stream (one JSON object per line), from its body's chunks."""
    buf = b""
    async for chunk in chunks:
        buf += chunk
        while (nl := buf.find(b"\n")) >= 0:
            line, buf = buf[:nl], buf[nl + 1 :]
            if line.strip():
                yield _decode_event(line)
    if buf.strip():
        yield _decode_event(buf)


def _decode_event(line: bytes) -> WatchEvent:
    try:
        decoded = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise InternalError(f"watch stream: not JSON: {line[:200]!r}") from e
    etype = str(decoded.get("type", ""))
    obj = decoded.get("object") or {}
    if etype == "ERROR":
        raise ApiError.from_status(obj)
    return WatchEvent(etype, obj)
