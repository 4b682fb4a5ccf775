"""Every pod in a sandbox, every image a filesystem: what a pod can see and do on a real
2-node cluster, through kubectl. Each pod's verdict comes from its own output (kubectl logs)
or from kubectl exec into it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import Cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster

pytestmark = pytest.mark.e2e

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.52"


@pytest.fixture
def cluster(svcnet_cluster: Cluster) -> Cluster:
    return svcnet_cluster


def run_pod(
    c: Cluster,
    name: str,
    image: str,
    script: str | None = None,
    security: dict[str, Any] | None = None,
    node: str = "node-1",
) -> str:
    """Run ``sh -c script`` (or the image's own command) to completion; its output.

    The script goes through kubelet's $(VAR) expansion: ``$$$$`` is the shell's ``$$``."""
    container: dict[str, Any] = {"name": "c", "image": image}
    if script is not None:
        container["command"] = ["sh", "-c", script]
    if security:
        container["securityContext"] = security
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
        },
    }
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        c.wait_for(f"pod/{name}", lambda p: p["status"].get("phase") in ("Succeeded", "Failed"))
        return c.kubectl("logs", name).stdout
    finally:
        c.kubectl("delete", "pod", name, "--wait=false", check=False)


def lines(out: str) -> dict[str, str]:
    """``key=value`` lines of a pod's output."""
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_first_process_is_pid_1_and_the_machines_processes_are_out_of_sight(
    cluster: Cluster,
) -> None:
    out = run_pod(
        cluster,
        "pids",
        "busybox",
        "echo pid=$$$$; echo procs=$(ls /proc | grep -c '^[0-9]'); "
        "echo init=$(tr '\\0' ' ' < /proc/1/cmdline)",
    )
    seen = lines(out)
    assert seen["pid"] == "1"
    # the shell, its subshell, ls and grep: nothing of the machine's hundreds
    assert int(seen["procs"]) <= 5
    assert seen["init"].startswith("sh -c echo pid=")


def test_svcnet_state_kubeconfigs_and_other_namespaces_are_out_of_sight(
    cluster: Cluster,
) -> None:
    paths = [
        str(cluster.data_dir),
        str(cluster.kubeconfig),
        "/root/.kube/config",
        "/run/netns",
        "/etc/netns",
        "/var/lib/svcnet",
    ]
    assert all(os.path.exists(p) for p in paths[:2])  # they exist on the node
    script = "; ".join(f"test -e {p} && echo seen={p}" for p in paths)
    script += "; unshare -n true && echo unshared=yes; nsenter -t 1 -n true && echo entered=yes"
    out = run_pod(cluster, "secrets", "nicolaka/netshoot", script + "; echo done=1")
    assert lines(out) == {"done": "1"}, out


def test_cannot_change_the_nodes_nftables_routes_or_links(cluster: Cluster) -> None:
    script = (
        "nft add table inet evil 2>&1 && echo nft=changed; "
        "ip route add 10.123.0.0/24 dev eth0 2>&1 && echo route=changed; "
        "ip link add v0 type veth peer name v1 2>&1 && echo link=changed; "
        "echo 0 > /proc/sys/net/ipv4/ip_forward 2>&1 && echo sysctl=changed; echo done=1"
    )
    out = run_pod(cluster, "netdeny", "nicolaka/netshoot", script)
    assert lines(out) == {"done": "1"}, out
    assert "Operation not permitted" in out


def test_net_admin_capability_grants_network_changes_in_the_pod_only(cluster: Cluster) -> None:
    script = (
        "ip link add v0 type veth peer name v1 && echo link=added; "
        "ip route add 10.123.0.0/24 dev eth0 && echo route=added; "
        "nft add table inet mine && echo nft=added; "
        "mkdir /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null && echo mount=yes; echo done=1"
    )
    out = run_pod(
        cluster,
        "netadmin",
        "nicolaka/netshoot",
        script,
        {"capabilities": {"add": ["NET_ADMIN"]}},
    )
    assert lines(out) == {"link": "added", "route": "added", "nft": "added", "done": "1"}, out


def test_privileged_can_mount_and_change_its_network(cluster: Cluster) -> None:
    script = (
        "mkdir /tmp/m; mount -t tmpfs none /tmp/m && echo mount=yes; "
        "ip link add v0 type veth peer name v1 && echo link=added; "
        "echo 1 > /proc/sys/net/ipv4/ip_forward && echo sysctl=changed; "
        "echo caps=$(grep CapEff /proc/self/status | cut -f2)"
    )
    out = run_pod(cluster, "priv", "nicolaka/netshoot", script, {"privileged": True})
    seen = lines(out)
    assert (seen.get("mount"), seen.get("link"), seen.get("sysctl")) == ("yes", "added", "changed")
    # every capability the machine gives svcnet itself
    own = next(
        line
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("CapBnd:")
    )
    assert seen["caps"] == own.split()[1], out


def test_default_capabilities_are_containerds_set(cluster: Cluster) -> None:
    out = run_pod(
        cluster,
        "caps",
        "busybox",
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -d '\\t' | tr ':' '='",
    )
    seen = lines(out)
    # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
    # SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    assert seen["CapEff"] == seen["CapBnd"] == "00000000a80425fb"
    assert seen["NoNewPrivs"] == "0"


def test_only_tmp_run_and_dev_shm_are_writable(cluster: Cluster) -> None:
    paths = ["/", "/etc", "/usr/bin", "/var/tmp", "/dev", "/proc/sys/kernel", "/sys/kernel"]
    script = "; ".join(f"touch {p}/w 2>/dev/null && echo wrote={p}" for p in paths)
    script += "; touch /tmp/w /run/w /dev/shm/w && echo scratch=ok"
    out = run_pod(cluster, "rofs", "nicolaka/netshoot", script)
    assert lines(out) == {"scratch": "ok"}, out


def test_read_only_root_filesystem_leaves_tmp_read_only_too(cluster: Cluster) -> None:
    out = run_pod(
        cluster,
        "rorootfs",
        "busybox",
        "touch /tmp/w 2>/dev/null && echo tmp=writable; echo done=1",
        {"readOnlyRootFilesystem": True},
    )
    assert lines(out) == {"done": "1"}, out


def test_run_as_user_and_group(cluster: Cluster) -> None:
    out = run_pod(
        cluster,
        "user",
        "busybox",
        "echo uid=$(id -u) gid=$(id -g); echo caps=$(grep CapEff /proc/self/status | cut -f2)",
        {"runAsUser": 1000, "runAsGroup": 3000},
    )
    assert "uid=1000 gid=3000" in out
    assert lines(out)["caps"] == "0000000000000000"


def test_allow_privilege_escalation_false_sets_no_new_privs(cluster: Cluster) -> None:
    out = run_pod(
        cluster,
        "nnp",
        "busybox",
        "grep NoNewPrivs /proc/self/status | tr -d '\\t' | tr ':' '='",
        {"allowPrivilegeEscalation": False},
    )
    assert lines(out)["NoNewPrivs"] == "1"


def test_run_as_non_root_refuses_a_root_image(cluster: Cluster) -> None:
    c = cluster
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nonroot"},
        "spec": {
            "nodeName": "node-2",
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True},
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "100"]}],
        },
    }
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        got = c.wait_for("pod/nonroot", lambda p: _waiting(p)[0] == "CreateContainerConfigError")
        assert "container has runAsNonRoot and image will run as root" in _waiting(got)[1]
    finally:
        c.kubectl("delete", "pod", "nonroot", "--wait=false", check=False)


