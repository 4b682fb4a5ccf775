"""The streams of every tutorial, with the real kubectl against a real cluster: port-forward to
a pod, a deployment and a Service; exec, attach and ``run -i --rm``; ``cp`` both ways; logs
flags; ``debug`` with an ephemeral container. Each transport kubectl has is exercised: the
WebSocket ones kubectl 1.31+ uses by default and SPDY, which kubectl falls back to (and which
its ``KUBECTL_*_WEBSOCKETS=false`` switches select, as older kubectl and clients speak it).

Ranges: the cluster fixture's (a random /24 of 172.29.0.0/16 underlay, pods in 10.160/12).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_fixture import KUBECTL, Cluster, svcnet_cluster  # noqa: F401 - the fixture
from terminal import in_terminal

from svcnet.testing.polling import eventually_sync

pytestmark = pytest.mark.e2e

SPDY = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
TRANSPORTS = {"websocket": {}, "spdy": SPDY}


AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52"


@pytest.fixture(scope="module")
def web(svcnet_cluster: Cluster) -> Cluster:  # noqa: F811 - the fixture
    """Deployment ``web`` (2 agnhost pods answering their own name on port 80, as the
    tests of each stream check which pod answered) behind Service ``web`` port 80."""
    c = svcnet_cluster
    c.kubectl(
        "create", "deployment", "web", f"--image={AGNHOST}", "--replicas=2",
        "--", "/agnhost", "serve-hostname", "--port=80",
    )  # fmt: skip
    c.kubectl("expose", "deployment", "web", "--port=80")
    c.wait_for("deployment/web", lambda d: (d.get("status") or {}).get("readyReplicas") == 2, 60.0)
    return c


def web_pods(c: Cluster) -> list[str]:
    pods = c.get("pods", "-l", "app=web")["items"]
    return [p["metadata"]["name"] for p in pods]


@contextlib.contextmanager
def port_forward(c: Cluster, target: str, remote: str, env: dict[str, str]) -> Iterator[int]:
    """``kubectl port-forward TARGET :REMOTE`` running; yields the local port it chose."""
    proc = subprocess.Popen(
        [KUBECTL, "port-forward", target, f":{remote}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**c.env(), **env},
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        m = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) ->", line)
        if m is None:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"kubectl port-forward did not start: {line!r} {err}")
        yield int(m.group(1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as r:
        body: str = r.read().decode()
        return body


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("target", ["svc/web", "deployment/web", "pod"])
def test_port_forward_answers_from_a_pod(web: Cluster, target: str, transport: str) -> None:
    pods = web_pods(web)
    name = f"pod/{pods[0]}" if target == "pod" else target
    with port_forward(web, name, "80", TRANSPORTS[transport]) as port:
        bodies = [http_get(port) for _ in range(3)]
    for body in bodies:
        served_by = [p for p in pods if p in body]
        assert served_by, f"answer names no pod of web {pods}: {body[:300]}"
        if target == "pod":
            assert served_by == [pods[0]]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_port_forward_to_a_closed_port_reports_the_error(web: Cluster, transport: str) -> None:
    pod = web_pods(web)[0]
    env = {**web.env(), **TRANSPORTS[transport]}
    proc = subprocess.Popen(
        [KUBECTL, "port-forward", f"pod/{pod}", ":81"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        m = re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert m is not None
        with contextlib.suppress(OSError):
            http_get(int(m.group(1)))
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert f"error forwarding port 81 to pod {pod}" in err, err
    assert "connection refused" in err, err


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_with_stdin_and_exit_code(web: Cluster, transport: str) -> None:
    pod = web_pods(web)[0]
    env = {**web.env(), **TRANSPORTS[transport]}
    res = subprocess.run(
        [KUBECTL, "exec", "-i", pod, "--", "sh", "-c", "tr a-z A-Z; echo err >&2; exit 4"],
        input="hello\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.stdout == "HELLO\n"
    assert "err\n" in res.stderr
    assert res.returncode == 4, res.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_it_has_a_terminal_of_the_clients_size(web: Cluster, transport: str) -> None:
    pod = web_pods(web)[0]
    out, code = in_terminal(
        web,
        ["exec", "-it", pod, "--", "sh", "-c", "tty; stty size"],
        [],
        env=TRANSPORTS[transport],
        size=(33, 111),
    )
    assert code == 0, out
    assert "/dev/pts/" in out
    assert "33 111" in out


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_debug_it_runs_an_ephemeral_container_in_the_pods_network(
    web: Cluster, transport: str
) -> None:
    pod = web.get("pods", "-l", "app=web")["items"][-1]
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    out, code = in_terminal(
        web,
        ["debug", "-it", name, "--image=nginx", "--target=agnhost", "--", "sh"],
        [("try pressing enter", "ip -o -4 addr show eth0; hostname; exit\r")],
        env=TRANSPORTS[transport],
    )
    assert code == 0, out
    assert f"inet {ip}/" in out, out
    assert f"\n{name}" in out.replace("\r", ""), out
    m = re.search(r"debug container name to (debugger-\w+)", out)
    assert m is not None, out
    debugger = m.group(1)

    def finished(p: dict[str, Any]) -> bool:
        for st in p["status"].get("ephemeralContainerStatuses", []):
            if st["name"] == debugger:
                return st["state"].get("terminated", {}).get("exitCode") == 0
        return False

    after = web.wait_for(f"pod/{name}", finished, 30.0)
    (spec,) = [e for e in after["spec"]["ephemeralContainers"] if e["name"] == debugger]
    assert spec["targetContainerName"] == "agnhost"
    assert after["status"]["phase"] == "Running"


def _pod_gone(c: Cluster, name: str) -> bool:
    res = c.kubectl("get", "pod", name, "-o", "name", check=False)
    return res.returncode != 0 and "NotFound" in res.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_run_i_rm_prints_the_output_exits_0_and_removes_the_pod(
    svcnet_cluster: Cluster,  # noqa: F811 - the fixture
    transport: str,
) -> None:
    c = svcnet_cluster
    name = f"run-{transport}"
    res = subprocess.run(
        [
            KUBECTL,
            "run",
            name,
            "-i",
            "--rm",
            "--restart=Never",
            "--image=nginx",
            "--command",
            "--",
            "sh",
            "-c",
            "read line; echo got: $line; hostname",
        ],
        input="ping\n",
        capture_output=True,
        text=True,
        env={**c.env(), **TRANSPORTS[transport]},
        timeout=90,
    )
    assert res.returncode == 0, res.stderr
    assert "got: ping\n" in res.stdout
    assert f"{name}\n" in res.stdout
    assert f'pod "{name}" deleted' in res.stdout
    eventually_sync(lambda: _pod_gone(c, name), 30.0, what=f"pod {name} gone")


def test_run_i_rm_passes_the_exit_code_on(svcnet_cluster: Cluster) -> None:  # noqa: F811
    res = svcnet_cluster.kubectl(
        "run",
        "fails",
        "-i",
        "--rm",
        "--restart=Never",
        "--image=nginx",
        "--command",
        "--",
        "sh",
        "-c",
        "echo bye; exit 3",
        check=False,
        timeout=90,
    )
    assert "bye" in res.stdout
    assert res.returncode == 3, res.stderr


def test_cp_copies_both_ways(web: Cluster, tmp_path: Any) -> None:
    pod = web_pods(web)[0]
    # Pods share the node's filesystem for now: a directory of the test's own under /tmp.
    remote = f"/tmp/svcnet-cp-{os.urandom(4).hex()}"
    try:
        src = tmp_path / "in.txt"
        src.write_bytes(os.urandom(3000).hex().encode() + b"\nend\n")
        web.kubectl("exec", pod, "--", "mkdir", remote)
        web.kubectl("cp", str(src), f"{pod}:{remote}/copied.txt")
        inside = web.kubectl("exec", pod, "--", "cat", f"{remote}/copied.txt").stdout
        assert inside == src.read_text()
        web.kubectl("exec", pod, "--", "sh", "-c", f"echo made in the pod > {remote}/out.txt")
        dst = tmp_path / "out.txt"
        web.kubectl("cp", f"{pod}:{remote}/out.txt", str(dst))
        assert dst.read_text() == "made in the pod\n"
    finally:
        web.kubectl("exec", pod, "--", "rm", "-rf", remote, check=False)


COUNTER = """
apiVersion: v1
kind: Pod
metadata: {name: NAME}
spec:
  restartPolicy: POLICY
  containers:
  - name: c
    image: nginx
    command: [sh, -c, 'read x < /proc/sys/kernel/random/uuid; echo run-$x; for i in 1 2 3; do echo line $i; sleep 1.1; done; echo oops >&2; exit CODE']
