"""The node agent (svcnet's kubelet): one per node, inside the node's network namespace.

Start-up, in order, each step as soon as the previous one allows:
1. remove sandboxes a previous agent of this node left (their processes cannot be adopted:
   the pods are started again, as after a node reboot);
2. register the Node (create, or adopt the existing object) and post its status — NotReady
   until the network is ready — and start renewing the Lease in kube-node-lease every
   second (the node lifecycle controller's grace period is a few seconds);
3. wait for spec.podCIDR (node IPAM; or ``--pod-cidr`` when given, set at registration),
   write the CNI conflist for it, then post Ready;
4. watch the pods bound to this node (fieldSelector spec.nodeName) and run one
   :class:`~svcnet.agent.pod_worker.PodWorker` per pod; serve logs and exec
   (:mod:`svcnet.agent.server`).

Node-local components (the Service proxy, NetworkPolicy) plug in through
:attr:`AgentConfig.components`: each is called with the shared client, informer factory and
node name and runs in the agent's TaskGroup.

Shutdown (SIGTERM): every pod's processes are stopped and its sandbox removed, but the pod
objects stay (a node that goes away does not delete its pods; the node lifecycle controller
does). ``svcnet node stop`` sends SIGUSR1: the same, after which the agent idles — no
heartbeat, no pods — until SIGUSR2 (``svcnet node start``) or until the stop flag file is
removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svcnet.agent import netgate
from svcnet.agent.admission import Rejection, admit
from svcnet.agent.containers import BackoffPolicy
from svcnet.agent.images import ensure_bin_dir
from svcnet.agent.localpath import LocalPathProvisioner
from svcnet.agent.node_status import (
    LEASE_NAMESPACE,
    NodeIdentity,
    desired_conditions,
    lease_object,
    merge_conditions,
    node_object,
    node_status,
    read_machine_info,
)
from svcnet.agent.objectwatch import ObjectWatcher
from svcnet.agent.pod_worker import NodeContext, PodWorker, pod_ref
from svcnet.agent.sandbox import NodeNetwork, SandboxManager
from svcnet.agent.zygote_runner import ZygoteRunner
from svcnet.api.errors import AlreadyExists, ApiError, NotFound
from svcnet.api.ranges import CLUSTER_DNS_IP
from svcnet.api.registry import PODS, SERVICES
from svcnet.client.events import WARNING, EventRecorder
from svcnet.client.informer import (
    DeletedFinalStateUnknown,
    FuncHandler,
    Informer,
    SharedInformerFactory,
    meta_namespace_key,
    strip_managed_fields,
)
from svcnet.client.kubeconfig import ClientConfig, KubeconfigError, load_kubeconfig
from svcnet.client.rest import ApiClient, ConnectionFailed
from svcnet.client.streams import StreamApiClient
from svcnet.dataplane.cni import CniRuntime, NetnsPluginExec, write_default_conflist
from svcnet.dataplane.netns import IpRoute2
from svcnet.runtime.images import ImageStore
from svcnet.runtime.volumes.writer import remove_orphan_volumes
from svcnet.util.clock import REAL_CLOCK, Clock, rfc3339

if TYPE_CHECKING:
    from svcnet.agent.server import AgentServer

log = logging.getLogger(__name__)

LEASE_RENEW_INTERVAL = 1.0
STATUS_REPORT_INTERVAL = 60.0
# Past this a pod worker that is still stopping is cancelled; remove_orphan_sandboxes ends
# whatever it left.
STOP_PODS_TIMEOUT = 15.0
NOT_READY_NETWORK = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)

# A node-local component: given the client, the informer factory and the node name, it runs
# until cancelled (e.g. the Service proxy for this node).
NodeComponent = Callable[[ApiClient, SharedInformerFactory, str], Coroutine[Any, Any, None]]


@dataclass
class AgentConfig:
    node_name: str
    node_ip: str
    data_dir: Path
    node_netns: str | None  # the node's namespace name (prefix of its pods' namespaces)
    port: int = 10250
    pod_cidr: str = ""  # set at registration when given (no node IPAM needed)
    cluster_dns: str = CLUSTER_DNS_IP
    cluster_domain: str = "cluster.local"
    stop_flag: Path | None = None
    labels: dict[str, str] = field(default_factory=dict)
    components: Sequence[NodeComponent] = ()
    backoff: BackoffPolicy | None = None
    cni_plugin_dirs: tuple[str, ...] = ("/usr/lib/cni", "/opt/cni/bin")


def _now_micro() -> str:
    """metav1.MicroTime: a renewal is a new value even within the same second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Agent:
    def __init__(self, config: AgentConfig, client: ApiClient, clock: Clock = REAL_CLOCK) -> None:
        self.config = config
        self.client = client
        self.clock = clock
        self.ident = NodeIdentity(config.node_name, config.node_ip, config.port)
        self.machine = read_machine_info()
        self.node_dir = config.data_dir
        self.node_uid = ""
        self.pod_cidr = ""
        self.network_ready = False
        self.workers: dict[str, PodWorker] = {}
        self._worker_tasks: dict[str, asyncio.Task[None]] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._status_changed = asyncio.Event()
        self._conditions: list[dict[str, Any]] = []
        self.recorder = EventRecorder(client, "kubelet", config.node_name)
        # Nothing on a node reads managedFields; a 10,000-Service cluster's would cost every
        # node megabytes.
        self.factory = SharedInformerFactory(client, transform=strip_managed_fields)
        self.pods: Informer | None = None
        self.services: Informer | None = None
        ops = IpRoute2()
        self.ops = ops
        self.cni = CniRuntime(
            str(self.node_dir / "net.d"),
            str(self.node_dir / "cni-cache"),
            NetnsPluginExec(None),
            config.cni_plugin_dirs,
        )
        self.sandboxes = SandboxManager(
            ops,
            self.cni,
            config.node_netns or config.node_name,
            node=NodeNetwork((config.node_ip,), config.node_name),
        )
        self.ready = asyncio.Event()
        # Built-in images start from a warm fork server (one per node, on first use).
        self.bin_dir = str(self.node_dir / "bin")
        self.runner = ZygoteRunner(self.bin_dir)
        self.objects = ObjectWatcher(client)
        self.pods_root = str(self.node_dir / "pods")
        # The local-path provisioner's folders: one per claim provisioned on this node.
        self.storage_root = self.node_dir / "storage"

    def _mounted_by_a_pod(self, folder: str) -> bool:
        return any(path == folder for w in self.workers.values() for path, _ in w.mounted.values())

    # -- node registration and heartbeat ---------------------------------------------------
    async def register(self) -> None:
        node = node_object(self.ident, self.config.labels, self.config.pod_cidr)
        while True:
            try:
                try:
                    created = await self.client.create(node)
                except AlreadyExists:
                    created = await self.client.get("nodes", self.ident.name)
                break
            except (ConnectionFailed, ApiError) as e:
                log.warning("registering node %s: %s; retrying", self.ident.name, e)
                await asyncio.sleep(0.5)
        self.node_uid = str((created.get("metadata") or {}).get("uid", ""))
        self._conditions = list((created.get("status") or {}).get("conditions") or [])
        self.pod_cidr = str((created.get("spec") or {}).get("podCIDR") or "")
        log.info("registered node %s (uid %s)", self.ident.name, self.node_uid)

    async def post_status(self) -> None:
        wanted = desired_conditions(self.network_ready, NOT_READY_NETWORK, self.network_ready)
        self._conditions = merge_conditions(self._conditions, wanted, rfc3339(self.clock.now()))
        body = {"status": node_status(self.machine, self.ident, self._conditions)}
        await self.client.patch("nodes", self.ident.name, body, "merge", subresource="status")

    async def _status_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_changed.wait(), STATUS_REPORT_INTERVAL)
            self._status_changed.clear()
            try:
                await self.post_status()
            except NotFound:
                log.warning("node %s was deleted; registering again", self.ident.name)
                await self.register()
                self._status_changed.set()
            except (ApiError, ConnectionFailed) as e:
                log.warning("node status: %s", e)
                await asyncio.sleep(1.0)
                self._status_changed.set()

    async def _lease_loop(self) -> None:
        name = self.ident.name
        while True:
            try:
                lease = lease_object(name, self.node_uid, _now_micro())
                try:
                    await self.client.patch(
                        "leases", name, {"spec": lease["spec"]}, "merge", LEASE_NAMESPACE
                    )
                except NotFound:
                    with contextlib.suppress(AlreadyExists):
                        await self.client.create(lease)
            except (ApiError, ConnectionFailed) as e:
                log.warning("lease renewal: %s", e)
            await asyncio.sleep(LEASE_RENEW_INTERVAL)

    async def _wait_for_pod_cidr(self) -> None:
        while not self.pod_cidr:
            try:
                node = await self.client.get("nodes", self.ident.name)
                self.pod_cidr = str((node.get("spec") or {}).get("podCIDR") or "")
                if self.pod_cidr:
                    break
                rv = str((node.get("metadata") or {}).get("resourceVersion", ""))
                async for ev in self.client.watch(
                    "nodes",
                    resource_version=rv,
                    field_selector=f"metadata.name={self.ident.name}",
                    timeout_seconds=30,
                ):
                    self.pod_cidr = str((ev.object.get("spec") or {}).get("podCIDR") or "")
                    if self.pod_cidr:
                        break
            except (ApiError, ConnectionFailed) as e:
                log.warning("waiting for podCIDR: %s", e)
                await asyncio.sleep(0.5)
        log.info("node %s has podCIDR %s", self.ident.name, self.pod_cidr)
        write_default_conflist(
            str(self.node_dir / "net.d"), self.pod_cidr, str(self.node_dir / "ipam")
        )
        self.network_ready = True
        self._status_changed.set()

    # -- pods ------------------------------------------------------------------------------
    def _enqueue(self, obj: Any) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self._queue.put_nowait(obj.key)
        else:
            self._queue.put_nowait(meta_namespace_key(obj))

    def _enqueue_update(self, _old: Any, new: Any) -> None:
        self._enqueue(new)

    def _services(self) -> list[dict[str, Any]]:
        return self.services.store.list() if self.services is not None else []

    def _context(self) -> NodeContext:
        try:
            node_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            node_resolv = ""
        return NodeContext(
            client=self.client,
            recorder=self.recorder,
            node_name=self.ident.name,
            node_ip=self.ident.internal_ip,
            sandboxes=self.sandboxes,
            runner=self.runner,
            clock=self.clock,
            log_root=str(self.node_dir / "pods"),
            bin_dir=ensure_bin_dir(self.bin_dir),
            cluster_dns=self.config.cluster_dns,
            cluster_domain=self.config.cluster_domain,
            node_resolv=node_resolv,
            services=self._services,
            backoff=self.config.backoff,
            network_gate=netgate.gate(self.ident.name),
            images=ImageStore(),
            objects=self.objects,
            pods_root=self.pods_root,
        )

    async def _pod_loop(self, ctx: NodeContext) -> None:
        assert self.pods is not None
        while True:
            key = await self._queue.get()
            pod = self.pods.store.get(key)
            worker = self.workers.get(key)
            uid = str(((pod or {}).get("metadata") or {}).get("uid", ""))
            if worker is not None and (pod is None or worker.uid != uid):
                worker.kill()
                if pod is None:
                    continue
                await worker.finished.wait()
                worker = None
            if pod is None:
                continue
            if worker is not None:
                worker.update(pod)
                continue
            meta = pod.get("metadata") or {}
            phase = (pod.get("status") or {}).get("phase")
            if meta.get("deletionTimestamp") or phase in ("Succeeded", "Failed"):
                if meta.get("deletionTimestamp"):
                    # Nothing of it runs here (e.g. after an agent restart): let it go.
                    with contextlib.suppress(ApiError, ConnectionFailed):
                        await self.client.delete(
                            "pods",
                            str(meta.get("name")),
                            str(meta.get("namespace")),
                            grace_period_seconds=0,
                            preconditions={"uid": uid},
                        )
                continue
            active = [
                w.pod
                for w in self.workers.values()
                if (w.pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            ]
            if (rejection := admit(pod, active)) is not None:
                await self._reject(pod, rejection)
                continue
            worker = PodWorker(ctx, pod)
            self.workers[key] = worker
            task = asyncio.create_task(worker.run(), name=f"pod-{key}")
            self._worker_tasks[key] = task
            task.add_done_callback(functools.partial(self._forget, key, worker))

    async def _reject(self, pod: dict[str, Any], rejection: Rejection) -> None:
        """kubelet's rejectPod: a Warning event, then the pod Failed; nothing runs."""
        self.recorder.event(pod_ref(pod), WARNING, rejection.reason, rejection.message)
        meta = pod.get("metadata") or {}
        try:
            await self.client.patch(
                "pods",
                str(meta.get("name")),
                {"status": rejection.status},
                "merge",
                str(meta.get("namespace")),
                subresource="status",
            )
        except (ApiError, ConnectionFailed) as e:
            log.warning("pod %s/%s: rejecting: %s", meta.get("namespace"), meta.get("name"), e)

    def _forget(self, key: str, worker: PodWorker, _task: object = None) -> None:
        if self.workers.get(key) is worker:
            del self.workers[key]
            self._worker_tasks.pop(key, None)

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        return self.workers.get(f"{namespace}/{name}")

    async def stop_pods(self) -> None:
        """Stop every pod's processes and remove its sandbox; the objects stay.

        No worker may outlive this: a late one would tear down the sandbox of the same pod
        that the next agent (after ``svcnet node start``) has made meanwhile under the same
        namespace name."""
        started = self.clock.monotonic()
        for w in list(self.workers.values()):
            w.kill()
        tasks = dict(self._worker_tasks)
        if tasks:
            _, late = await asyncio.wait(tasks.values(), timeout=STOP_PODS_TIMEOUT)
            if late:
                names = sorted(k for k, t in tasks.items() if t in late)
                log.warning(
                    "pods still stopping after %.0f s, cancelled: %s",
                    STOP_PODS_TIMEOUT,
                    ", ".join(names),
                )
                for t in late:
                    t.cancel()
                await asyncio.wait(late, timeout=STOP_PODS_TIMEOUT)
        await self.remove_orphan_sandboxes()
        self.objects.close()
        self.runner.close()
        log.info("stopped %d pods in %.2f s", len(tasks), self.clock.monotonic() - started)

    async def remove_orphan_sandboxes(self) -> None:
        keep = {w.uid for w in self.workers.values()}
        await asyncio.to_thread(remove_orphan_volumes, self.pods_root, keep)
        for name in await asyncio.to_thread(self.sandboxes.existing):
            try:
                await self.sandboxes.remove_orphan(name)
            except Exception as e:
                log.warning("removing sandbox %s: %s", name, e)

    # -- the whole agent -------------------------------------------------------------------
    async def run(self) -> None:
        await self.remove_orphan_sandboxes()
        await self.register()
        self.pods = self.factory.informer_for(
            PODS, field_selector=f"spec.nodeName={self.ident.name}"
        )
        self.services = self.factory.informer_for(SERVICES)
        self.pods.add_event_handler(
            FuncHandler(
                on_add=self._enqueue,
                on_update=self._enqueue_update,
                on_delete=self._enqueue,
            )
        )
        server = LazyServer(self, self.client.config.bearer_token() or "")
        server.listen(self.ident.internal_ip, self.config.port)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.recorder.run(), name="events")
                tg.create_task(self._lease_loop(), name="lease")
                tg.create_task(self._status_loop(), name="node-status")
                self._status_changed.set()
                await self._wait_for_pod_cidr()
                ctx = self._context()
                # Registers its informers with the factory: built before the factory starts.
                provisioner = LocalPathProvisioner(
                    self.client,
                    self.factory,
                    self.recorder,
                    self.ident.name,
                    self.storage_root,
                    self._mounted_by_a_pod,
                )
                self.factory.start(tg)
                await self.factory.wait_for_cache_sync()
                tg.create_task(self._pod_loop(ctx), name="pods")
                tg.create_task(provisioner.run(), name="local-path-provisioner")
                for component in self.config.components:
                    tg.create_task(component(self.client, self.factory, self.ident.name))
                self.ready.set()
                log.info("node %s is ready", self.ident.name)
        finally:
            await server.stop()


