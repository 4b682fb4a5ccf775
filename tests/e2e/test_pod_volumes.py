"""Pod volumes on a real 2-node cluster, through the real kubectl: emptyDir (on disk and in
memory) shared by the pod's containers, configMap / secret / downwardAPI volumes and their
in-place update, subPath, readOnly, projected service-account tokens (the admission's
kube-api-access volume and an explicit projection), and the FailedMount paths (a missing
ConfigMap, a missing hostPath Directory) as kubelet words them. Each verdict comes from the pod's own
output (kubectl logs or kubectl exec)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import Cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(svcnet_cluster: Cluster) -> Cluster:
    return svcnet_cluster


def pod_object(
    name: str,
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    labels: dict[str, str] | None = None,
    restart: str = "Never",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "nodeName": "node-1",
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"image": "busybox", **c} for c in containers],
            "volumes": volumes,
        },
    }


def sh(name: str, script: str, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "command": ["sh", "-c", script], "volumeMounts": mounts}


@contextmanager
def created(c: Cluster, *objects: dict[str, Any]) -> Iterator[None]:
    for obj in objects:
        c.kubectl("apply", "-f", "-", input=json.dumps(obj))
    try:
        yield
    finally:
        for obj in reversed(objects):
            kind = obj["kind"].lower()
            c.kubectl("delete", kind, obj["metadata"]["name"], "--wait=false", check=False)


def finished(c: Cluster, name: str, container: str = "") -> str:
    """The output of a pod run to completion (of one of its containers)."""
    c.wait_for(f"pod/{name}", lambda p: p["status"].get("phase") in ("Succeeded", "Failed"))
    args = ["logs", name] + (["-c", container] if container else [])
    return c.kubectl(*args).stdout


def running(c: Cluster, name: str) -> dict[str, Any]:
    got: dict[str, Any] = c.wait_for(f"pod/{name}", lambda p: p["status"].get("phase") == "Running")
    return got


def exec_sh(c: Cluster, name: str, script: str, check: bool = True) -> str:
    return c.kubectl("exec", name, "--", "sh", "-c", script, check=check).stdout


def events_of(c: Cluster, pod: str) -> list[dict[str, Any]]:
    items = c.get("events", "--field-selector", f"involvedObject.name={pod}")["items"]
    return list(items)


def wait_event(c: Cluster, pod: str, message: str) -> dict[str, Any]:
    """The pod's event with that message, once it is there."""
    deadline = time.monotonic() + 30
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = events_of(c, pod)
        for e in seen:
            if e["message"] == message:
                return e
        time.sleep(0.2)
    raise AssertionError(f"no event {message!r} for {pod}; seen: {seen}")


def waiting(pod: dict[str, Any]) -> str:
    st = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
    return str(((st.get("state") or {}).get("waiting") or {}).get("reason", ""))


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


SLEEP = {"name": "c", "command": ["sleep", "3600"]}


def test_empty_dir_is_shared_by_the_pods_containers(cluster: Cluster) -> None:
    mount = [{"name": "shared", "mountPath": "/shared"}]
    pod = pod_object(
        "share",
        [
            # Written aside and renamed: the reader must not see the file before its content.
            sh("writer", "echo from-writer > /shared/.msg && mv /shared/.msg /shared/msg", mount),
            sh("reader", "until [ -f /shared/msg ]; do sleep 0.1; done; cat /shared/msg", mount),
        ],
        [{"name": "shared", "emptyDir": {}}],
    )
    with created(cluster, pod):
        assert finished(cluster, "share", "reader").strip() == "from-writer"


