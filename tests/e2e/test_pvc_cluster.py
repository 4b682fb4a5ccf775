"""Volumes that persist, on a real 2-node cluster through the real kubectl: the Kubernetes
docs' StatefulSet example (nginx ``web`` with ``www`` claims from volumeClaimTemplates, the
built-in nginx image) on the default StorageClass ``standard`` that ``svcnet up`` installs.

Each claim is provisioned by the local-path provisioner of the node its pod was scheduled to
(a folder under that node's data dir) and Bound; each pod writes its own volume; a pod deleted
with ``kubectl delete pod`` comes back on the same node with the same data; deleting a claim
of reclaim policy Delete removes its volume and its folder, while a class with Retain keeps
both (the volume Released). Each test deletes what it made, also on failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import Cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster

pytestmark = pytest.mark.e2e

TAINT = "svcnet.io/pvc-test=hold"

WEB = """
apiVersion: v1
kind: Service
metadata: {name: nginx, labels: {app: nginx}}
spec:
  ports: [{port: 80, name: web}]
  clusterIP: None
  selector: {app: nginx}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: nginx}}
  serviceName: nginx
  replicas: 2
  minReadySeconds: 0
  template:
    metadata: {labels: {app: nginx}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: 80, name: web}]
        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


@pytest.fixture
def cluster(svcnet_cluster: Cluster) -> Cluster:
    return svcnet_cluster


@pytest.fixture
def cleanup(cluster: Cluster) -> Iterator[list[str]]:
    objects: list[str] = []
    yield objects
    if objects:
        cluster.kubectl("delete", "--ignore-not-found", "--wait=false", *objects, check=False)


def running_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conds
    )


def phase_is(want: str) -> Any:
    return lambda obj: (obj.get("status") or {}).get("phase") == want


def exec_sh(c: Cluster, pod: str, script: str) -> str:
    return c.kubectl("exec", pod, "--", "sh", "-c", script).stdout


def gone(c: Cluster, what: str, timeout: float = 30) -> None:
    c.wait_for("pv", lambda pvs: what not in [p["metadata"]["name"] for p in pvs["items"]], timeout)


def test_default_storage_class_is_installed(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "sc").stdout.splitlines()
    assert out[0].split() == [
        "NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE",
    ]  # fmt: skip
    assert out[1].split()[:6] == [
        "standard", "(default)", "svcnet.io/local-path", "Delete", "WaitForFirstConsumer", "false",
    ]  # fmt: skip


def test_statefulset_claims_are_bound_per_pod_and_survive_a_pod_delete(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup += ["statefulset/web", "service/nginx", "pvc/www-web-0", "pvc/www-web-1"]
    c.apply(WEB)
    volumes: dict[str, dict[str, Any]] = {}
    nodes: dict[str, str] = {}
    for i in (0, 1):
        pvc = c.wait_for(f"pvc/www-web-{i}", phase_is("Bound"), 90)
        assert pvc["spec"]["storageClassName"] == "standard"
        pod = c.wait_for(f"pod/web-{i}", running_ready, 90)
        nodes[f"web-{i}"] = pod["spec"]["nodeName"]
        volumes[f"web-{i}"] = pv = c.get("pv", pvc["spec"]["volumeName"])
        # The volume is a folder of the claim on the node the pod was scheduled to.
        folder = Path(pv["spec"]["hostPath"]["path"])
        assert folder.parent == c.data_dir / "nodes" / nodes[f"web-{i}"] / "storage"
        assert folder.name == f"pvc-{pvc['metadata']['uid']}_default_www-web-{i}"
        assert pv["spec"]["claimRef"]["name"] == f"www-web-{i}"
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert (
            pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]
            == (nodes[f"web-{i}"])
        )
    rows = c.kubectl("get", "pvc").stdout.splitlines()
    assert [r.split()[:6] for r in rows[1:]] == [
        ["www-web-0", "Bound", volumes["web-0"]["metadata"]["name"], "1Gi", "RWO", "standard"],
        ["www-web-1", "Bound", volumes["web-1"]["metadata"]["name"], "1Gi", "RWO", "standard"],
    ]
    # Each pod writes its own volume, as the docs' example does.
    for pod in ("web-0", "web-1"):
        exec_sh(c, pod, "echo $(hostname) > /usr/share/nginx/html/index.html")
    for pod in ("web-0", "web-1"):
        assert exec_sh(c, pod, "cat /usr/share/nginx/html/index.html").strip() == pod
        folder = Path(volumes[pod]["spec"]["hostPath"]["path"])
        assert (folder / "index.html").read_text().strip() == pod
    # nginx serves each pod's own page from its volume (curl is the node's, in /usr).
    for pod in ("web-0", "web-1"):
        ip = c.get("pod", pod)["status"]["podIP"]
        assert exec_sh(c, "web-0", f"curl -s http://{ip}/").strip() == pod

    # The pod comes back to its volume's node, and nowhere else: with that node tainted the
    # new web-0 waits (the other node fails the volume's node affinity), then lands there.
    home = nodes["web-0"]
    old_uid = c.get("pod", "web-0")["metadata"]["uid"]
    c.kubectl("taint", "nodes", home, f"{TAINT}:NoSchedule")
    try:
        c.kubectl("delete", "pod", "web-0", "--wait=false")

        def waits_for_its_node(pod: dict[str, Any]) -> bool:
            conds = (pod.get("status") or {}).get("conditions") or []
            return pod["metadata"]["uid"] != old_uid and any(
                x["type"] == "PodScheduled"
                and "1 node(s) had volume node affinity conflict" in x.get("message", "")
                for x in conds
            )

        c.wait_for("pod/web-0", waits_for_its_node, 60)
    finally:
        c.kubectl("taint", "nodes", home, f"{TAINT}:NoSchedule-", check=False)
    pod = c.wait_for(
        "pod/web-0", lambda p: p["metadata"]["uid"] != old_uid and running_ready(p), 90
    )
    assert pod["spec"]["nodeName"] == home
    assert exec_sh(c, "web-0", "cat /usr/share/nginx/html/index.html").strip() == "web-0"
    assert c.get("pvc", "www-web-0")["spec"]["volumeName"] == volumes["web-0"]["metadata"]["name"]

    # Claims outlive their StatefulSet (retention Retain, Retain); deleting a claim of the
    # Delete class removes its volume and its folder once no pod uses it.
    c.kubectl("delete", "statefulset", "web", "--wait=true", timeout=60)
    c.wait_for("pods", lambda ps: not ps["items"], 60, "-l", "app=nginx")
    assert c.get("pvc", "www-web-0")["status"]["phase"] == "Bound"
    for pod in ("web-0", "web-1"):
        c.kubectl("delete", "pvc", f"www-{pod}", timeout=60)
        gone(c, volumes[pod]["metadata"]["name"])
        assert not Path(volumes[pod]["spec"]["hostPath"]["path"]).exists()


