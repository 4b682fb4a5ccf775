"""The ServiceAccount controller and the root CA publisher (run beside the API server by the
harness, as a cluster's controller manager runs them) seen with the real kubectl: every namespace gets its ``default`` ServiceAccount and its
``kube-root-ca.crt`` ConfigMap, both come back when deleted, and the CA is the one the API
server's serving certificate chains to (an in-cluster client verifying with it connects)."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from pathlib import Path

import pytest
from apiserver_harness import Kubectl, RunningServer

from svcnet.controllers.rootcacert.plan import DESCRIPTION, DESCRIPTION_ANNOTATION
from svcnet.testing.polling import eventually


class Cluster:
    def __init__(self, server: RunningServer, namespace: str) -> None:
        self.server = server
        self.kubectl = Kubectl(server.kubeconfig, namespace)
        self.namespace = namespace

    async def run(self, *args: str) -> str:
        # kubectl blocks: run it off the loop the controllers run on.
        proc = await asyncio.to_thread(self.kubectl.run, *args, check=False)
        return proc.stdout if proc.returncode == 0 else ""

    async def get(self, kind: str, name: str) -> dict[str, object] | None:
        out = await self.run("get", kind, name, "-o", "json")
        return json.loads(out) if out else None


@pytest.fixture
async def cluster(fresh_apiserver: RunningServer) -> Cluster:
    # The harness runs both controllers beside the server (run_namespace_controllers).
    cluster = Cluster(fresh_apiserver, "sa-" + uuid.uuid4().hex[:6])
    await asyncio.to_thread(cluster.kubectl, "create", "namespace", cluster.namespace)
    return cluster


async def test_a_new_namespace_gets_its_default_service_account(cluster: Cluster) -> None:
    async def listed() -> str:
        out = await cluster.run("get", "serviceaccounts")
        return out if "default" in out else ""

    out = await eventually(listed)
    assert out.split("\n")[0].split() == ["NAME", "SECRETS", "AGE"]
    assert out.split("\n")[1].split()[:2] == ["default", "0"]
    # The namespaces that existed before the controller started got theirs too.
    assert await eventually(lambda: Cluster(cluster.server, "kube-system").get("sa", "default"))


async def test_a_deleted_default_service_account_comes_back(cluster: Cluster) -> None:
    first = await eventually(lambda: cluster.get("sa", "default"))
    await cluster.run("delete", "sa", "default")

    async def recreated() -> dict[str, object] | None:
        sa = await cluster.get("sa", "default")
        old_uid = first["metadata"]["uid"]  # type: ignore[index]
        return sa if sa and sa["metadata"]["uid"] != old_uid else None  # type: ignore[index]

    await eventually(recreated)


async def test_root_ca_configmap_is_published_and_kept(cluster: Cluster) -> None:
    ca = Path(cluster.server.ca_file).read_text()
    cm = await eventually(lambda: cluster.get("cm", "kube-root-ca.crt"))
    assert cm["data"] == {"ca.crt": ca}
    assert cm["metadata"]["annotations"] == {DESCRIPTION_ANNOTATION: DESCRIPTION}  # type: ignore[index]
    # The serving certificate chains to it, under the name in-cluster clients use.
    ctx = ssl.create_default_context(cadata=ca)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", cluster.server.server.port, ssl=ctx, server_hostname="kubernetes.default.svc"
    )
    writer.close()
    del reader

    await cluster.run(
        "patch", "cm", "kube-root-ca.crt", "--type=merge", "-p", '{"data":{"ca.crt":"forged"}}'
    )

    async def restored() -> bool:
        got = await cluster.get("cm", "kube-root-ca.crt")
        return bool(got and got["data"] == {"ca.crt": ca})

    await eventually(restored)
    await cluster.run("delete", "cm", "kube-root-ca.crt")
    await eventually(restored)
