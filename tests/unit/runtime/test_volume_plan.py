"""Pod volumes planned from the pod and the objects it names: payloads (paths, bytes, modes)
of configMap, secret, downwardAPI and projected volumes, kubelet's error texts, the mounts of
a container, and the token refresh rule. Pure: no files are written."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from svcnet.runtime.volumes.plan import (
    FileEntry,
    MountError,
    TokenKey,
    VolumeInputs,
    VolumeKind,
    container_mounts,
    plan_volume,
    pod_sources,
    token_refresh_at,
    volume_dir,
)

POD: dict[str, Any] = {
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "u-1",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": 'say "hi"'},
    },
    "spec": {
        "serviceAccountName": "robot",
        "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}}],
    },
}
NONE = VolumeInputs()
CMS = {"cfg": {"data": {"a.conf": "A", "b.conf": "B"}, "binaryData": {"bin": "AAE="}}}
SECRETS = {"pw": {"data": {"user": base64.b64encode(b"root").decode(), "pass": "cw=="}}}


def payload(volume: dict[str, Any], tokens: dict[TokenKey, str] | None = None) -> dict[str, Any]:
    plan = plan_volume(POD, {"name": "v", **volume}, VolumeInputs(CMS, SECRETS, tokens or {}))
    assert plan.kind is VolumeKind.FILES
    return {p: (e.data, oct(e.mode)) for p, e in plan.payload.items()}


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        (
            {"configMap": {"name": "cfg"}},
            {"a.conf": (b"A", "0o644"), "b.conf": (b"B", "0o644"), "bin": (b"\0\1", "0o644")},
        ),
        (
            {"configMap": {"name": "cfg", "defaultMode": 0o600,
                           "items": [{"key": "a.conf", "path": "conf/app.conf", "mode": 0o400},
                                     {"key": "b.conf", "path": "b"}]}},
            {"conf/app.conf": (b"A", "0o400"), "b": (b"B", "0o600")},
        ),
        (
            {"secret": {"secretName": "pw", "items": [{"key": "pass", "path": "p", "mode": 0o440}]}},
            {"p": (b"s", "0o440")},
        ),
        ({"configMap": {"name": "absent", "optional": True}}, {}),
        ({"secret": {"secretName": "absent", "optional": True}}, {}),
        (
            {"configMap": {"name": "cfg", "optional": True, "items": [{"key": "nope", "path": "x"}]}},
            {},
        ),
        (
            {"downwardAPI": {"items": [
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
                {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "c",
                                                     "resource": "limits.memory",
                                                     "divisor": "1Mi"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "c",
                                                     "resource": "limits.cpu"}},
            ]}},
            {
                "name": (b"web", "0o644"),
                "ns": (b"shop", "0o644"),
                "uid": (b"u-1", "0o644"),
                "labels": (b'app="web"\ntier="front"', "0o644"),
                "annotations": (b'note="say \\"hi\\""', "0o644"),
                "app": (b"web", "0o644"),
                "mem": (b"64", "0o644"),
                "cpu": (b"1", "0o644"),
            },
        ),
        (
            {"projected": {"defaultMode": 0o640, "sources": [
                {"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "a"}]}},
                {"secret": {"name": "pw", "items": [{"key": "user", "path": "u"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                                            "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}},
            ]}},
            {
                "a": (b"A", "0o640"),
                "u": (b"root", "0o640"),
                "namespace": (b"shop", "0o640"),
                "token": (b"tok-600", "0o640"),
            },
        ),
    ],
)  # fmt: skip
def test_payload(volume: dict[str, Any], expected: dict[str, Any]) -> None:
    tokens = {TokenKey("robot", "", 600): "tok-600"}
    assert payload(volume, tokens) == expected


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"configMap": {"name": "absent"}}, 'configmap "absent" not found'),
        ({"secret": {"secretName": "absent"}}, 'secret "absent" not found'),
        (
            {"configMap": {"name": "cfg", "items": [{"key": "nope", "path": "x"}]}},
            "configmap references non-existent config key: nope",
        ),
        (
            {"secret": {"secretName": "pw", "items": [{"key": "nope", "path": "x"}]}},
            "secret references non-existent secret key: nope",
        ),
        (
            {"projected": {"sources": [{"configMap": {"name": "a1"}}, {"secret": {"name": "a2"}}]}},
            '[configmap "a1" not found, secret "a2" not found]',
        ),
        (
            {"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "../x"}]}},
            "invalid path: must not contain '..': ../x",
        ),
        (
            {"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "/x"}]}},
            "invalid path: must be relative path: /x",
        ),
    ],
)  # fmt: skip
def test_mount_errors_are_worded_as_kubelet_words_them(
    volume: dict[str, Any], message: str
) -> None:
    with pytest.raises(MountError) as e:
        plan_volume(POD, {"name": "v", **volume}, VolumeInputs(CMS, SECRETS))
    assert str(e.value) == message
    assert e.value.event_message == f'MountVolume.SetUp failed for volume "v" : {message}'


def test_empty_dir_in_memory_has_its_size_limit() -> None:
    plan = plan_volume(
        POD, {"name": "v", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}, NONE
    )
    assert (plan.kind, plan.memory, plan.size_limit) == (VolumeKind.EMPTY_DIR, True, 1 << 20)
    assert volume_dir("/n/pods", "u-1", plan) == "/n/pods/u-1/volumes/kubernetes.io~empty-dir/v"
    disk = plan_volume(POD, {"name": "d", "emptyDir": {}}, NONE)
    assert (disk.memory, disk.size_limit) == (False, None)


def test_host_path_is_its_own_folder() -> None:
    plan = plan_volume(POD, {"name": "h", "hostPath": {"path": "/srv", "type": "Directory"}}, NONE)
    assert (plan.kind, plan.host_type, volume_dir("/n/pods", "u", plan)) == (
        VolumeKind.HOST_PATH, "Directory", "/srv",
    )  # fmt: skip
    assert not plan.api_data


def test_pod_sources_name_every_object_and_token() -> None:
    pod = {
        **POD,
        "spec": {
            "volumes": [
                {"name": "a", "configMap": {"name": "c1"}},
                {"name": "b", "secret": {"secretName": "s1"}},
                {"name": "k", "projected": {"sources": [
                    {"configMap": {"name": "kube-root-ca.crt"}},
                    {"secret": {"name": "s2"}},
                    {"serviceAccountToken": {"path": "token", "audience": "vault"}},
                ]}},
            ]
        },
    }  # fmt: skip
    src = pod_sources(pod)
    assert src.config_maps == {"c1", "kube-root-ca.crt"}
    assert src.secrets == {"s1", "s2"}
    assert src.tokens == {TokenKey("default", "vault", 3600)}


def test_container_mounts_join_sub_path_and_force_api_data_read_only() -> None:
    container = {
        "volumeMounts": [
            {"name": "data", "mountPath": "/data", "subPath": "logs"},
            {"name": "data", "mountPath": "/ro", "readOnly": True},
            {"name": "cfg", "mountPath": "/etc/app", "readOnly": False},
        ]
    }
    mounts = container_mounts(container, {"data": ("/v/data", False), "cfg": ("/v/cfg", True)})
    assert [(m.source, m.target, m.readonly) for m in mounts] == [
        ("/v/data/logs", "/data", False),
        ("/v/data", "/ro", True),
        ("/v/cfg", "/etc/app", True),
    ]


@pytest.mark.parametrize(
    ("issued", "expires", "refresh"),
    [(0.0, 3600.0, 2880.0), (100.0, 700.0, 580.0), (0.0, 365 * 86400.0, 86400.0)],
)
def test_token_refresh_past_80_percent_or_a_day(
    issued: float, expires: float, refresh: float
) -> None:
    assert token_refresh_at(issued, expires) == refresh


def test_file_entries_compare_by_content_and_mode() -> None:
    assert FileEntry(b"x", 0o644) == FileEntry(b"x", 0o644) != FileEntry(b"x", 0o600)