def _waiting(pod: dict[str, Any]) -> tuple[str, str]:
    st = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
    w = (st.get("state") or {}).get("waiting") or {}
    return str(w.get("reason", "")), str(w.get("message", ""))


def test_exec_runs_with_the_containers_user_and_capabilities(cluster: Cluster) -> None:
    c = cluster
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "execme"},
        "spec": {
            "nodeName": "node-2",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["sleep", "1000"],
                    "securityContext": {"runAsUser": 1000},
                }
            ],
        },
    }
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        c.wait_for("pod/execme", lambda p: p["status"].get("phase") == "Running")
        out = c.kubectl("exec", "execme", "--", "sh", "-c", "id -u; cat /proc/1/cmdline").stdout
        assert out.split("\n", 1)[0] == "1000"
        assert "sleep" in out
    finally:
        c.kubectl("delete", "pod", "execme", "--wait=false", check=False)


# -- images -------------------------------------------------------------------------------------
def test_images_have_their_own_filesystem_and_config(cluster: Cluster) -> None:
    # busybox: its default cmd is sh, its /bin is busybox's links, no Debian /usr.
    out = run_pod(
        cluster, "bb", "busybox", "readlink /bin/ls; test -e /usr/bin/apt || echo noapt=1"
    )
    assert out.splitlines()[0] == "busybox" and "noapt=1" in out
    # curlimages/curl: args go to its entrypoint, curl.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "curlver"},
        "spec": {
            "nodeName": "node-1",
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "curlimages/curl:8.5.0", "args": ["--version"]}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        cluster.wait_for("pod/curlver", lambda p: p["status"].get("phase") == "Succeeded")
        assert cluster.kubectl("logs", "curlver").stdout.startswith("curl ")
    finally:
        cluster.kubectl("delete", "pod", "curlver", "--wait=false", check=False)


def _serve(c: Cluster, name: str, image: str, command: list[str] | None = None) -> str:
    container: dict[str, Any] = {"name": "c", "image": image}
    if command:
        container["command"] = command
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": "node-2", "terminationGracePeriodSeconds": 1,
                 "containers": [container]},
    }  # fmt: skip
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    got = c.wait_for(f"pod/{name}", lambda p: p["status"].get("phase") == "Running")
    return str(got["status"]["podIP"])