class LazyServer:
    """The agent's :10250 endpoint, bound at once but built on its first connection.

    Logs and exec are asked for now and then, never by an idle node; aiohttp.web and the
    server module cost ~2.2 MiB of resident memory per agent, which the idle-cluster figure
    of issue 3 counts. The port is listening from the start (a connection waits in the
    backlog while the server is built, then aiohttp accepts it), so callers see no
    difference but the first request's few milliseconds.
    """

    def __init__(self, agent: Agent, token: str) -> None:
        self.agent = agent
        self.token = token
        self._sock: socket.socket | None = None
        self._server: AgentServer | None = None
        self._starting: asyncio.Task[None] | None = None

    def listen(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=128)
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._first_connection)

    def _first_connection(self) -> None:
        assert self._sock is not None
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._starting = asyncio.get_running_loop().create_task(self._start(self._sock))
        self._starting.add_done_callback(self._started)

    @staticmethod
    def _started(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("agent server failed to start", exc_info=task.exception())

    async def _start(self, sock: socket.socket) -> None:
        from svcnet.agent.server import AgentServer

        server = AgentServer(self.agent, self.token)
        self._server = server
        await server.start_on(sock)
        log.debug("agent server started on its first connection")

    async def stop(self) -> None:
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        if self._server is not None:
            await self._server.stop()
        if self._sock is not None:
            if self._starting is None:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


async def load_client_config(kubeconfig: Path, server: str | None) -> ClientConfig:
    """The kubeconfig, waiting for it to appear (the API server writes it as it starts)."""
    while True:
        try:
            cfg = load_kubeconfig(kubeconfig)
            return dataclasses.replace(cfg, server=server.rstrip("/")) if server else cfg
        except KubeconfigError:
            await asyncio.sleep(0.05)


async def run_agent(config: AgentConfig, kubeconfig: Path, server: str | None = None) -> None:
    """Run until SIGTERM; SIGUSR1 parks the node (``svcnet node stop``), SIGUSR2 resumes it."""
    loop = asyncio.get_running_loop()
    terminate = asyncio.Event()
    park = asyncio.Event()
    resume = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, terminate.set)
    loop.add_signal_handler(signal.SIGINT, terminate.set)
    loop.add_signal_handler(signal.SIGUSR1, park.set)
    loop.add_signal_handler(signal.SIGUSR2, resume.set)
    flag = config.stop_flag

    async def wait_resumed() -> bool:
        """Idle while the node is stopped; False when asked to terminate meanwhile."""
        while flag is not None and flag.exists():
            if terminate.is_set():
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(_first(terminate, resume)), 0.5)
            if resume.is_set():
                resume.clear()
                with contextlib.suppress(FileNotFoundError):
                    flag.unlink()
        return not terminate.is_set()

    while True:
        if not await wait_resumed():
            return
        park.clear()
        client_config = await load_client_config(kubeconfig, server)
        async with StreamApiClient(client_config) as client:
            agent = Agent(config, client)
            task = asyncio.create_task(agent.run(), name="agent")
            stop = asyncio.create_task(_first(terminate, park))
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if park.is_set():
                log.info("node %s stopping (svcnet node stop)", config.node_name)
            # A start that comes from here on (even while the pods are still stopping) counts.
            resume.clear()
            if task.done() and task.exception() is not None:
                log.error("agent failed", exc_info=task.exception())
                await agent.stop_pods()
                raise SystemExit(1)
            task.cancel()
            # The pods stop while the components wind down, not after them: a component's
            # cleanup (an open stream to the agent's server, a last API write) must not keep
            # a stopped node's pods running.
            components = asyncio.ensure_future(asyncio.wait({task}, timeout=STOP_PODS_TIMEOUT))
            await agent.stop_pods()
            done, _ = await components
            if not done:
                log.warning(
                    "node %s: components still stopping after %.0f s: %s",
                    config.node_name,
                    STOP_PODS_TIMEOUT,
                    ", ".join(sorted(t.get_name() for t in asyncio.all_tasks())),
                )
        if terminate.is_set():
            return
        log.info("node %s stopped (svcnet node stop); waiting to be started", config.node_name)
        # `svcnet node start` removes the flag and signals: if it came while the pods were
        # stopping, the flag must not be made again, or the start would be lost.
        if flag is not None and not flag.exists() and not resume.is_set():
            flag.parent.mkdir(parents=True, exist_ok=True)
            flag.touch()


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


__all__ = ["Agent", "AgentConfig", "NodeComponent", "run_agent"]
