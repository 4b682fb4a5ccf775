"""DaemonSets and Jobs against the real API server (in-process), their controllers and the real
kubectl: ``kubectl create job``, ``apply``, ``get`` columns, upstream's validation errors.

No node agent runs here: the tests play it, writing pod status (Running and Ready, Succeeded,
Failed) through the API. Nodes are plain Node objects on a server of the test's own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from apiserver_harness import Kubectl, RunningServer

from svcnet.api.registry import DAEMONSETS, JOBS, NODES, PODS
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.workloads import run_workload_controllers
from svcnet.testing.polling import eventually

T = TypeVar("T")

NS = "default"


@dataclass
class Cluster:
    api: ApiClient
    kubectl: Kubectl


@pytest.fixture
async def cluster(fresh_apiserver: RunningServer) -> AsyncIterator[Cluster]:
    async with ApiClient(load_kubeconfig(fresh_apiserver.kubeconfig)) as api:
        factory = SharedInformerFactory(api)
        controllers = run_workload_controllers(api, factory)
        try:
            assert await factory.wait_for_cache_sync(20)
            yield Cluster(api, Kubectl(fresh_apiserver.kubeconfig, NS))
        finally:
            for t in controllers.tasks:
                t.cancel()
            await asyncio.gather(*controllers.tasks, return_exceptions=True)


async def until(
    fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 10
) -> T:
    """The first value of ``fetch`` that is ``ok``."""

    async def check() -> tuple[T] | None:
        value = await fetch()
        return (value,) if ok(value) else None

    return (await eventually(check, timeout))[0]


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def add_node(api: ApiClient, name: str, labels: dict[str, str] | None = None) -> None:
    await api.create(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/hostname": name, **(labels or {})},
            },
        }
    )


async def live_pods(api: ApiClient, selector: str) -> list[dict[str, Any]]:
    items = (await api.list(PODS, NS, label_selector=selector))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def set_pod_status(api: ApiClient, pod: dict[str, Any], phase: str, ready: bool) -> None:
    """What the node agent writes."""
    fresh = await api.get(PODS, pod["metadata"]["name"], NS)
    fresh.setdefault("apiVersion", "v1")
    fresh.setdefault("kind", "Pod")
    t = now_text()
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": t}
        ],
    }
    if phase in ("Succeeded", "Failed"):
        code = 0 if phase == "Succeeded" else 1
        status["containerStatuses"] = [
            {
                "name": "c",
                "image": "busybox",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "finishedAt": t, "startedAt": t}},
            }
        ]
    fresh["status"] = status
    await api.update_status(fresh)


def table_rows(kubectl: Kubectl, *args: str) -> list[list[str]]:
    lines = kubectl("get", *args).splitlines()
    return [line.split() for line in lines]


# -- DaemonSet -------------------------------------------------------------------------------

DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {role: edge}
      containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
"""


async def test_daemonset_pod_on_each_selected_node_and_get_columns(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    await add_node(api, "edge-1", {"role": "edge"})
    await add_node(api, "edge-2", {"role": "edge"})
    await add_node(api, "core-1")
    kubectl("apply", "-f", "-", input=DAEMONSET)

    async def pods_per_node() -> dict[str, str]:
        out = {}
        for p in await live_pods(api, "app=agent"):
            terms = p["spec"]["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"
            ]["nodeSelectorTerms"]
            out[terms[0]["matchFields"][0]["values"][0]] = p["metadata"]["name"]
        return out

    nodes = await until(pods_per_node, lambda m: len(m) == 2)
    assert sorted(nodes) == ["edge-1", "edge-2"]
    pod = (await live_pods(api, "app=agent"))[0]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert pod["metadata"]["labels"]["controller-revision-hash"]
    assert {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
    } in pod["spec"]["tolerations"]

    for p in await live_pods(api, "app=agent"):
        await set_pod_status(api, p, "Running", True)
    ds = await until(
        lambda: api.get(DAEMONSETS, "agent", NS), lambda d: d["status"].get("numberReady") == 2
    )
    assert ds["status"] | {} == {
        "currentNumberScheduled": 2,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 2,
        "numberReady": 2,
        "observedGeneration": 1,
        "updatedNumberScheduled": 2,
        "numberAvailable": 2,
    }
    rows = table_rows(kubectl, "ds")
    assert rows == [
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE",
        ],
        ["agent", "2", "2", "2", "2", "2", "role=edge", rows[1][-1]],
    ]
    wide = table_rows(kubectl, "daemonsets.apps", "-o", "wide")
    assert wide[1][-3:] == ["c", "busybox", "app=agent"]

    # A node becomes eligible: it gets a pod; one stops being eligible: its pod goes.
    kubectl("label", "node", "core-1", "role=edge")
    kubectl("label", "node", "edge-1", "role-")
    nodes = await until(pods_per_node, lambda m: sorted(m) == ["core-1", "edge-2"], timeout=20)
    assert "edge-1" not in nodes


