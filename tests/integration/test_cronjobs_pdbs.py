"""CronJobs, ReplicationControllers, PodDisruptionBudgets (with the Eviction subresource) and
HorizontalPodAutoscalers against the real API server (in-process), their controllers and the
real kubectl.

The CronJob controller runs on a fake clock started at the real time: a test moves it past a
schedule time instead of waiting a minute. No node agent runs: tests write pod status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from apiserver_harness import Kubectl, RunningServer
from test_daemonsets_jobs import add_node, live_pods, set_pod_status, table_rows, until

from svcnet.api.errors import AlreadyExists
from svcnet.api.registry import (
    CRONJOBS,
    HORIZONTALPODAUTOSCALERS,
    JOBS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICATIONCONTROLLERS,
)
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.workloads import run_workload_controllers
from svcnet.util.clock import FakeClock, RealClock

NS = "default"


@dataclass
class Cluster:
    api: ApiClient
    kubectl: Kubectl
    clock: FakeClock


@pytest.fixture
async def cluster(fresh_apiserver: RunningServer) -> AsyncIterator[Cluster]:
    clock = FakeClock(RealClock().time())
    async with ApiClient(load_kubeconfig(fresh_apiserver.kubeconfig)) as api:
        factory = SharedInformerFactory(api)
        controllers = run_workload_controllers(api, factory, clock=clock)
        try:
            assert await factory.wait_for_cache_sync(20)
            yield Cluster(api, Kubectl(fresh_apiserver.kubeconfig, NS), clock)
        finally:
            for t in controllers.tasks:
                t.cancel()
            await asyncio.gather(*controllers.tasks, return_exceptions=True)


# -- CronJob ---------------------------------------------------------------------------------


async def test_kubectl_create_cronjob_get_and_describe(cluster: Cluster) -> None:
    kubectl = cluster.kubectl
    out = kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *")
    assert out.strip() == "cronjob.batch/tick created"
    rows = table_rows(kubectl, "cronjobs")
    assert rows[0] == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SCHEDULE",
        "AGE",
    ]
    assert rows[1][:8] == ["tick", "*/5", "*", "*", "*", "*", "<none>", "False"]
    cj = json.loads(kubectl("get", "cj", "tick", "-o", "json"))
    assert cj["spec"]["concurrencyPolicy"] == "Allow"
    assert cj["spec"]["successfulJobsHistoryLimit"] == 3
    assert cj["spec"]["failedJobsHistoryLimit"] == 1
    described = kubectl("describe", "cronjob", "tick")
    assert "Schedule:                      */5 * * * *" in described
    assert "Concurrency Policy:            Allow" in described


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            "61 * * * *",
            'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61',
        ),
        (
            "TZ=UTC * * * * *",
            'spec.schedule: Invalid value: "TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, '
            "use timeZone field instead",
        ),
    ],
)
async def test_an_invalid_schedule_is_refused_with_upstreams_message(
    cluster: Cluster, schedule: str, message: str
) -> None:
    r = cluster.kubectl.run(
        "create", "cronjob", "bad", "--image=busybox", f"--schedule={schedule}", check=False
    )
    assert r.returncode != 0
    assert f'CronJob.batch "bad" is invalid: {message}' in r.stderr


async def test_a_cronjob_runs_a_job_when_its_clock_passes_the_schedule(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=* * * * *")
    cj = await api.get(CRONJOBS, "tick", NS)
    await asyncio.sleep(0.3)
    assert (await api.list(JOBS, NS))["items"] == []
    # Two minutes: a minute boundary is passed whatever second the CronJob was created in.
    cluster.clock.advance(120)

    async def one_job() -> list[dict[str, Any]]:
        return (await api.list(JOBS, NS))["items"]

    jobs = await until(one_job, lambda js: len(js) == 1)
    job = jobs[0]
    minute = int(cluster.clock.time()) // 60
    assert job["metadata"]["name"] == f"tick-{minute}"
    assert job["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
    cj = await until(
        lambda: api.get(CRONJOBS, "tick", NS), lambda c: bool(c.get("status", {}).get("active"))
    )
    assert cj["status"]["active"][0]["name"] == job["metadata"]["name"]
    assert cj["status"]["lastScheduleTime"].endswith(":00Z")
    assert table_rows(kubectl, "cronjobs")[1][8] == "1"  # ACTIVE


async def test_kubectl_create_job_from_a_cronjob(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=0 0 1 1 *")
    assert kubectl("create", "job", "now", "--from=cronjob/tick").strip() == "job.batch/now created"
    job = await api.get(JOBS, "now", NS)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    pods = await until(lambda: live_pods(api, "job-name=now"), lambda ps: len(ps) == 1)
    assert pods[0]["spec"]["containers"][0]["image"] == "busybox"


# -- ReplicationController -------------------------------------------------------------------

RC = """
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: legacy}}
    spec:
      containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
