"""Shared e2e fixtures: root check, unique names and ranges, a before/after leak check.

Fixture IP ranges: each test draws a /24 of 172.31.0.0/16 as underlay and /16s of
10.224.0.0/12 (pods) and 10.240.0.0/12 (services) among those that overlap nothing the machine
routes now, nor svcnet's defaults (172.18/16, 10.244/16, 10.96/16), nor another test's (see
free_ranges), and a name prefix no namespace, link or table on the machine starts with.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from free_ranges import DATAPLANE, free_prefix, free_ranges

from svcnet.cluster.underlay import UnderlayConfig

REQUIRED_TOOLS = ("ip", "nft", "unshare", "nsenter", "sysctl")
CNI_DIR = "/usr/lib/cni"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("e2e tests need root (network namespaces)")
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if not os.path.exists(os.path.join(CNI_DIR, "bridge")):
        missing.append("containernetworking-plugins")
    if missing:
        pytest.fail(f"missing for e2e tests: {', '.join(missing)}")


@dataclass(frozen=True)
class Snapshot:
    netns: frozenset[str]
    links: frozenset[str]
    routes: frozenset[str]
    nft_tables: frozenset[str]
    etc_netns: frozenset[str]


def _ours(config: UnderlayConfig, text: str) -> bool:
    return config.prefix in text


def snapshot(config: UnderlayConfig) -> Snapshot:
    """What exists now that belongs to this test (by name prefix or address range)."""
    nets = [
        ipaddress.ip_network(c)
        for c in (config.pod_cidr, config.service_cidr, config.underlay_cidr)
    ]
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    links = json.loads(
        subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout
    )
    routes = json.loads(
        subprocess.run(["ip", "-j", "route"], capture_output=True, text=True, check=True).stdout
    )
    tables = subprocess.run(
        ["nft", "list", "tables"], capture_output=True, text=True, check=True
    ).stdout
    etc = os.listdir("/etc/netns") if os.path.isdir("/etc/netns") else []

    def route_ours(r: dict[str, object]) -> bool:
        dst = str(r.get("dst", ""))
        if dst == "default":
            return False
        net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        return any(net.overlaps(n) for n in nets) or _ours(config, str(r.get("dev", "")))

    return Snapshot(
        netns=frozenset(n for n in netns if _ours(config, n)),
        links=frozenset(
            str(link["ifname"]) for link in links if _ours(config, str(link["ifname"]))
        ),
        routes=frozenset(json.dumps(r, sort_keys=True) for r in routes if route_ours(r)),
        nft_tables=frozenset(t for t in tables.splitlines() if _ours(config, t)),
        etc_netns=frozenset(n for n in etc if _ours(config, n)),
    )


@pytest.fixture
def e2e_config(tmp_path: object) -> Iterator[UnderlayConfig]:
    """A unique prefix and ranges; asserts the test left nothing of them behind."""
    require_root()
    with free_ranges(DATAPLANE) as ranges:
        config = UnderlayConfig(
            prefix=free_prefix("t", 6),
            underlay_cidr=ranges.underlay,
            pod_cidr=ranges.pods,
            service_cidr=ranges.services,
            lb_cidr=ranges.lb,
            state_dir=str(tmp_path) + "/state",
        )
        before = snapshot(config)
        yield config
        after = snapshot(config)
        assert after == before, f"left behind: {after}"


LOG_TAIL_LINES = int(os.environ.get("SVCNET_TEST_LOG_TAIL", "60"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test against a cluster carries the tails of that cluster's logs in its report:
    CI keeps only the report, and the cluster's data directory is gone after ``svcnet down``."""
    report = yield
    if report.failed and call.when == "call":
        dirs = {getattr(v, "data_dir", None) for v in getattr(item, "funcargs", {}).values()}
        for data_dir in sorted(d for d in dirs if isinstance(d, Path)):
            if (data_dir / "logs").is_dir():
                for path in sorted((data_dir / "logs").glob("*.log")):
                    lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                    report.sections.append((f"log tail {path.name}", "\n".join(lines)))
    return report
