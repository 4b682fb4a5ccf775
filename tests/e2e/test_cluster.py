"""``svcnet up`` → real nodes and pods, driven with the real kubectl; ``svcnet down`` leaves nothing.

Ranges and names: see cluster_fixture (a unique cluster per module, its own /24 underlay,
/16 pod and service ranges and API port). Pods are bound with spec.nodeName so the tests do
not depend on the scheduler.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import KUBECTL, Cluster, pod_manifest, ready, running_cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster

from svcnet.testing.polling import eventually_sync

pytestmark = pytest.mark.e2e

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52"


@pytest.fixture
def cluster(svcnet_cluster: Cluster) -> Cluster:
    return svcnet_cluster


def waiting_reason(pod: dict[str, Any]) -> str:
    st = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
    return str(((st.get("state") or {}).get("waiting") or {}).get("reason", ""))


def node_pod_cidr(cluster: Cluster, node: str) -> str:
    return str(cluster.get("node", node)["spec"]["podCIDR"])


def test_every_node_is_ready_after_up(cluster: Cluster) -> None:
    nodes = cluster.get("nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["node-1", "node-2"]
    assert all(ready(n) for n in nodes)
    info = nodes[0]["status"]["nodeInfo"]
    assert info["kubeletVersion"].startswith("v1.32.")
    assert info["containerRuntimeVersion"].startswith("svcnet://")


def test_pod_gets_an_ip_in_its_node_pod_cidr(cluster: Cluster) -> None:
    c = cluster
    c.apply(pod_manifest("ipcheck", "node-2", f"    image: {AGNHOST}\n    args: [netexec]"))
    pod = c.wait_for("pod/ipcheck", lambda p: p["status"].get("podIP"))
    cidr = ipaddress.ip_network(node_pod_cidr(c, "node-2"))
    assert ipaddress.ip_address(pod["status"]["podIP"]) in cidr
    assert pod["status"]["podIPs"] == [{"ip": pod["status"]["podIP"]}]
    assert pod["status"]["hostIP"] == c.get("node", "node-2")["status"]["addresses"][0]["address"]
    c.kubectl("delete", "pod", "ipcheck", "--wait=false")


def test_env_hostname_and_resolv_conf_are_the_pods(cluster: Cluster) -> None:
    c = cluster
    c.apply("""
apiVersion: v1
kind: ConfigMap
metadata: {name: envcm}
data: {color: blue}
---
apiVersion: v1
kind: Service
metadata: {name: web-svc}
spec:
  selector: {app: none}
  ports: [{name: http, port: 80, targetPort: 8080}]
