"""ServiceAccount admission: the projected volume written into new pods exactly as upstream
writes it, who gets it (automount on the pod, then the ServiceAccount), and the lookup of the
account (retried for ``default``, Forbidden when missing). The store is the in-memory one."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from svcnet.api.errors import Forbidden
from svcnet.api.registry import CONFIGMAPS, PODS, SERVICEACCOUNTS
from svcnet.apiserver.saadmission import (
    MOUNT_PATH,
    ServiceAccountAdmission,
    mount_service_account_token,
)
from svcnet.apiserver.storage import ObjectStore
from svcnet.store.memory import MemoryStore

NS = "team"
MOUNT = {"name": "kube-api-access-abcde", "readOnly": True, "mountPath": MOUNT_PATH}
# What `kubectl get pod -o json` shows of a pod admitted by a 1.32 API server.
UPSTREAM_VOLUME = {
    "name": "kube-api-access-abcde",
    "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {
                "configMap": {
                    "name": "kube-root-ca.crt",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {
                "downwardAPI": {
                    "items": [
                        {
                            "path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                        }
                    ]
                }
            },
        ],
        "defaultMode": 420,
    },
}


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "serviceAccountName": "default",
        "containers": [{"name": "c", "image": "pause"}],
    }
    base.update(spec)
    return {"metadata": {"name": "p", "namespace": NS}, "spec": base}


def test_volume_and_mounts_as_upstream_writes_them() -> None:
    p = pod(
        initContainers=[{"name": "init", "image": "pause"}],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    p["spec"]["containers"].append(
        {"name": "d", "image": "pause", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}
    )
    mount_service_account_token(p, "abcde")
    spec = p["spec"]
    assert spec["volumes"] == [{"name": "data", "emptyDir": {}}, UPSTREAM_VOLUME]
    assert spec["initContainers"][0]["volumeMounts"] == [MOUNT]
    assert spec["containers"][0]["volumeMounts"] == [MOUNT]
    assert spec["containers"][1]["volumeMounts"] == [{"name": "data", "mountPath": "/d"}, MOUNT]


def test_a_container_with_its_own_mount_at_the_path_keeps_it() -> None:
    own = {"name": "mine", "mountPath": MOUNT_PATH}
    p = pod(containers=[{"name": "c", "image": "pause", "volumeMounts": [own]}])
    mount_service_account_token(p, "abcde")
    assert p["spec"]["containers"][0]["volumeMounts"] == [own]
    assert "volumes" not in p["spec"]  # no container needs it


def test_an_existing_kube_api_access_volume_is_reused() -> None:
    p = pod(volumes=[{"name": "kube-api-access-zzzzz", "emptyDir": {}}])
    mount_service_account_token(p, "abcde")
    assert p["spec"]["volumes"] == [{"name": "kube-api-access-zzzzz", "emptyDir": {}}]
    assert p["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-zzzzz"


# -- with the store ----------------------------------------------------------------------------


class Sleeps:
    def __init__(self, objects: ObjectStore | None = None, create_after: int = -1) -> None:
        self.slept: list[float] = []
        self.objects = objects
        self.create_after = create_after

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.objects is not None and len(self.slept) == self.create_after:
            await self.objects.create(SERVICEACCOUNTS, sa("default"))


def sa(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        **fields,
    }


async def admitted(
    new_pod: dict[str, Any], *accounts: dict[str, Any], sleeps: Sleeps | None = None
) -> dict[str, Any]:
    objects = ObjectStore(MemoryStore())
    for account in accounts:
        await objects.create(SERVICEACCOUNTS, account)
    sleeps = sleeps or Sleeps()
    admission = ServiceAccountAdmission(objects, sleeps, random.Random(7))
    new_pod = copy.deepcopy(new_pod)
    await admission.admit_create(PODS, new_pod)
    return new_pod


def mounted(p: dict[str, Any]) -> bool:
    return any(v["name"].startswith("kube-api-access-") for v in p["spec"].get("volumes") or ())


@pytest.mark.parametrize(
    ("pod_automount", "sa_automount", "expected"),
    [
        (None, None, True),
        (False, None, False),
        (None, False, False),
        (True, False, True),  # the pod's choice wins
        (False, True, False),
    ],
)
async def test_automount_pod_then_service_account(
    pod_automount: bool | None, sa_automount: bool | None, expected: bool
) -> None:
    spec = {} if pod_automount is None else {"automountServiceAccountToken": pod_automount}
    fields = {} if sa_automount is None else {"automountServiceAccountToken": sa_automount}
    assert mounted(await admitted(pod(**spec), sa("default", **fields))) is expected


async def test_missing_service_account_name_defaults_and_pull_secrets_are_copied() -> None:
    p = pod()
    del p["spec"]["serviceAccountName"]
    out = await admitted(p, sa("default", imagePullSecrets=[{"name": "reg"}]))
    assert out["spec"]["serviceAccountName"] == "default"
    assert out["spec"]["imagePullSecrets"] == [{"name": "reg"}]


async def test_missing_account_is_forbidden_as_upstream() -> None:
    sleeps = Sleeps()
    with pytest.raises(Forbidden) as info:
        await admitted(pod(serviceAccountName="builder"), sa("default"), sleeps=sleeps)
    assert info.value.message == (
        'pods "p" is forbidden: error looking up service account team/builder: '
        'serviceaccount "builder" not found'
    )
    assert info.value.details == {"name": "p", "kind": "pods"}
    assert sleeps.slept == []  # a named account is looked up once


async def test_default_is_waited_for_while_its_controller_makes_it() -> None:
    objects = ObjectStore(MemoryStore())
    sleeps = Sleeps(objects, create_after=3)
    admission = ServiceAccountAdmission(objects, sleeps, random.Random(7))
    p = pod()
    await admission.admit_create(PODS, p)
    assert mounted(p)
    assert len(sleeps.slept) == 3 and all(0.1 <= s < 0.2 for s in sleeps.slept)


async def test_default_missing_for_good_is_forbidden_after_ten_lookups() -> None:
    sleeps = Sleeps()
    with pytest.raises(Forbidden, match='serviceaccount "default" not found'):
        await admitted(pod(), sleeps=sleeps)
    assert len(sleeps.slept) == 9


async def test_a_generated_name_is_refused_under_its_prefix() -> None:
    p = pod(serviceAccountName="builder")
    p["metadata"].update(name="web-7d4b9c-x2k8q", generateName="web-7d4b9c-")
    with pytest.raises(Forbidden, match=r'^pods "web-7d4b9c-" is forbidden'):
        await admitted(p)


async def test_the_volume_name_gets_five_generated_characters() -> None:
    [volume] = (await admitted(pod(), sa("default")))["spec"]["volumes"]
    suffix = volume["name"].removeprefix("kube-api-access-")
    assert len(suffix) == 5 and set(suffix) <= set("bcdfghjklmnpqrstvwxz2456789")


async def test_mirror_pods_and_other_kinds_are_left_alone() -> None:
    mirror = pod()
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    assert await admitted(mirror) == mirror
    objects = ObjectStore(MemoryStore())
    cm = {"metadata": {"name": "c", "namespace": NS}}
    await ServiceAccountAdmission(objects).admit_create(CONFIGMAPS, cm)
    assert cm == {"metadata": {"name": "c", "namespace": NS}}