def test_memory_empty_dir_is_a_tmpfs_of_its_size_limit(cluster: Cluster) -> None:
    script = (
        "grep ' /mem ' /proc/mounts | cut -d' ' -f3,4; "
        "dd if=/dev/zero of=/mem/f bs=1024 count=2048 2>&1 | grep -o 'No space left on device'"
    )
    pod = pod_object(
        "memvol",
        [sh("c", script, [{"name": "mem", "mountPath": "/mem"}])],
        [{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
    )
    with created(cluster, pod):
        out = finished(cluster, "memvol")
    fstype, options = out.splitlines()[0].split(" ")
    assert fstype == "tmpfs"
    assert "size=1024k" in options.split(",")
    assert "No space left on device" in out


def test_volumes_go_with_the_pod(cluster: Cluster) -> None:
    pod = pod_object(
        "gone",
        [{**SLEEP, "volumeMounts": [{"name": "m", "mountPath": "/m"}]}],
        [{"name": "m", "emptyDir": {"medium": "Memory"}}],
    )
    with created(cluster, pod):
        uid = running(cluster, "gone")["metadata"]["uid"]
        folder = cluster.data_dir / "nodes" / "node-1" / "pods" / uid
        assert (folder / "volumes" / "kubernetes.io~empty-dir" / "m").is_dir()
        assert _mounted_under(folder)
        cluster.kubectl("delete", "pod", "gone", "--wait=true", timeout=60)
        assert not folder.exists()
        assert not _mounted_under(folder)


def _mounted_under(folder: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4].startswith(str(folder)) for line in f)


def test_config_map_edit_reaches_the_mounted_file(cluster: Cluster) -> None:
    cm = config_map("live", {"greeting": "hello"})
    pod = pod_object(
        "cmlive",
        [{**SLEEP, "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}],
        [{"name": "cfg", "configMap": {"name": "live"}}],
    )
    with created(cluster, cm, pod):
        running(cluster, "cmlive")
        assert exec_sh(cluster, "cmlive", "cat /cfg/greeting") == "hello"
        cluster.kubectl(
            "patch", "configmap", "live", "-p", '{"data":{"greeting":"bonjour","extra":"x"}}'
        )
        seen = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = exec_sh(cluster, "cmlive", "cat /cfg/greeting /cfg/extra 2>/dev/null", False)
            if seen == "bonjourx":
                break
            time.sleep(0.2)
        assert seen == "bonjourx"
        # the kubelet's layout: ..data swapped to a fresh timestamped folder
        assert exec_sh(cluster, "cmlive", "readlink /cfg/greeting").strip() == "..data/greeting"


def test_secret_with_items_and_mode(cluster: Cluster) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"user": "admin", "password": "s3cret"},
    }
    script = "ls /s; cat /s/auth/pw; echo; stat -L -c %a /s/auth/pw"
    pod = pod_object(
        "secvol",
        [sh("c", script, [{"name": "s", "mountPath": "/s"}])],
        [
            {
                "name": "s",
                "secret": {
                    "secretName": "creds",
                    "items": [{"key": "password", "path": "auth/pw", "mode": 0o400}],
                },
            }
        ],
    )
    with created(cluster, secret, pod):
        assert finished(cluster, "secvol").split() == ["auth", "s3cret", "400"]


def test_downward_api_labels_and_name(cluster: Cluster) -> None:
    items = [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
    ]
    pod = pod_object(
        "downward",
        [sh("c", "cat /info/labels; echo; cat /info/name", [{"name": "i", "mountPath": "/info"}])],
        [{"name": "i", "downwardAPI": {"items": items}}],
        labels={"app": "shop", "tier": "web"},
    )
    with created(cluster, pod):
        assert finished(cluster, "downward").splitlines() == [
            'app="shop"',
            'tier="web"',
            "downward",
        ]


def test_sub_path_of_a_config_map_and_of_an_empty_dir(cluster: Cluster) -> None:
    cm = config_map("subcfg", {"app.conf": "port=80", "other": "no"})
    script = "cat /etc/app.conf; echo; ls /etc/app.conf; echo inner > /logs/f; cat /all/c-logs/f"
    pod = pod_object(
        "subpath",
        [
            sh(
                "c",
                script,
                [
                    {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
                    {"name": "data", "mountPath": "/logs", "subPath": "c-logs"},
                    {"name": "data", "mountPath": "/all"},
                ],
            )
        ],
        [{"name": "cfg", "configMap": {"name": "subcfg"}}, {"name": "data", "emptyDir": {}}],
    )
    with created(cluster, cm, pod):
        assert finished(cluster, "subpath").split() == ["port=80", "/etc/app.conf", "inner"]


def test_read_only_mounts_refuse_writes(cluster: Cluster) -> None:
    cm = config_map("rocfg", {"k": "v"})
    script = (
        "touch /ro/x 2>/dev/null && echo wrote-ro; "
        "touch /cfg/x 2>/dev/null && echo wrote-cfg; "
        "touch /rw/x && echo wrote-rw"
    )
    mounts = [
        {"name": "data", "mountPath": "/ro", "readOnly": True},
        {"name": "data", "mountPath": "/rw"},
        {"name": "cfg", "mountPath": "/cfg"},  # API data: read-only whatever readOnly says
    ]
    pod = pod_object(
        "rovol",
        [sh("c", script, mounts)],
        [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "rocfg"}}],
    )
    with created(cluster, cm, pod):
        assert finished(cluster, "rovol").split() == ["wrote-rw"]


