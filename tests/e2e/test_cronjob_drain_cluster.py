"""CronJobs and PodDisruptionBudgets on a real 2-node cluster, with the real kubectl.

One ``svcnet up --nodes 2`` for the module (cluster_fixture). A CronJob's Job runs to
completion (``kubectl create job --from=cronjob/...``: the schedule itself is unit-tested on a
driven clock, not waited for here). ``kubectl drain`` cordons a node and is refused while the
budget would be violated (kubectl's own retry loop, cut by ``--timeout``); after a scale-up puts
a Ready pod on the other node, the same drain succeeds. Each test deletes what it created, and
uncordons the node, also on failure.
"""

from __future__ import annotations

from typing import Any

import pytest
from cluster_fixture import Cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster
from test_daemonsets_jobs_cluster import AGNHOST, live, ready
from test_daemonsets_jobs_cluster import cleanup as cleanup
from test_daemonsets_jobs_cluster import cluster as cluster

pytestmark = pytest.mark.e2e


def test_a_cronjobs_job_runs_to_completion(cluster: Cluster, cleanup: list[str]) -> None:
    c = cluster
    cleanup += ["cronjob/tick", "job/tick-now"]
    c.kubectl(
        "create", "cronjob", "tick", "--image=busybox", "--schedule=0 0 1 1 *", "--",
        "sh", "-c", "echo tick-ran",
    )  # fmt: skip
    row = c.kubectl("get", "cronjob", "tick", "--no-headers").stdout.split()
    assert row[:9] == ["tick", "0", "0", "1", "1", "*", "<none>", "False", "0"]
    c.kubectl("create", "job", "tick-now", "--from=cronjob/tick")
    c.wait_for(
        "job/tick-now",
        lambda j: any(
            x["type"] == "Complete" and x["status"] == "True"
            for x in j["status"].get("conditions", [])
        ),
        90,
    )
    assert c.kubectl("logs", "job/tick-now").stdout.strip() == "tick-ran"
    # The manual Job is the CronJob's (its owner), but not one the controller scheduled.
    job = c.get("job", "tick-now")
    assert job["metadata"]["ownerReferences"][0]["name"] == "tick"
    # The CronJob controller saw a Job of its own it did not schedule (upstream's warning).
    c.wait_for(
        "events",
        lambda evs: any(
            e["reason"] == "UnexpectedJob"
            and e["message"] == "Saw a job that the controller did not create or forgot: tick-now"
            for e in evs["items"]
        ),
        30,
        "--field-selector",
        "involvedObject.name=tick",
    )


WEB = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
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


def test_drain_is_refused_while_the_budget_would_be_violated(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup += ["deployment/web", "pdb/web"]
    c.apply(WEB)

    def ready_count(n: int) -> Any:
        return lambda ps: len([p for p in live(ps) if ready(p)]) == n

    pods = live(c.wait_for("pods", ready_count(2), 90, "-l", "app=web"))
    node = pods[0]["spec"]["nodeName"]
    c.kubectl("create", "pdb", "web", "--selector=app=web", "--min-available=2")
    c.wait_for("pdb/web", lambda p: p.get("status", {}).get("currentHealthy") == 2, 30)
    row = c.kubectl("get", "pdb", "web", "--no-headers").stdout.split()
    assert row[:4] == ["web", "2", "N/A", "0"]
    try:
        refused = c.kubectl(
            "drain", node, "--ignore-daemonsets", "--timeout=10s", check=False, timeout=60
        )
        assert refused.returncode != 0
        assert "Cannot evict pod as it would violate the pod's disruption budget." in (
            refused.stderr + refused.stdout
        )
        assert c.get("node", node)["spec"].get("unschedulable") is True  # cordoned first
        assert len([p for p in live(c.get("pods", "-l", "app=web")) if ready(p)]) == 2

        # One more replica: the scheduler keeps it off the cordoned node; once it is Ready the
        # budget allows a disruption, and kubectl's retries get every pod off the node.
        c.kubectl("scale", "deployment", "web", "--replicas=3")
        c.wait_for("pdb/web", lambda p: p["status"].get("disruptionsAllowed") == 1, 90)
        drained = c.kubectl(
            "drain", node, "--ignore-daemonsets", "--timeout=120s", check=False, timeout=180
        )
        assert drained.returncode == 0, drained.stderr
        assert f"node/{node} drained" in drained.stdout
        left = [
            p for p in live(c.get("pods", "-l", "app=web")) if p["spec"].get("nodeName") == node
        ]
        assert left == []
    finally:
        c.kubectl("uncordon", node, check=False)
    assert not c.get("node", node)["spec"].get("unschedulable")
