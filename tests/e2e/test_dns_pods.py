"""Cluster DNS from pods: the names of issue 5's "Must show", asked the way applications ask.

One cluster for the module (cluster_fixture: unique name, its own ranges, temporary data dir
and kubeconfig, ``svcnet down`` and a leak check at the end). Its service range is a random
/16 of 10.176.0.0/12, so kube-dns is on that range's 10th address, not 10.96.0.10; the pods'
resolv.conf points at it the same way. Everything here runs inside the cluster's own
namespaces: the DNS pods have no upstream, so no query leaves the machine.

The client pods run the built-in nicolaka/netshoot image: ``getent`` and ``dig`` are Debian's,
and the pod-side probes are a script of this module passed to this test run's Python with
``-c`` (built-in images mount svcnet's interpreter; dnspython is in its venv). Commands go
into pods with ``kubectl exec``.

Objects: namespace ``other``; Services ``web`` (default, named port ``http``), ``api``
(other), headless ``db`` with StatefulSet ``db`` (2 pods), ExternalName ``ext``; a client pod
in each namespace, on different nodes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import KUBECTL, Cluster, running_cluster

from svcnet.dataplane.nft_exec import parse_json_elements
from svcnet.proxy.model import Protocol
from svcnet.proxy.rules import ENDPOINTS, FAMILY, TABLE, endpoint_map
from svcnet.testing.polling import eventually_sync

pytestmark = pytest.mark.e2e

PY = sys.executable
ZONE = "cluster.local"
POLL_STEP = 0.05  # the pods poll every 50 ms
EXTERNAL = "my.database.example.com"

WORKLOADS = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: other}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: other}}
spec:
  selector: {{app: api}}
  ports: [{{name: grpc, port: 9000, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db, namespace: default}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{name: peer, port: 7000, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext, namespace: default}}
spec:
  type: ExternalName
  externalName: {EXTERNAL}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: default}}
spec:
  serviceName: db
  replicas: 2
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{{name: db, image: nicolaka/netshoot, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: default}}
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 1
  containers: [{{name: c, image: nicolaka/netshoot, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: other}}
spec:
  nodeName: node-2
  terminationGracePeriodSeconds: 1
  containers: [{{name: c, image: nicolaka/netshoot, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: dns-none, namespace: default}}
spec:
  terminationGracePeriodSeconds: 1
  dnsPolicy: None
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [corp.example]
    options: [{{name: ndots, value: "2"}}, {{name: edns0}}]
  containers: [{{name: c, image: nicolaka/netshoot, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: dns-default, namespace: default}}
spec:
  terminationGracePeriodSeconds: 1
  dnsPolicy: Default
  containers: [{{name: c, image: nicolaka/netshoot, command: [sleep, "3600"]}}]
"""

# Runs inside a pod. `wait NAME present|absent TIMEOUT`: ask NAME (A) every 50 ms through the
# pod's nameserver; print "polling" once the first answer is the opposite state, then the
# wall-clock time (the machine's clock, shared with the test) of the first answer in the
# wanted state. `load NAME SECONDS INTERVAL`: one query every INTERVAL s, each from a new
# socket (new source port: a new conntrack entry and a fresh backend choice), not waiting
# for answers; an answer that is not NOERROR with data, an ICMP error or 0.5 s of silence is
# a failure. Prints JSON.
PROBE = r"""
import json, select, socket, sys, time
import dns.message, dns.rcode

def nameserver():
    for line in open("/etc/resolv.conf"):
        p = line.split()
        if p and p[0] == "nameserver":
            return p[1]

def ask(ns, wire):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    try:
        s.sendto(wire, (ns, 53))
        r = dns.message.from_wire(s.recv(4096))
        return r.rcode() == dns.rcode.NOERROR and bool(r.answer)
    except OSError:
        return None
    finally:
        s.close()

def wait(ns, name, want, timeout):
    wire = dns.message.make_query(name, "A").to_wire()
    present = want == "present"
    announced = False
    queries = 0
    end = time.time() + timeout
    while time.time() < end:
        got = ask(ns, wire)
        queries += 1
        if got is not None and got != present and not announced:
            print("polling", flush=True)
            announced = True
        elif got == present and announced:
            print(json.dumps({"t": time.time(), "queries": queries}), flush=True)
            return
        time.sleep(0.05)
    print(json.dumps({"t": None, "queries": queries}), flush=True)

def load(ns, name, seconds, interval, timeout=0.5):
    wire = dns.message.make_query(name, "A").to_wire()
    pending, failed, sent = {}, [], 0
    print("polling", flush=True)
    start = next_send = time.time()
    while True:
        now = time.time()
        if now < start + seconds and now >= next_send:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.connect((ns, 53))
            s.send(wire)
            pending[s] = now
            sent += 1
            next_send += interval
        if not pending and now >= start + seconds:
            break
        ready, _, _ = select.select(list(pending), [], [], 0.002)
        for s in ready:
            t = pending.pop(s)
            try:
                r = dns.message.from_wire(s.recv(4096))
                if r.rcode() != dns.rcode.NOERROR or not r.answer:
                    failed.append([t, dns.rcode.to_text(r.rcode())])
            except OSError as e:
                failed.append([t, type(e).__name__])
            s.close()
        now = time.time()
        for s, t in list(pending.items()):
            if now - t > timeout:
                failed.append([t, "Timeout"])
                del pending[s]
                s.close()
    print(json.dumps({"sent": sent, "start": start, "failed": sorted(failed)}), flush=True)

mode, ns = sys.argv[1], sys.argv[2]
ns = nameserver() if ns == "-" else ns
if mode == "wait":
    wait(ns, sys.argv[3], sys.argv[4], float(sys.argv[5]))
else:
    load(ns, sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("svcnet-dns-pods"), nodes=2) as c:
        yield c


@pytest.fixture(scope="module")
def probe() -> str:
    """The probe's code, run in a pod as ``python -c CODE`` (the pod sees none of our files)."""
    return PROBE


