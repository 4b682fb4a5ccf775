"""Container lifecycle of one pod: pure state machines, driven by the agent's process glue.

Each :class:`ContainerLifecycle` answers "what now?" (:meth:`next_action`) from what happened
(started, start failed, exited) and the injected clock; it runs nothing itself. The rules are
kubelet's:
- restartPolicy Always restarts every exit, OnFailure only a non-zero exit, Never none;
- crash-loop back-off (kubelet's flowcontrol.Backoff keyed per container): the first restart
  is immediate; while ``now - finishedAt`` is below the current back-off the container waits
  in CrashLoopBackOff; each restart after a wait doubles the back-off (10 s → 5 min); a
  container that ran longer than twice the maximum since the last restart starts over at the
  initial back-off;
- terminated reasons: Completed (exit 0), Error (non-zero), StartError (the command could not
  be started, exit code 128, as containerd reports); waiting reasons: ContainerCreating before
  the first start, CrashLoopBackOff, ErrImageNeverPull;
- the pod phase is kubelet's getPhase over the container states.

:class:`PodContainers` (the last section) is the thin async driver: one task per container
that asks the state machine what to do, starts processes through a
:class:`~svcnet.dataplane.process.ProcessRunner`, sleeps on the injected clock, and reports
Events as kubelet records them (Pulled, Created, Started, BackOff, Killing, Failed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from svcnet.agent.containerio import ContainerIO
from svcnet.agent.images import ResolvedCommand
from svcnet.dataplane.process import (
    DEFAULT_PATH,
    ExecutableNotFound,
    ProcessError,
    ProcessRunner,
    ProcessSpec,
    RunningProcess,
    log_path,
    prune_logs,
)


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def time(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class RestartPolicy(Enum):
    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


class StateKind(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    TERMINATED = "terminated"


class ActionKind(Enum):
    START = "start"
    WAIT = "wait"  # until ``Action.at`` (monotonic seconds)
    NONE = "none"  # running, finished for good, or blocked (bad image)


OUTPUT_DRAIN = 2.0  # seconds to copy what is left of the output after the container exits
REASON_CREATING = "ContainerCreating"
REASON_CRASH_LOOP = "CrashLoopBackOff"
REASON_COMPLETED = "Completed"
REASON_ERROR = "Error"
REASON_START_ERROR = "StartError"
START_ERROR_EXIT_CODE = 128


@dataclass(frozen=True)
class BackoffPolicy:
    initial: float = 10.0
    maximum: float = 300.0


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    message: str = ""
    started_at: float | None = None  # wall-clock seconds
    finished_at: float = 0.0


@dataclass(frozen=True)
class ContainerState:
    kind: StateKind
    reason: str = ""
    message: str = ""
    started_at: float | None = None
    terminated: Terminated | None = None


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    state: ContainerState
    last_state: Terminated | None
    restart_count: int
    started: bool

    def to_api(self) -> dict[str, object]:
        """The state as the core/v1 ContainerStatus fields (timestamps left as floats)."""
        return {
            "name": self.name,
            "restartCount": self.restart_count,
            "started": self.started,
            "state": _state_api(self.state),
            "lastState": {"terminated": _term_api(self.last_state)} if self.last_state else {},
        }


def _term_api(t: Terminated) -> dict[str, object]:
    out: dict[str, object] = {
        "exitCode": t.exit_code,
        "reason": t.reason,
        "finishedAt": t.finished_at,
    }
    if t.message:
        out["message"] = t.message
    if t.started_at is not None:
        out["startedAt"] = t.started_at
    return out


def _state_api(s: ContainerState) -> dict[str, object]:
    if s.kind is StateKind.RUNNING:
        return {"running": {"startedAt": s.started_at}}
    if s.kind is StateKind.TERMINATED and s.terminated is not None:
        return {"terminated": _term_api(s.terminated)}
    waiting: dict[str, object] = {"reason": s.reason}
    if s.message:
        waiting["message"] = s.message
    return {"waiting": waiting}


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    at: float | None = None


def go_duration(seconds: float) -> str:
    """Go's time.Duration String() for whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


def should_restart(policy: RestartPolicy, exit_code: int) -> bool:
    if policy is RestartPolicy.ALWAYS:
        return True
    if policy is RestartPolicy.ON_FAILURE:
        return exit_code != 0
    return False


