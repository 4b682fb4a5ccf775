"""NetworkPolicy fail-closed, by real connections: no window for a new pod, none for a new deny.

Two nodes; prober pods in namespace ``probe`` on each node run ``svcnet.testing.reachability
--watch`` (TCP connects, all targets at once, again and again; an attempt counts when the
target's kernel answered it, by accepting or refusing).

- A pod created into a default-deny namespace on node-1, probed from both nodes at every free
  address of node-1's pod block from before it exists until it is Ready, never answers; the
  same pod in a namespace without policies answers (the probes can see a pod).
- A deny applied under constant traffic: no connection started after every node's
  ``svcnet.io/netpol-programmed-revision`` reached the policy's resourceVersion gets through.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from cluster_fixture import Cluster, running_cluster
from netpol_probing import (
    Watch,
    create_policy,
    deny_ingress,
    free_addresses,
    namespace,
    server,
    wait_programmed,
    wait_ready,
)

PROBERS = {"p1": "node-1", "p2": "node-2"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("svcnet-failclosed"), nodes=2) as c:
        c.apply(namespace("probe"))
        for name, node in PROBERS.items():
            c.apply(server("probe", name, node))
        for name in PROBERS:
            wait_ready(c, "probe", name)
        yield c


@pytest.mark.parametrize(("ns", "denied"), [("fc-deny", True), ("fc-open", False)])
def test_new_pod_in_default_deny_namespace_never_answers(
    cluster: Cluster, ns: str, denied: bool
) -> None:
    c = cluster
    c.apply(namespace(ns))
    watches: list[Watch] = []
    try:
        if denied:
            wait_programmed(c, create_policy(c, deny_ingress(ns)))
        watches += [Watch(c, p, 25, free_addresses(c, "node-1")) for p in PROBERS]
        c.apply(server(ns, "new", "node-1"))
        ip = wait_ready(c, ns, "new")
        answered = {p: w.result()[ip] for p, w in zip(PROBERS, watches, strict=True)}
        if denied:
            assert answered == {p: [] for p in PROBERS}
        else:
            assert all(answered.values()), answered
    finally:
        for w in watches:
            w.stop()
        c.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_deny_under_traffic_lets_nothing_through_once_programmed(cluster: Cluster) -> None:
    c = cluster
    ns = "fc-traffic"
    c.apply(namespace(ns))
    watches: list[Watch] = []
    try:
        c.apply(server(ns, "srv", "node-1"))
        ip = wait_ready(c, ns, "srv")
        watches += [Watch(c, p, 12, [ip]) for p in PROBERS]
        time.sleep(3)
        revision = create_policy(c, deny_ingress(ns))
        wait_programmed(c, revision)
        programmed = time.time()
        for p, w in zip(PROBERS, watches, strict=True):
            starts = w.result()[ip]
            assert any(t < programmed for t in starts), f"{p}: no traffic before the deny"
            late = [t - programmed for t in starts if t > programmed]
            assert not late, f"{p}: connections through after programmed: {late}"
    finally:
        for w in watches:
            w.stop()
        c.kubectl("delete", "namespace", ns, "--wait=false", check=False)