def ready_dns_endpoints(c: Cluster) -> list[str]:
    slices = c.get(
        "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns"
    )
    return sorted(
        a
        for s in slices["items"]
        for ep in s.get("endpoints") or []
        if (ep.get("conditions") or {}).get("ready") is not False
        for a in ep.get("addresses") or []
    )


def wait_dns_replicas(c: Cluster, count: int = 2, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ips = ready_dns_endpoints(c)
        if len(ips) == count:
            return ips
        time.sleep(0.1)
    raise AssertionError(f"kube-dns has {ready_dns_endpoints(c)} ready, wanted {count}")


def programmed_udp_endpoints(c: Cluster, node: int, service_ip: str, port: int) -> set[str]:
    """The endpoint addresses node ``node``'s proxy has programmed for a UDP Service port."""
    argv = ["ip", "netns", "exec", f"{c.name}-node-{node}", "nft", "-j", "list", "map", FAMILY,
            TABLE, endpoint_map(ENDPOINTS, Protocol.UDP)]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return set()
    return {
        e.data[0]
        for e in parse_json_elements(json.loads(out.stdout))
        if e.key[:2] == (service_ip, str(port)) and isinstance(e.data, tuple)
    }


def settled_dns(c: Cluster) -> None:
    """Both replicas ready, and every node's proxy sends to exactly those two: each disruption
    test counts only the losses it causes."""
    ready = set(wait_dns_replicas(c))
    dns_ip = c.get("service", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"]
    for node in range(1, c.nodes + 1):
        eventually_sync(
            lambda n=node: programmed_udp_endpoints(c, n, dns_ip, 53) == ready,
            30,
            what=f"node-{node}'s proxy sends kube-dns to {sorted(ready)}",
        )


def pod_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(x["type"] == "Ready" and x["status"] == "True" for x in conds)


@pytest.fixture(scope="module")
def dns(cluster: Cluster) -> dict[str, Any]:
    """The add-on (deployed by ``svcnet up`` — or here, if up did not: see the first test),
    both replicas ready, and the workloads above ready. Returns facts the tests compare to."""
    c = cluster
    deployed_by_up = (
        c.kubectl("get", "service", "kube-dns", "-n", "kube-system", check=False).returncode == 0
    )
    if not deployed_by_up:
        subprocess.run(
            [PY, "-m", "svcnet.cluster.addons", "--data-dir", str(c.data_dir)],
            check=True,
            capture_output=True,
        )
    c.apply(WORKLOADS)
    dns_ips = wait_dns_replicas(c)
    for ns in ("default", "other"):
        c.wait_for("pod/client", pod_ready, 60, "-n", ns)
    for pod in ("dns-none", "dns-default"):
        c.wait_for(f"pod/{pod}", pod_ready, 60)
    c.wait_for(
        "pods",
        lambda p: len([x for x in p["items"] if pod_ready(x)]) == 2,
        90,
        "-l",
        "app=db",
    )
    pods = c.get("pods", "-l", "app=db")["items"]
    return {
        "deployed_by_up": deployed_by_up,
        "dns_ip": c.get("service", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"],
        "dns_pod_ips": dns_ips,
        "web": c.get("service", "web")["spec"]["clusterIP"],
        "api": c.get("service", "api", "-n", "other")["spec"]["clusterIP"],
        "db": {p["metadata"]["name"]: p["status"]["podIP"] for p in pods},
    }


def in_pod(
    c: Cluster, ns: str, *argv: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return c.kubectl("exec", "-n", ns, "client", "--", *argv, check=False, timeout=timeout)


def lines(text: str) -> list[str]:
    return [x.strip() for x in text.strip().splitlines() if x.strip()]


# -- the add-on -------------------------------------------------------------------------------
def test_svcnet_up_deploys_the_dns_addon(cluster: Cluster, dns: dict[str, Any]) -> None:
    assert dns["deployed_by_up"], "svcnet up did not create kube-system/kube-dns"


def test_kube_dns_is_on_the_tenth_address_of_the_service_range(
    cluster: Cluster, dns: dict[str, Any]
) -> None:
    svc = cluster.get("service", "kube-dns", "-n", "kube-system")
    network = cluster.service_cidr.split("/")[0].rsplit(".", 2)[0]
    assert svc["spec"]["clusterIP"] == f"{network}.0.10"
    ports = [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]]
    assert ports == [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]


def test_coredns_runs_two_ready_replicas_on_both_nodes(
    cluster: Cluster, dns: dict[str, Any]
) -> None:
    pods = cluster.get("pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]
    assert len([p for p in pods if pod_ready(p)]) == 2
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["node-1", "node-2"]
    c0 = pods[0]["spec"]["containers"][0]
    assert c0["readinessProbe"]["httpGet"]["port"] == 8181
    assert c0["livenessProbe"]["httpGet"]["port"] == 8080


# -- what pods get ----------------------------------------------------------------------------
@pytest.mark.parametrize("ns", ["default", "other"])
def test_pod_resolv_conf_points_at_kube_dns(cluster: Cluster, dns: dict[str, Any], ns: str) -> None:
    res = in_pod(cluster, ns, "cat", "/etc/resolv.conf")
    assert lines(res.stdout) == [
        f"nameserver {dns['dns_ip']}",
        f"search {ns}.svc.{ZONE} svc.{ZONE} {ZONE}",
        "options ndots:5",
    ]


def node_resolv_conf() -> list[str]:
    """What dnsPolicy Default copies: the node's (the machine's) resolver lines."""
    keep = ("nameserver", "search", "options")
    return [x for x in lines(Path("/etc/resolv.conf").read_text()) if x.startswith(keep)]


@pytest.mark.parametrize(
    ("pod", "want"),
    [
        ("dns-none", ["nameserver 192.0.2.53", "search corp.example", "options ndots:2 edns0"]),
        ("dns-default", None),  # the node's
    ],
)
def test_pod_resolv_conf_follows_dns_policy(
    cluster: Cluster, dns: dict[str, Any], pod: str, want: list[str] | None
) -> None:
    res = cluster.kubectl("exec", pod, "--", "cat", "/etc/resolv.conf")
    assert lines(res.stdout) == (node_resolv_conf() if want is None else want)


NAMES = [
    # (client namespace, name as the application writes it, Service whose ClusterIP answers)
    ("default", "web", "web"),
    ("default", "web.default", "web"),
    ("default", f"web.default.svc.{ZONE}", "web"),
    ("default", "api.other", "api"),
    ("default", f"api.other.svc.{ZONE}", "api"),
    ("other", "api", "api"),
    ("other", "web.default", "web"),
]


@pytest.mark.parametrize(("ns", "name", "svc"), NAMES)
def test_getent_resolves(
    cluster: Cluster, dns: dict[str, Any], ns: str, name: str, svc: str
) -> None:
    res = in_pod(cluster, ns, "getent", "hosts", name)
    assert res.returncode == 0, res.stderr
    ip, fqdn = res.stdout.split()[:2]
    assert (ip, fqdn) == (dns[svc], f"{svc}.{'other' if svc == 'api' else 'default'}.svc.{ZONE}")


@pytest.mark.parametrize(("ns", "name", "svc"), NAMES)
def test_dig_resolves(cluster: Cluster, dns: dict[str, Any], ns: str, name: str, svc: str) -> None:
    res = in_pod(cluster, ns, "dig", "+search", "+short", name)
    assert lines(res.stdout) == [dns[svc]], res.stderr


@pytest.mark.parametrize(("ns", "name"), [("default", "api"), ("other", "web")])
def test_short_name_of_another_namespace_does_not_resolve(
    cluster: Cluster, dns: dict[str, Any], ns: str, name: str
) -> None:
    assert in_pod(cluster, ns, "getent", "hosts", name).returncode == 2  # not found


def test_statefulset_pods_resolve_by_hostname(cluster: Cluster, dns: dict[str, Any]) -> None:
    for pod, ip in dns["db"].items():
        res = in_pod(cluster, "default", "dig", "+short", f"{pod}.db.default.svc.{ZONE}")
        assert lines(res.stdout) == [ip]
        res = in_pod(cluster, "other", "getent", "hosts", f"{pod}.db.default")
        assert res.stdout.split()[:2] == [ip, f"{pod}.db.default.svc.{ZONE}"]


def test_headless_service_answers_every_ready_pod(cluster: Cluster, dns: dict[str, Any]) -> None:
    res = in_pod(cluster, "default", "dig", "+short", f"db.default.svc.{ZONE}")
    assert sorted(lines(res.stdout)) == sorted(dns["db"].values())


def test_external_name_is_a_cname(cluster: Cluster, dns: dict[str, Any]) -> None:
    res = in_pod(cluster, "default", "dig", "+noall", "+answer", f"ext.default.svc.{ZONE}")
    first = lines(res.stdout)[0].split()
    assert first == [f"ext.default.svc.{ZONE}.", "5", "IN", "CNAME", f"{EXTERNAL}."]


@pytest.mark.parametrize(
    ("qname", "want"),
    [
        (f"_http._tcp.web.default.svc.{ZONE}", ["0 100 80 web.default.svc.cluster.local."]),
        (f"_grpc._tcp.api.other.svc.{ZONE}", ["0 100 9000 api.other.svc.cluster.local."]),
        (
            f"_peer._tcp.db.default.svc.{ZONE}",
            # headless: one target per pod, its hostname name; equal weights
            ["0 50 7000 db-0.db.default.svc.cluster.local.", "0 50 7000 db-1.db.default.svc.cluster.local."],
        ),
    ],
)  # fmt: skip
def test_srv_for_a_named_port(
    cluster: Cluster, dns: dict[str, Any], qname: str, want: list[str]
) -> None:
    res = in_pod(cluster, "default", "dig", "+short", qname, "SRV")
    assert sorted(lines(res.stdout)) == want


def dig_reply(c: Cluster, qname: str, qtype: str) -> tuple[str, list[str], dict[str, list[str]]]:
    """(status, header flags, section name → records) of dig's full reply, from a pod; each
    record's fields joined by one space, a SOA serial (a time) written SERIAL."""
    res = in_pod(c, "default", "dig", "+noall", "+comments", "+answer", "+authority",
                 "+additional", qname, qtype)  # fmt: skip
    status = re.search(r"status: ([A-Z]+)", res.stdout)
    flags = re.search(r";; flags: ([a-z ]*);", res.stdout)
    assert status and flags, res.stdout + res.stderr
    sections: dict[str, list[str]] = {"ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
    current = ""
    for line in res.stdout.splitlines():
        heading = re.match(r";; ([A-Z]+) SECTION:", line)
        if heading:
            current = heading.group(1)
        elif line.strip() and not line.startswith(";"):
            fields = line.split()
            if fields[3] == "SOA":
                fields[6] = "SERIAL"
            sections[current].append(" ".join(fields))
    return status.group(1), flags.group(1).split(), sections


SOA = f"{ZONE}. 5 IN SOA ns.dns.{ZONE}. hostmaster.{ZONE}. SERIAL 7200 1800 86400 5"

# (qname, qtype, status, answer, authority) as CoreDNS's kubernetes plugin answers them
AUTHORITATIVE = [
    # SOA only at the zone apex (handler.go); below it NODATA, the SOA in authority
    (f"{ZONE}.", "SOA", "NOERROR", [SOA], []),
    (f"web.default.svc.{ZONE}.", "SOA", "NOERROR", [], [SOA]),
    (f"nope.default.svc.{ZONE}.", "SOA", "NOERROR", [], [SOA]),
    # an ExternalName Service has no port/protocol names (findServices skips it)
    (f"_http._tcp.ext.default.svc.{ZONE}.", "SRV", "NXDOMAIN", [], [SOA]),
    (f"ext.default.svc.{ZONE}.", "SRV", "NOERROR", [], [SOA]),
    (f"web.default.svc.{ZONE}.", "TXT", "NOERROR", [], [SOA]),
]


@pytest.mark.parametrize(
    ("qname", "qtype", "status", "answer", "authority"),
    AUTHORITATIVE,
    ids=[f"{c[0]}-{c[1]}" for c in AUTHORITATIVE],
)
def test_dig_reply_as_coredns(
    cluster: Cluster,
    dns: dict[str, Any],
    qname: str,
    qtype: str,
    status: str,
    answer: list[str],
    authority: list[str],
) -> None:
    got_status, flags, sections = dig_reply(cluster, qname, qtype)
    assert (got_status, sections["ANSWER"], sections["AUTHORITY"]) == (status, answer, authority)
    assert flags == ["qr", "aa", "rd"]  # no RA: CoreDNS's kubernetes plugin never sets it


def test_ns_at_the_apex_names_the_kube_dns_service(cluster: Cluster, dns: dict[str, Any]) -> None:
    status, _, sections = dig_reply(cluster, f"{ZONE}.", "NS")
    kube_dns = f"kube-dns.kube-system.svc.{ZONE}."
    assert status == "NOERROR"
    assert sections["ANSWER"] == [f"{ZONE}. 5 IN NS {kube_dns}"]
    assert sections["ADDITIONAL"] == [f"{kube_dns} 5 IN A {dns['dns_ip']}"]


def test_ptr_of_a_cluster_ip(cluster: Cluster, dns: dict[str, Any]) -> None:
    res = in_pod(cluster, "other", "dig", "+short", "-x", dns["web"])
    assert lines(res.stdout) == [f"web.default.svc.{ZONE}."]


def test_dns_over_tcp_through_the_cluster_ip(cluster: Cluster, dns: dict[str, Any]) -> None:
    res = in_pod(cluster, "default", "dig", "+tcp", "+short", f"web.default.svc.{ZONE}")
    assert lines(res.stdout) == [dns["web"]]


def test_every_dns_replica_answers_on_its_pod_ip(cluster: Cluster, dns: dict[str, Any]) -> None:
    for ip in dns["dns_pod_ips"]:
        res = in_pod(cluster, "other", "dig", f"@{ip}", "+short", f"api.other.svc.{ZONE}")
        assert lines(res.stdout) == [dns["api"]], ip


# -- changes within 1 s -----------------------------------------------------------------------
def _watch_change(
    cluster: Cluster, probe: str, name: str, want: str, change: list[str]
) -> tuple[float, int]:
    """Start the pod-side poller, make the change with kubectl once it polls, return
    (seconds from the start of the change to the first answer in the wanted state, queries)."""
    c = cluster
    argv = [*exec_argv(c), PY, "-c", probe, "wait", "-", name, want, "15"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=c.env()) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "polling"
            t0 = time.time()
            c.kubectl(*change)
            result = json.loads(proc.stdout.readline())
        finally:
            proc.kill()
    assert result["t"] is not None, f"{name} never became {want}"
    return result["t"] - t0, int(result["queries"])


def exec_argv(c: Cluster) -> list[str]:
    return [KUBECTL, "exec", "client", "--"]


def test_service_created_is_answered(cluster: Cluster, dns: dict[str, Any], probe: str) -> None:
    name = f"late.default.svc.{ZONE}"
    took, _ = _watch_change(
        cluster, probe, name, "present", ["create", "service", "clusterip", "late", "--tcp=80"]
    )
    # How soon: bench/dns/change_latency.py (the poller gives up after 15 s).
    print(f"created Service answered after {took:.3f}s")


def test_service_deleted_is_gone(cluster: Cluster, dns: dict[str, Any], probe: str) -> None:
    cluster.kubectl("create", "service", "clusterip", "gone", "--tcp=80")
    name = f"gone.default.svc.{ZONE}"
    took, _ = _watch_change(
        cluster, probe, name, "absent", ["delete", "service", "gone", "--wait=false"]
    )
    print(f"deleted Service gone after {took:.3f}s")


# -- losing a replica -------------------------------------------------------------------------
def _load_while(
    cluster: Cluster, probe: str, seconds: float, action: list[str], after: float
) -> tuple[dict[str, Any], float, float]:
    """Query kube-dns's ClusterIP from a pod every 10 ms for ``seconds``; ``after`` seconds in,
    run ``kubectl action``. Returns (summary, action start, action end) in wall-clock time."""
    c = cluster
    argv = [*exec_argv(c), PY, "-c", probe, "load", "-", f"kubernetes.default.svc.{ZONE}",
            str(seconds), "0.01"]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=c.env()) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "polling"
            time.sleep(after)
            t0 = time.time()
            c.kubectl(*action)
            t1 = time.time()
            summary = json.loads(proc.stdout.readline())
        finally:
            proc.kill()
    return summary, t0, t1


def dns_pod_names(c: Cluster) -> list[str]:
    pods = c.get("pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]
    return sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))


def _kill_while_loading(
    cluster: Cluster, probe: str, seconds: float, pid: int, after: float
) -> tuple[dict[str, Any], float]:
    c = cluster
    argv = [*exec_argv(c), PY, "-c", probe, "load", "-", f"kubernetes.default.svc.{ZONE}",
            str(seconds), "0.01"]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=c.env()) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "polling"
            time.sleep(after)
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            summary = json.loads(proc.stdout.readline())
        finally:
            proc.kill()
    return summary, t0


def test_killing_a_dns_process_loses_only_queries_until_it_leaves_the_service(
    cluster: Cluster, dns: dict[str, Any], probe: str
) -> None:
    """SIGKILL to one replica's server (a crash): its pod turns not ready and leaves the
    Service at once, the agent restarts it; only queries sent to it in that moment fail."""
    settled_dns(cluster)
    pod = cluster.get("pod", "-n", "kube-system", dns_pod_names(cluster)[0])
    container_id = pod["status"]["containerStatuses"][0]["containerID"]  # svcnet://<pid>
    pid = int(container_id.removeprefix("svcnet://"))
    assert "svcnet.dns" in Path(f"/proc/{pid}/cmdline").read_text()  # our cluster's, by PID
    summary, t0 = _kill_while_loading(cluster, probe, 4.0, pid, 1.5)
    failed = summary["failed"]
    print(f"process kill: {len(failed)} of {summary['sent']} failed: {failed}")
    assert summary["sent"] >= 300
    assert all(t0 - 0.05 <= t <= t0 + 1.0 for t, _ in failed), failed
    wait_dns_replicas(cluster)


def test_deleting_a_dns_replica_loses_no_query(
    cluster: Cluster, dns: dict[str, Any], probe: str
) -> None:
    """``kubectl delete pod`` (graceful, as a rollout or a drain does it): the replica leaves
    the Service before it stops answering, so every query is answered."""
    settled_dns(cluster)
    victim = dns_pod_names(cluster)[0]
    summary, _, _ = _load_while(
        cluster, probe, 4.0, ["delete", "pod", "-n", "kube-system", victim, "--wait=false"], 1.5
    )
    print(f"graceful delete: {len(summary['failed'])} of {summary['sent']} failed")
    assert summary["sent"] >= 300
    assert summary["failed"] == [], f"{len(summary['failed'])} of {summary['sent']} lost"


def test_killing_a_dns_replica_loses_only_queries_sent_before_it_left_the_service(
    cluster: Cluster, dns: dict[str, Any], probe: str
) -> None:
    """Grace 0: the process dies at once; queries that the proxy still sent to it fail until
    the EndpointSlice change reaches the node's proxy (and its UDP conntrack entries to the
    dead backend are flushed). Nothing fails before the kill, nor after that window."""
    settled_dns(cluster)
    victim = dns_pod_names(cluster)[0]
    action = ["delete", "pod", "-n", "kube-system", victim, "--grace-period=0", "--force"]
    summary, t0, t1 = _load_while(cluster, probe, 4.0, action, 1.5)
    failed = summary["failed"]
    print(f"kill: {len(failed)} of {summary['sent']} failed; kubectl {t0:.3f}..{t1:.3f}; {failed}")
    assert summary["sent"] >= 300
    assert all(t0 - 0.05 <= t <= t1 + 1.0 for t, _ in failed), failed
    wait_dns_replicas(cluster)