class ContainerLifecycle:
    def __init__(
        self,
        name: str,
        pod: str,  # kubelet's format.Pod: "name_namespace(uid)", used in back-off messages
        restart_policy: RestartPolicy,
        clock: Clock,
        backoff: BackoffPolicy | None = None,
        image_error: tuple[str, str] | None = None,  # (reason, message)
    ) -> None:
        self.name = name
        self.pod = pod
        self.policy = restart_policy
        self.clock = clock
        self.backoff = backoff or BackoffPolicy()
        self.restart_count = 0
        self.last_state: Terminated | None = None
        self._ever_started = False
        self._finished_mono: float | None = None
        self._backoff_entry: tuple[float, float] | None = None  # (current back-off, last update)
        if image_error is not None:
            self.state = ContainerState(StateKind.WAITING, image_error[0], image_error[1])
            self._blocked = True
        else:
            self.state = ContainerState(StateKind.WAITING, REASON_CREATING)
            self._blocked = False

    # -- decisions ----------------------------------------------------------------------
    def next_action(self) -> Action:
        if self._blocked or self.state.kind is StateKind.RUNNING:
            return Action(ActionKind.NONE)
        if not self._ever_started and self.state.reason == REASON_CREATING:
            return Action(ActionKind.START)
        term = self.state.terminated if self.state.kind is StateKind.TERMINATED else self.last_state
        if term is None or self._finished_mono is None:
            return Action(ActionKind.START)
        if self.state.kind is StateKind.TERMINATED and not should_restart(
            self.policy, term.exit_code
        ):
            return Action(ActionKind.NONE)
        now = self.clock.monotonic()
        finished = self._finished_mono
        entry = self._backoff_entry
        if entry is None or finished - entry[1] > 2 * self.backoff.maximum:
            return Action(ActionKind.START)
        delay, _ = entry
        if now - finished < delay:
            self._enter_backoff(delay, term)
            return Action(ActionKind.WAIT, at=finished + delay)
        return Action(ActionKind.START)

    def _enter_backoff(self, delay: float, term: Terminated) -> None:
        if self.state.kind is StateKind.TERMINATED:
            self.last_state = term
        self.state = ContainerState(
            StateKind.WAITING,
            REASON_CRASH_LOOP,
            f"back-off {go_duration(delay)} restarting failed container={self.name} pod={self.pod}",
        )

    @property
    def ever_started(self) -> bool:
        return self._ever_started

    # -- events -------------------------------------------------------------------------
    def _record_restart(self) -> None:
        """Kubelet's Backoff.Next, applied when a restart actually happens."""
        if not self._ever_started or self._finished_mono is None:
            return
        finished = self._finished_mono
        entry = self._backoff_entry
        if entry is None or finished - entry[1] > 2 * self.backoff.maximum:
            self._backoff_entry = (self.backoff.initial, finished)
        else:
            self._backoff_entry = (min(entry[0] * 2, self.backoff.maximum), finished)

    def started(self) -> None:
        if self._ever_started:
            self._record_restart()
            self.restart_count += 1
            if self.state.kind is StateKind.TERMINATED:
                self.last_state = self.state.terminated
        self._ever_started = True
        self.state = ContainerState(StateKind.RUNNING, started_at=self.clock.time())

    def start_failed(self, message: str) -> None:
        """The command could not be started: a StartError termination, then restart rules."""
        was_started = self._ever_started
        self.started()
        self.exited(START_ERROR_EXIT_CODE, reason=REASON_START_ERROR, message=message)
        if not was_started:
            # It never ran: keep the count of restarts honest (the first attempt is no restart).
            self.restart_count = 0

    def exited(self, exit_code: int, reason: str = "", message: str = "") -> None:
        started_at = self.state.started_at if self.state.kind is StateKind.RUNNING else None
        self._finished_mono = self.clock.monotonic()
        term = Terminated(
            exit_code=exit_code,
            reason=reason or (REASON_COMPLETED if exit_code == 0 else REASON_ERROR),
            message=message,
            started_at=started_at,
            finished_at=self.clock.time(),
        )
        self.state = ContainerState(StateKind.TERMINATED, terminated=term)

    def status(self) -> ContainerStatus:
        return ContainerStatus(
            name=self.name,
            state=self.state,
            last_state=self.last_state,
            restart_count=self.restart_count,
            started=self.state.kind is StateKind.RUNNING,
        )


