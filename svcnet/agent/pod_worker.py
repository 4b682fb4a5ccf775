"""One pod on this node, from its binding to its removal (kubelet's pod worker).

Life of a pod: sandbox (namespace, CNI ADD, /etc files) → volumes
(:mod:`~svcnet.agent.pod_volumes`; FailedMount until they are set up) → environment per
container (Service variables, downward API, ConfigMaps, Secrets) → containers run by
:class:`~svcnet.agent.containers.PodContainers` → probes per running container → status
written (merge patch of the status subresource) each time the computed status differs from
the last one written. When the pod gets a deletionTimestamp: preStop hooks, SIGTERM, SIGKILL
after the grace period, CNI DEL and sandbox removal, then DELETE with grace 0 and the pod's
UID as precondition, as kubelet does, so the API server removes the object.

Nothing here polls: container changes and probe verdicts set a "dirty" event that the status
writer waits on, so a pod becomes Ready as soon as its readiness is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.agent.containers import (
    BackoffPolicy,
    ContainerRun,
    ContainerState,
    ContainerStatus,
    PodContainers,
    PodEvent,
    RestartPolicy,
    StateKind,
)
from svcnet.agent.envvars import (
    EnvError,
    PodRuntimeInfo,
    container_env,
    expand_command,
    referenced_objects,
)
from svcnet.agent.images import ResolvedCommand, resolve_command
from svcnet.agent.netgate import PodNetworkGate
from svcnet.agent.objectwatch import ObjectWatcher
from svcnet.agent.pod_status import (
    ContainerFacts,
    PodFacts,
    build_pod_status,
    container_status_api,
    render_resolv_conf,
)
from svcnet.agent.pod_volumes import MountedVolumes, PodVolumes
from svcnet.agent.probes import (
    ProbeKind,
    ProbeSpec,
    ProbeTarget,
    ProbeTracker,
    Verdict,
    parse_probe,
    run_probe,
    unhealthy_message,
)
from svcnet.agent.sandbox import PodIdentity, Sandbox, SandboxManager, SandboxSpec
from svcnet.api import objects
from svcnet.api.errors import ApiError, NotFound
from svcnet.client.events import NORMAL, WARNING, EventRecorder
from svcnet.client.rest import ApiClient, ConnectionFailed
from svcnet.dataplane.cni import PortMapping
from svcnet.dataplane.process import DEFAULT_PATH, ProcessRunner, command_for_exec
from svcnet.runtime.container import REASON_NODE_FILESYSTEM, prepare_container
from svcnet.runtime.images import ImageStore
from svcnet.runtime.isolate import SandboxError
from svcnet.runtime.volumes.plan import MountError
from svcnet.util.clock import Clock, rfc3339

log = logging.getLogger(__name__)

DEFAULT_GRACE = 30
SANDBOX_RETRY_INITIAL = 1.0
SANDBOX_RETRY_MAX = 30.0
CONFIG_RETRY_INITIAL = 1.0
CONFIG_RETRY_MAX = 10.0
MOUNT_RETRY_INITIAL = 0.5  # kubelet's volume operations back off from 500 ms
MOUNT_RETRY_MAX = 30.0
MIN_GRACE_AFTER_PRESTOP = 2.0  # kubelet's minimumGracePeriodInSeconds


@dataclass
class NodeContext:
    """What every pod worker of a node shares."""

    client: ApiClient
    recorder: EventRecorder
    node_name: str
    node_ip: str
    sandboxes: SandboxManager
    runner: ProcessRunner
    clock: Clock
    log_root: str
    bin_dir: str
    cluster_dns: str
    cluster_domain: str
    node_resolv: str
    services: Callable[[], list[dict[str, Any]]]
    backoff: BackoffPolicy | None = None
    network_gate: PodNetworkGate | None = None
    images: ImageStore | None = None  # None: containers run unsandboxed on the node's files
    # Volumes (sandboxed pods only): the watches of mounted objects, kubelet's pods/ folder.
    objects: ObjectWatcher | None = None
    pods_root: str | None = None


def host_port_mappings(containers: Sequence[Mapping[str, Any]]) -> tuple[PortMapping, ...]:
    """The CNI portmap entries of a pod in its own network namespace."""
    return tuple(
        PortMapping(
            int(p["hostPort"]),
            int(p.get("containerPort", p["hostPort"])),
            str(p.get("protocol") or "TCP").lower(),
            str(p.get("hostIP") or ""),
        )
        for c in containers
        for p in c.get("ports") or []
        if p.get("hostPort")
    )


def pod_ref(pod: Mapping[str, Any]) -> dict[str, Any]:
    meta = objects.meta(pod)
    ref = {
        "kind": "Pod",
        "apiVersion": "v1",
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "uid": meta.get("uid", ""),
    }
    if meta.get("resourceVersion"):
        ref["resourceVersion"] = meta["resourceVersion"]
    return ref


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: dict[str, Any]) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = objects.meta(pod)
        self.namespace = str(meta.get("namespace", "default"))
        self.name = str(meta.get("name", ""))
        self.uid = str(meta.get("uid", ""))
        spec = pod.get("spec") or {}
        self.spec_containers: list[Mapping[str, Any]] = list(spec.get("containers") or [])
        self.sandbox: Sandbox | None = None
        self.sandbox_spec: SandboxSpec | None = None
        self.containers: PodContainers | None = None
        self.start_time = ctx.clock.time()
        self.config_errors: dict[str, tuple[str, str]] = {}
        self._dirty = asyncio.Event()
        self._terminate = asyncio.Event()
        self._gone = False  # the pod object is already deleted: nothing to write
        self._last_status: dict[str, Any] | None = None
        self._written_version: object = None  # the resourceVersion our last status write made
        self._probe_tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._probed_pid: dict[str, int] = {}
        self._trackers: dict[tuple[str, ProbeKind], ProbeTracker] = {}
        # kubelet's worker.manualTriggerCh: a one-slot "probe now" per readiness worker.
        self._readiness_triggers: dict[str, asyncio.Event] = {}
        self.finished = asyncio.Event()
        self._prepared: set[str] = set()  # containers prepared once (their warning is out)
        self.kubelet_pod = f"{self.name}_{self.namespace}({self.uid})"
        self.volumes: PodVolumes | None = None
        self.mounted: MountedVolumes = {}
        self._volume_task: asyncio.Task[None] | None = None

    # -- called by the agent -------------------------------------------------------------
    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        if objects.meta(pod).get("deletionTimestamp"):
            self._terminate.set()
            return
        if (
            self._last_status is not None
            and _newer(objects.meta(pod).get("resourceVersion"), self._written_version)
            and _condition_states(pod.get("status") or {}) != _condition_states(self._last_status)
        ):
            # Someone else wrote the pod's conditions (the node lifecycle controller marks
            # every pod of a node NotReady when its heartbeats stop): the node's own view is
            # written back, as kubelet's status manager reconciles a status that differs.
            self._last_status = None
            self._mark_dirty()
        if self.volumes is not None:
            self.volumes.pod_changed(pod)
        self._start_new_ephemeral()

    @property
    def spec_ephemeral(self) -> list[Mapping[str, Any]]:
        return list((self.pod.get("spec") or {}).get("ephemeralContainers") or [])

    def container_names(self) -> set[str]:
        """Every container an exec, attach or log may name (ephemeral ones included)."""
        return {str(c.get("name")) for c in [*self.spec_containers, *self.spec_ephemeral]}

    def _start_new_ephemeral(self) -> None:
        pc = self.containers
        if pc is None or self.sandbox is None:
            return  # the ones already in the spec start with the pod (see _run)
        for c in self.spec_ephemeral:
            if str(c.get("name")) not in pc.lifecycles:
                run = self._ephemeral_run(c)
                if pc.add_ephemeral(run):
                    self._mark_dirty()

    def _ephemeral_run(self, c: Mapping[str, Any]) -> ContainerRun:
        """An ephemeral container's run: its own command and env; it joins the pod's network,
        UTS and mount namespaces like the others (``targetContainerName`` names the process
        namespace to share, which pods do not have of their own here)."""
        assert self.sandbox is not None
        name, image = str(c.get("name", "")), str(c.get("image", ""))
        info = PodRuntimeInfo(self.sandbox.pod_ip, self.sandbox.pod_ips, self.ctx.node_ip)
        try:
            env = container_env(self.pod, c, info, services=self.ctx.services())
        except EnvError as e:
            return ContainerRun(name, image, ResolvedCommand(reason=e.reason, message=str(e)))
        env.setdefault("HOSTNAME", self.sandbox.hostname)
        env["PATH"] = f"{self.ctx.bin_dir}:{env.get('PATH', DEFAULT_PATH)}"
        cmd = resolve_command(
            image,
            expand_command(c.get("command") or (), env),
            expand_command(c.get("args") or (), env),
        )
        return ContainerRun(
            name,
            image,
            cmd,
            env,
            c.get("workingDir") or None,
            stdin=bool(c.get("stdin")),
            stdin_once=bool(c.get("stdinOnce")),
            tty=bool(c.get("tty")),
        )

    def netns_path(self) -> str | None:
        """The pod's network namespace (port-forward connects inside it), once made."""
        return self.sandbox.netns_path if self.sandbox is not None else None

    def kill(self) -> None:
        """The object is gone (deleted with grace 0 elsewhere, or the node stops)."""
        self._gone = True
        self._terminate.set()

    @property
    def log_dir(self) -> str:
        return f"{self.ctx.log_root}/{self.namespace}_{self.name}_{self.uid}"

    # -- the worker ------------------------------------------------------------------------
    async def run(self) -> None:
        writer = asyncio.create_task(self._status_loop(), name=f"status-{self.name}")
        try:
            await self._run()
        except Exception:
            log.exception("pod %s/%s: worker failed", self.namespace, self.name)
        finally:
            await self._teardown()
            self._dirty.set()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if not self._gone:
                await self._delete_object()
            self.finished.set()

    async def _run(self) -> None:
        if self._terminate.is_set():
            return
        self._mark_dirty()
        if not await self._make_sandbox():
            return
        if not await self._mount_volumes():
            return
        runs = await self._container_runs()
        delay = CONFIG_RETRY_INITIAL
        while self.config_errors and not self._terminate.is_set():
            # kubelet retries a container whose ConfigMap/Secret is missing on every sync: the
            # pod starts as soon as the object appears. Until then no container starts, so
            # none runs with a partial environment.
            self._mark_dirty()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._terminate.wait(), delay)
            delay = min(delay * 2, CONFIG_RETRY_MAX)
            runs = await self._container_runs()
        if self._terminate.is_set():
            return
        policy = RestartPolicy((self.pod.get("spec") or {}).get("restartPolicy") or "Always")
        assert self.sandbox is not None
        self.containers = PodContainers(
            pod=self.kubelet_pod,
            netns=self.sandbox.netns,
            hostname=self.sandbox.hostname,
            containers=runs,
            restart_policy=policy,
            runner=self.ctx.runner,
            clock=self.ctx.clock,
            log_dir=self.log_dir,
            backoff=self.ctx.backoff,
            on_event=self._on_event,
            on_change=self._on_change,
        )
        run_task = asyncio.create_task(self.containers.run(), name=f"containers-{self.name}")
        await asyncio.sleep(0)  # the task group exists: ephemeral containers can join it
        self._start_new_ephemeral()
        stop_wait = asyncio.create_task(self._terminate.wait())
        await asyncio.wait({run_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not self._terminate.is_set():
            # Every container finished for good (restartPolicy Never/OnFailure): the pod
            # stays, with its sandbox, until it is deleted.
            self._mark_dirty()
            await self._terminate.wait()
        stop_wait.cancel()
        await self._stop_containers()
        run_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await run_task

    async def _make_sandbox(self) -> bool:
        spec = self.pod.get("spec") or {}
        host_network = bool(spec.get("hostNetwork"))
        # A hostNetwork pod's containers bind their ports on the node themselves (its
        # hostPorts equal its containerPorts): no port mapping, as the CNI portmap is skipped.
        ports = () if host_network else host_port_mappings(self.spec_containers)
        aliases = tuple(
            (str(a.get("ip", "")), tuple(str(h) for h in a.get("hostnames") or []))
            for a in spec.get("hostAliases") or []
        )
        self.sandbox_spec = SandboxSpec(
            pod=PodIdentity(
                self.namespace,
                self.name,
                self.uid,
                str(spec.get("hostname") or ""),
                str(spec.get("subdomain") or ""),
            ),
            resolv_conf=render_resolv_conf(
                self.pod, self.ctx.cluster_dns, self.ctx.cluster_domain, self.ctx.node_resolv
            ),
            cluster_domain=self.ctx.cluster_domain,
            host_aliases=aliases,
            port_mappings=ports,
            host_network=host_network,
        )
        delay = SANDBOX_RETRY_INITIAL
        while not self._terminate.is_set():
            try:
                self.sandbox = await self.ctx.sandboxes.create(self.sandbox_spec)
                # NetworkPolicy does not select hostNetwork pods: nothing to program first.
                if self.ctx.network_gate is not None and not host_network:
                    # A pod deleted (or its node stopped) while its rules are being
                    # programmed stops waiting at once.
                    admit = asyncio.ensure_future(
                        self.ctx.network_gate.admit(self.pod, self.sandbox.pod_ips)
                    )
                    stop = asyncio.ensure_future(self._terminate.wait())
                    await asyncio.wait({admit, stop}, return_when=asyncio.FIRST_COMPLETED)
                    for waiting in (admit, stop):
                        waiting.cancel()
                    failed = admit.exception() if admit.done() and not admit.cancelled() else None
                    if failed is not None:
                        raise failed
                # No status write of its own: the pod IP goes out with the containers' start
                # (a few ms later, each path of _run marks the status dirty), one PATCH less
                # per pod — as kubelet reports the sandbox's IP with the next pod sync.
                return True
            except Exception as e:  # CNI, kernel or file errors alike: reported, then retried
                log.warning("pod %s/%s: sandbox: %s", self.namespace, self.name, e)
                self._event(WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._terminate.wait(), delay)
            delay = min(delay * 2, SANDBOX_RETRY_MAX)
        return False

    async def _mount_volumes(self) -> bool:
        """kubelet's WaitForAttachAndMount: the containers start once every volume is set up;
        until then the pod waits in ContainerCreating with a FailedMount event per failed
        attempt, tried again when a watched object changes or after a backoff."""
        ctx = self.ctx
        if ctx.objects is None or ctx.pods_root is None or ctx.images is None:
            return True
        self.volumes = PodVolumes(
            self.pod,
            ctx.client,
            ctx.objects,
            ctx.pods_root,
            ctx.clock,
            lambda reason, message: self._event(WARNING, reason, message),
        )
        delay = MOUNT_RETRY_INITIAL
        while not self._terminate.is_set():
            try:
                self.mounted = await self.volumes.mount()
                self._volume_task = asyncio.create_task(
                    self.volumes.keep_current(), name=f"volumes-{self.name}"
                )
                return True
            except MountError as e:
                self._event(WARNING, "FailedMount", e.event_message)
            except (ApiError, ConnectionFailed, SandboxError, TimeoutError) as e:
                log.warning("pod %s/%s: volumes: %r", self.namespace, self.name, e)
            self._mark_dirty()
            changed = asyncio.create_task(self.volumes.changed.wait())
            stop = asyncio.create_task(self._terminate.wait())
            await asyncio.wait({changed, stop}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            stop.cancel()
            delay = min(delay * 2, MOUNT_RETRY_MAX)
        return False

    async def _fetch(self, kind: str, names: set[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(names):
            with contextlib.suppress(NotFound):
                out[name] = await self.ctx.client.get(kind, name, self.namespace)
        return out

    async def _container_runs(self) -> list[ContainerRun]:
        assert self.sandbox is not None
        previous_errors = dict(self.config_errors)
        self.config_errors.clear()
        cm_names, secret_names = referenced_objects(self.pod)
        try:
            cms = await self._fetch("configmaps", cm_names)
            secrets = await self._fetch("secrets", secret_names)
        except (ApiError, ConnectionFailed) as e:
            log.warning("pod %s/%s: reading env sources: %s", self.namespace, self.name, e)
            cms, secrets = {}, {}
        info = PodRuntimeInfo(self.sandbox.pod_ip, self.sandbox.pod_ips, self.ctx.node_ip)
        services = self.ctx.services()
        runs = []
        for c in self.spec_containers:
            name = str(c.get("name", ""))
            image = str(c.get("image", ""))
            try:
                env = container_env(
                    self.pod, c, info, services=services, config_maps=cms, secrets=secrets
                )
            except EnvError as e:
                self.config_errors[name] = (e.reason, str(e))
                if previous_errors.get(name) != self.config_errors[name]:
                    self._event(WARNING, "Failed", f"Error: {e}", name)
                cmd = ResolvedCommand(reason=e.reason, message=str(e))
                runs.append(ContainerRun(name, image, cmd))
                continue
            env.setdefault("HOSTNAME", self.sandbox.hostname)
            command = expand_command(c.get("command") or (), env)
            args = expand_command(c.get("args") or (), env)
            if self.ctx.images is not None:
                runs.append(self._sandboxed_run(c, command, args, env))
                continue
            user_path = env.get("PATH", DEFAULT_PATH)
            env["PATH"] = f"{self.ctx.bin_dir}:{user_path}"
            cmd = resolve_command(image, command, args)
            runs.append(
                ContainerRun(
                    name,
                    image,
                    cmd,
                    env,
                    c.get("workingDir") or None,
                    stdin=bool(c.get("stdin")),
                    stdin_once=bool(c.get("stdinOnce")),
                    tty=bool(c.get("tty")),
                )
            )
        return runs

    def _sandboxed_run(
        self,
        c: Mapping[str, Any],
        command: Sequence[str],
        args: Sequence[str],
        env: dict[str, str],
    ) -> ContainerRun:
        """The container over its image, in its sandbox (svcnet.runtime)."""
        assert self.sandbox is not None and self.ctx.images is not None
        name, image = str(c.get("name", "")), str(c.get("image", ""))
        prep = prepare_container(
            self.ctx.images,
            self.pod,
            c,
            command,
            args,
            env,
            netns=self.sandbox.netns or None,
            hostname=self.sandbox.hostname,
            etc_dir=self.sandbox.etc_dir,
            volumes=self.mounted,
        )
        if prep.warning and name not in self._prepared:
            self._event(WARNING, REASON_NODE_FILESYSTEM, prep.warning, name)
        self._prepared.add(name)
        cmd = ResolvedCommand(prep.argv, prep.reason, prep.message)
        return ContainerRun(
            name,
            image,
            cmd,
            prep.env,
            prep.working_dir,
            stdin=bool(c.get("stdin")),
            stdin_once=bool(c.get("stdinOnce")),
            tty=bool(c.get("tty")),
            sandbox=prep.sandbox,
        )

    # -- events and status -------------------------------------------------------------------
    def _event(self, type_: str, reason: str, message: str, container: str = "") -> None:
        path = f"spec.containers{{{container}}}" if container else ""
        ref = pod_ref(self.pod)
        if path:
            ref["fieldPath"] = path
        self.ctx.recorder.event(ref, type_, reason, message)

    def _on_event(self, e: PodEvent) -> None:
        self._event(e.type, e.reason, e.message, e.container)

    def _mark_dirty(self) -> None:
        self._dirty.set()

    def _on_change(self) -> None:
        self._sync_probes()
        self._mark_dirty()

    def _container_ready(self, name: str, running: bool) -> tuple[bool, bool]:
        """(ready, started) of a container from its probes."""
        if not running:
            return False, False
        startup = self._trackers.get((name, ProbeKind.STARTUP))
        started = startup is None or startup.verdict is Verdict.SUCCESS
        if not started:
            return False, False
        readiness = self._trackers.get((name, ProbeKind.READINESS))
        if readiness is None:
            return True, True
        return readiness.verdict is Verdict.SUCCESS, True

    def compute_status(self) -> dict[str, Any]:
        facts: list[ContainerFacts] = []
        phase = "Pending"
        if self.containers is not None:
            statuses = self.containers.statuses()
            phase = self.containers.phase()
            for c, st in zip(self.spec_containers, statuses, strict=True):
                name = str(c.get("name", ""))
                running = st.state.kind is StateKind.RUNNING
                ready, started = self._container_ready(name, running)
                facts.append(
                    ContainerFacts(
                        name, str(c.get("image", "")), st, ready, started, self.containers.pid(name)
                    )
                )
        else:
            for c in self.spec_containers:
                waiting = ContainerState(StateKind.WAITING, "ContainerCreating")
                facts.append(
                    ContainerFacts(
                        str(c.get("name", "")),
                        str(c.get("image", "")),
                        ContainerStatus(str(c.get("name", "")), waiting, None, 0, False),
                        False,
                        False,
                        None,
                        self.config_errors.get(str(c.get("name", ""))),
                    )
                )
        pod_facts = PodFacts(
            host_ip=self.ctx.node_ip,
            pod_ips=self.sandbox.pod_ips if self.sandbox else (),
            start_time=self.start_time,
            sandbox_ready=self.sandbox is not None,
            phase=phase,
            containers=tuple(facts),
        )
        previous = ((self._last_status or self.pod.get("status") or {}).get("conditions")) or []
        status = build_pod_status(pod_facts, previous, rfc3339(self.ctx.clock.now()))
        if self.containers is not None and self.containers.ephemeral:
            status["ephemeralContainerStatuses"] = [
                container_status_api(
                    ContainerFacts(c.name, c.image, st, False, False, self.containers.pid(c.name))
                )
                for c, st in zip(
                    self.containers.ephemeral, self.containers.ephemeral_statuses(), strict=True
                )
            ]
        return status

    async def _status_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self._gone:
                continue
            status = self.compute_status()
            self._trigger_readiness_probes()
            if status == self._last_status:
                continue
            try:
                written = await self.ctx.client.patch(
                    "pods",
                    self.name,
                    {"status": status},
                    "merge",
                    self.namespace,
                    subresource="status",
                )
                self._last_status = status
                self._written_version = objects.meta(written).get("resourceVersion")
            except NotFound:
                self._gone = True
                self._terminate.set()
            except (ApiError, ConnectionFailed) as e:
                log.warning("pod %s/%s: status: %s", self.namespace, self.name, e)
                await asyncio.sleep(0.5)
                self._dirty.set()

    # -- probes ----------------------------------------------------------------------------
    def _trigger_readiness_probes(self) -> None:
        """kubelet's prober manager UpdatePodStatus: on every pod status generation, a running,
        started container whose readiness has no Success yet gets its readiness probe run now
        (a non-blocking send on the worker's one-slot manualTriggerCh), not a period later."""
        for name, trigger in self._readiness_triggers.items():
            tracker = self._trackers.get((name, ProbeKind.READINESS))
            if tracker is None or tracker.verdict is Verdict.SUCCESS:
                continue
            running = self.containers is not None and self.containers.pid(name) is not None
            _, started = self._container_ready(name, running)
            if started:
                trigger.set()

    def _sync_probes(self) -> None:
        """Start probes for a container that (re)started; stop them for one that stopped."""
        if self.containers is None:
            return
        for c in self.spec_containers:
            name = str(c.get("name", ""))
            pid = self.containers.pid(name)
            if pid is not None and self._probed_pid.get(name) == pid:
                continue
            for t in self._probe_tasks.pop(name, []):
                t.cancel()
            for kind in ProbeKind:
                self._trackers.pop((name, kind), None)
            self._probed_pid.pop(name, None)
            self._readiness_triggers.pop(name, None)
            if pid is None or self._terminate.is_set():
                continue
            self._probed_pid[name] = pid
            started = asyncio.Event()
            specs: list[ProbeSpec] = []
            for field, kind in (
                ("startupProbe", ProbeKind.STARTUP),
                ("readinessProbe", ProbeKind.READINESS),
                ("livenessProbe", ProbeKind.LIVENESS),
            ):
                if c.get(field):
                    specs.append(parse_probe(kind, c[field]))
            if not any(s.kind is ProbeKind.STARTUP for s in specs):
                started.set()
            tasks = []
            for spec in specs:
                tracker = ProbeTracker(spec)
                self._trackers[(name, spec.kind)] = tracker
                trigger = asyncio.Event()
                if spec.kind is ProbeKind.READINESS:
                    self._readiness_triggers[name] = trigger
                tasks.append(
                    asyncio.create_task(
                        self._probe_loop(c, spec, tracker, pid, started, trigger),
                        name=f"probe-{self.name}-{name}-{spec.kind.value}",
                    )
                )
            self._probe_tasks[name] = tasks

    async def _probe_loop(
        self,
        c: Mapping[str, Any],
        spec: ProbeSpec,
        tracker: ProbeTracker,
        pid: int,
        started: asyncio.Event,
        trigger: asyncio.Event,
    ) -> None:
        name = str(c.get("name", ""))
        if spec.kind is not ProbeKind.STARTUP:
            await started.wait()
        if spec.initial_delay > 0:
            await self.ctx.clock.sleep(spec.initial_delay)
        target = ProbeTarget(
            self.sandbox.pod_ip if self.sandbox else "", pid, tuple(c.get("ports") or ())
        )
        # kubelet's worker: probe, then wait for the next tick of a ticker of periodSeconds
        # (ticks keep their phase: a manual run does not move them) or a manual trigger.
        next_tick = self.ctx.clock.monotonic() + spec.period
        trigger.clear()
        while True:
            result = await run_probe(spec, target)
            changed = tracker.record(result.ok)
            if not result.ok:
                self._event(
                    WARNING, "Unhealthy", unhealthy_message(spec.kind, result.message), name
                )
            if changed:
                self._mark_dirty()
            if spec.kind is ProbeKind.STARTUP and tracker.verdict is Verdict.SUCCESS:
                started.set()
                self._mark_dirty()
                return
            if spec.kind in (ProbeKind.LIVENESS, ProbeKind.STARTUP) and (
                tracker.verdict is Verdict.FAILURE
            ):
                what = "liveness" if spec.kind is ProbeKind.LIVENESS else "startup"
                self._event(
                    NORMAL,
                    "Killing",
                    f"Container {name} failed {what} probe, will be restarted",
                    name,
                )
                await self._kill_container(name)
                return
            next_tick = await self._wait_tick_or_trigger(next_tick, spec.period, trigger)

    async def _wait_tick_or_trigger(
        self, next_tick: float, period: float, trigger: asyncio.Event
    ) -> float:
        """Sleep until ``next_tick`` or until ``trigger`` is set; the next tick after that.

        Like a Go ticker, ticks missed while a probe ran are dropped, not queued."""
        clock = self.ctx.clock
        timer = clock.call_later(next_tick - clock.monotonic(), trigger.set)
        try:
            await trigger.wait()
        finally:
            timer.cancel()
        trigger.clear()
        now = clock.monotonic()
        while next_tick <= now:
            next_tick += period
        return next_tick

    async def _kill_container(self, name: str) -> None:
        if self.containers is None:
            return
        proc = self.containers.processes.get(name)
        if proc is not None and proc.exit_code is None:
            await proc.stop(float(self._grace()))

    # -- termination -----------------------------------------------------------------------
    def _grace(self) -> int:
        meta = objects.meta(self.pod)
        if meta.get("deletionGracePeriodSeconds") is not None:
            return int(meta["deletionGracePeriodSeconds"])
        grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return DEFAULT_GRACE if grace is None else int(grace)

    async def _stop_containers(self) -> None:
        for tasks in self._probe_tasks.values():
            for t in tasks:
                t.cancel()
        self._probe_tasks.clear()
        if self.containers is None:
            return
        grace = 0.0 if self._gone else float(self._grace())
        started = time.monotonic()
        if grace > 0:
            hooks = [
                self._pre_stop(c)
                for c in self.spec_containers
                if (c.get("lifecycle") or {}).get("preStop")
            ]
            if hooks:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*hooks, return_exceptions=True), grace)
        remaining = max(
            grace - (time.monotonic() - started), MIN_GRACE_AFTER_PRESTOP if grace > 0 else 0.0
        )
        await self.containers.stop(remaining)

    async def _pre_stop(self, c: Mapping[str, Any]) -> None:
        assert self.containers is not None
        name = str(c.get("name", ""))
        hook = (c.get("lifecycle") or {}).get("preStop") or {}
        pid = self.containers.pid(name)
        if pid is None:
            return
        if "exec" in hook:
            argv = [str(a) for a in (hook["exec"].get("command") or [])]
            proc = await asyncio.create_subprocess_exec(
                *command_for_exec(pid, argv),
                env=self.containers.environ(name),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            out, _ = await proc.communicate()
            if proc.returncode != 0:
                self._event(
                    WARNING,
                    "FailedPreStopHook",
                    f"PreStopHook failed: command {argv!r} exited with "
                    f"{proc.returncode}: {out.decode(errors='replace').strip()}",
                    name,
                )
        elif "httpGet" in hook:
            spec = parse_probe(
                ProbeKind.LIVENESS,
                {"httpGet": hook["httpGet"], "timeoutSeconds": self._grace() or 1},
            )
            target = ProbeTarget(
                self.sandbox.pod_ip if self.sandbox else "", pid, tuple(c.get("ports") or ())
            )
            res = await run_probe(spec, target)
            if not res.ok:
                self._event(
                    WARNING, "FailedPreStopHook", f"PreStopHook failed: {res.message}", name
                )
        elif "sleep" in hook:
            await asyncio.sleep(float(hook["sleep"].get("seconds") or 0))

    async def _teardown(self) -> None:
        for tasks in self._probe_tasks.values():
            for t in tasks:
                t.cancel()
        if self.containers is not None:
            with contextlib.suppress(Exception):
                await self.containers.stop(0)
        if self.sandbox_spec is not None and self.sandbox is not None:
            try:
                await self.ctx.sandboxes.destroy(self.sandbox_spec)
            except Exception as e:
                log.warning("pod %s/%s: removing sandbox: %s", self.namespace, self.name, e)
                with contextlib.suppress(Exception):
                    await self.ctx.sandboxes.remove_orphan(self.sandbox.netns)
            self.sandbox = None
        if self._volume_task is not None:
            self._volume_task.cancel()
        if self.volumes is not None:
            try:
                await self.volumes.remove()
            except OSError as e:
                log.warning("pod %s/%s: removing volumes: %s", self.namespace, self.name, e)

    async def _delete_object(self) -> None:
        try:
            await self.ctx.client.delete(
                "pods",
                self.name,
                self.namespace,
                grace_period_seconds=0,
                preconditions={"uid": self.uid},
            )
        except NotFound:
            pass
        except (ApiError, ConnectionFailed) as e:
            log.warning("pod %s/%s: final delete: %s", self.namespace, self.name, e)


def _condition_states(status: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(c.get("type")): str(c.get("status"))
        for c in status.get("conditions") or []
        if isinstance(c, Mapping)
    }


def _newer(version: object, than: object) -> bool:
    """Whether an object seen at ``version`` comes after our write at ``than``: an event
    older than it does not show what others wrote since. svcnet's resourceVersions are
    integers; anything else counts as newer (a needless rewrite at worst)."""
    try:
        return int(str(version)) > int(str(than))
    except ValueError:
        return True