"""


def counter(c: Cluster, name: str, policy: str, code: int) -> None:
    manifest = COUNTER.replace("NAME", name).replace("POLICY", policy).replace("CODE", str(code))
    c.apply(manifest)


def test_logs_follow_ends_with_the_container_and_keeps_stderr(web: Cluster) -> None:
    counter(web, "follow", "Never", 0)
    web.wait_for("pod/follow", lambda p: p["status"].get("phase") in ("Running", "Succeeded"))
    out = web.kubectl("logs", "-f", "follow", timeout=60).stdout
    assert re.fullmatch(r"run-[0-9a-f-]+\nline 1\nline 2\nline 3\noops\n", out), out


def test_logs_timestamps_and_since_time_select_lines(web: Cluster) -> None:
    counter(web, "stamps", "Never", 0)
    web.wait_for("pod/stamps", lambda p: p["status"].get("phase") == "Succeeded", 60.0)
    stamped = web.kubectl("logs", "stamps", "--timestamps").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped][1:] == [
        "line 1",
        "line 2",
        "line 3",
        "oops",
    ]
    stamps = [line.split(" ", 1)[0] for line in stamped]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", s) for s in stamps)
    assert stamps == sorted(stamps)
    # kubectl sends --since-time in whole seconds (metav1.Time): line 2 came more than a
    # second after line 1, so the second it started in is after line 1.
    second = stamps[2].split(".")[0].rstrip("Z") + "Z"
    since = web.kubectl("logs", "stamps", f"--since-time={second}").stdout
    assert since == "line 2\nline 3\noops\n"
    assert web.kubectl("logs", "stamps", "--tail=2").stdout == "line 3\noops\n"
    assert web.kubectl("logs", "stamps", "--since=1h").stdout.endswith(
        "line 1\nline 2\nline 3\noops\n"
    )


def test_logs_previous_shows_the_instance_before_the_restart(web: Cluster) -> None:
    counter(web, "restarts", "Always", 1)
    web.wait_for(
        "pod/restarts",
        lambda p: any(
            s.get("restartCount", 0) >= 1 for s in p["status"].get("containerStatuses", [])
        ),
        60.0,
    )
    previous = web.kubectl("logs", "restarts", "--previous").stdout
    current = web.kubectl("logs", "restarts").stdout
    assert re.fullmatch(r"run-[0-9a-f-]+\nline 1\nline 2\nline 3\noops\n", previous), previous
    assert current.startswith("run-")
    assert current.splitlines()[0] != previous.splitlines()[0]


def test_python_client_port_forward_over_websocket_channels(web: Cluster) -> None:
    """The Python client's port-forward: WebSocket channels (data 0, error 1, each opened
    by the port as two little-endian bytes), not kubectl's SPDY tunnel."""
    from kubernetes import client, config
    from kubernetes.stream import portforward

    pod = web_pods(web)[0]
    api = client.CoreV1Api(config.new_client_from_config(str(web.kubeconfig)))
    pf = portforward(api.connect_get_namespaced_pod_portforward, pod, "default", ports="80")
    sock = pf.socket(80)
    sock.setblocking(True)
    sock.settimeout(30)
    sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    body = b""
    while chunk := sock.recv(65536):
        body += chunk
    sock.close()
    assert body.startswith(b"HTTP/1.") and pod.encode() in body, body[:300]
    assert pf.error(80) is None


