"""The API server process: configuration, startup, shutdown, kubeconfig.

``ApiServer(config).start()`` opens the store, rebuilds the Service allocators from what is
stored, creates the default objects, and serves HTTPS on every listen address; ``stop()``
ends watches, stops serving and closes the store. Tests run it in-process on port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from svcnet.api.ranges import DEFAULT_NODE_PORT_HIGH, DEFAULT_NODE_PORT_LOW, DEFAULT_SERVICE_CIDR
from svcnet.api.registry import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    REGISTRY,
    ROLEBINDINGS,
    ROLES,
    SERVICES,
    Registry,
    ResourceType,
)
from svcnet.apiserver import openapi
from svcnet.apiserver.admission import ServiceAllocator, well_known_ips
from svcnet.apiserver.apiservices import ApiServiceController
from svcnet.apiserver.auth import Authenticator
from svcnet.apiserver.bootstrap import bootstrap
from svcnet.apiserver.certs import Credentials, ensure_credentials
from svcnet.apiserver.crds import CustomResourceController
from svcnet.apiserver.handlers import ResourceHandlers, utcnow
from svcnet.apiserver.hooks import AdmissionChain, HookTable, ResourceHooks
from svcnet.apiserver.http1 import Http1Server
from svcnet.apiserver.lifecycle import NamespaceLifecycle
from svcnet.apiserver.namespaces import NamespaceFinalizer
from svcnet.apiserver.podproxy import PodProxy
from svcnet.apiserver.preparepool import PreparePool
from svcnet.apiserver.rbac.authorizer import RbacAuthorizer
from svcnet.apiserver.rbac.escalation import RbacHooks
from svcnet.apiserver.rbac.reconcile import Aggregator, reconcile_policy
from svcnet.apiserver.routes import Router
from svcnet.apiserver.saadmission import ServiceAccountAdmission
from svcnet.apiserver.satoken import TokenKeys, load_signing_key
from svcnet.apiserver.storage import ObjectStore, decode
from svcnet.apiserver.storageadmission import DefaultStorageClass
from svcnet.apiserver.tokenrequest import StoreObjects, TokenRequests
from svcnet.apiserver.watch import WatchRegistry
from svcnet.store import open_store
from svcnet.store.interface import Store

log = logging.getLogger(__name__)

DEFAULT_PORT = 6443
CONTEXT = "svcnet"
# How long a shutdown waits for the watches it ended to write their last chunk (each wakes
# within a flush interval) before it closes the connections.
WATCH_END_TIMEOUT = 2.0


@dataclass
class ApiServerConfig:
    data_dir: Path
    listen_addresses: tuple[str, ...] = ("127.0.0.1",)
    port: int = DEFAULT_PORT  # 0: an ephemeral port (tests)
    # "" means SQLite at <data_dir>/store.db; "memory:" for an in-memory store.
    store_url: str = ""
    service_cidr: str = DEFAULT_SERVICE_CIDR
    node_port_range: tuple[int, int] = (DEFAULT_NODE_PORT_LOW, DEFAULT_NODE_PORT_HIGH)
    # The address the ``kubernetes`` Service's endpoints point at (and clients use).
    advertise_address: str = "127.0.0.1"
    extra_sans: tuple[str, ...] = field(default_factory=tuple)
    # Worker processes that prepare creates (svcnet.apiserver.preparepool); 0: none, the
    # server's own process prepares them.
    prepare_workers: int = 0
    # "RBAC" (upstream's --authorization-mode=Node,RBAC minus Node) or "AlwaysAllow": every
    # authenticated request may do everything (benchmarks compare the two).
    authorization_mode: str = "RBAC"

    def store_location(self) -> str:
        return self.store_url or str(self.data_dir / "store.db")


class ApiServer:
    def __init__(self, config: ApiServerConfig, registry: Registry = REGISTRY) -> None:
        self.config = config
        # The server's own registry: the built-in rows plus the CRDs it serves.
        self.registry = registry.copy()
        self.credentials: Credentials | None = None
        self.store: Store | None = None
        self.port = config.port
        self._upgrades: web.AppRunner | None = None
        self._http: Http1Server | None = None
        self._listeners: list[asyncio.Server] = []
        self._watches = WatchRegistry()
        self._pod_proxy: PodProxy | None = None
        self._router: Router | None = None
        self._finalizer: NamespaceFinalizer | None = None
        self._finalizer_task: asyncio.Task[None] | None = None
        self._prepare_pool: PreparePool | None = None
        self._crds: CustomResourceController | None = None
        self._crds_task: asyncio.Task[None] | None = None
        self._apiservices_task: asyncio.Task[None] | None = None
        self._aggregator: Aggregator | None = None
        self._aggregator_task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            # A start that failed half-way (a port in use, a bad store) leaves nothing behind:
            # no listener, no open store, no prepare worker.
            await self.stop()
            raise

    async def _start(self) -> None:
        cfg = self.config
        # In-cluster clients reach the API at the ``kubernetes`` Service's ClusterIP (the
        # first address of the Service range) and verify it against the CA.
        kubernetes_ip = well_known_ips(cfg.service_cidr)[0]
        ip_sans = tuple(
            a
            for a in (*cfg.listen_addresses, cfg.advertise_address, kubernetes_ip, *cfg.extra_sans)
            if _is_ip(a) and a not in ("0.0.0.0", "::")
        )
        dns_sans = tuple(a for a in cfg.extra_sans if not _is_ip(a))
        self.credentials = creds = await asyncio.to_thread(
            ensure_credentials, cfg.data_dir, ip_sans, dns_sans
        )
        await asyncio.to_thread(openapi.warm)
        self.store = store = open_store(cfg.store_location())
        objects = ObjectStore(store)
        services = ServiceAllocator(cfg.service_cidr, cfg.node_port_range)
        stored = await store.list(SERVICES.store_prefix())
        services.rebuild(decode(kv) for kv in stored.items)
        if cfg.prepare_workers > 0:
            self._prepare_pool = PreparePool(cfg.prepare_workers)
            await self._prepare_pool.start()
        authorizer = RbacAuthorizer(objects)
        # Assigned once the handlers exist; the hooks only call it after a write.
        aggregator: list[Aggregator] = []

        def kick_aggregation() -> None:
            if aggregator:
                aggregator[0].kick()

        rbac_hooks: dict[ResourceType, Callable[[ResourceType], ResourceHooks]] = {
            rt: (lambda rt: RbacHooks(rt, authorizer))
            for rt in (ROLES, ROLEBINDINGS, CLUSTERROLEBINDINGS)
        }
        rbac_hooks[CLUSTERROLES] = lambda rt: RbacHooks(rt, authorizer, kick_aggregation)
        hooks = HookTable(self.registry, objects, services, rbac_hooks)
        handlers = ResourceHandlers(
            self.registry,
            objects,
            hooks,
            AdmissionChain(
                NamespaceLifecycle(objects),
                ServiceAccountAdmission(objects),
                DefaultStorageClass(objects),
            ),
            utcnow,
            self._prepare_pool,
        )
        self._pod_proxy = PodProxy(self.registry, objects, creds.token)
        keys = TokenKeys(load_signing_key(await asyncio.to_thread(creds.sa_key.read_bytes)))
        bound_objects = StoreObjects(objects)
        self._crds = crds = CustomResourceController(self.registry, handlers)
        await crds.sync()
        apiservices = ApiServiceController(self.registry, handlers)

        self._router = router = Router(
            self.registry,
            handlers,
            self._watches,
            self._pod_proxy,
            f"{cfg.advertise_address}:{cfg.port or DEFAULT_PORT}",
            Authenticator(creds.token, keys, bound_objects).authenticate,
            TokenRequests(keys, bound_objects),
            lambda: crds.documents,
            authorizer if cfg.authorization_mode == "RBAC" else None,
        )
        # aiohttp serves only the connections http1 hands over (WebSocket exec).
        self._upgrades = web.AppRunner(router.upgrade_app(), access_log=None, shutdown_timeout=2.0)
        await self._upgrades.setup()
        upgrades = self._upgrades.server
        assert upgrades is not None
        self._http = Http1Server(router.handle, upgrades, router.raw_upgrade)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(creds.cert), str(creds.key))
        loop = asyncio.get_running_loop()
        port = cfg.port
        for address in cfg.listen_addresses:
            listener = await loop.create_server(
                self._http, address, port, ssl=ctx, reuse_address=True, backlog=1024
            )
            self._listeners.append(listener)
            if port == 0:
                port = listener.sockets[0].getsockname()[1]
        self.port = port
        await bootstrap(self.registry, handlers, cfg.service_cidr, cfg.advertise_address, port)
        await reconcile_policy(handlers)
        self._aggregator = Aggregator(handlers)
        aggregator.append(self._aggregator)
        await self._aggregator.sync()
        self._aggregator_task = asyncio.create_task(
            self._aggregator.run(), name="clusterrole-aggregation"
        )
        self._finalizer = NamespaceFinalizer(self.registry, handlers)
        self._finalizer_task = asyncio.create_task(self._finalizer.run(), name="ns-finalizer")
        self._crds_task = asyncio.create_task(crds.run(), name="crd-controller")
        await apiservices.sync()
        self._apiservices_task = asyncio.create_task(apiservices.run(), name="apiservices")
        self.write_kubeconfig()
        log.info("API server serving on %s", self.url)

    async def stop(self) -> None:
        if self._router is not None:
            self._router.ready = False
        self._watches.close_all()
        await self._watches.wait_ended(WATCH_END_TIMEOUT)
        for task in (
            self._crds_task,
            self._apiservices_task,
            self._aggregator_task,
            self._finalizer_task,
        ):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._crds_task = self._apiservices_task = None
        self._aggregator_task = self._finalizer_task = None
        for listener in self._listeners:
            listener.close()
        self._listeners = []
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._upgrades is not None:
            await self._upgrades.cleanup()
            self._upgrades = None
        if self._prepare_pool is not None:
            await self._prepare_pool.close()
            self._prepare_pool = None
        if self._pod_proxy is not None:
            await self._pod_proxy.close()
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- clients ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        addr = self.config.listen_addresses[0]
        if addr in ("0.0.0.0", "::", ""):
            addr = self.config.advertise_address
        return f"[{addr}]" if ":" in addr else addr

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.config.data_dir / "kubeconfig"

    def kubeconfig(self, server_url: str | None = None) -> dict[str, Any]:
        import base64

        assert self.credentials is not None
        ca = base64.b64encode(self.credentials.ca_pem()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CONTEXT,
                    "cluster": {"server": server_url or self.url, "certificate-authority-data": ca},
                }
            ],
            "users": [{"name": f"{CONTEXT}-admin", "user": {"token": self.credentials.token}}],
            "contexts": [
                {
                    "name": CONTEXT,
                    "context": {
                        "cluster": CONTEXT,
                        "user": f"{CONTEXT}-admin",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": CONTEXT,
            "preferences": {},
        }

    def write_kubeconfig(self) -> Path:
        path = self.kubeconfig_path
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(self.kubeconfig(), sort_keys=False))
        tmp.chmod(0o600)
        tmp.replace(path)
        return path


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


async def run_apiserver(config: ApiServerConfig, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or forever), then shut down gracefully."""
    server = ApiServer(config)
    await server.start()
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await server.stop()
