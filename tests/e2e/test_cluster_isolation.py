"""Another cluster's whole life next to a running one leaves the running one untouched.

The running cluster "A" stands in for a user's (one module-wide ``running_cluster``: its own
ranges, names and port, see cluster_fixture) with a pod on each node. Next to it a cluster "B"
either lives a whole life (``up``, a pod, ``down``) on ranges of its own, or tries to take one
of A's ranges, its name or its port: then ``svcnet up`` refuses at once, printing the reason as
kubectl prints an invalid object, and B's ``svcnet down`` (what a test's cleanup runs) removes
nothing. After each, A's routes, links, namespaces, /etc/netns entries, processes and its guard
table's rules are exactly as before, its seal still holds and its pods still run.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_fixture import (
    Cluster,
    new_cluster,
    pod_manifest,
    ready,
    running_cluster,
    snapshot,
    up_args,
)

from svcnet.dataplane.netns import IpRoute2, RouteType

pytestmark = pytest.mark.e2e

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52"


def pod(name: str, node: str) -> str:
    return pod_manifest(name, node, f"    image: {AGNHOST}\n    args: [netexec]")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("live"), nodes=2) as a:
        for node in ("node-1", "node-2"):
            a.apply(pod(f"web-{node}", node))
        for node in ("node-1", "node-2"):
            a.wait_for(f"pod/web-{node}", ready, 60)
        settle(a)
        yield a


def settle(a: Cluster, timeout: float = 60.0) -> None:
    """Until A's add-ons (DNS, the ingress controller and its HAProxy) have started all they
    start: every pod Ready and the footprint the same on two reads a second apart."""
    a.wait_for("pods", lambda pods: all(ready(p) for p in pods["items"]), timeout, "-A")
    deadline = time.monotonic() + timeout
    last = footprint(a)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = footprint(a)
        if now == last:
            return
        last = now
    raise AssertionError(f"cluster {a.name} did not settle: {last}")


def footprint(a: Cluster) -> dict[str, frozenset[str]]:
    """Everything of A's on the machine, and the rules of its guard table."""
    nets = [a.underlay_cidr, a.pod_cidr, a.service_cidr]
    table = subprocess.run(
        ["nft", "list", "table", "inet", f"{a.name}_underlay"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {**snapshot(a.name, nets, a.data_dir).__dict__, "guard": frozenset(table.splitlines())}


def assert_same(before: dict[str, frozenset[str]], after: dict[str, frozenset[str]]) -> None:
    changed = {
        key: {"gone": sorted(before[key] - after[key]), "new": sorted(after[key] - before[key])}
        for key in before
        if before[key] != after[key]
    }
    assert not changed, f"the running cluster changed: {changed}"


def assert_alive(a: Cluster) -> None:
    # Polled: on a loaded machine a node can miss a heartbeat, which is not what is tested.
    a.wait_for("nodes", lambda nodes: [ready(n) for n in nodes["items"]] == [True, True], 60)
    for node in ("node-1", "node-2"):
        a.wait_for(f"pod/web-{node}", ready, 60)
    # The seal: an address of A's pod range that no node holds is unreachable from the machine.
    unassigned = str(ipaddress.ip_network(a.pod_cidr).network_address + 200 * 256 + 7)
    assert IpRoute2().route_get(None, unassigned).type is RouteType.UNREACHABLE


@pytest.fixture
def other(tmp_path: Path) -> Iterator[Cluster]:
    """B's name, data dir, kubeconfig, port and ranges, overlapping nothing on the machine."""
    with new_cluster(tmp_path, nodes=1) as b:
        yield b


def test_another_clusters_whole_life_leaves_a_running_one_untouched(
    live: Cluster, other: Cluster
) -> None:
    before = footprint(live)
    res = other.svcnet(*up_args(other), check=False, timeout=120)
    try:
        assert res.returncode == 0, res.stderr
        other.apply(pod("web", "node-1"))
        other.wait_for("pod/web", ready, 60)
    finally:
        other.svcnet("down", *other.cluster_args(), "--kubeconfig", str(other.kubeconfig))
    assert_same(before, footprint(live))
    assert_alive(live)


# (what B takes of A's, the flag svcnet up names, B's field, A's field)
TAKEN = [
    ("service range = A's pod range", "--service-cidr", "service_cidr", "pod_cidr"),
    ("pod range = A's Service range", "--pod-cidr", "pod_cidr", "service_cidr"),
    ("A's underlay", "--underlay-cidr", "underlay_cidr", "underlay_cidr"),
    ("A's name", "--name", "name", "name"),
    ("A's port", "--port", "port", "port"),
]


@pytest.mark.parametrize(("what", "flag", "mine", "theirs"), TAKEN, ids=[t[0] for t in TAKEN])
def test_up_refuses_what_a_running_cluster_holds_and_its_cleanup_removes_nothing(
    live: Cluster, other: Cluster, what: str, flag: str, mine: str, theirs: str
) -> None:
    value = getattr(live, theirs)
    b = dataclasses.replace(other, **{mine: value})
    before = footprint(live)
    res = b.svcnet(*up_args(b), check=False, timeout=120)
    wrote = b.data_dir.exists()
    down = b.svcnet("down", *b.cluster_args(), "--kubeconfig", str(b.kubeconfig), check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    quoted = str(value) if isinstance(value, int) else f'"{value}"'
    # As kubectl prints an invalid object: the cause inline, or one per line when several.
    assert re.match(
        rf'The cluster "{b.name}" is invalid: (\n\* )?{re.escape(flag)}: Invalid value: '
        rf"{re.escape(quoted)}: ",
        res.stderr,
    ), res.stderr
    if theirs == "pod_cidr":  # the seal route that a test's cleanup once removed
        assert f'"unreachable {live.pod_cidr} metric 4000000"' in res.stderr
    assert not wrote  # refused before it wrote anything
    assert down.returncode == 0, down.stderr
    assert_same(before, footprint(live))
    assert_alive(live)
