"""PersistentVolumeClaim, PersistentVolume and StorageClass against the real API server
(in-process), the PV controller and the StatefulSet controller, with the real kubectl: ``get``
columns as upstream prints them, the default class given to a claim without one, upstream's
validation errors, static binding through Released, and a StatefulSet's claims.

No node agent or provisioner runs here (the e2e test has them): volumes are made by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from apiserver_harness import Kubectl, RunningServer

from svcnet.api.registry import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from svcnet.client.events import EventRecorder
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.volume.controller import COMPONENT, PersistentVolumeController
from svcnet.controllers.workloads import run_workload_controllers
from svcnet.testing.polling import eventually

NS = "default"


@dataclass
class Cluster:
    api: ApiClient
    kubectl: Kubectl


@pytest.fixture
async def cluster(fresh_apiserver: RunningServer) -> AsyncIterator[Cluster]:
    async with ApiClient(load_kubeconfig(fresh_apiserver.kubeconfig)) as api:
        factory = SharedInformerFactory(api)
        recorder = EventRecorder(api, COMPONENT, "test")
        pv_controller = PersistentVolumeController(api, factory, recorder)
        workloads = run_workload_controllers(api, factory)
        tasks = [
            *workloads.tasks,
            asyncio.create_task(recorder.run()),
            asyncio.create_task(pv_controller.run()),
        ]
        try:
            assert await factory.wait_for_cache_sync(20)
            yield Cluster(api, Kubectl(fresh_apiserver.kubeconfig, NS))
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def rows(kubectl: Kubectl, *args: str) -> list[list[str]]:
    """``kubectl get`` lines cut at runs of 2+ spaces (cells may hold one space)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in kubectl("get", *args).splitlines()]


async def phase_of(api: ApiClient, rt: Any, name: str, want: str, ns: str | None = NS) -> None:
    async def check() -> bool:
        obj = await api.get(rt, name, ns if rt.namespaced else None)
        return (obj.get("status") or {}).get("phase") == want

    await eventually(check, 15)


STANDARD = """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: svcnet.io/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
"""

CLAIM = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %(name)s}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
  %(extra)s