def test_run_rm_i_resolves_a_service_as_the_tutorials_do(web: Cluster) -> None:
    """`kubectl run tmp --rm -i --image=busybox -- nslookup web`, with what pods can run
    today: an explicit command from the node's filesystem (no busybox image yet)."""
    cluster_ip = web.get("svc", "web")["spec"]["clusterIP"]
    res = web.kubectl(
        "run", "lookup", "--rm", "-i", "--restart=Never", "--image=nginx", "--command",
        "--", "getent", "hosts", "web",
        timeout=90,
    )  # fmt: skip
    assert res.stdout.split()[:2] == [cluster_ip, "web.default.svc.cluster.local"], res.stdout
    assert 'pod "lookup" deleted' in res.stdout


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_streams_what_a_running_container_prints(web: Cluster, transport: str) -> None:
    name = f"ticker-{transport}"
    web.apply(
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: nginx
    command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo tick $i; echo tock $i >&2; sleep 0.2; done']
"""
    )
    web.wait_for(f"pod/{name}", lambda p: p["status"].get("phase") == "Running")
    proc = subprocess.Popen(
        [KUBECTL, "attach", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**web.env(), **TRANSPORTS[transport]},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
        web.kubectl("delete", "pod", name, "--wait=false")
    ticks = [int(m.group(1)) for m in (re.fullmatch(r"tick (\d+)\n", x) for x in lines) if m]
    assert len(ticks) == 3, (lines, err)
    assert ticks == list(range(ticks[0], ticks[0] + 3))
    assert "tock" in err  # stderr arrives on its own stream


def test_run_it_rm_gives_a_terminal(web: Cluster) -> None:
    out, code = in_terminal(
        web,
        ["run", "term", "-it", "--rm", "--restart=Never", "--image=nginx", "--command", "--", "sh"],
        [("try pressing enter", "tty; stty size; exit 0\r")],
        size=(40, 120),
    )
    assert code == 0, out
    assert "/dev/pts/" in out and "40 120" in out, out
    assert 'pod "term" deleted' in out, out