"""


async def test_replication_controller_runs_and_scales(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    kubectl("apply", "-f", "-", input=RC)
    rc = await api.get(REPLICATIONCONTROLLERS, "legacy", NS)
    assert rc["spec"]["selector"] == {"app": "legacy"}  # defaulted from the template
    await until(lambda: live_pods(api, "app=legacy"), lambda ps: len(ps) == 2)
    assert kubectl("scale", "rc", "legacy", "--replicas=3").strip() == (
        "replicationcontroller/legacy scaled"
    )
    pods = await until(lambda: live_pods(api, "app=legacy"), lambda ps: len(ps) == 3)
    assert {p["metadata"]["ownerReferences"][0]["kind"] for p in pods} == {"ReplicationController"}
    await until(
        lambda: api.get(REPLICATIONCONTROLLERS, "legacy", NS),
        lambda r: r.get("status", {}).get("replicas") == 3,
    )
    assert table_rows(kubectl, "rc")[1][:4] == ["legacy", "3", "3", "0"]
    described = kubectl("describe", "rc", "legacy")
    assert "Replicas:     3 current / 3 desired" in described
    assert "Selector:     app=legacy" in described


# -- PodDisruptionBudget and eviction ---------------------------------------------------------


async def ready_deployment(cluster: Cluster, name: str, replicas: int) -> list[dict[str, Any]]:
    with contextlib.suppress(AlreadyExists):
        await add_node(cluster.api, "node-1")
    cluster.kubectl("create", "deployment", name, "--image=busybox", f"--replicas={replicas}")
    pods = await until(
        lambda: live_pods(cluster.api, f"app={name}"), lambda ps: len(ps) == replicas
    )
    for p in pods:
        # Bound to a node, so that a delete is graceful (the pod stays, marked, for a while).
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": p["metadata"]["name"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
        }
        path = f"/api/v1/namespaces/{NS}/pods/{p['metadata']['name']}/binding"
        await cluster.api.request_bytes("POST", path, body=binding)
        await set_pod_status(cluster.api, p, "Running", True)
    return pods


def evict(kubectl: Kubectl, pod: str, dry_run: bool = False) -> Any:
    eviction: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": NS},
    }
    if dry_run:
        eviction["deleteOptions"] = {"dryRun": ["All"]}
    body = json.dumps(eviction)
    return kubectl.run(
        "create", "--raw", f"/api/v1/namespaces/{NS}/pods/{pod}/eviction", "-f", "-",
        input=body, check=False,
    )  # fmt: skip


async def test_pdb_status_and_an_eviction_it_refuses_then_allows(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    pods = await ready_deployment(cluster, "web", 2)
    assert kubectl("create", "pdb", "web", "--selector=app=web", "--min-available=2").strip() == (
        "poddisruptionbudget.policy/web created"
    )
    pdb = await until(
        lambda: api.get(PODDISRUPTIONBUDGETS, "web", NS),
        lambda p: p.get("status", {}).get("currentHealthy") == 2,
    )
    status = pdb["status"]
    assert (status["desiredHealthy"], status["expectedPods"], status["disruptionsAllowed"]) == (
        2,
        2,
        0,
    )
    condition = status["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "DisruptionAllowed",
        "False",
        "InsufficientPods",
    )
    assert table_rows(kubectl, "pdb")[1][:4] == ["web", "2", "N/A", "0"]
    described = kubectl("describe", "pdb", "web")
    assert "Min available:  2" in described
    assert "Allowed disruptions:  0" in described

    victim = pods[0]["metadata"]["name"]
    refused = evict(kubectl, victim)
    assert refused.returncode != 0
    assert (
        "Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's "
        "disruption budget." in refused.stderr
    )
    assert (await api.get(PODS, victim, NS))["metadata"].get("deletionTimestamp") is None

    kubectl("patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
    await until(
        lambda: api.get(PODDISRUPTIONBUDGETS, "web", NS),
        lambda p: (
            p["status"].get("disruptionsAllowed") == 1
            and p["status"].get("observedGeneration") == p["metadata"]["generation"]
        ),
    )
    # A dry run answers as the eviction would and changes nothing.
    assert evict(kubectl, victim, dry_run=True).returncode == 0
    assert (await api.get(PODS, victim, NS))["metadata"].get("deletionTimestamp") is None
    assert (await api.get(PODDISRUPTIONBUDGETS, "web", NS))["status"]["disruptionsAllowed"] == 1
    allowed = evict(kubectl, victim)
    assert allowed.returncode == 0, allowed.stderr
    gone = await api.get(PODS, victim, NS)
    conditions = {c["type"]: c for c in gone["status"]["conditions"]}
    assert conditions["DisruptionTarget"]["reason"] == "EvictionByEvictionAPI"
    assert gone["metadata"].get("deletionTimestamp")
    # The evicted pod, being deleted, no longer counts: the last disruption is taken.
    await until(
        lambda: api.get(PODDISRUPTIONBUDGETS, "web", NS),
        lambda p: (
            p["status"].get("currentHealthy") == 1 and p["status"].get("disruptionsAllowed") == 0
        ),
    )
    again = evict(kubectl, pods[1]["metadata"]["name"])
    assert "Cannot evict pod as it would violate" in again.stderr


async def test_pdb_percentage_counts_the_deployments_scale(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    await ready_deployment(cluster, "api", 3)
    kubectl("create", "pdb", "api", "--selector=app=api", "--max-unavailable=50%")
    pdb = await until(
        lambda: api.get(PODDISRUPTIONBUDGETS, "api", NS),
        lambda p: (
            p.get("status", {}).get("expectedPods") == 3 and p["status"].get("currentHealthy") == 3
        ),
    )
    # 50 % of 3 rounds up to 2 unavailable: 1 must stay healthy, 2 may go.
    assert pdb["status"]["desiredHealthy"] == 1
    assert pdb["status"]["disruptionsAllowed"] == 2


async def test_pdb_validation_is_upstreams(cluster: Cluster) -> None:
    r = cluster.kubectl.run(
        "create", "pdb", "bad", "--selector=app=x", "--min-available=120%", check=False
    )
    assert r.returncode != 0
    assert (
        'PodDisruptionBudget.policy "bad" is invalid: spec.minAvailable: Invalid value: "120%": '
        "must not be greater than 100%" in r.stderr
    )


# -- HorizontalPodAutoscaler ------------------------------------------------------------------


async def test_kubectl_autoscale_and_the_status_without_metrics(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    kubectl("create", "deployment", "web", "--image=busybox", "--replicas=2")
    out = kubectl(
        "autoscale", "deployment", "web", "--min", "2", "--max", "5", "--cpu-percent", "80"
    )
    assert out.strip() == "horizontalpodautoscaler.autoscaling/web autoscaled"
    hpa = await until(
        lambda: api.get(HORIZONTALPODAUTOSCALERS, "web", NS),
        lambda h: len(h.get("status", {}).get("conditions") or []) == 2,
    )
    assert hpa["spec"]["minReplicas"] == 2
    conditions = {c["type"]: c for c in hpa["status"]["conditions"]}
    assert conditions["AbleToScale"]["status"] == "True"
    assert conditions["ScalingActive"]["status"] == "False"
    assert conditions["ScalingActive"]["reason"] == "FailedGetResourceMetric"
    assert hpa["status"]["currentReplicas"] == 2
    rows = table_rows(kubectl, "hpa")
    assert rows[0] == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert rows[1][:7] == ["web", "Deployment/web", "cpu:", "<unknown>/80%", "2", "5", "2"]
    described = kubectl("describe", "hpa", "web")
    rows_after = [line.split() for line in described.split("Conditions:")[1].splitlines()]
    assert ["AbleToScale", "True", "SucceededGetScale"] in [r[:3] for r in rows_after]
    assert ["ScalingActive", "False", "FailedGetResourceMetric"] in [r[:3] for r in rows_after]


async def test_hpa_validation_is_upstreams(cluster: Cluster) -> None:
    manifest = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: bad}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 3
  maxReplicas: 2
"""
    r = cluster.kubectl.run("apply", "-f", "-", input=manifest, check=False)
    assert r.returncode != 0
    assert (
        'The HorizontalPodAutoscaler "bad" is invalid: spec.maxReplicas: Invalid value: 2: '
        "must be greater than or equal to `minReplicas`" in r.stderr
    )