"""

VOLUME = """
apiVersion: v1
kind: PersistentVolume
metadata: {name: %(name)s}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {path: /srv/%(name)s}
"""


async def test_storage_class_columns_and_default_marker(cluster: Cluster) -> None:
    kubectl = cluster.kubectl
    kubectl("apply", "-f", "-", input=STANDARD)
    table = rows(kubectl, "sc")
    assert table[0] == [
        "NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE",
    ]  # fmt: skip
    assert table[1][:5] == [
        "standard (default)", "svcnet.io/local-path", "Delete", "WaitForFirstConsumer", "false",
    ]  # fmt: skip


async def test_claim_without_class_gets_the_default_and_waits_for_a_consumer(
    cluster: Cluster,
) -> None:
    kubectl = cluster.kubectl
    kubectl("apply", "-f", "-", input=STANDARD)
    kubectl("apply", "-f", "-", input=CLAIM % {"name": "data", "extra": ""})
    pvc = await cluster.api.get(PERSISTENTVOLUMECLAIMS, "data", NS)
    assert pvc["spec"]["storageClassName"] == "standard"
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    table = rows(kubectl, "pvc")
    assert table[0] == [
        "NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
        "VOLUMEATTRIBUTESCLASS", "AGE",
    ]  # fmt: skip
    assert table[1][:4] == ["data", "Pending", "standard", "<unset>"]

    async def waiting_event() -> bool:
        out = kubectl("get", "events", "--field-selector", "involvedObject.name=data")
        return "WaitForFirstConsumer" in out and "waiting for first consumer" in out

    await eventually(waiting_event, 15)


async def test_an_explicit_empty_class_is_left_alone(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=STANDARD)
    cluster.kubectl(
        "apply", "-f", "-", input=CLAIM % {"name": "bare", "extra": 'storageClassName: ""'}
    )
    pvc = await cluster.api.get(PERSISTENTVOLUMECLAIMS, "bare", NS)
    assert pvc["spec"]["storageClassName"] == ""


async def test_static_volume_binds_then_is_released_and_retained(cluster: Cluster) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    kubectl("apply", "-f", "-", input=VOLUME % {"name": "manual-1"})
    pv = await api.get(PERSISTENTVOLUMES, "manual-1")
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"  # upstream's default
    await phase_of(api, PERSISTENTVOLUMES, "manual-1", "Available")
    kubectl("apply", "-f", "-", input=CLAIM % {"name": "db", "extra": 'storageClassName: ""'})
    await phase_of(api, PERSISTENTVOLUMECLAIMS, "db", "Bound")
    await phase_of(api, PERSISTENTVOLUMES, "manual-1", "Bound")
    pvc_rows = rows(kubectl, "pvc", "db")
    assert pvc_rows[1][:5] == ["db", "Bound", "manual-1", "2Gi", "RWO"]
    pv_rows = rows(kubectl, "pv")
    assert pv_rows[0] == [
        "NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS",
        "VOLUMEATTRIBUTESCLASS", "REASON", "AGE",
    ]  # fmt: skip
    # An empty STORAGECLASS and REASON leave no cell: compare what is printed.
    assert pv_rows[1][:6] == ["manual-1", "2Gi", "RWO", "Retain", "Bound", "default/db"]
    kubectl("delete", "pvc", "db")
    await phase_of(api, PERSISTENTVOLUMES, "manual-1", "Released")
    # Retain: the volume stays, Released, and no new claim takes it.
    kubectl("apply", "-f", "-", input=CLAIM % {"name": "db2", "extra": 'storageClassName: ""'})
    await asyncio.sleep(1)
    pvc = await api.get(PERSISTENTVOLUMECLAIMS, "db2", NS)
    assert pvc["status"]["phase"] == "Pending"


@pytest.mark.parametrize(
    ("manifest", "error"),
    [
        (
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\n"
            "spec: {resources: {requests: {storage: 1Gi}}}\n",
            'The PersistentVolumeClaim "c" is invalid: spec.accessModes: Required value: '
            "at least 1 access mode is required",
        ),
        (
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\n"
            "spec: {accessModes: [ReadWriteOnce]}\n",
            'The PersistentVolumeClaim "c" is invalid: spec.resources[storage]: Required value',
        ),
        (
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\n"
            "spec: {accessModes: [ReadWriteSometimes], resources: {requests: {storage: 1Gi}}}\n",
            'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: '
            '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
        ),
        (
            "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: v}\n"
            "spec: {accessModes: [ReadWriteOnce], hostPath: {path: /x}}\n",
            'The PersistentVolume "v" is invalid: spec.capacity: Required value: '
            "must specify a capacity",
        ),
        (
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: s}\n"
            "provisioner: x.io/y\nvolumeBindingMode: Later\n",
            'volumeBindingMode: Unsupported value: "Later": supported values: '
            '"Immediate", "WaitForFirstConsumer"',
        ),
    ],
    ids=["claim-access-modes", "claim-storage", "claim-bad-mode", "pv-capacity", "sc-mode"],
)
async def test_validation_errors_as_upstream(cluster: Cluster, manifest: str, error: str) -> None:
    proc = cluster.kubectl.run("apply", "-f", "-", input=manifest, check=False)
    assert proc.returncode != 0
    assert error in proc.stderr


STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: nginx}}
  serviceName: nginx
  replicas: 2
  podManagementPolicy: Parallel
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        image: nginx
        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


async def test_statefulset_with_claim_templates_is_accepted_and_makes_its_claims(
    cluster: Cluster,
) -> None:
    api, kubectl = cluster.api, cluster.kubectl
    kubectl("apply", "-f", "-", input=STANDARD)
    kubectl("apply", "-f", "-", input=STATEFULSET)

    async def claims() -> list[str] | None:
        listed = await api.list(PERSISTENTVOLUMECLAIMS, NS)
        names = sorted(c["metadata"]["name"] for c in listed["items"])
        return names if len(names) == 2 else None

    assert await eventually(claims, 15) == ["www-web-0", "www-web-1"]
    pod = await api.get("pods", "web-0", NS)
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}} in pod["spec"][
        "volumes"
    ]
    pvc = await api.get(PERSISTENTVOLUMECLAIMS, "www-web-0", NS)
    assert pvc["spec"]["storageClassName"] == "standard"
    assert pvc["metadata"]["labels"] == {"app": "nginx"}
    # The mount of a name that is neither a volume nor a template is still refused.
    bad = STATEFULSET.replace("name: www, mountPath", "name: nope, mountPath").replace(
        "name: web}", "name: bad}"
    )
    proc = kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert 'spec.template.spec.containers[0].volumeMounts[0].name: Not found: "nope"' in proc.stderr


async def test_describe_claim_and_volume(cluster: Cluster) -> None:
    kubectl = cluster.kubectl
    kubectl("apply", "-f", "-", input=VOLUME % {"name": "manual-2"})
    kubectl("apply", "-f", "-", input=CLAIM % {"name": "logs", "extra": 'storageClassName: ""'})
    await phase_of(cluster.api, PERSISTENTVOLUMECLAIMS, "logs", "Bound")
    claim = kubectl("describe", "pvc", "logs")
    assert "Status:        Bound" in claim
    assert "Volume:        manual-2" in claim
    assert "Capacity:      2Gi" in claim
    volume = kubectl("describe", "pv", "manual-2")
    assert "Claim:           default/logs" in volume
    assert "Reclaim Policy:  Retain" in volume
    assert "Type:          HostPath (bare host directory volume)" in volume