""")
    c.apply(
        pod_manifest(
            "envpod",
            "node-1",
            """    image: busybox
    command: ["sh", "-c", "hostname; env | sort; cat /etc/resolv.conf; sleep 1000"]
    env:
    - {name: MY_POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MY_POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MY_HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: MY_NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: COLOR, valueFrom: {configMapKeyRef: {name: envcm, key: color}}}
    - {name: GREETING, value: "hello $(COLOR)"}""",
        )
    )
    pod = c.wait_for("pod/envpod", ready)

    def printed_all() -> str | None:
        # resolv.conf is printed last, its "options" line last of all.
        out = c.kubectl("logs", "envpod").stdout
        return out if "\noptions " in out else None

    out = eventually_sync(printed_all, 30, what="the pod's whole printout")
    lines = out.splitlines()
    assert lines[0] == "envpod"
    env = dict(
        line.split("=", 1) for line in lines if "=" in line and " " not in line.split("=")[0]
    )
    assert env["MY_POD_NAME"] == "envpod"
    assert env["MY_POD_IP"] == pod["status"]["podIP"]
    assert env["MY_HOST_IP"] == pod["status"]["hostIP"]
    assert env["MY_NODE"] == "node-1"
    assert env["COLOR"] == "blue"
    assert env["GREETING"] == "hello blue"
    svc = c.get("svc", "web-svc")
    assert env["WEB_SVC_SERVICE_HOST"] == svc["spec"]["clusterIP"]
    assert env["WEB_SVC_SERVICE_PORT"] == "80"
    assert env["WEB_SVC_SERVICE_PORT_HTTP"] == "80"
    assert env["WEB_SVC_PORT"] == f"tcp://{svc['spec']['clusterIP']}:80"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    dns = str(ipaddress.ip_network(c.service_cidr).network_address + 10)
    assert f"nameserver {dns}" in out
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in out
    assert "options ndots:5" in out
    c.kubectl("delete", "pod", "envpod", "--wait=false")


def test_kubectl_logs_follow_and_previous(cluster: Cluster) -> None:
    c = cluster
    c.apply(
        pod_manifest(
            "logger",
            "node-2",
            """    image: busybox
    command: ["sh", "-c", "echo run-$(date +%s%N); sleep 1; exit 1"]""",
        )
    )
    c.wait_for(
        "pod/logger",
        lambda p: (p["status"].get("containerStatuses") or [{}])[0].get("restartCount", 0) >= 1,
    )
    prev = c.kubectl("logs", "logger", "--previous").stdout
    assert prev.startswith("run-")
    c.kubectl("delete", "pod", "logger", "--wait=false")


def test_svcnet_exec_runs_in_the_container_and_returns_its_exit_code(
    cluster: Cluster,
) -> None:
    c = cluster
    c.apply(pod_manifest("execpod", "node-1", f"    image: {AGNHOST}\n    args: [netexec]"))
    c.wait_for("pod/execpod", ready)
    res = c.svcnet(
        "exec", "execpod", *c.cluster_args(), "--", "sh", "-c", "hostname; exit 7", check=False
    )
    assert res.stdout.strip() == "execpod"
    assert res.returncode == 7


def test_kubectl_exec_runs_in_the_container(cluster: Cluster) -> None:
    c = cluster
    c.apply(pod_manifest("kexec", "node-2", f"    image: {AGNHOST}\n    args: [netexec]"))
    c.wait_for("pod/kexec", ready)
    res = c.kubectl("exec", "kexec", "--", "hostname", check=False)
    assert res.stdout.strip() == "kexec", res.stderr
    res = c.kubectl("exec", "kexec", "--", "sh", "-c", "exit 3", check=False)
    assert res.returncode == 3


def test_readiness_probe_flips_ready(cluster: Cluster) -> None:
    c = cluster
    c.apply(
        pod_manifest(
            "probed",
            "node-1",
            """    image: busybox
    command: ["sh", "-c", "sleep 1000"]
    readinessProbe:
      exec: {command: ["test", "-e", "/tmp/svcnet-e2e-ready-probed"]}
      periodSeconds: 1""",
        )
    )
    pod = c.wait_for("pod/probed", lambda p: p["status"].get("phase") == "Running")
    assert not ready(pod)
    # The file appears in the container's own /tmp (the node's /tmp is out of its sight).
    c.kubectl("exec", "probed", "--", "touch", "/tmp/svcnet-e2e-ready-probed")
    c.wait_for("pod/probed", ready, timeout=5)
    c.kubectl("exec", "probed", "--", "rm", "/tmp/svcnet-e2e-ready-probed")
    c.wait_for("pod/probed", lambda p: not ready(p), timeout=8)
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=probed").stdout
    assert "Readiness probe failed" in events
    c.kubectl("delete", "pod", "probed", "--wait=false")


def test_liveness_failure_restarts_the_container(cluster: Cluster) -> None:
    c = cluster
    c.apply(
        pod_manifest(
            "live",
            "node-2",
            """    image: busybox
    command: ["sh", "-c", "sleep 1000"]
    livenessProbe:
      tcpSocket: {port: 9999}
      periodSeconds: 1
      failureThreshold: 2""",
        )
    )
    c.wait_for(
        "pod/live",
        lambda p: (p["status"].get("containerStatuses") or [{}])[0].get("restartCount", 0) >= 1,
        timeout=15,
    )
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=live").stdout
    assert "Liveness probe failed" in events
    assert "failed liveness probe, will be restarted" in events
    c.kubectl("delete", "pod", "live", "--wait=false")


def test_crashing_container_backs_off(cluster: Cluster) -> None:
    c = cluster
    c.apply(
        pod_manifest(
            "crasher",
            "node-1",
            """    image: busybox
    command: ["sh", "-c", "exit 2"]""",
        )
    )
    pod = c.wait_for("pod/crasher", lambda p: waiting_reason(p) == "CrashLoopBackOff")
    st = pod["status"]["containerStatuses"][0]
    assert st["lastState"]["terminated"]["exitCode"] == 2
    assert st["lastState"]["terminated"]["reason"] == "Error"
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=crasher").stdout
    assert "Back-off restarting failed container c" in events
    c.kubectl("delete", "pod", "crasher", "--wait=false")


def test_bad_image_gives_err_image_never_pull_and_an_event(cluster: Cluster) -> None:
    c = cluster
    c.apply(pod_manifest("badimage", "node-2", "    image: quay.io/nobody/nothing:1"))
    pod = c.wait_for("pod/badimage", lambda p: waiting_reason(p) == "ErrImageNeverPull")
    msg = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert "quay.io/nobody/nothing:1" in msg and "command" in msg
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=badimage").stdout
    assert "ErrImageNeverPull" in events
    c.kubectl("delete", "pod", "badimage", "--wait=false")


def test_graceful_delete_runs_prestop_then_removes_pod_and_sandbox(
    cluster: Cluster,
) -> None:
    c = cluster
    c.apply(
        pod_manifest(
            "graceful",
            "node-1",
            """    image: busybox
    command: ["sh", "-c", "echo up; trap 'exit 0' TERM; while true; do sleep 0.1; done"]
    lifecycle:
      preStop:
        exec: {command: ["sh", "-c", "echo prestop-$HOSTNAME >> /proc/1/fd/1"]}""",
        )
    )
    pod = c.wait_for("pod/graceful", ready)
    netns = [n for n in os.listdir("/run/netns") if pod["metadata"]["uid"] in n]
    assert len(netns) == 1
    # The hook writes into the container's own output (its files are out of the node's
    # sight): a follower of its log sees the line before the container stops.
    follower = subprocess.Popen(
        [KUBECTL, "logs", "-f", "graceful"], stdout=subprocess.PIPE, text=True, env=c.env()
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline().strip() == "up"  # following from here on
        c.kubectl("delete", "pod", "graceful", "--timeout=15s")
        out, _ = follower.communicate(timeout=15)
    finally:
        follower.kill()
        follower.wait()
    assert "prestop-graceful" in out
    assert not [n for n in os.listdir("/run/netns") if pod["metadata"]["uid"] in n]
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=graceful").stdout
    assert "Stopping container c" in events


def _pod_processes(uid: str) -> list[int]:
    out = []
    for name in os.listdir("/run/netns"):
        if uid in name:
            res = subprocess.run(
                ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
            )
            out += [int(p) for p in res.stdout.split()]
    return out


def test_node_stop_kills_its_pods_and_start_runs_them_again(cluster: Cluster) -> None:
    c = cluster
    c.apply(pod_manifest("survivor", "node-2", f"    image: {AGNHOST}\n    args: [netexec]"))
    pod = c.wait_for("pod/survivor", ready)
    uid = pod["metadata"]["uid"]
    assert _pod_processes(uid)
    c.svcnet("node", "stop", "node-2", *c.cluster_args())
    deadline = time.monotonic() + 10
    while _pod_processes(uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _pod_processes(uid)
    assert f"{c.name}-node-2" in os.listdir("/run/netns")
    status = c.svcnet("status", *c.cluster_args()).stdout
    assert any(line.startswith("node-2") and "Stopped" in line for line in status.splitlines())
    c.svcnet("node", "start", "node-2", *c.cluster_args())
    deadline = time.monotonic() + 10
    while not _pod_processes(uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _pod_processes(uid)


def test_up_then_down_leaves_the_machine_as_it_was(tmp_path: Path) -> None:
    # running_cluster asserts on exit that nothing of the cluster is left (namespaces, links,
    # routes, nft tables, /etc/netns, processes); a pod makes sure pods are swept too.
    with running_cluster(tmp_path, nodes=1) as c:
        c.apply(pod_manifest("lonely", "node-1", f"    image: {AGNHOST}\n    args: [netexec]"))
        c.wait_for("pod/lonely", ready)
    assert not c.data_dir.exists()
    assert c.name not in c.kubeconfig.read_text()


def test_missing_command_gives_start_error_and_an_event(cluster: Cluster) -> None:
    c = cluster
    c.apply(pod_manifest("nocmd", "node-2", '    image: busybox\n    command: ["/no/such/cmd"]'))

    def start_error(p: dict[str, Any]) -> bool:
        st = (p["status"].get("containerStatuses") or [{}])[0]
        term = (
            (st.get("lastState") or {}).get("terminated")
            or (st.get("state") or {}).get("terminated")
            or {}
        )
        return term.get("reason") == "StartError" and term.get("exitCode") == 128

    c.wait_for("pod/nocmd", start_error)
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=nocmd").stdout
    assert 'exec: "/no/such/cmd": executable file not found' in events
    c.kubectl("delete", "pod", "nocmd", "--wait=false")


def test_kubectl_logs_follow_streams_until_the_container_ends(cluster: Cluster) -> None:
    c = cluster
    c.apply(
        pod_manifest(
            "follower",
            "node-1",
            '    image: busybox\n    command: ["sh", "-c", "for i in 1 2 3; do echo line-$i; '
            'sleep 0.3; done"]',
            pod_extra="  restartPolicy: Never",
        )
    )
    c.wait_for("pod/follower", lambda p: p["status"].get("phase") in ("Running", "Succeeded"))
    started = time.monotonic()
    out = c.kubectl("logs", "-f", "follower", timeout=20).stdout
    assert out.splitlines() == ["line-1", "line-2", "line-3"]
    assert time.monotonic() - started < 10
    c.wait_for("pod/follower", lambda p: p["status"].get("phase") == "Succeeded")
    c.kubectl("delete", "pod", "follower", "--wait=false")


def test_exhausted_pod_cidr_gives_failed_create_pod_sandbox(cluster: Cluster) -> None:
    # A user's conflist (it sorts first, so it wins) with room for exactly two pods.
    c = cluster
    cidr = ipaddress.ip_network(node_pod_cidr(c, "node-2"))
    first = cidr.network_address
    conf_dir = c.data_dir / "nodes" / "node-2" / "net.d"
    tiny = conf_dir / "00-tiny.conflist"
    tiny.write_text(f"""{{"cniVersion": "1.0.0", "name": "tiny", "plugins": [
  {{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
    "ipam": {{"type": "host-local", "dataDir": "{conf_dir.parent / "tiny-ipam"}",
      "ranges": [[{{"subnet": "{cidr}", "rangeStart": "{first + 200}",
                    "rangeEnd": "{first + 201}"}}]], "routes": [{{"dst": "0.0.0.0/0"}}]}}}},
  {{"type": "loopback"}}]}}""")
    try:
        for i in range(3):
            c.apply(
                pod_manifest(
                    f"full-{i}", "node-2", '    image: busybox\n    command: ["sleep", "1000"]'
                )
            )
        c.wait_for("pod/full-0", ready)
        c.wait_for("pod/full-1", ready)
        pod = c.get("pod", "full-2")
        assert not pod["status"].get("podIP")

        def failed_sandbox() -> bool:
            ev = c.kubectl("get", "events", "--field-selector", "involvedObject.name=full-2").stdout
            return "FailedCreatePodSandBox" in ev and "no IP addresses available" in ev

        deadline = time.monotonic() + 10
        while not failed_sandbox():
            assert time.monotonic() < deadline, "no FailedCreatePodSandBox event"
            time.sleep(0.2)
        assert waiting_reason(c.get("pod", "full-2")) == "ContainerCreating"
    finally:
        c.kubectl(
            "delete",
            "pod",
            "full-0",
            "full-1",
            "full-2",
            "--wait=true",
            "--timeout=20s",
            check=False,
        )
        tiny.unlink()


def test_down_cleans_up_after_the_supervisor_was_killed(tmp_path: Path) -> None:
    # running_cluster's exit asserts that nothing is left, agents and control plane included.
    with running_cluster(tmp_path, nodes=1) as c:
        c.apply(pod_manifest("orphan", "node-1", f"    image: {AGNHOST}\n    args: [netexec]"))
        c.wait_for("pod/orphan", ready)
        pid = int((c.data_dir / "state" / "supervisor.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


@pytest.mark.parametrize("server_node", ["node-1", "node-2"])
def test_pods_reach_each_other_by_pod_ip_with_the_source_ip_kept(
    cluster: Cluster, server_node: str
) -> None:
    c = cluster
    server, client = f"srv-{server_node}", f"cli-{server_node}"
    c.apply(pod_manifest(server, server_node, f"    image: {AGNHOST}\n    args: [netexec]"))
    c.apply(pod_manifest(client, "node-1", f"    image: {AGNHOST}\n    args: [netexec]"))
    srv = c.wait_for(f"pod/{server}", ready)
    cli = c.wait_for(f"pod/{client}", ready)
    url = f"http://{srv['status']['podIP']}:8080/clientip"
    code = (
        f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=3).read().decode())"
    )
    res = c.svcnet("exec", client, *c.cluster_args(), "--", "python3", "-S", "-c", code)
    assert res.stdout.strip().split(":")[0] == cli["status"]["podIP"]
    c.kubectl("delete", "pod", server, client, "--wait=false")
