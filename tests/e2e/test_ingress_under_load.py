"""The ingress add-on under constant load: endpoint changes (scaling a backend 3 → 10 → 3, a
rolling update) fail no request and do not reload HAProxy; a route change (a reload) fails no
request either.

One 2-node cluster for the module. A load generator sends requests without pause through the
controller's LoadBalancer address with a Host header, from threads that keep one connection
alive and threads that open a new connection per request, and counts every failure: a refused
or reset connection, a timeout, a status other than 200, an answer from another Service.

A keep-alive connection the server closes while idle is not a failure by HTTP's rules: a
client retries an idempotent request whose reused connection closed before any byte of a
response (RFC 9112 §9.3.1; curl, browsers, Go's net/http and urllib3 do). The generator does
that once and counts it apart as ``stale``: a reload's old worker closes its idle connections,
endpoint changes must not close any.

The backends are the harshest kind: no ``preStop`` hook and a server that exits at SIGTERM with
its in-flight requests, so a pod stops serving before its endpoint's removal reaches HAProxy
(Kubernetes removes the endpoint and signals the pod at the same time). HAProxy's retries on
another endpoint (``retry-on conn-failure empty-response``, ``option redispatch``) are what
keeps those requests from failing; a ``preStop`` sleep, what test_ingress.py's backends have,
would close the window from the other side.

Whether HAProxy reloaded is read from its master CLI (``show proc``: the master's reload
counter and the current worker's PID).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from cluster_fixture import Cluster, running_cluster
from test_ingress import (
    Ingress,
    addon_address,
    backends_manifest,
    haproxy_master,
    ingress,
    route,
    show_proc,
)

HOST = "load.example.com"
KEEP_ALIVE_THREADS = 2
NEW_CONNECTION_THREADS = 2
# A disconnect on a reused connection before any response byte: the client may retry.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass
class Tally:
    ok: int = 0
    stale: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    pods: set[str] = field(default_factory=set)


class Load:
    """Requests to ``HOST``/ without pause; ``phase`` names what the cluster is doing, and
    every outcome is counted under it."""

    def __init__(self, address: str, service: str) -> None:
        self.address = address
        self.service = service
        self.phase = "start"
        self.tallies: dict[str, Tally] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(keep,), daemon=True)
            for keep in [True] * KEEP_ALIVE_THREADS + [False] * NEW_CONNECTION_THREADS
        ]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def tally(self, phase: str) -> Tally:
        with self._lock:
            return self.tallies.setdefault(phase, Tally())

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.address, 80, timeout=10)

    def _one(self, conn: http.client.HTTPConnection) -> tuple[int, bytes]:
        conn.request("GET", "/", headers={"Host": HOST})
        resp = conn.getresponse()
        return resp.status, resp.read()

    def _record(self, phase: str, status: int, body: bytes, stale: bool) -> None:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        with self._lock:
            t = self.tallies.setdefault(phase, Tally())
            t.stale += stale
            if status == 200 and isinstance(data, dict) and data.get("service") == self.service:
                t.ok += 1
                t.pods.add(str(data["pod"]))
            else:
                t.failed += 1
                t.errors.append(f"{status} {body[:80]!r}")

    def _fail(self, phase: str, error: Exception) -> None:
        with self._lock:
            t = self.tallies.setdefault(phase, Tally())
            t.failed += 1
            t.errors.append(repr(error))

    def _run(self, keep_alive: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        used = False
        while not self._stop.is_set():
            phase = self.phase
            if conn is None:
                conn, used = self._connect(), False
            stale = False
            used = used and conn.sock is not None  # http.client reconnects after a close
            try:
                try:
                    status, body = self._one(conn)
                except _STALE:
                    if not used:
                        raise
                    conn.close()
                    conn, stale = self._connect(), True
                    status, body = self._one(conn)
            except (OSError, http.client.HTTPException) as e:
                self._fail(phase, e)
                conn.close()
                conn = None
                continue
            used = True
            self._record(phase, status, body, stale)
            if not keep_alive:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()


def abrupt_backends(names: tuple[str, ...]) -> str:
    """test_ingress.py's echo backends without their ``preStop`` hook."""
    manifest = json.loads(backends_manifest(names))
    for item in manifest["items"]:
        if item["kind"] == "Deployment":
            for c in item["spec"]["template"]["spec"]["containers"]:
                c.pop("lifecycle", None)
    return json.dumps(manifest)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("ingress-load"), nodes=2) as c:
        yield c


