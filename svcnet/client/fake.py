"""A small, faithful fake of the Kubernetes REST protocol, for unit tests of the client and
of everything built on it (informers, controllers) that must not need the real API server.

What it keeps from kube-apiserver: paths (``/api/v1/namespaces/<ns>/<plural>/<name>``),
``Status`` errors with reason and code, a global resourceVersion, lists with
``limit``/``continue`` and ``metadata.resourceVersion``, watches from a resourceVersion that
stream ``{"type":…,"object":…}`` lines (``BOOKMARK`` on request, an ``ERROR`` event carrying a
410 ``Expired`` Status when the history was compacted past the requested version,
``timeoutSeconds``), bearer-token auth (401), create (generateName, uid, 409 AlreadyExists),
update with optimistic concurrency (409 Conflict), merge/strategic patch of maps, delete with
``preconditions.uid`` and the garbage collector's side of propagation (``Orphan`` and
``Foreground`` add their finalizer; an object with finalizers gets ``deletionTimestamp`` and
stays until an update empties them, as ``generic/registry/store.go`` does). Not modelled:
graceful pod deletion, validation, defaulting, field selectors, server-side apply.

Test hooks: :meth:`compact`, :meth:`send_bookmarks`, :meth:`drop_watches` (breaks every open
watch connection), :meth:`fail_next` (answers the next N requests with a status), and direct
writes with :meth:`put`/:meth:`remove` that emit watch events as a real writer would.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from svcnet.api.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    Unauthorized,
)
from svcnet.api.registry import REGISTRY, ResourceType

TOKEN = "test-token"


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


@dataclass
class _Watcher:
    rt: ResourceType
    namespace: str | None
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


class FakeApiServer:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.rv = 100
        self.history: list[tuple[int, str, ResourceType, dict[str, Any]]] = []
        self.compacted = 0
        self.watchers: list[_Watcher] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._fail: list[int] = []
        # While paused, open watches hear nothing (a network partition the client cannot see).
        self.paused = False
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app)

    async def start(self) -> None:
        await self.server.start_server()

    async def close(self) -> None:
        self.drop_watches()
        await self.server.close()

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    # -- hooks -------------------------------------------------------------------------------

    def compact(self) -> None:
        """Forget every event so far: watches from older versions get 410."""
        self.compacted = self.rv
        self.history.clear()

    def send_bookmarks(self) -> None:
        for w in self.watchers:
            bm = {
                "kind": w.rt.kind,
                "apiVersion": w.rt.group_version,
                "metadata": {"resourceVersion": str(self.rv)},
            }
            w.queue.put_nowait(orjson.dumps({"type": "BOOKMARK", "object": bm}) + b"\n")

    def drop_watches(self) -> None:
        self.paused = False
        for w in self.watchers:
            w.queue.put_nowait(None)
        self.watchers.clear()

    def fail_next(self, *codes: int) -> None:
        self._fail.extend(codes)

    def watch_count(self, method_path_contains: str = "watch") -> int:
        return sum(1 for _, _, q in self.requests if q.get("watch") == "true")

    # -- storage -----------------------------------------------------------------------------

    def _key(self, rt: ResourceType, ns: str | None, name: str) -> tuple[str, str, str, str]:
        return (rt.group, rt.plural, ns or "", name)

    def _emit(self, etype: str, rt: ResourceType, obj: dict[str, Any]) -> None:
        self.history.append((self.rv, etype, rt, obj))
        ns = obj["metadata"].get("namespace")
        line = orjson.dumps({"type": etype, "object": obj}) + b"\n"
        if self.paused:
            return
        for w in self.watchers:
            if w.rt == rt and (w.namespace is None or w.namespace == ns):
                w.queue.put_nowait(line)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace ``obj`` as a writer would, emitting ADDED or MODIFIED."""
        rt = REGISTRY.by_kind(obj["apiVersion"], obj["kind"])
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = self._key(rt, meta.get("namespace"), meta["name"])
        old = self.objects.get(key)
        meta.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self.objects[key] = obj
        self._emit("MODIFIED" if old else "ADDED", rt, obj)
        return obj

    def remove(self, rt: ResourceType, name: str, ns: str | None = None) -> dict[str, Any]:
        obj = self.objects.pop(self._key(rt, ns, name))
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit("DELETED", rt, obj)
        return obj

    def remove_silently(self, rt: ResourceType, name: str, ns: str | None = None) -> None:
        """A deletion whose event the watchers never get (it falls into a compacted gap)."""
        del self.objects[self._key(rt, ns, name)]
        self.rv += 1

    # -- HTTP --------------------------------------------------------------------------------

    def _resolve(self, path: str) -> tuple[ResourceType, str | None, str | None, str | None]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"]:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise NotFound("the server could not find the requested resource")
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        rt = REGISTRY.by_plural(group, version, rest[0]) if rest else None
        if rt is None:
            raise NotFound("the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return rt, ns, name, sub

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.query)))
        try:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                raise Unauthorized()
            if self._fail:
                code = self._fail.pop(0)
                raise ApiError.from_status({"code": code, "message": f"injected {code}"})
            rt, ns, name, _sub = self._resolve(request.path)
            q = request.query
            if request.method == "GET" and name is None:
                if q.get("watch") == "true":
                    return await self._watch(request, rt, ns)
                return self._json(self._list(rt, ns, q))
            raw = await request.read()
            body: Any = orjson.loads(raw) if raw else None
            if request.method in ("POST", "PUT") and not isinstance(body, dict):
                raise BadRequest("the body of the request must be an object")
            if request.method == "GET":
                return self._json(self._get(rt, ns, name or ""))
            if request.method == "POST":
                return self._json(self._create(rt, ns, body), 201)
            if request.method == "PUT":
                return self._json(self._finish(self._update(rt, ns, name or "", body)))
            if request.method == "PATCH":
                old = self._get(rt, ns, name or "")
                new = _merge(old, body)
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
                return self._json(self._finish(self.put(new)))
            if request.method == "DELETE":
                return self._json(self._delete(rt, ns, name or "", body or {}))
            raise BadRequest(f"method {request.method}")
        except ApiError as e:
            return self._json(e.to_status(), e.code)

    def _json(self, body: dict[str, Any], status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")

    def _get(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.objects.get(self._key(rt, ns, name))
        if obj is None:
            raise NotFound.for_object(rt.plural, name, rt.group)
        return obj

    def _list(self, rt: ResourceType, ns: str | None, q: Any) -> dict[str, Any]:
        items = sorted(
            (
                o
                for (g, p, n, _), o in self.objects.items()
                if g == rt.group and p == rt.plural and (ns is None or n == ns)
            ),
            key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )
        selector = q.get("labelSelector")
        if selector:
            want = dict(term.split("=", 1) for term in selector.split(","))
            items = [
                o
                for o in items
                if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())
            ]
        start, rv = 0, self.rv
        if q.get("continue"):
            token = orjson.loads(base64.b64decode(q["continue"]))
            start, rv = token["start"], token["rv"]
        limit = int(q.get("limit", 0) or 0)
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and start + limit < len(items):
            meta["continue"] = base64.b64encode(
                orjson.dumps({"start": start + limit, "rv": rv})
            ).decode()
            page = items[start : start + limit]
        else:
            page = items[start:]
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.group_version,
            "metadata": meta,
            "items": [
                {k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in page
            ],
        }

    def _finish(self, obj: dict[str, Any]) -> dict[str, Any]:
        """An object marked for deletion goes once its last finalizer is removed."""
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            rt = REGISTRY.by_kind(obj["apiVersion"], obj["kind"])
            return self.remove(rt, meta["name"], meta.get("namespace"))
        return obj

    def _delete(
        self, rt: ResourceType, ns: str | None, name: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        obj = copy.deepcopy(self._get(rt, ns, name))
        meta = obj["metadata"]
        want_uid = (options.get("preconditions") or {}).get("uid")
        if want_uid and want_uid != meta["uid"]:
            raise Conflict.for_object(
                rt.plural,
                name,
                f"Precondition failed: UID in precondition: {want_uid}, "
                f"UID in object meta: {meta['uid']}",
                rt.group,
            )
        policy = options.get("propagationPolicy")
        finalizers = list(meta.get("finalizers") or [])
        gc_finalizers = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}
        if policy in gc_finalizers:
            wanted = gc_finalizers[policy]
            finalizers = [f for f in finalizers if f not in gc_finalizers.values()] + [wanted]
        elif policy == "Background":
            finalizers = [f for f in finalizers if f not in gc_finalizers.values()]
        if not finalizers:
            return self.remove(rt, name, ns)
        meta["finalizers"] = finalizers
        meta.setdefault("deletionTimestamp", "2024-01-01T00:00:00Z")
        meta.setdefault("deletionGracePeriodSeconds", 0)
        return self.put(obj)

    def _create(self, rt: ResourceType, ns: str | None, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if ns:
            meta["namespace"] = ns
        if self._key(rt, ns, meta["name"]) in self.objects:
            raise AlreadyExists.for_object(rt.plural, meta["name"], rt.group)
        meta.pop("resourceVersion", None)
        body["apiVersion"], body["kind"] = rt.group_version, rt.kind
        return self.put(body)

    def _update(
        self, rt: ResourceType, ns: str | None, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        old = self._get(rt, ns, name)
        rv = body.get("metadata", {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise Conflict.modified(rt.plural, name, rt.group)
        body["metadata"]["uid"] = old["metadata"]["uid"]
        return self.put(body)

    async def _watch(
        self, request: web.Request, rt: ResourceType, ns: str | None
    ) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        since = int(request.query.get("resourceVersion") or self.rv)
        if since < self.compacted:
            # kube-apiserver answers 200 and sends the 410 as an ERROR event.
            status = Gone(f"too old resource version: {since} ({self.compacted})").to_status()
            await resp.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
            return resp
        w = _Watcher(rt, ns)
        for rv, etype, ert, obj in self.history:
            if rv > since and ert == rt and (ns is None or obj["metadata"].get("namespace") == ns):
                w.queue.put_nowait(orjson.dumps({"type": etype, "object": obj}) + b"\n")
        self.watchers.append(w)
        timeout = float(request.query.get("timeoutSeconds") or 3600)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = await w.queue.get()
                    if line is None:
                        # Break the connection without a clean end, as a dying server would.
                        assert request.transport is not None
                        request.transport.close()
                        return resp
                    await resp.write(line)
        except TimeoutError:
            return resp
        finally:
            if w in self.watchers:
                self.watchers.remove(w)