def test_missing_config_map_waits_with_failed_mount_then_starts(cluster: Cluster) -> None:
    pod = pod_object(
        "waitcm",
        [{**SLEEP, "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}],
        [{"name": "cfg", "configMap": {"name": "late"}}],
    )
    with created(cluster, pod):
        event = wait_event(
            cluster,
            "waitcm",
            'MountVolume.SetUp failed for volume "cfg" : configmap "late" not found',
        )
        assert (event["type"], event["reason"]) == ("Warning", "FailedMount")
        got = cluster.get("pod", "waitcm")
        assert got["status"]["phase"] == "Pending"
        assert waiting(got) == "ContainerCreating"
        with created(cluster, config_map("late", {"k": "finally"})):
            running(cluster, "waitcm")
            assert exec_sh(cluster, "waitcm", "cat /cfg/k") == "finally"


def test_optional_missing_config_map_mounts_an_empty_folder(cluster: Cluster) -> None:
    pod = pod_object(
        "optcm",
        [sh("c", "ls -A /cfg | wc -l", [{"name": "cfg", "mountPath": "/cfg"}])],
        [{"name": "cfg", "configMap": {"name": "never", "optional": True}}],
    )
    with created(cluster, pod):
        # only kubelet's own ..data link and its folder
        assert finished(cluster, "optcm").strip() == "2"


def test_host_path_directory_missing_is_a_failed_mount(cluster: Cluster, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    pod = pod_object(
        "hostmiss",
        [{**SLEEP, "volumeMounts": [{"name": "h", "mountPath": "/h"}]}],
        [{"name": "h", "hostPath": {"path": str(missing), "type": "Directory"}}],
    )
    with created(cluster, pod):
        event = wait_event(
            cluster,
            "hostmiss",
            f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: '
            f"{missing} is not a directory",
        )
        assert (event["type"], event["reason"]) == ("Warning", "FailedMount")
        assert waiting(cluster.get("pod", "hostmiss")) == "ContainerCreating"


def test_writable_volumes_open_no_device_nodes(cluster: Cluster) -> None:
    """CAP_MKNOD is in the default set and no device cgroup fences it: a writable volume is
    mounted nodev, so a node made there (here /dev/null's numbers) cannot be opened."""
    script = (
        "mknod /rw/null c 1 3 && echo made; "
        "{ echo x > /rw/null && echo opened; } 2>&1 | grep -o 'Permission denied'; "
        "echo x > /dev/null && echo real-null-ok"
    )
    pod = pod_object(
        "nodev",
        [sh("c", script, [{"name": "data", "mountPath": "/rw"}])],
        [{"name": "data", "emptyDir": {}}],
    )
    with created(cluster, pod):
        assert finished(cluster, "nodev").splitlines() == [
            "made",
            "Permission denied",
            "real-null-ok",
        ]


def _jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_projected_service_account_token_is_bound_to_the_pod(cluster: Cluster) -> None:
    """A serviceAccountToken projection: a TokenRequest with the projection's audience and
    expirationSeconds, bound to the pod, written beside the pod's namespace and root CA."""
    cluster.wait_for("serviceaccount/default", lambda sa: True)
    sources = [
        {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 600}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [
            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
        ]}},
    ]  # fmt: skip
    pod = pod_object(
        "satoken",
        [{**SLEEP, "volumeMounts": [{"name": "sa", "mountPath": "/var/run/secrets/tokens"}]}],
        [{"name": "sa", "projected": {"sources": sources}}],
    )
    with created(cluster, pod):
        uid = running(cluster, "satoken")["metadata"]["uid"]
        token = exec_sh(cluster, "satoken", "cat /var/run/secrets/tokens/token")
        claims = _jwt_claims(token)
        assert claims["aud"] == ["vault"]
        assert claims["exp"] - claims["iat"] == 600
        assert claims["sub"] == "system:serviceaccount:default:default"
        assert claims["kubernetes.io"]["pod"] == {"name": "satoken", "uid": uid}
        ca = exec_sh(cluster, "satoken", "cat /var/run/secrets/tokens/ca.crt")
        assert ca.startswith("-----BEGIN CERTIFICATE-----")
        assert exec_sh(cluster, "satoken", "cat /var/run/secrets/tokens/namespace") == "default"


def test_default_service_account_volume_serves_in_cluster_clients(cluster: Cluster) -> None:
    """The ServiceAccount admission's kube-api-access volume: token, ca.crt and namespace
    where client libraries look for them, good for a TLS request to the
    kubernetes Service as load_incluster_config() makes it (KUBERNETES_SERVICE_HOST/PORT)."""
    cluster.wait_for("serviceaccount/default", lambda sa: True)
    sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    script = (
        f"cat {sa_dir}/namespace; echo; head -1 {sa_dir}/ca.crt; "
        f'curl -sS --cacert {sa_dir}/ca.crt -H "Authorization: Bearer $(cat {sa_dir}/token)" '
        "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api"
    )
    pod = pod_object("incluster", [{"name": "c", "image": "curlimages/curl",
                                    "command": ["sh", "-c", script]}], [])  # fmt: skip
    with created(cluster, pod):
        out = finished(cluster, "incluster")
    namespace, ca_line, answer = out.split("\n", 2)
    assert namespace == "default"
    assert ca_line == "-----BEGIN CERTIFICATE-----"
    assert json.loads(answer)["kind"] == "APIVersions"
