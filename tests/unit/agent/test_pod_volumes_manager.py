"""One pod's volumes kept by the agent, over the fake API server (objects and their watches),
a fake TokenRequest endpoint and virtual time: files written where kubelet writes them, a
ConfigMap edit or creation noticed through its watch, tokens requested bound to the pod and
refreshed past 80 % of their lifetime. Files go to a temporary folder; no mounts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from svcnet.agent.objectwatch import ObjectWatcher
from svcnet.agent.pod_volumes import PodVolumes
from svcnet.api.errors import Invalid, NotFound
from svcnet.api.registry import CONFIGMAPS
from svcnet.client.fake import TOKEN, FakeApiServer
from svcnet.client.kubeconfig import ClientConfig
from svcnet.client.rest import ApiClient
from svcnet.runtime.volumes.plan import MountError
from svcnet.util.clock import FakeClock, rfc3339_at

CM_DIR = "volumes/kubernetes.io~configmap"
PV_PATH = "/api/v1/persistentvolumes/"
TOKEN_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/serviceaccounts/([^/]+)/token$")


@dataclass
class FakeTokenApi:
    """The TokenRequest subresource as kube-apiserver answers it: a known service account
    only, expirationSeconds of at least 10 minutes, the spec echoed with the granted TTL."""

    clock: FakeClock
    accounts: set[tuple[str, str]]
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # PersistentVolumes

    async def request(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        if method == "GET" and path.startswith(PV_PATH):
            name = path[len(PV_PATH) :]
            if name not in self.volumes:
                raise NotFound(f'persistentvolumes "{name}" not found')
            return self.volumes[name]
        m = TOKEN_PATH.match(path)
        assert method == "POST" and m, (method, path)
        namespace, account = m.groups()
        if (namespace, account) not in self.accounts:
            raise NotFound(f'serviceaccounts "{account}" not found')
        seconds = int(body["spec"].get("expirationSeconds") or 3600)
        if seconds < 600:
            raise Invalid("spec.expirationSeconds: may not specify a duration less than 10 minutes")
        self.requests.append((path, body))
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {**body["spec"], "expirationSeconds": seconds},
            "status": {
                "token": f"token-{len(self.requests)}",
                "expirationTimestamp": rfc3339_at(self.clock.time() + seconds),
            },
        }


@dataclass
class Env:
    fake: FakeApiServer
    watcher: ObjectWatcher
    tokens: FakeTokenApi
    clock: FakeClock
    root: Path
    warnings: list[tuple[str, str]]

    def volumes(self, volumes: list[dict[str, Any]], sa: str = "default") -> PodVolumes:
        pod = {
            "metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
            "spec": {"serviceAccountName": sa, "volumes": volumes, "containers": []},
        }
        return PodVolumes(
            pod, self.tokens, self.watcher, str(self.root), self.clock,
            lambda r, m: self.warnings.append((r, m)),
        )  # fmt: skip


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    fake = FakeApiServer()
    await fake.start()
    clock = FakeClock()
    async with ApiClient(ClientConfig(server=fake.url, token=TOKEN)) as client:
        watcher = ObjectWatcher(client)
        yield Env(fake, watcher, FakeTokenApi(clock, {("default", "default")}), clock, tmp_path, [])
        watcher.close()
    await fake.close()


async def updates_until_changed(vols: PodVolumes) -> int:
    """Rewrites on each watch wake-up (the first list's ADDED event wakes it too, harmlessly:
    an unchanged payload writes nothing) until one changed a volume."""
    for _ in range(10):
        await asyncio.wait_for(vols.changed.wait(), 5)
        changed = await vols.update()
        if changed:
            return changed
    return 0


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    }


async def test_config_map_is_written_and_an_edit_rewrites_it(env: Env) -> None:
    env.fake.put(config_map("app", {"k": "v1"}))
    vols = env.volumes([{"name": "cfg", "configMap": {"name": "app"}}])
    mounted = await vols.mount()
    folder = env.root / "uid-1" / CM_DIR / "cfg"
    assert mounted == {"cfg": (str(folder), True)}
    assert (folder / "k").read_text() == "v1"
    env.fake.put(config_map("app", {"k": "v2", "new": "x"}))
    assert await updates_until_changed(vols) == 1
    assert (folder / "k").read_text() == "v2"
    assert (folder / "new").read_text() == "x"
    await vols.remove()
    assert not (env.root / "uid-1").exists()


async def test_missing_config_map_fails_then_its_creation_is_noticed(env: Env) -> None:
    vols = env.volumes([{"name": "cfg", "configMap": {"name": "later"}}])
    with pytest.raises(MountError) as e:
        await vols.mount()
    assert e.value.event_message == (
        'MountVolume.SetUp failed for volume "cfg" : configmap "later" not found'
    )
    env.fake.put(config_map("later", {"k": "here"}))
    await asyncio.wait_for(vols.changed.wait(), 5)
    await vols.mount()
    assert (env.root / "uid-1" / CM_DIR / "cfg" / "k").read_text() == "here"
    await vols.remove()


async def test_the_watch_ends_with_the_last_pod_that_mounts_it(env: Env) -> None:
    env.fake.put(config_map("app", {"k": "v"}))
    a = env.volumes([{"name": "cfg", "configMap": {"name": "app"}}])
    await a.mount()
    assert len(env.watcher._watched) == 1
    await a.remove()
    assert env.watcher._watched == {}


PROJECTED = [
    {
        "name": "kube-api-access",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                {"downwardAPI": {"items": [
                    {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                ]}},
            ]
        },
    }
]  # fmt: skip


async def test_token_is_requested_bound_to_the_pod_and_refreshed_past_80_percent(
    env: Env,
) -> None:
    vols = env.volumes(PROJECTED)
    await vols.mount()
    folder = env.root / "uid-1" / "volumes/kubernetes.io~projected/kube-api-access"
    assert (folder / "token").read_text() == "token-1"
    assert (folder / "namespace").read_text() == "default"
    path, body = env.tokens.requests[0]
    assert path == "/api/v1/namespaces/default/serviceaccounts/default/token"
    assert body["spec"] == {
        "audiences": [],
        "expirationSeconds": 3600,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "uid-1"},
    }
    task = asyncio.create_task(vols.keep_current())
    try:
        env.clock.advance(2800)  # before 80 % of 3600 s: no new token
        await asyncio.sleep(0.05)
        assert len(env.tokens.requests) == 1
        env.clock.advance(100)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if (folder / "token").read_text() == "token-2":
                break
        assert (folder / "token").read_text() == "token-2"
    finally:
        task.cancel()
    await vols.remove()


async def test_new_labels_reach_the_downward_api_file(env: Env) -> None:
    vols = env.volumes([{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
    ]}}])  # fmt: skip
    await vols.mount()
    labels = env.root / "uid-1" / "volumes/kubernetes.io~downward-api/info/labels"
    assert labels.read_text() == ""
    relabelled = {**vols.pod, "metadata": {**vols.pod["metadata"], "labels": {"app": "v2"}}}
    vols.pod_changed(relabelled)
    assert vols.changed.is_set()
    assert await vols.update() == 1
    assert labels.read_text() == 'app="v2"'
    await vols.remove()


async def test_token_of_an_unknown_service_account_is_a_mount_error(env: Env) -> None:
    vols = env.volumes(PROJECTED, sa="ghost")
    with pytest.raises(MountError) as e:
        await vols.mount()
    assert e.value.event_message == (
        'MountVolume.SetUp failed for volume "kube-api-access" : '
        'failed to fetch token: serviceaccounts "ghost" not found'
    )
    await vols.remove()


async def test_host_path_type_is_checked_at_mount(env: Env, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    vols = env.volumes([{"name": "h", "hostPath": {"path": str(missing), "type": "Directory"}}])
    with pytest.raises(MountError) as e:
        await vols.mount()
    assert e.value.event_message == (
        f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: '
        f"{missing} is not a directory"
    )


async def test_unsupported_volume_is_an_empty_folder_with_a_warning(env: Env) -> None:
    vols = env.volumes([{"name": "share", "nfs": {"server": "nas", "path": "/x"}}])
    mounted = await vols.mount()
    assert Path(mounted["share"][0]).is_dir()
    assert env.warnings and "nfs" in env.warnings[0][1]
    await vols.remove()


def claim(phase: str, volume: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"volumeName": volume} if volume else {},
        "status": {"phase": phase},
    }


async def test_missing_claim_is_a_mount_error_with_kubelets_words(env: Env) -> None:
    vols = env.volumes([{"name": "www", "persistentVolumeClaim": {"claimName": "data"}}])
    with pytest.raises(MountError) as e:
        await vols.mount()
    assert e.value.event_message == (
        'MountVolume.SetUp failed for volume "www" : error processing PVC default/data: '
        'failed to fetch PVC from API server: persistentvolumeclaims "data" not found'
    )


async def test_pending_claim_waits_and_its_binding_wakes_the_mount(
    env: Env, tmp_path: Path
) -> None:
    folder = tmp_path / "storage" / "pvc-1"
    folder.mkdir(parents=True)
    env.tokens.volumes["pv-1"] = {
        "metadata": {"name": "pv-1"},
        "spec": {"hostPath": {"path": str(folder), "type": "DirectoryOrCreate"}},
    }
    env.fake.put(claim("Pending"))
    vols = env.volumes([{"name": "www", "persistentVolumeClaim": {"claimName": "data"}}])
    with pytest.raises(MountError, match="error processing PVC default/data: PVC is not bound"):
        await vols.mount()
    vols.changed.clear()
    env.fake.put(claim("Bound", "pv-1"))
    await asyncio.wait_for(vols.changed.wait(), 5)
    mounted = await vols.mount()
    assert mounted == {"www": (str(folder), False)}  # writable: the claim is not readOnly
    await vols.remove()
    assert folder.is_dir()  # a claim's data outlives the pod


def test_config_maps_resource_is_the_watched_kind() -> None:
    assert CONFIGMAPS.plural == "configmaps"
