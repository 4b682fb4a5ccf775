"""DaemonSets and Jobs on a real 2-node cluster: real pods, the real scheduler and kubectl.

One ``svcnet up --nodes 2`` for the module (cluster_fixture: its own ranges, API port and
kubeconfig; ``svcnet down`` and a leak check at the end). A DaemonSet puts a pod on every node
(placed by the scheduler through the node affinity the controller pins), keeps it through
``svcnet node stop`` (its tolerations outlast the node lifecycle controller's eviction of a plain pod beside it) and has
it Ready again after ``svcnet node start``; a Job runs its pods to completion; a Job whose
pods fail stops at its backoffLimit. Each test deletes what it created, also on failure.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_fixture import Cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster

pytestmark = pytest.mark.e2e

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


@pytest.fixture
def cluster(svcnet_cluster: Cluster) -> Cluster:
    return svcnet_cluster


@pytest.fixture
def cleanup(cluster: Cluster) -> Iterator[list[str]]:
    objects: list[str] = []
    yield objects
    if objects:
        cluster.kubectl("delete", "--ignore-not-found", "--wait=false", *objects, check=False)


def ready(obj: dict[str, Any]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def node_ready_status(node: dict[str, Any]) -> str:
    conds = (node.get("status") or {}).get("conditions") or []
    return next((str(c["status"]) for c in conds if c["type"] == "Ready"), "")


def live(pods: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


def pod_processes(uid: str) -> list[int]:
    out: list[int] = []
    for name in os.listdir("/run/netns"):
        if uid in name:
            res = subprocess.run(
                ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
            )
            out += [int(p) for p in res.stdout.split()]
    return out


DAEMONSET = f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: node-agent}}
spec:
  selector: {{matchLabels: {{app: node-agent}}}}
  template:
    metadata: {{labels: {{app: node-agent}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: {AGNHOST}
        args: [netexec, --http-port=8080]
        readinessProbe:
          httpGet: {{path: /healthz, port: 8080}}
          periodSeconds: 1
"""


def ds_status(cluster: Cluster) -> dict[str, Any]:
    return dict(cluster.get("ds", "node-agent").get("status") or {})


def test_daemonset_pod_on_every_node_through_node_stop_and_start(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup += ["daemonset/node-agent", "pod/witness"]
    c.apply(DAEMONSET)
    # A plain pod on node-2: the node lifecycle controller evicts it once node-2 is unreachable
    # past its default toleration; the daemon pod beside it must stay.
    c.apply(
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: witness}}
spec:
  nodeName: node-2
  terminationGracePeriodSeconds: 1
  containers: [{{name: c, image: {AGNHOST}, args: [netexec]}}]
"""
    )
    c.wait_for("pod/witness", ready, 60)

    def one_ready_per_node(pods: dict[str, Any]) -> bool:
        items = live(pods)
        return sorted(p["spec"].get("nodeName", "") for p in items) == [
            "node-1",
            "node-2",
        ] and all(ready(p) for p in items)

    pods = live(c.wait_for("pods", one_ready_per_node, 60, "-l", "app=node-agent"))
    c.wait_for(
        "ds/node-agent",
        lambda d: d["status"].get("numberReady") == 2 and d["status"].get("numberAvailable") == 2,
    )
    row = c.kubectl("get", "ds", "node-agent", "--no-headers").stdout.split()
    assert row[:7] == ["node-agent", "2", "2", "2", "2", "2", "<none>"]
    on_node2 = next(p for p in pods if p["spec"]["nodeName"] == "node-2")
    uid2 = on_node2["metadata"]["uid"]
    assert pod_processes(uid2)

    c.svcnet("node", "stop", "node-2", *c.cluster_args())
    try:
        c.wait_for("node/node-2", lambda n: node_ready_status(n) == "Unknown", 30)
        # The node leaves the desired set (unreachable:NoSchedule), its pod stays: the
        # DaemonSet tolerates unreachable:NoExecute, so the eviction never comes.
        st = c.wait_for(
            "ds/node-agent",
            lambda d: (
                d["status"].get("desiredNumberScheduled") == 1
                and d["status"].get("numberMisscheduled") == 1
            ),
            60,
        )["status"]
        assert st["numberReady"] == 1

        def witness_evicted(ps: dict[str, Any]) -> bool:
            return "witness" not in {p["metadata"]["name"] for p in live(ps)}

        c.wait_for("pods", witness_evicted, 90)
        pods_now = live(c.get("pods", "-l", "app=node-agent"))
        assert uid2 in {p["metadata"]["uid"] for p in pods_now}
        assert len(pods_now) == 2
    finally:
        c.svcnet("node", "start", "node-2", *c.cluster_args())
    c.wait_for("node/node-2", lambda n: node_ready_status(n) == "True", 60)
    st = c.wait_for(
        "ds/node-agent",
        lambda d: (
            d["status"].get("desiredNumberScheduled") == 2 and d["status"].get("numberReady") == 2
        ),
        60,
    )["status"]
    assert st["currentNumberScheduled"] == 2
    assert st["numberMisscheduled"] == 0
    # The same pod, running again on the node that came back.
    back = next(
        p for p in live(c.get("pods", "-l", "app=node-agent")) if p["spec"]["nodeName"] == "node-2"
    )
    assert back["metadata"]["uid"] == uid2
    assert pod_processes(uid2)


def test_job_runs_to_completion(cluster: Cluster, cleanup: list[str]) -> None:
    c = cluster
    cleanup.append("job/count")
    c.apply(
        """
apiVersion: batch/v1
kind: Job
metadata: {name: count}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: [sh, -c, "echo done-$HOSTNAME"]
"""
    )
    job = c.wait_for(
        "job/count",
        lambda j: any(
            x["type"] == "Complete" and x["status"] == "True"
            for x in j["status"].get("conditions", [])
        ),
        90,
    )
    assert job["status"]["succeeded"] == 3
    assert "failed" not in job["status"]
    pods = c.get("pods", "-l", "job-name=count")["items"]
    assert len(pods) == 3
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    # Each pod really ran its command.
    for p in pods:
        log = c.kubectl("logs", p["metadata"]["name"]).stdout.strip()
        assert log == f"done-{p['metadata']['name']}"
    row = c.kubectl("get", "job", "count", "--no-headers").stdout.split()
    assert row[:3] == ["count", "Complete", "3/3"]


def test_job_exhausts_its_backoff_limit(cluster: Cluster, cleanup: list[str]) -> None:
    c = cluster
    cleanup.append("job/doomed")
    c.apply(
        """
apiVersion: batch/v1
kind: Job
metadata: {name: doomed}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: [sh, -c, "exit 3"]
"""
    )
    # Two pods fail (the second after the 10 s back-off); then the Job fails.
    job = c.wait_for(
        "job/doomed",
        lambda j: any(
            x["type"] == "Failed" and x["status"] == "True"
            for x in j["status"].get("conditions", [])
        ),
        90,
    )
    failed = next(x for x in job["status"]["conditions"] if x["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert job["status"]["failed"] == 2
    pods = c.get("pods", "-l", "job-name=doomed")["items"]
    assert len(pods) == 2
    for p in pods:
        term = p["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 3
    row = c.kubectl("get", "job", "doomed", "--no-headers").stdout.split()
    assert row[:3] == ["doomed", "Failed", "0/1"]
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=doomed").stdout
    assert "BackoffLimitExceeded" in events
