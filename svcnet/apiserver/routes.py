"""URL routing: non-resource endpoints (health, version, discovery, OpenAPI) and one
dispatcher for every resource path, by the verb :mod:`request` resolved."""

from __future__ import annotations

import asyncio
import datetime
import platform
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from svcnet.api.errors import BadRequest, MethodNotAllowed, NotFound
from svcnet.api.registry import Registry
from svcnet.apiserver import discovery, openapi
from svcnet.apiserver import request as req
from svcnet.apiserver import response as resp
from svcnet.apiserver.auth import SELF_SUBJECT_REVIEW_PATH, Authenticate, self_subject_review
from svcnet.apiserver.handlers import ResourceHandlers
from svcnet.apiserver.http1 import Answer, Request, render_answer
from svcnet.apiserver.podproxy import PodProxy
from svcnet.apiserver.rbac import reviews
from svcnet.apiserver.rbac.authorizer import CURRENT_USER, RbacAuthorizer, attributes, denial
from svcnet.apiserver.rbac.impersonation import impersonate, wants_impersonation
from svcnet.apiserver.response import Response
from svcnet.apiserver.satoken import UserInfo
from svcnet.apiserver.selection import selection_for
from svcnet.apiserver.status import error_answer
from svcnet.apiserver.tokenrequest import TokenRequests
from svcnet.apiserver.watch import WatchRegistry, serve_watch
from svcnet.util.clock import now_rfc3339

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
    """Every request of one API server, by path: health, version, OpenAPI, discovery and the
    resources. :meth:`handle` is the HTTP layer's entry point (authentication, then the
    route, errors as ``Status``); :meth:`upgrade` serves the connection upgrades aiohttp
    was handed (WebSocket exec, attach, port-forward) and :meth:`raw_upgrade` the SPDY ones."""

    def __init__(
        self,
        registry: Registry,
        handlers: ResourceHandlers,
        watches: WatchRegistry,
        pod_proxy: PodProxy,
        server_address: str,
        authenticate: Authenticate,
        tokens: TokenRequests,
        custom_documents: Callable[[], openapi.CustomDocuments | None] = lambda: None,
        authorizer: RbacAuthorizer | None = None,
    ) -> None:
        self.registry = registry
        self.handlers = handlers
        self.watches = watches
        self.pod_proxy = pod_proxy
        self.authenticate = authenticate
        self.tokens = tokens
        self.custom_documents = custom_documents
        # None: every authenticated request is allowed (--authorization-mode=AlwaysAllow).
        self.authorizer = authorizer
        self.ready = True
        self._api = orjson.dumps(discovery.api_versions(server_address))
        self._version = orjson.dumps(version_info())
        self._serialize_discovery()

    def _serialize_discovery(self) -> None:
        """Discovery changes only when the registry does (a CRD established or gone):
        serialize it once per registry generation."""
        registry = self.registry
        self._generation = registry.generation
        self._apis = orjson.dumps(discovery.api_group_list(registry))
        self._agg = {
            (legacy, v): orjson.dumps(discovery.aggregated(registry, legacy, v))
            for legacy in (True, False)
            for v in ("v2", "v2beta1")
        }

    async def handle(self, request: Request) -> Answer:
        user = await self.authenticate(request.path, request.headers.get("Authorization", ""))
        if isinstance(user, Response):
            return user
        token = None
        try:
            user = await self.authorize(
                user, request.method, request.path, request.query, request.headers
            )
            token = CURRENT_USER.set(user)
            if request.method == "POST":
                if request.path == SELF_SUBJECT_REVIEW_PATH:
                    req.decode_body(request.body, request.content_type)
                    review = self_subject_review(user, now_rfc3339())
                    return resp.respond_object(review, 201)
                found = reviews.review_resource(request.path)
                if found is not None and self.authorizer is not None:
                    body = req.decode_body(request.body, request.content_type)
                    answer = await reviews.review(*found, body, user, self.authorizer)
                    return resp.respond_object(answer, 201)
            return await self.route(request)
        except Exception as exc:
            return error_answer(request.method, request.path, exc)
        finally:
            if token is not None:
                CURRENT_USER.reset(token)

    async def authorize(
        self,
        user: UserInfo,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: MultiMapping[str],
    ) -> UserInfo:
        """The user the request acts as (impersonation applied) once the authorizer allows
        it; raises the 403 otherwise."""
        authz = self.authorizer
        if authz is None:
            return user
        if wants_impersonation(headers):
            user = await impersonate(user, headers, authz)
        a = attributes(user, method, path, query)
        decision = await authz.authorize(a)
        if not decision.allowed:
            raise denial(a, decision.reason)
        return user

    async def route(self, request: Request) -> Answer:
        path = request.path
        if path.startswith(("/api/", "/apis/")) or path in ("/api", "/apis"):
            return await self.dispatch(request)
        if request.method not in ("GET", "HEAD"):
            if _known_path(path):
                raise MethodNotAllowed(
                    "the server does not allow this method on the requested resource"
                )
            raise NotFound("the server could not find the requested resource")
        if path.startswith(("/healthz", "/livez", "/readyz")) and _health_path(path):
            return self.health(path)
        if path in ("/version", "/version/"):
            return resp.respond(self._version)
        if path.startswith("/openapi/"):
            return self.openapi(request)
        if path == "/":
            return self.root()
        raise NotFound("the server could not find the requested resource")

    def health(self, path: str) -> Response:
        if path.startswith("/readyz") and not self.ready:
            return Response(
                b"[-]shutdown failed: reason withheld\nreadyz check failed",
                500,
                "text/plain; charset=utf-8",
            )
        return Response(b"ok", 200, "text/plain; charset=utf-8")

    def root(self) -> Response:
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

    def openapi(self, request: Request) -> Response:
        answer = openapi.serve(
            request.path,
            request.headers.get("Accept", ""),
            request.query.get("hash"),
            request.headers.get("If-None-Match"),
            custom=self.custom_documents(),
        )
        if answer is None:
            raise NotFound("the server could not find the requested resource")
        headers = dict(answer.headers)
        content_type = headers.pop("Content-Type", "application/json")
        return Response(answer.body, answer.status, content_type, list(headers.items()))

    # -- discovery ---------------------------------------------------------------------

    def _discovery(self, request: Request) -> Response | None:
        if self._generation != self.registry.generation:
            self._serialize_discovery()
        parts = [p for p in request.path.split("/") if p]
        accept = request.headers.get("Accept", "")
        if parts in (["api"], ["apis"]):
            agg = discovery.wants_aggregated(accept)
            legacy = parts == ["api"]
            if agg is not None:
                ct = discovery.AGGREGATED_V2 if agg == "v2" else discovery.AGGREGATED_V2BETA1
                return Response(self._agg[(legacy, agg)], 200, ct, [("Vary", "Accept")])
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

    async def dispatch(self, request: Request) -> Answer:
        info = req.parse_resource_path(request.path, request.method, request.query)
        if info is None:
            if request.method not in ("GET", "HEAD"):
                raise MethodNotAllowed(
                    "the server does not allow this method on the requested resource"
                )
            found = self._discovery(request)
            if found is None:
                raise NotFound("the server could not find the requested resource")
            return found
        h = self.handlers
        if (info.group, info.version, info.resource) == _HPA_V1 and info.verb is req.Verb.CREATE:
            return await h.create_hpa_v1(request, info)
        rt = h.resolve(info)
        verb = info.verb
        if info.subresource in (
            "log",
            "exec",
            "attach",
            "portforward",
            "proxy",
        ) or info.subresource.startswith("proxy/"):
            return await self.pod_proxy.serve(request, info, rt)
        if info.subresource == "token":
            if verb is not req.Verb.CREATE:
                raise MethodNotAllowed(
                    "the server does not allow this method on the requested resource"
                )
            return await self.tokens.create(request, info)
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

    # -- connection upgrades (aiohttp) ---------------------------------------------------

    def upgrade_app(self) -> web.Application:
        """The aiohttp application serving the connections :mod:`http1` hands over."""
        app = web.Application(handler_args={"max_field_size": 65536})
        app.router.add_route("*", "/{tail:.*}", self.upgrade)
        return app

    async def raw_upgrade(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A SPDY upgrade (exec, attach, port-forward of clients without WebSocket)."""
        try:
            user = await self.authenticate(request.path, request.headers.get("Authorization", ""))
            if isinstance(user, Response):
                writer.write(render_answer(user, keep_alive=False))
                return
            await self.authorize(user, request.method, request.path, request.query, request.headers)
            info = req.parse_resource_path(request.path, request.method, request.query)
            if info is None or info.subresource not in ("exec", "attach", "portforward"):
                raise BadRequest(f"the server does not upgrade connections to {request.path}")
            rt = self.handlers.resolve(info)
            await self.pod_proxy.serve_spdy(request, info, rt, reader, writer)
        except Exception as exc:
            if not writer.is_closing():
                answer = error_answer(request.method, request.path, exc)
                writer.write(render_answer(answer, keep_alive=False))

    async def upgrade(self, request: web.Request) -> web.StreamResponse:
        try:
            user = await self.authenticate(request.path, request.headers.get("Authorization", ""))
            if isinstance(user, Response):
                return _to_aiohttp(user)
            await self.authorize(user, request.method, request.path, request.query, request.headers)
            info = req.parse_resource_path(request.path, request.method, request.query)
            if info is None or info.subresource not in ("exec", "attach", "portforward"):
                raise BadRequest(f"the server does not upgrade connections to {request.path}")
            return await self.pod_proxy.serve_upgrade(request, info, self.handlers.resolve(info))
        except Exception as exc:
            return _to_aiohttp(error_answer(request.method, request.path, exc))


def _to_aiohttp(answer: Response) -> web.Response:
    """An error answering an upgrade request; the connection ends with it (aiohttp serves
    upgrades only, so it must not go on serving the client's next requests)."""
    out = web.Response(
        body=answer.body,
        status=answer.status,
        headers={"Content-Type": answer.content_type, **dict(answer.headers)},
    )
    out.force_close()
    return out


# kubectl autoscale (1.32) creates through autoscaling/v1; svcnet stores and serves v2 and
# accepts the v1 create only, converted (no v1 reads: they would need conversion everywhere).
_HPA_V1 = ("autoscaling", "v1", "horizontalpodautoscalers")


def _health_path(path: str) -> bool:
    return path.split("/", 2)[1] in ("healthz", "livez", "readyz")


def _known_path(path: str) -> bool:
    return (
        path in ("/", "/version", "/version/")
        or path.startswith("/openapi/")
        or (path.startswith(("/healthz", "/livez", "/readyz")) and _health_path(path))
    )


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