RETAIN = """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: keep}
provisioner: svcnet.io/local-path
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: kept}
spec:
  storageClassName: keep
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "echo kept > /data/file"]
    volumeMounts: [{name: d, mountPath: /data}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: kept}}]
"""


def test_retain_keeps_the_volume_released_and_its_folder(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup += ["pod/writer", "pvc/kept", "storageclass/keep"]
    c.apply(RETAIN)
    c.wait_for("pod/writer", phase_is("Succeeded"), 90)
    name = c.get("pvc", "kept")["spec"]["volumeName"]
    cleanup.append(f"pv/{name}")
    folder = Path(c.get("pv", name)["spec"]["hostPath"]["path"])
    assert (folder / "file").read_text() == "kept\n"
    c.kubectl("delete", "pod", "writer", timeout=60)
    c.kubectl("delete", "pvc", "kept", timeout=60)
    c.wait_for(f"pv/{name}", phase_is("Released"), 30)
    row = c.kubectl("get", "pv", name).stdout.splitlines()[1].split()
    assert row[3:6] == ["Retain", "Released", "default/kept"]
    assert (folder / "file").read_text() == "kept\n"
    # The administrator's to clean: deleting the Released volume leaves the folder too.
    c.kubectl("delete", "pv", name, timeout=60)
    assert folder.is_dir()
    os.remove(folder / "file")
    folder.rmdir()


def test_pod_of_a_missing_claim_is_unschedulable_with_upstreams_message(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup += ["pod/orphan"]
    c.apply(
        """
apiVersion: v1
kind: Pod
metadata: {name: orphan}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "60"]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: nowhere}}]
"""
    )

    def unschedulable(pod: dict[str, Any]) -> bool:
        conds = (pod.get("status") or {}).get("conditions") or []
        return any(
            c["type"] == "PodScheduled"
            and 'persistentvolumeclaim "nowhere" not found' in c.get("message", "")
            for c in conds
        )

    c.wait_for("pod/orphan", unschedulable, 30)


HOLDER = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: busy}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: holder}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
    volumeMounts: [{name: d, mountPath: /data}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: busy}}]
"""


def test_claim_deleted_under_a_running_pod_keeps_its_data_until_the_pod_goes(
    cluster: Cluster, cleanup: list[str]
) -> None:
    c = cluster
    cleanup += ["pod/holder", "pvc/busy"]
    c.apply(HOLDER)
    c.wait_for("pod/holder", running_ready, 90)
    name = c.get("pvc", "busy")["spec"]["volumeName"]
    folder = Path(c.get("pv", name)["spec"]["hostPath"]["path"])
    c.kubectl("delete", "pvc", "busy", timeout=60)
    c.wait_for(f"pv/{name}", phase_is("Released"), 30)
    # The pod still writes to its volume: the folder of a Released Delete volume stays while
    # it is mounted.
    exec_sh(c, "holder", "echo still > /data/f")
    assert (folder / "f").read_text() == "still\n"
    c.kubectl("delete", "pod", "holder", timeout=60)
    gone(c, name)
    assert not folder.exists()
