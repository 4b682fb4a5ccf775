"""The async container driver over fake processes and virtual time (back-off base 10 s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from svcnet.agent.containers import (
    BackoffPolicy,
    ContainerRun,
    PodContainers,
    PodEvent,
    RestartPolicy,
    StateKind,
)
from svcnet.agent.images import resolve_command
from svcnet.dataplane.fake_process import FakeProcessRunner
from svcnet.util.clock import FakeClock

POD = "web_default(uid1)"


def make(
    tmp_path: Path,
    policy: RestartPolicy = RestartPolicy.ALWAYS,
    image: str = "busybox",
    command: tuple[str, ...] = ("sleep", "1"),
    runner: FakeProcessRunner | None = None,
) -> tuple[PodContainers, FakeProcessRunner, FakeClock, list[PodEvent]]:
    events: list[PodEvent] = []
    fake = runner or FakeProcessRunner()
    clock = FakeClock()
    pod = PodContainers(
        pod=POD,
        netns="podns",
        hostname="web",
        containers=[ContainerRun("app", image, resolve_command(image, command, ()))],
        restart_policy=policy,
        runner=fake,
        clock=clock,
        log_dir=str(tmp_path),
        backoff=BackoffPolicy(10, 300),
        on_event=events.append,
    )
    return pod, fake, clock, events


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_crashing_container_restarts_at_once_then_backs_off(tmp_path: Path) -> None:
    pod, fake, clock, events = make(tmp_path)
    task = asyncio.create_task(pod.run())
    await settle()
    fake.started[0].exit(1)
    await settle()
    assert len(fake.started) == 2
    fake.started[1].exit(1)
    await settle()
    st = pod.statuses()[0]
    assert (st.state.reason, st.restart_count) == ("CrashLoopBackOff", 1)
    assert events[-1] == PodEvent(
        "BackOff", f"Back-off restarting failed container app in pod {POD}", "Warning", "app"
    )
    await clock.step(9)
    assert len(fake.started) == 2
    await clock.step(1)
    assert len(fake.started) == 3 and pod.statuses()[0].restart_count == 2
    await pod.stop(1)
    await task


async def test_each_instance_logs_to_its_own_file_and_previous_is_kept(tmp_path: Path) -> None:
    pod, fake, _, _ = make(tmp_path)
    task = asyncio.create_task(pod.run())
    await settle()
    fake.started[0].exit(1)
    await settle()
    assert [p.spec.log_path for p in fake.started] == [
        str(tmp_path / "app" / "0.log"),
        str(tmp_path / "app" / "1.log"),
    ]
    assert pod.log_file("app", previous=True) == str(tmp_path / "app" / "0.log")
    await pod.stop(1)
    await task


async def test_bad_image_waits_with_err_image_never_pull_and_an_event(tmp_path: Path) -> None:
    pod, fake, _, events = make(tmp_path, image="redis:7", command=())
    task = asyncio.create_task(pod.run())
    await settle()
    assert fake.started == []
    assert pod.statuses()[0].state.reason == "ErrImageNeverPull"
    assert (events[0].reason, events[0].type) == ("ErrImageNeverPull", "Warning")
    assert pod.phase() == "Pending"
    await pod.stop(1)
    await task


async def test_missing_command_is_a_start_error_and_fails_a_never_pod(tmp_path: Path) -> None:
    pod, _, _, events = make(
        tmp_path,
        RestartPolicy.NEVER,
        command=("nope",),
        runner=FakeProcessRunner(frozenset({"sleep"})),
    )
    await asyncio.wait_for(pod.run(), 1)
    term = pod.statuses()[0].state.terminated
    assert term is not None and (term.reason, term.exit_code) == ("StartError", 128)
    assert 'exec: "nope": executable file not found in $PATH' in events[-1].message
    assert pod.phase() == "Failed"


async def test_a_completed_never_pod_succeeds_and_run_returns(tmp_path: Path) -> None:
    pod, fake, _, events = make(tmp_path, RestartPolicy.NEVER)
    task = asyncio.create_task(pod.run())
    await settle()
    fake.started[0].exit(0)
    await asyncio.wait_for(task, 1)
    assert pod.phase() == "Succeeded"
    assert [e.reason for e in events] == ["Pulled", "Created", "Started"]


async def test_stop_kills_running_containers_with_a_killing_event(tmp_path: Path) -> None:
    pod, fake, _, events = make(tmp_path)
    task = asyncio.create_task(pod.run())
    await settle()
    await pod.stop(30)
    await asyncio.wait_for(task, 1)
    assert fake.started[0].stopped_with == "SIGTERM"
    assert events[-1] == PodEvent("Killing", "Stopping container app", "Normal", "app")
    assert pod.statuses()[0].state.kind is StateKind.TERMINATED