def pod_phase(statuses: Sequence[ContainerStatus], policy: RestartPolicy) -> str:
    """kubelet's getPhase for regular containers."""
    waiting = running = stopped = succeeded = 0
    for st in statuses:
        kind = st.state.kind
        if kind is StateKind.RUNNING:
            running += 1
        elif kind is StateKind.TERMINATED:
            stopped += 1
            if st.state.terminated is not None and st.state.terminated.exit_code == 0:
                succeeded += 1
        elif st.last_state is not None:
            stopped += 1
            if st.last_state.exit_code == 0:
                succeeded += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy is RestartPolicy.ALWAYS:
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy is RestartPolicy.NEVER:
            return "Failed"
        return "Running"
    return "Pending"


# -- the async driver --------------------------------------------------------------------------
@dataclass(frozen=True)
class ContainerRun:
    name: str
    image: str
    command: ResolvedCommand  # from images.resolve_command: argv, or why it cannot run
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    sandbox: Mapping[str, Any] | None = None  # see ProcessSpec.sandbox


@dataclass(frozen=True)
class PodEvent:
    reason: str
    message: str
    type: str = "Normal"  # or "Warning"
    container: str = ""  # for involvedObject.fieldPath spec.containers{name}


def _noop_event(_e: PodEvent) -> None:
    pass


def _noop() -> None:
    pass