async def test_daemonset_node_removed_takes_its_unscheduled_pod(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    await add_node(api, "edge-1", {"role": "edge"})
    await add_node(api, "edge-2", {"role": "edge"})
    kubectl("apply", "-f", "-", input=DAEMONSET)
    await until(lambda: live_pods(api, "app=agent"), lambda ps: len(ps) == 2)
    await api.delete(NODES, "edge-2")
    ds = await until(
        lambda: api.get(DAEMONSETS, "agent", NS),
        lambda d: (
            d["status"].get("desiredNumberScheduled") == 1
            and d["status"].get("currentNumberScheduled") == 1
        ),
    )
    assert ds["status"]["numberMisscheduled"] == 0
    await until(lambda: live_pods(api, "app=agent"), lambda ps: len(ps) == 1)


async def test_daemonset_rolling_update_replaces_one_pod_at_a_time(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    for i in (1, 2, 3):
        await add_node(api, f"edge-{i}", {"role": "edge"})
    kubectl("apply", "-f", "-", input=DAEMONSET)
    pods = await until(lambda: live_pods(api, "app=agent"), lambda ps: len(ps) == 3)
    for p in pods:
        await set_pod_status(api, p, "Running", True)
    await until(
        lambda: api.get(DAEMONSETS, "agent", NS), lambda d: d["status"].get("numberAvailable") == 3
    )
    old_names = {p["metadata"]["name"] for p in pods}
    kubectl("set", "image", "ds/agent", "c=busybox:1.36")

    def olds(ps: list[dict[str, Any]]) -> int:
        return sum(1 for p in ps if p["metadata"]["name"] in old_names)

    # maxUnavailable 1 (the default): one old pod is replaced, and no other while its
    # replacement is not ready.
    after = await until(
        lambda: live_pods(api, "app=agent"), lambda ps: len(ps) == 3 and olds(ps) == 2
    )
    await asyncio.sleep(1)
    assert olds(await live_pods(api, "app=agent")) == 2
    (new,) = [p for p in after if p["metadata"]["name"] not in old_names]
    assert new["spec"]["containers"][0]["image"] == "busybox:1.36"
    await set_pod_status(api, new, "Running", True)
    after = await until(
        lambda: live_pods(api, "app=agent"), lambda ps: len(ps) == 3 and olds(ps) == 1
    )
    ds = await api.get(DAEMONSETS, "agent", NS)
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }


async def test_daemonset_validation_errors_are_upstreams(cluster: Cluster) -> None:
    bad = DAEMONSET.replace(
        "  selector:", "  updateStrategy: {rollingUpdate: {maxUnavailable: 0}}\n  selector:"
    ).replace("containers:", "restartPolicy: Never\n      containers:")
    res = cluster.kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        'The DaemonSet "agent" is invalid: \n'
        '* spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"\n'
        "* spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when "
        "maxSurge is 0"
    )


# -- Job -------------------------------------------------------------------------------------


