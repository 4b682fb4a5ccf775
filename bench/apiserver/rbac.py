"""RBAC benchmark: authorization decisions/s with 1,000 bindings, and the create path with
RBAC enforced versus off, in the same run.

1. decisions: a :class:`PolicyIndex` holding the default policy plus ``--bindings``
   RoleBindings (ServiceAccounts of 100 namespaces bound to ``view``/``edit``/a Role of their
   own) and 100 ClusterRoleBindings; ``--decisions`` decisions by ServiceAccount users, half
   allowed (their binding found) and half denied (every binding of their groups looked at).
2. creates: two ``python -m svcnet.apiserver`` processes, ``--authorization-mode RBAC`` and
   ``AlwaysAllow``, each loaded with the same bindings; a ServiceAccount bound to ``edit``
   creates ``--creates`` Services with its token over ``--clients`` HTTPS keep-alive
   connections sent by wrk (bench.py's driver; ConfigMaps by aiohttp when wrk is missing),
   the two servers taking turns for ``--rounds`` rounds. Prints creates/s and the
   server's CPU ms per create for each mode, medians over the rounds, and the slowdown.

Usage: ``.venv/bin/python bench/apiserver/rbac.py``. Record ``uptime``'s load average with
the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from svcnet.apiserver.rbac import policy  # noqa: E402
from svcnet.apiserver.rbac.aggregation import plan_aggregation  # noqa: E402
from svcnet.apiserver.rbac.index import PolicyIndex  # noqa: E402
from svcnet.apiserver.rbac.rules import Attributes  # noqa: E402

NAMESPACES = 100
RBAC = "rbac.authorization.k8s.io"


def bindings(n: int) -> list[dict[str, Any]]:
    """``n`` RoleBindings, spread over NAMESPACES namespaces, each for its own account."""
    out = []
    for i in range(n):
        ns = f"ns-{i % NAMESPACES}"
        role = ("view", "edit", "pod-reader")[i % 3]
        out.append({
            "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
            "metadata": {"name": f"rb-{i}", "namespace": ns},
            "roleRef": {"apiGroup": RBAC, "kind": "Role" if role == "pod-reader" else "ClusterRole",
                        "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": f"sa-{i}", "namespace": ns}],
        })  # fmt: skip
    return out


def cluster_bindings(n: int = 100) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": f"crb-{i}"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": f"user-{i}", "apiGroup": RBAC}],
        }
        for i in range(n)
    ]  # fmt: skip


POD_READER = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}


def decisions(n_bindings: int, n: int) -> dict[str, float]:
    roles = policy.cluster_roles()
    for name, rules in plan_aggregation(roles).items():
        next(r for r in roles if r["metadata"]["name"] == name)["rules"] = rules
    index = PolicyIndex(
        roles=[
            {"metadata": {"name": "pod-reader", "namespace": f"ns-{i}"}, "rules": [POD_READER]}
            for i in range(NAMESPACES)
        ],
        cluster_roles=roles,
        role_bindings=bindings(n_bindings),
        cluster_role_bindings=policy.cluster_role_bindings() + cluster_bindings(),
    )
    asks = []
    for i in range(n):
        k = i % n_bindings
        ns = f"ns-{k % NAMESPACES}"
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated")
        user = f"system:serviceaccount:{ns}:sa-{k}"
        resource = "pods" if i % 2 == 0 else "secrets"  # secrets: denied for view/pod-reader
        verb = "list" if i % 2 == 0 else "delete"
        asks.append(Attributes(user, groups, verb, True, "", "v1", resource, "", ns, ""))
    start = time.perf_counter()
    allowed = sum(index.authorize(a)[0] for a in asks)
    elapsed = time.perf_counter() - start
    return {"decisions_per_s": n / elapsed, "allowed": allowed, "n": n}


class Server:
    def __init__(self, data_dir: Path, mode: str) -> None:
        self.mode = mode
        args = [
            sys.executable, "-m", "svcnet.apiserver", "--data-dir", str(data_dir), "--port", "0",
            "--log-level", "WARNING", "--prepare-workers", "0", "--authorization-mode", mode,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"serving (\S+) kubeconfig=(\S+)", line)
        if not m:
            raise RuntimeError(f"server did not start: {line!r}")
        self.url = m.group(1)
        kubeconfig = yaml.safe_load(Path(m.group(2)).read_text())
        self.admin = kubeconfig["users"][0]["user"]["token"]
        self.ctx = ssl.create_default_context(cafile=str(data_dir / "ca.crt"))
        if not (data_dir / "ca.crt").exists():
            self.ctx = ssl.create_default_context()
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def post(s: aiohttp.ClientSession, srv: Server, path: str, body: Any, token: str) -> Any:
    async with s.post(
        srv.url + path,
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ssl=srv.ctx,
    ) as r:
        data = await r.read()
        if r.status >= 300 and r.status != 409:
            raise RuntimeError(f"{path}: {r.status} {data[:300]!r}")
        return orjson.loads(data)


async def prepare(srv: Server, n_bindings: int) -> str:
    """Load the bindings; return the token of bench/writer (bound to edit in ``bench``)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as s:
        a = srv.admin
        for ns in ["bench", *(f"ns-{i}" for i in range(NAMESPACES))]:
            await post(s, srv, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": ns}}, a)  # fmt: skip
        sem = asyncio.Semaphore(16)

        async def one(b: dict[str, Any]) -> None:
            async with sem:
                ns = b["metadata"].get("namespace")
                path = (f"/apis/{RBAC}/v1/namespaces/{ns}/rolebindings" if ns
                        else f"/apis/{RBAC}/v1/clusterrolebindings")  # fmt: skip
                await post(s, srv, path, b, a)

        await asyncio.gather(*(one(b) for b in bindings(n_bindings) + cluster_bindings()))
        await post(s, srv, "/api/v1/namespaces/bench/serviceaccounts",
                   {"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "writer"}}, a)  # fmt: skip
        await post(s, srv, f"/apis/{RBAC}/v1/namespaces/bench/rolebindings", {
            "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "writer"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "writer", "namespace": "bench"}],
        }, a)  # fmt: skip
        tr = await post(s, srv, "/api/v1/namespaces/bench/serviceaccounts/writer/token",
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": 7200}}, a)  # fmt: skip
        return str(tr["status"]["token"])


async def creates(srv: Server, token: str, start: int, n: int, clients: int) -> tuple[float, float]:
    """(creates/s, server CPU ms per create) of ``n`` ConfigMaps by the writer."""
    queue = list(range(start, start + n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as s:

        async def worker() -> None:
            while queue:
                i = queue.pop()
                await post(s, srv, "/api/v1/namespaces/bench/configmaps", {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"cm-{i}"}, "data": {"k": "v" * 64},
                }, token)  # fmt: skip

        cpu0, t0 = srv.cpu(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall, cpu = time.perf_counter() - t0, srv.cpu() - cpu0
    return n / wall, cpu * 1000 / n


def _wrk_creates() -> Any:
    """bench.py's wrk driver (Services into namespace ``bench``), loaded by path: the
    bench/apiserver folder is no package."""
    spec = importlib.util.spec_from_file_location(
        "apiserver_bench", Path(__file__).with_name("bench.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.wrk_creates


def wrk_round(
    srv: Server, token: str, first: int, n: int, clients: int, tmp: Path
) -> tuple[float, float]:
    cpu0 = srv.cpu()
    rate, done = _wrk_creates()(srv.url, token, n, 60, clients, tmp, first)
    return rate, (srv.cpu() - cpu0) * 1000 / done


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        servers = [Server(Path(tmp) / m, m) for m in ("RBAC", "AlwaysAllow")]
        try:
            tokens = [await prepare(s, args.bindings) for s in servers]
            results: dict[str, list[tuple[float, float]]] = {s.mode: [] for s in servers}
            for r in range(args.rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                for s in order:
                    tok = tokens[servers.index(s)]
                    if shutil.which("wrk"):
                        # wrk overshoots its count by up to its connections: rounds far apart.
                        first = 1_000_000 + r * (args.creates + 10_000)
                        res = wrk_round(s, tok, first, args.creates, args.clients, Path(tmp))
                    else:
                        res = await creates(s, tok, r * args.creates, args.creates, args.clients)
                    results[s.mode].append(res)
        finally:
            for s in servers:
                s.stop()
    out: dict[str, Any] = {}
    for mode, runs in results.items():
        out[mode] = (
            statistics.median(x[0] for x in runs),
            statistics.median(x[1] for x in runs),
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bindings", type=int, default=1000)
    p.add_argument("--decisions", type=int, default=200_000)
    p.add_argument("--creates", type=int, default=2000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-creates", action="store_true")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}")
    d = decisions(args.bindings, args.decisions)
    print(
        f"decisions: {d['decisions_per_s']:,.0f}/s with {args.bindings} RoleBindings + 100"
        f" ClusterRoleBindings + defaults ({d['allowed']}/{d['n']} allowed)"
    )
    if not args.no_creates:
        res = asyncio.run(compare(args))
        for mode, (rate, cpu) in res.items():
            print(
                f"creates by a ServiceAccount, {mode:11}: {rate:7.0f}/s  {cpu:.3f} server CPU ms/create"
            )
        slow = 1 - res["RBAC"][0] / res["AlwaysAllow"][0]
        cpu = res["RBAC"][1] / res["AlwaysAllow"][1] - 1
        print(f"RBAC vs AlwaysAllow: {slow:+.1%} throughput loss, {cpu:+.1%} server CPU per create")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