@pytest.fixture(scope="module")
def ing(cluster: Cluster) -> Ingress:
    cluster.apply(abrupt_backends(("web", "other")))
    cluster.kubectl("scale", "deployment/web", "--replicas=3")
    for name in ("web", "other"):
        cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=120s", timeout=130)
    ing = Ingress(cluster, addon_address(cluster))
    cluster.apply(
        ingress("load", {"rules": [{"host": HOST, "http": {"paths": [route("/", "web")]}}]})
    )
    ing.wait(HOST, "/", "web")
    return ing


def _ready_endpoints(slices: dict[str, object], n: int) -> bool:
    items = slices["items"]
    assert isinstance(items, list)
    ready = [
        e
        for s in items
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready")
    ]
    return len(ready) == n and len(ready) == sum(len(s.get("endpoints") or []) for s in items)


def _settled(cluster: Cluster, replicas: int) -> None:
    """The rollout is done and the slices hold exactly its ``replicas`` ready endpoints (no
    terminating one left), then a moment of load against them."""
    cluster.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
    cluster.wait_for(
        "endpointslices",
        lambda s: _ready_endpoints(s, replicas),
        60,
        "-l",
        "kubernetes.io/service-name=web",
    )
    # Requests keep flowing against the new set for a moment (not a timing assertion).
    time.sleep(2)


def _summary(load: Load) -> str:
    return "; ".join(
        f"{p}: ok={t.ok} stale={t.stale} failed={t.failed} {t.errors[:3]}"
        for p, t in load.tallies.items()
    )


def test_scaling_and_rolling_update_under_load_fail_nothing_and_do_not_reload(
    ing: Ingress,
) -> None:
    master = haproxy_master(ing.cluster)
    before = show_proc(master)
    pods_before = {p["metadata"]["name"] for p in ing.cluster.get("pods", "-l", "app=web")["items"]}
    with Load(ing.address, "web") as load:
        for replicas in (10, 3):
            load.phase = f"scale to {replicas}"
            ing.cluster.kubectl("scale", "deployment/web", f"--replicas={replicas}")
            _settled(ing.cluster, replicas)
        load.phase = "rolling update"
        ing.cluster.kubectl("set", "env", "deployment/web", "ROLLOUT=2")
        _settled(ing.cluster, 3)
    after = show_proc(master)
    summary = _summary(load)
    pods_after = {p["metadata"]["name"] for p in ing.cluster.get("pods", "-l", "app=web")["items"]}
    assert sum(t.failed + t.stale for t in load.tallies.values()) == 0, summary
    # The load saw what it was meant to: 10 pods while scaled up, only new pods after the
    # rollout, and requests in every phase.
    assert all(load.tally(p).ok > 0 for p in ("scale to 10", "scale to 3", "rolling update"))
    assert len(load.tally("scale to 10").pods) >= 10, summary
    assert pods_after.isdisjoint(pods_before) and pods_after <= load.tally("rolling update").pods
    assert (after.reloads, after.worker_pids) == (before.reloads, before.worker_pids)


def test_route_change_under_load_fails_nothing(ing: Ingress) -> None:
    master = haproxy_master(ing.cluster)
    before = show_proc(master)
    with Load(ing.address, "web") as load:
        load.phase = "route added"
        ing.cluster.apply(ingress("load", {"rules": [{"host": HOST, "http": {"paths": [
            route("/", "web"), route("/other", "other")]}}]}))  # fmt: skip
        ing.wait(HOST, "/other", "other")
        time.sleep(2)
        load.phase = "route removed"
        ing.cluster.apply(ingress("load", {"rules": [{"host": HOST, "http": {"paths": [
            route("/", "web")]}}]}))  # fmt: skip
        ing.wait(HOST, "/other", "web")
        time.sleep(2)
    after = show_proc(master)
    summary = _summary(load)
    assert sum(t.failed for t in load.tallies.values()) == 0, summary
    assert all(load.tally(p).ok > 0 for p in ("route added", "route removed")), summary
    # Each change was a reload (what this test is about), each to a new worker.
    assert after.reloads >= before.reloads + 2 and after.worker_pids != before.worker_pids
    print(summary)