async def test_kubectl_create_job_runs_to_complete(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    assert kubectl("create", "job", "pi", "--image=busybox", "--", "echo", "hi").strip() == (
        "job.batch/pi created"
    )
    job = json.loads(kubectl("get", "job", "pi", "-o", "json"))
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": uid,
        "job-name": "pi",
    }
    for field, value in (
        ("backoffLimit", 6),
        ("completions", 1),
        ("parallelism", 1),
        ("completionMode", "NonIndexed"),
        ("suspend", False),
        ("podReplacementPolicy", "TerminatingOrFailed"),
    ):
        assert job["spec"][field] == value, field

    (pod,) = await until(lambda: live_pods(api, "job-name=pi"), lambda ps: len(ps) == 1)
    assert pod["metadata"]["generateName"] == "pi-"
    assert pod["spec"]["restartPolicy"] == "Never"
    rows = table_rows(kubectl, "jobs")
    assert rows[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert rows[1][:3] == ["pi", "Running", "0/1"]

    await set_pod_status(api, pod, "Succeeded", False)
    job = await until(
        lambda: api.get(JOBS, "pi", NS),
        lambda j: any(c["type"] == "Complete" for c in j["status"].get("conditions", [])),
    )
    assert [c["type"] for c in job["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert job["status"]["succeeded"] == 1
    assert job["status"]["completionTime"]
    rows = table_rows(kubectl, "jobs")
    assert rows[1][:3] == ["pi", "Complete", "1/1"]
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=pi")
    assert "Created pod: " + pod["metadata"]["name"] in events
    assert "Job completed" in events


JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: flaky}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["false"]}]
"""


async def test_job_past_its_backoff_limit_fails(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    kubectl("apply", "-f", "-", input=JOB)
    (first,) = await until(lambda: live_pods(api, "job-name=flaky"), lambda ps: len(ps) == 1)
    await set_pod_status(api, first, "Failed", False)

    # The replacement comes after the 10 s failure back-off.
    async def others() -> list[dict[str, Any]]:
        return [
            p
            for p in await live_pods(api, "job-name=flaky")
            if p["metadata"]["name"] != first["metadata"]["name"]
        ]

    (second,) = await until(others, lambda ps: len(ps) == 1, timeout=30)
    job = await api.get(JOBS, "flaky", NS)
    assert job["status"]["failed"] == 1
    assert "conditions" not in job["status"]
    await set_pod_status(api, second, "Failed", False)
    job = await until(
        lambda: api.get(JOBS, "flaky", NS),
        lambda j: any(c["type"] == "Failed" for c in j["status"].get("conditions", [])),
    )
    failed = job["status"]["conditions"][-1]
    assert (failed["reason"], failed["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert job["status"]["failed"] == 2
    assert table_rows(kubectl, "jobs")[1][:3] == ["flaky", "Failed", "0/1"]


async def test_job_validation_errors_are_upstreams(cluster: Cluster) -> None:
    bad = JOB.replace("restartPolicy: Never", "restartPolicy: Always").replace(
        "backoffLimit: 1", "backoffLimit: -1"
    )
    res = cluster.kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        'The Job "flaky" is invalid: \n'
        '* spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
        '"OnFailure", "Never"\n'
        "* spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"
    )


async def test_job_ttl_after_finished_deletes_it(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    kubectl(
        "apply",
        "-f",
        "-",
        input=JOB.replace("backoffLimit: 1", "backoffLimit: 0\n  ttlSecondsAfterFinished: 1"),
    )
    (pod,) = await until(lambda: live_pods(api, "job-name=flaky"), lambda ps: len(ps) == 1)
    await set_pod_status(api, pod, "Failed", False)

    # Deleted in the foreground, as upstream's TTL controller does: the garbage collector
    # (not running here) removes the pods, then the Job.
    job = await until(
        lambda: api.get(JOBS, "flaky", NS),
        lambda j: bool(j["metadata"].get("deletionTimestamp")),
        timeout=20,
    )
    assert job["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert job["status"]["conditions"][-1]["type"] == "Failed"


async def test_api_resources_lists_the_new_kinds(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources", "--api-group=batch")
    assert [line.split() for line in out.splitlines()[1:]] == [
        ["cronjobs", "cj", "batch/v1", "true", "CronJob"],
        ["jobs", "batch/v1", "true", "Job"],
    ]
    out = cluster.kubectl("api-resources", "--api-group=apps")
    assert ["daemonsets", "ds", "apps/v1", "true", "DaemonSet"] in [
        line.split() for line in out.splitlines()
    ]
