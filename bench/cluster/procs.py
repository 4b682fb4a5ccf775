"""The processes of one cluster, by component, with their memory and CPU time from /proc.

Components are the supervisor (its PID file), then each entry of the supervisor's
``status.json`` (control plane, one agent per node); each component owns its process and
every descendant (found through /proc/<pid>/task/*/children), e.g. an agent's pod processes.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            out.extend(int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    seen: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(children(p))
    return seen


def components(state_dir: Path) -> dict[str, int]:
    """Component name → its PID: the supervisor first, then what it runs."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        out["supervisor"] = int((state_dir / "supervisor.pid").read_text().strip())
    try:
        status = json.loads((state_dir / "status.json").read_text())
    except (OSError, ValueError):
        status = {}
    for name, st in status.items():
        if st.get("pid"):
            out[name] = int(st["pid"])
    return out


@dataclass
class Usage:
    processes: int = 0
    rss_kib: int = 0
    pss_kib: int = 0
    cpu_s: float = 0.0  # utime+stime of the live processes
    root_cpu_s: float = 0.0  # of the component's own process alone (no pod processes)
    reaped_children_cpu_s: float = 0.0  # cutime+cstime: children that exited (CNI plugins, …)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # a kernel thread or a zombie


def _pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _cpu(pid: int) -> tuple[float, float]:
    # Fields after "(comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    ut, st, cut, cst = (int(x) for x in fields[11:15])
    return (ut + st) / CLK_TCK, (cut + cst) / CLK_TCK


def usage(pid: int, exclude: set[int] | None = None) -> Usage:
    """Memory and CPU of ``pid`` and its descendants, skipping the subtrees in ``exclude``."""
    u = Usage()
    todo = [pid]
    while todo:
        p = todo.pop()
        if exclude and p in exclude and p != pid:
            continue
        try:
            rss, pss = _rss_kib(p), _pss_kib(p)
            own, reaped = _cpu(p)
        except OSError:
            continue  # it exited meanwhile
        u.processes += 1
        u.rss_kib += rss
        u.pss_kib += pss
        u.cpu_s += own
        if p == pid:
            u.root_cpu_s = own
        u.reaped_children_cpu_s += reaped
        todo.extend(children(p))
    return u


def cluster_usage(state_dir: Path) -> dict[str, Usage]:
    """Per component; the supervisor counts only itself (its components are listed apart)."""
    comps = components(state_dir)
    others = {pid for name, pid in comps.items() if name != "supervisor"}
    return {name: usage(pid, others) for name, pid in comps.items()}
