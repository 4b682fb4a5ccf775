"""NetworkPolicy across an agent restart, by real connections: never an open moment.

Two nodes. A server pod on node-1 in namespace ``rs``, whose policy allows ingress only from
the prober pod ``ok`` of namespace ``probe``; the probers ``ok`` and ``bad`` run on node-2 (so
that the restart does not stop them) and probe, with ``svcnet.testing.reachability --watch``,
the server's address and every free address of node-1's pod block. Meanwhile node-1's agent
is stopped (SIGKILL: a crash, nothing cleaned; SIGTERM: a clean stop that stops its pods) and
its supervisor starts it again, which removes the old sandboxes and starts the pods again.

Through all of it ``bad`` never gets an answer, at the server's old address nor at its new
one: the table the old agent programmed stays in the kernel until the new agent's first
sync replaces it in one transaction. ``ok`` gets answers from the server before the restart
and from its new address after it (the probes do reach the server through that node).
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_fixture import Cluster, running_cluster
from netpol_probing import (
    Watch,
    create_policy,
    free_addresses,
    namespace,
    ready,
    server,
    wait_programmed,
    wait_ready,
)

PROBERS = ("ok", "bad")
WATCH_SECONDS = 60


def allow_only_ok(ns: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: only-ok, namespace: {ns}}}
        spec:
          podSelector: {{}}
          policyTypes: [Ingress]
          ingress:
          - from:
            - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: probe}}}}
              podSelector: {{matchLabels: {{app: ok}}}}
        """)


def agent_status(c: Cluster, node: str) -> dict[str, Any]:
    status: dict[str, Any] = json.loads((c.data_dir / "state" / "status.json").read_text())
    return dict(status[f"agent-{node}"])


def wait_restarted(c: Cluster, node: str, pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = agent_status(c, node)
        if st.get("pid") not in (None, pid) and st.get("state") == "Running":
            return
        time.sleep(0.2)
    raise AssertionError(f"agent of {node} not restarted in {timeout}s: {agent_status(c, node)}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("svcnet-np-restart"), nodes=2) as c:
        c.apply(namespace("probe"))
        for name in PROBERS:
            c.apply(server("probe", name, "node-2"))
        for name in PROBERS:
            wait_ready(c, "probe", name)
        yield c


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["crash", "stop"])
def test_agent_restart_never_opens_a_denied_pod(cluster: Cluster, sig: signal.Signals) -> None:
    c = cluster
    ns = f"rs-{sig.name.lower()}"
    c.apply(namespace(ns))
    watches: dict[str, Watch] = {}
    try:
        c.apply(server(ns, "srv", "node-1"))
        old_ip = wait_ready(c, ns, "srv")
        wait_programmed(c, create_policy(c, allow_only_ok(ns)))
        targets = [old_ip, *free_addresses(c, "node-1")]
        watches = {p: Watch(c, p, WATCH_SECONDS, targets) for p in PROBERS}
        time.sleep(3)
        pid = int(agent_status(c, "node-1")["pid"])
        killed = time.time()
        os.kill(pid, sig)
        wait_restarted(c, "node-1", pid)
        # The new agent starts the server again, in a new sandbox: a new address.
        restarted = c.wait_for(
            "pod/srv",
            lambda p: p["status"].get("podIP") not in (None, old_ip) and ready(p),
            120,
            "-n",
            ns,
        )
        new_ip = restarted["status"]["podIP"]
        assert new_ip in targets, (new_ip, targets)
        answered = {p: w.result() for p, w in watches.items()}
        ok_old = [t for t in answered["ok"][old_ip] if t < killed]
        ok_new = answered["ok"][new_ip]
        assert ok_old and ok_new, "the allowed prober must see the server before and after"
        assert answered["bad"][old_ip] == [], (
            "the denied prober got through while the agent restarted"
        )
        assert answered["bad"][new_ip] == [], "the denied prober reached the restarted server"
    finally:
        for w in watches.values():
            w.stop()
        c.kubectl("delete", "namespace", ns, "--wait=false", check=False)
