"""The API server's APIService loop: kube-aggregator's autoregister and available-condition
controllers over the pure plans of :mod:`svcnet.api.apiservice`.

Each pass registers a ``Local`` APIService per group version the registry serves (built-in
and custom resources alike), removes the automanaged ones no longer served, and writes every
APIService's Available condition. An APIService write wakes the loop (its hooks); the
periodic pass picks up what no write announces — a CRD's new group version, a Service or its
Endpoints appearing behind a non-local APIService (upstream re-checks those on a timer too).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from svcnet.api import apiservice as plan
from svcnet.api.errors import AlreadyExists, Conflict, NotFound
from svcnet.api.objects import Obj
from svcnet.api.registry import APISERVICES, ENDPOINTS, SERVICES, Registry
from svcnet.apiserver import deletion
from svcnet.apiserver import request as req
from svcnet.apiserver.handlers import ResourceHandlers
from svcnet.apiserver.hooks import WakeOnWrite
from svcnet.apiserver.passloop import PassLoop
from svcnet.apiserver.storage import decode
from svcnet.util.clock import now_rfc3339

log = logging.getLogger(__name__)

MANAGER = "kube-apiserver"
_DELETE = deletion.DeleteOptions(propagation=deletion.Propagation.BACKGROUND)


def _info(name: str, subresource: str) -> req.RequestInfo:
    return req.RequestInfo(
        APISERVICES.group, APISERVICES.version, APISERVICES.plural, None, name, subresource,
        req.Verb.UPDATE,
    )  # fmt: skip


class ApiServiceController(PassLoop):
    what = "APIService pass"

    def __init__(
        self, registry: Registry, handlers: ResourceHandlers, interval: float = 5.0
    ) -> None:
        super().__init__(interval)
        self.registry = registry
        self.handlers = handlers
        self._opts = req.WriteOptions(field_manager=MANAGER)
        handlers.hooks.add(APISERVICES, WakeOnWrite(APISERVICES, self.wake))

    async def _list(self) -> list[Obj]:
        return [decode(kv) for kv in (await self.handlers.objects.list(APISERVICES, None)).items]

    async def sync(self) -> None:
        builtin = {(r.group, r.version) for r in self.registry.builtin}
        group_versions = self.registry.group_versions()
        wanted = plan.wanted_local(
            [gv for gv in group_versions if gv in builtin],
            [gv for gv in group_versions if gv not in builtin],
        )
        registration = plan.plan_registration(wanted, await self._list())
        await self._register(registration)
        now = now_rfc3339()
        for obj in await self._list():
            want = await self._availability(obj)
            status = plan.status_with(obj.get("status"), want, now)
            if status is not None:
                await self._write_status(obj["metadata"]["name"], status)

    async def _register(self, registration: plan.RegistrationPlan) -> None:
        for obj in registration.create:
            log.info("registering APIService %s", obj["metadata"]["name"])
            with contextlib.suppress(AlreadyExists):
                await self.handlers.create_object(APISERVICES, obj, self._opts)
        for name, spec in registration.update:

            def put_back(current: dict[str, Any], spec: Obj = spec) -> dict[str, Any]:
                current["spec"] = spec
                return current

            with contextlib.suppress(NotFound, Conflict):
                await self.handlers.update_object(
                    APISERVICES, _info(name, ""), put_back, self._opts
                )
        for name in registration.delete:
            log.info("removing APIService %s (its group version is not served)", name)
            with contextlib.suppress(NotFound):
                await self.handlers.delete_object(APISERVICES, None, name, _DELETE)

    async def _availability(self, obj: Obj) -> plan.Availability:
        ref = (obj.get("spec") or {}).get("service")
        if not isinstance(ref, dict):
            return plan.LOCAL
        namespace, name = str(ref.get("namespace", "")), str(ref.get("name", ""))
        objects = self.handlers.objects
        service = await objects.get(SERVICES, namespace, name) if namespace and name else None
        endpoints = await objects.get(ENDPOINTS, namespace, name) if service else None
        return plan.availability(obj, service, endpoints)

    async def _write_status(self, name: str, status: Obj) -> None:
        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            current["status"] = status
            return current

        with contextlib.suppress(NotFound, Conflict):
            await self.handlers.update_object(
                APISERVICES, _info(name, "status"), mutate, self._opts, subresource="status"
            )