class PodContainers:
    """Runs the containers of one pod until stopped (or, with Never/OnFailure, finished)."""

    def __init__(
        self,
        *,
        pod: str,
        netns: str | None,
        hostname: str | None,
        containers: Sequence[ContainerRun],
        restart_policy: RestartPolicy,
        runner: ProcessRunner,
        clock: Clock,
        log_dir: str,
        backoff: BackoffPolicy | None = None,
        on_event: Callable[[PodEvent], None] = _noop_event,
        on_change: Callable[[], None] = _noop,
        own_output: bool = True,
    ) -> None:
        self.pod = pod
        # The agent holds the containers' streams (logs in the CRI format, attach); without,
        # a container writes its log file itself and cannot be attached to.
        self.own_output = own_output
        self.netns = netns
        self.hostname = hostname
        self.containers = list(containers)
        self.policy = restart_policy
        self.runner = runner
        self.clock = clock
        self.log_dir = log_dir
        self.on_event = on_event
        self.on_change = on_change
        self.lifecycles: dict[str, ContainerLifecycle] = {
            c.name: ContainerLifecycle(
                c.name,
                pod,
                restart_policy,
                clock,
                backoff,
                None if c.command.ok else (c.command.reason, c.command.message),
            )
            for c in self.containers
        }
        self.processes: dict[str, RunningProcess] = {}
        self.ios: dict[str, ContainerIO] = {}  # each container's current instance's streams
        self.ephemeral: list[ContainerRun] = []
        self._group: asyncio.TaskGroup | None = None
        self._stopping = asyncio.Event()

    # -- queries --------------------------------------------------------------------------
    def statuses(self) -> list[ContainerStatus]:
        return [self.lifecycles[c.name].status() for c in self.containers]

    def phase(self) -> str:
        return pod_phase(self.statuses(), self.policy)

    def pid(self, container: str) -> int | None:
        proc = self.processes.get(container)
        return proc.pid if proc is not None and proc.exit_code is None else None

    def environ(self, container: str) -> dict[str, str]:
        """The environment the container was started with: what an exec or a hook gets
        (the CRI gives exec the container's configured env, not the live process's)."""
        run = next((c for c in self.containers if c.name == container), None)
        env = dict(run.env) if run is not None else {}
        env.setdefault("PATH", DEFAULT_PATH)
        return env

    def log_file(self, container: str, previous: bool = False) -> str | None:
        """The log `kubectl logs [--previous]` reads; None when there is no such instance."""
        lc = self.lifecycles[container]
        if not lc.ever_started:
            return None
        index = lc.restart_count - (1 if previous else 0)
        return log_path(self.log_dir, container, index) if index >= 0 else None

    # -- running --------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self._group = tg
                for c in self.containers:
                    tg.create_task(self._run_one(c))
        finally:
            self._group = None
            self._stopping.set()

    def add_ephemeral(self, c: ContainerRun) -> bool:
        """Start an ephemeral container (``kubectl debug``) beside the running ones: never
        restarted, not part of the pod's phase or readiness. False once the pod's containers
        have all finished (kubelet does not start ephemeral containers in a finished pod)."""
        if self._group is None or c.name in self.lifecycles or self._stopping.is_set():
            return False
        self.ephemeral.append(c)
        self.lifecycles[c.name] = ContainerLifecycle(
            c.name,
            self.pod,
            RestartPolicy.NEVER,
            self.clock,
            None,
            None if c.command.ok else (c.command.reason, c.command.message),
        )
        self._group.create_task(self._run_one(c))
        return True

    def ephemeral_statuses(self) -> list[ContainerStatus]:
        return [self.lifecycles[c.name].status() for c in self.ephemeral]

    async def _run_one(self, c: ContainerRun) -> None:
        lc = self.lifecycles[c.name]
        if not c.command.ok:
            self._event(c.command.reason, c.command.message, "Warning", c.name)
            self.on_change()
            await self._stopping.wait()
            return
        while not self._stopping.is_set():
            action = lc.next_action()
            if action.kind is ActionKind.START:
                await self._start(c, lc)
            elif action.kind is ActionKind.WAIT and action.at is not None:
                self._event(
                    "BackOff",
                    f"Back-off restarting failed container {c.name} in pod {self.pod}",
                    "Warning",
                    c.name,
                )
                self.on_change()
                await self._sleep_or_stop(action.at - self.clock.monotonic())
            else:
                return

    async def _start(self, c: ContainerRun, lc: ContainerLifecycle) -> None:
        index = lc.restart_count + 1 if lc.ever_started else 0
        path = log_path(self.log_dir, c.name, index)
        io = ContainerIO(c.stdin, c.stdin_once, c.tty, path) if self.own_output else None
        spec = ProcessSpec(
            argv=c.command.argv,
            netns=self.netns,
            hostname=self.hostname,
            log_path=path,
            env=c.env,
            working_dir=c.working_dir,
            stdin_fd=io.child_fds[0] if io is not None else None,
            stdout_fd=io.child_fds[1] if io is not None else None,
            stderr_fd=io.child_fds[2] if io is not None else None,
            tty=c.tty and io is not None,
            sandbox=c.sandbox,
        )
        if index == 0:
            self._event(
                "Pulled",
                f'Container image "{c.image}" already present on machine',
                container=c.name,
            )
        try:
            proc = await self.runner.start(spec)
        except ProcessError as e:
            if io is not None:
                io.close()
            kind = "StartError" if isinstance(e, ExecutableNotFound) else "Failed"
            lc.start_failed(str(e))
            self._event("Failed", f"Error: {kind}: {e}", "Warning", c.name)
            self.on_change()
            return
        self.processes[c.name] = proc
        if io is not None:
            io.started()
            previous = self.ios.get(c.name)
            if previous is not None:
                previous.close()
            self.ios[c.name] = io
        lc.started()
        prune_logs(self.log_dir, c.name, lc.restart_count)
        self._event("Created", f"Created container {c.name}", container=c.name)
        self._event("Started", f"Started container {c.name}", container=c.name)
        self.on_change()
        code = await proc.wait()
        if io is not None:
            # The last output is still to be copied to the log (children of the container
            # that keep its pipes open are not waited for long).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(io.ended.wait(), OUTPUT_DRAIN)
        lc.exited(code)
        self.on_change()

    async def _sleep_or_stop(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(max(0.0, seconds)))
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, stopper):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def stop(self, grace_seconds: float) -> None:
        """Killing: SIGTERM every running container, SIGKILL after the grace period."""
        self._stopping.set()
        running = [(n, p) for n, p in self.processes.items() if p.exit_code is None]
        for name, _ in running:
            self._event("Killing", f"Stopping container {name}", container=name)
        await asyncio.gather(*(p.stop(grace_seconds) for _, p in running))
        for io in self.ios.values():
            io.close()

    def _event(self, reason: str, message: str, type_: str = "Normal", container: str = "") -> None:
        self.on_event(PodEvent(reason, message, type_, container))
