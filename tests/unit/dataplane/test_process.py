"""Container process argv, exit codes and log files (no processes started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from svcnet.dataplane.process import ProcessSpec, exit_code_of, log_path, prune_logs, wrap_argv


def test_argv_enters_the_pod_netns_then_a_new_uts_namespace() -> None:
    argv = wrap_argv(ProcessSpec(("agnhost", "netexec"), "podns", "web-0", "/l"))
    assert argv[:4] == ["ip", "netns", "exec", "podns"]
    assert argv[4:7] == ["unshare", "--uts", "--"]
    assert argv[-3:] == ["web-0", "agnhost", "netexec"]


def test_argv_without_namespace_or_hostname_is_the_command() -> None:
    assert wrap_argv(ProcessSpec(("true",), None, None, "/l")) == ["true"]


@pytest.mark.parametrize(("returncode", "code"), [(0, 0), (3, 3), (-15, 143), (-9, 137)])
def test_exit_codes_follow_container_runtimes(returncode: int, code: int) -> None:
    assert exit_code_of(returncode) == code


def test_prune_keeps_the_current_and_previous_log(tmp_path: Path) -> None:
    for n in range(4):
        p = Path(log_path(str(tmp_path), "web", n))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(str(n))
    prune_logs(str(tmp_path), "web", 3)
    assert sorted(p.name for p in (tmp_path / "web").iterdir()) == ["2.log", "3.log"]
