"""URL routing: non-resource endpoints (health, version, discovery, OpenAPI) and one
dispatcher for every resource path, by the verb :mod:`request` resolved."""

from __future__ import annotations

import datetime
import platform
from typing import Any

import orjson
from aiohttp import web

from svcnet.api.errors import MethodNotAllowed, NotFound
from svcnet.api.registry import Registry
from svcnet.apiserver import discovery, openapi
from svcnet.apiserver import request as req
from svcnet.apiserver import response as resp
from svcnet.apiserver.handlers import ResourceHandlers
from svcnet.apiserver.podproxy import PodProxy
from svcnet.apiserver.selection import selection_for
from svcnet.apiserver.watch import WatchRegistry, serve_watch

GIT_VERSION = "v1.32.0-svcnet"
BUILD_DATE = "2026-01-01T00:00:00Z"


def version_info() -> dict[str, Any]:
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": BUILD_DATE,
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{_arch()}",
    }


def _arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


class Router:
    """The aiohttp handlers of one API server."""

    def __init__(
        self,
        registry: Registry,
        handlers: ResourceHandlers,
        watches: WatchRegistry,
        pod_proxy: PodProxy,
        server_address: str,
    ) -> None:
        self.registry = registry
        self.handlers = handlers
        self.watches = watches
        self.pod_proxy = pod_proxy
        self.ready = True
        # Discovery never changes while the server runs: serialize it once.
        self._api = orjson.dumps(discovery.api_versions(server_address))
        self._apis = orjson.dumps(discovery.api_group_list(registry))
        self._agg = {
            (legacy, v): orjson.dumps(discovery.aggregated(registry, legacy, v))
            for legacy in (True, False)
            for v in ("v2", "v2beta1")
        }
        self._version = orjson.dumps(version_info())

    def add_routes(self, app: web.Application) -> None:
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, self.health)
            app.router.add_get(path + "/{check:.*}", self.health)
        app.router.add_get("/version", self.version)
        app.router.add_get("/version/", self.version)
        app.router.add_get("/openapi/{tail:.*}", self.openapi)
        app.router.add_route("*", "/api", self.dispatch)
        app.router.add_route("*", "/api/{tail:.*}", self.dispatch)
        app.router.add_route("*", "/apis", self.dispatch)
        app.router.add_route("*", "/apis/{tail:.*}", self.dispatch)
        app.router.add_get("/", self.root)

    async def health(self, request: web.Request) -> web.Response:
        if request.path.startswith("/readyz") and not self.ready:
            return web.Response(
                status=500, text="[-]shutdown failed: reason withheld\nreadyz check failed"
            )
        return web.Response(text="ok", content_type="text/plain")

    async def version(self, request: web.Request) -> web.Response:
        return resp.respond(self._version)

    async def root(self, request: web.Request) -> web.Response:
        paths = [
            "/api",
            "/api/v1",
            "/apis",
            "/healthz",
            "/livez",
            "/openapi/v2",
            "/openapi/v3",
            "/readyz",
            "/version",
        ]
        paths += [f"/apis/{g}/{v}" for g, v in self.registry.group_versions() if g]
        return resp.respond_object({"paths": sorted(paths)})

    async def openapi(self, request: web.Request) -> web.Response:
        answer = openapi.serve(
            request.path,
            request.headers.get("Accept", ""),
            request.query.get("hash"),
            request.headers.get("If-None-Match"),
        )
        if answer is None:
            raise NotFound("the server could not find the requested resource")
        return web.Response(status=answer.status, headers=answer.headers, body=answer.body)

    # -- discovery ---------------------------------------------------------------------

    def _discovery(self, request: web.Request) -> web.Response | None:
        parts = [p for p in request.path.split("/") if p]
        accept = request.headers.get("Accept", "")
        if parts in (["api"], ["apis"]):
            agg = discovery.wants_aggregated(accept)
            legacy = parts == ["api"]
            if agg is not None:
                ct = discovery.AGGREGATED_V2 if agg == "v2" else discovery.AGGREGATED_V2BETA1
                return web.Response(
                    body=self._agg[(legacy, agg)], headers={"Content-Type": ct, "Vary": "Accept"}
                )
            return resp.respond(self._api if legacy else self._apis)
        if len(parts) == 2 and parts[0] == "api":
            doc = discovery.api_resource_list(self.registry, "", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            if not self.registry.in_group_version(parts[1], "") and not any(
                g == parts[1] for g, _ in self.registry.group_versions()
            ):
                return None
            return resp.respond_object(discovery.api_group(self.registry, parts[1]))
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(self.registry, parts[1], parts[2])
        else:
            return None
        return None if doc is None else resp.respond_object(doc)

    # -- resources ---------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        info = req.parse_resource_path(request.path, request.method, request.query)
        if info is None:
            if request.method != "GET":
                raise MethodNotAllowed(
                    "the server does not allow this method on the requested resource"
                )
            found = self._discovery(request)
            if found is None:
                raise NotFound("the server could not find the requested resource")
            return found
        h = self.handlers
        rt = h.resolve(info)
        verb = info.verb
        if info.subresource in ("log", "exec", "attach", "portforward", "proxy"):
            return await self.pod_proxy.serve(request, info, rt)
        if verb is req.Verb.GET:
            return await h.get(request, info, rt)
        if verb is req.Verb.LIST:
            return await h.list(request, info, rt)
        if verb is req.Verb.WATCH:
            opts = req.list_options(request.query)
            selection = selection_for(rt, opts.label_selector, opts.field_selector)
            if info.name:
                selection = selection.with_name(info.name)
            return await serve_watch(
                request, rt, info.namespace, opts, selection, h.objects, self.watches, h.clock
            )
        if verb is req.Verb.CREATE:
            return await h.create(request, info, rt)
        if verb is req.Verb.UPDATE:
            return await h.update(request, info, rt)
        if verb is req.Verb.PATCH:
            return await h.patch(request, info, rt)
        if verb is req.Verb.DELETE:
            return await h.delete(request, info, rt)
        return await h.delete_collection(request, info, rt)


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