@pytest.mark.parametrize(
    ("image", "command", "port", "page"),
    [
        ("nginx:1.27", None, 80, "Welcome to nginx!"),
        ("httpd:2.4", None, 80, "It works!"),
        (AGNHOST, ["/agnhost", "netexec", "--http-port=8080"], 8080, "web-agnhost"),
    ],
    ids=["nginx", "httpd", "agnhost"],
)
def test_server_images_serve(
    cluster: Cluster, image: str, command: list[str] | None, port: int, page: str
) -> None:
    name = "web-" + image.split("/")[-1].split(":")[0]
    ip = _serve(cluster, name, image, command)
    path = "/hostname" if port == 8080 else "/"
    try:
        out = run_pod(
            cluster,
            f"get-{name}",
            "nicolaka/netshoot",
            f"for i in $(seq 50); do curl -fsS http://{ip}:{port}{path} && break; sleep 0.2; done",
        )
        assert page in out, out
    finally:
        cluster.kubectl("delete", "pod", name, "--wait=false", check=False)


def test_unknown_image_without_command_names_svcnet_image_load(cluster: Cluster) -> None:
    c = cluster
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "noimage"},
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "c", "image": "quay.io/nobody/nothing:1"}],
        },
    }
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        got = c.wait_for("pod/noimage", lambda p: _waiting(p)[0] == "ErrImageNeverPull")
        assert "svcnet image load" in _waiting(got)[1]
    finally:
        c.kubectl("delete", "pod", "noimage", "--wait=false", check=False)


def test_unknown_image_with_command_runs_over_the_nodes_programs_with_a_warning(
    cluster: Cluster,
) -> None:
    out = run_pod(
        cluster,
        "nodeview",
        "quay.io/nobody/nothing:1",
        "test -x /usr/sbin/ip && echo ip=yes; echo pid=$$$$; test -e /run/netns || echo netns=no",
    )
    assert lines(out) == {"ip": "yes", "pid": "1", "netns": "no"}, out
    events = cluster.kubectl(
        "get", "events", "--field-selector", "involvedObject.name=nodeview"
    ).stdout
    assert "ImageNotPresent" in events and "read-only view of the node" in events


def _make_archive(tmp: Path, ref: str) -> Path:
    """An image made here with umoci (busybox + a config), saved as a docker archive."""
    layout = tmp / "layout"
    run = [["umoci", "init", "--layout", str(layout)], ["umoci", "new", "--image", f"{layout}:t"]]
    for argv in run:
        subprocess.run(argv, check=True)
    bundle = tmp / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:t", str(bundle)],
                   check=True)  # fmt: skip
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir()
    subprocess.run(["cp", "/bin/busybox", str(rootfs / "bin/busybox")], check=True)
    for applet in ("sh", "cat", "echo"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "greeting.txt").write_text("hello from a loaded image\n")
    subprocess.run(["umoci", "repack", "--image", f"{layout}:t", str(bundle)], check=True)
    subprocess.run(
        ["umoci", "config", "--image", f"{layout}:t", "--config.entrypoint", "/bin/cat",
         "--config.cmd", "/greeting.txt", "--config.env", "PATH=/bin"],
        check=True,
    )  # fmt: skip
    archive = tmp / "image.tar"
    subprocess.run(
        ["skopeo", "--insecure-policy", "copy", "-q", f"oci:{layout}:t",
         f"docker-archive:{archive}:{ref}"],
        check=True,
    )  # fmt: skip
    return archive


def test_svcnet_image_load_runs_as_a_pod(cluster: Cluster, tmp_path: Path) -> None:
    ref = f"example.test/loaded-{cluster.name}:v1"
    archive = _make_archive(tmp_path, ref)
    out = cluster.svcnet("image", "load", str(archive)).stdout
    assert f"Loaded image: {ref}" in out
    try:
        assert ref in cluster.svcnet("image", "ls").stdout
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "loaded"},
            "spec": {
                "nodeName": "node-2",
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": ref}],
            },
        }
        cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
        cluster.wait_for("pod/loaded", lambda p: p["status"].get("phase") == "Succeeded")
        assert cluster.kubectl("logs", "loaded").stdout == "hello from a loaded image\n"
    finally:
        cluster.kubectl("delete", "pod", "loaded", "--wait=false", check=False)
        cluster.svcnet("image", "rm", ref, check=False)


@pytest.mark.parametrize(
    "content", [b"this is no tar", b"\x1f\x8b\x08\x00corrupt"], ids=["text", "corrupt-gzip"]
)
def test_image_load_of_a_bad_archive_fails_and_imports_nothing(
    cluster: Cluster, tmp_path: Path, content: bytes
) -> None:
    before = cluster.svcnet("image", "ls").stdout
    bad = tmp_path / "bad.tar"
    bad.write_bytes(content)
    res = cluster.svcnet("image", "load", str(bad), check=False)
    assert res.returncode != 0 and "not an image archive" in res.stderr
    assert cluster.svcnet("image", "ls").stdout == before
