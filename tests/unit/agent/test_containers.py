"""The container lifecycle state machine on virtual time (back-off base 10 s, max 300 s)."""

from __future__ import annotations

import pytest

from svcnet.agent.containers import (
    ActionKind,
    BackoffPolicy,
    ContainerLifecycle,
    RestartPolicy,
    StateKind,
    go_duration,
    pod_phase,
)
from svcnet.util.clock import FakeClock

POD = "web_default(uid1)"


def life(
    policy: RestartPolicy = RestartPolicy.ALWAYS, clock: FakeClock | None = None
) -> tuple[ContainerLifecycle, FakeClock]:
    c = clock or FakeClock()
    return ContainerLifecycle("app", POD, policy, c, BackoffPolicy(10, 300)), c


def crash(lc: ContainerLifecycle, clock: FakeClock, ran: float = 1.0, code: int = 1) -> None:
    lc.started()
    clock.advance(ran)
    lc.exited(code)


def test_a_new_container_starts_at_once_while_creating() -> None:
    lc, _ = life()
    assert lc.status().state.reason == "ContainerCreating"
    assert lc.next_action().kind is ActionKind.START


def test_backoff_is_immediate_then_10s_doubling_to_5_minutes() -> None:
    lc, clock = life()
    waits = []
    for _ in range(8):
        crash(lc, clock)
        action = lc.next_action()
        wait = 0.0 if action.at is None else action.at - clock.monotonic()
        waits.append(wait)
        clock.advance(wait)
        assert lc.next_action().kind is ActionKind.START
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300]


def test_waiting_in_backoff_says_crash_loop_with_kubelets_message() -> None:
    lc, clock = life()
    crash(lc, clock)
    crash(lc, clock)
    lc.next_action()
    st = lc.status()
    assert (st.state.kind, st.state.reason) == (StateKind.WAITING, "CrashLoopBackOff")
    assert st.state.message == f"back-off 10s restarting failed container=app pod={POD}"
    assert st.last_state is not None and st.last_state.reason == "Error"
    assert st.restart_count == 1


def test_backoff_resets_after_running_longer_than_twice_the_maximum() -> None:
    lc, clock = life()
    crash(lc, clock)
    crash(lc, clock)
    clock.advance(10)
    crash(lc, clock, ran=601)
    assert lc.next_action().kind is ActionKind.START


@pytest.mark.parametrize(
    ("policy", "code", "restarts"),
    [
        (RestartPolicy.ALWAYS, 0, True),
        (RestartPolicy.ALWAYS, 1, True),
        (RestartPolicy.ON_FAILURE, 0, False),
        (RestartPolicy.ON_FAILURE, 2, True),
        (RestartPolicy.NEVER, 1, False),
    ],
)
def test_restart_policy(policy: RestartPolicy, code: int, restarts: bool) -> None:
    lc, clock = life(policy)
    crash(lc, clock, code=code)
    assert (lc.next_action().kind is ActionKind.START) == restarts


@pytest.mark.parametrize(("code", "reason"), [(0, "Completed"), (1, "Error"), (137, "Error")])
def test_terminated_reason_from_exit_code(code: int, reason: str) -> None:
    lc, clock = life(RestartPolicy.NEVER)
    crash(lc, clock, code=code)
    term = lc.status().state.terminated
    assert term is not None and (term.exit_code, term.reason) == (code, reason)


def test_start_failure_is_start_error_128_without_counting_a_restart() -> None:
    lc, _ = life(RestartPolicy.NEVER)
    lc.start_failed('exec: "nope": executable file not found in $PATH')
    st = lc.status()
    assert st.state.terminated is not None
    assert (st.state.terminated.reason, st.state.terminated.exit_code, st.restart_count) == (
        "StartError",
        128,
        0,
    )


def test_bad_image_waits_forever_with_its_reason() -> None:
    lc = ContainerLifecycle(
        "app", POD, RestartPolicy.ALWAYS, FakeClock(), image_error=("ErrImageNeverPull", "do X")
    )
    assert lc.next_action().kind is ActionKind.NONE
    assert lc.status().state.reason == "ErrImageNeverPull"


def test_restart_count_and_last_state_follow_restarts() -> None:
    lc, clock = life()
    crash(lc, clock, code=3)
    lc.started()
    st = lc.status()
    assert (st.restart_count, st.state.kind, st.last_state and st.last_state.exit_code) == (
        1,
        StateKind.RUNNING,
        3,
    )


@pytest.mark.parametrize(
    ("policy", "codes", "phase"),
    [
        (RestartPolicy.NEVER, [None], "Pending"),
        (RestartPolicy.NEVER, ["run"], "Running"),
        (RestartPolicy.NEVER, [0, 0], "Succeeded"),
        (RestartPolicy.NEVER, [0, 1], "Failed"),
        (RestartPolicy.ON_FAILURE, [0], "Succeeded"),
        (RestartPolicy.ALWAYS, [0], "Running"),
        (RestartPolicy.ON_FAILURE, [1], "Running"),
    ],
)
def test_pod_phase_is_kubelets_get_phase(
    policy: RestartPolicy, codes: list[object], phase: str
) -> None:
    clock = FakeClock()
    statuses = []
    for i, code in enumerate(codes):
        lc = ContainerLifecycle(f"c{i}", POD, policy, clock)
        if code == "run":
            lc.started()
        elif isinstance(code, int):
            lc.started()
            lc.exited(code)
        statuses.append(lc.status())
    assert pod_phase(statuses, policy) == phase


@pytest.mark.parametrize(("s", "text"), [(10, "10s"), (80, "1m20s"), (300, "5m0s")])
def test_go_duration(s: float, text: str) -> None:
    assert go_duration(s) == text
