"""Table cells as upstream's printers format them."""

from __future__ import annotations

import datetime

import pytest

from svcnet.apiserver import table

NOW = datetime.datetime(2026, 1, 10, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (4 * 3600, "4h"),
        (4 * 3600 + 120, "4h2m"),
        (30 * 3600, "30h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (20 * 86400, "20d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert table.human_duration(datetime.timedelta(seconds=seconds)) == text


def _svc(spec: dict[str, object], status: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "metadata": {"name": "web", "creationTimestamp": "2026-01-10T11:59:55Z"},
        "spec": spec,
        "status": status or {},
    }


@pytest.mark.parametrize(
    ("spec", "status", "cells"),
    [
        (
            {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.20",
                "ports": [{"port": 80, "protocol": "TCP"}],
                "selector": {"app": "web"},
            },
            None,
            ["web", "ClusterIP", "10.96.0.20", "<none>", "80/TCP", "5s", "app=web"],
        ),
        (
            {
                "type": "NodePort",
                "clusterIP": "10.96.0.21",
                "ports": [
                    {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                    {"port": 53, "nodePort": 30053, "protocol": "UDP"},
                ],
            },
            None,
            [
                "web",
                "NodePort",
                "10.96.0.21",
                "<none>",
                "80:30080/TCP,53:30053/UDP",
                "5s",
                "<none>",
            ],
        ),
        (
            {
                "type": "LoadBalancer",
                "clusterIP": "10.96.0.22",
                "ports": [{"port": 80, "nodePort": 31000}],
            },
            None,
            ["web", "LoadBalancer", "10.96.0.22", "<pending>", "80:31000/TCP", "5s", "<none>"],
        ),
        (
            {
                "type": "LoadBalancer",
                "clusterIP": "10.96.0.22",
                "ports": [{"port": 80, "nodePort": 31000}],
            },
            {"loadBalancer": {"ingress": [{"ip": "172.18.255.1"}]}},
            ["web", "LoadBalancer", "10.96.0.22", "172.18.255.1", "80:31000/TCP", "5s", "<none>"],
        ),
        (
            {"type": "ExternalName", "externalName": "db.example.com"},
            None,
            ["web", "ExternalName", "<none>", "db.example.com", "<none>", "5s", "<none>"],
        ),
        (
            {"clusterIP": "None", "ports": [{"port": 80}]},
            None,
            ["web", "ClusterIP", "None", "<none>", "80/TCP", "5s", "<none>"],
        ),
    ],
)
def test_service_row(
    spec: dict[str, object], status: dict[str, object] | None, cells: list[str]
) -> None:
    assert table.row_cells("", "Service", _svc(spec, status), NOW) == cells


def _pod(status: dict[str, object], **meta: object) -> dict[str, object]:
    return {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-10T11:00:00Z", **meta},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "node-1"},
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "meta", "ready", "state", "restarts"),
    [
        ({"phase": "Pending"}, {}, "0/2", "Pending", "0"),
        (
            {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
                    {
                        "name": "b",
                        "ready": True,
                        "restartCount": 2,
                        "state": {"running": {}},
                        "lastState": {"terminated": {"finishedAt": "2026-01-10T11:58:00Z"}},
                    },
                ],
            },
            {},
            "2/2",
            "Running",
            "2 (2m ago)",
        ),
        (
            {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "a",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ErrImageNeverPull"}},
                    }
                ],
            },
            {},
            "0/2",
            "ErrImageNeverPull",
            "0",
        ),
        (
            {"phase": "Running"},
            {"deletionTimestamp": "2026-01-10T12:00:30Z"},
            "0/2",
            "Terminating",
            "0",
        ),
        (
            {
                "phase": "Failed",
                "containerStatuses": [
                    {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}
                ],
            },
            {},
            "0/2",
            "ExitCode:3",
            "0",
        ),
    ],
)
def test_pod_row(
    status: dict[str, object], meta: dict[str, object], ready: str, state: str, restarts: str
) -> None:
    cells = table.row_cells("", "Pod", _pod(status, **meta), NOW)
    assert cells[1:4] == [ready, state, restarts]
    assert cells[4] == "60m"
    assert cells[6] == "node-1"


def test_pod_wide_columns_have_priority_one() -> None:
    cols = {c.name: c.priority for c in table.columns("", "Pod")}
    assert cols == {
        "Name": 0,
        "Ready": 0,
        "Status": 0,
        "Restarts": 0,
        "Age": 0,
        "IP": 1,
        "Node": 1,
        "Nominated Node": 1,
        "Readiness Gates": 1,
    }


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        (
            {
                "matchExpressions": [
                    {"key": "t", "operator": "In", "values": ["x", "y"]},
                    {"key": "u", "operator": "DoesNotExist"},
                ]
            },
            "t in (x,y),!u",
        ),
    ],
)
def test_format_label_selector(selector: dict[str, object] | None, text: str) -> None:
    assert table.format_label_selector(selector) == text


def test_endpointslice_row_truncates_after_three_addresses() -> None:
    obj = {
        "metadata": {"name": "web-abc", "creationTimestamp": "2026-01-10T12:00:00Z"},
        "addressType": "IPv4",
        "ports": [{"port": 8080}],
        "endpoints": [{"addresses": [f"10.244.1.{i}"]} for i in range(1, 6)],
    }
    assert table.row_cells("discovery.k8s.io", "EndpointSlice", obj, NOW) == [
        "web-abc",
        "IPv4",
        "8080",
        "10.244.1.1,10.244.1.2,10.244.1.3 + 2 more...",
        "0s",
    ]


def test_node_row() -> None:
    obj = {
        "metadata": {
            "name": "node-1",
            "creationTimestamp": "2026-01-10T12:00:00Z",
            "labels": {"node-role.kubernetes.io/control-plane": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.11"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0-svcnet"},
        },
    }
    cells = table.row_cells("", "Node", obj, NOW)
    assert cells[:6] == [
        "node-1",
        "Ready,SchedulingDisabled",
        "control-plane",
        "0s",
        "v1.32.0-svcnet",
        "172.18.0.11",
    ]


def test_table_include_object_none_omits_objects() -> None:
    t = table.table(
        "",
        "Namespace",
        [{"metadata": {"name": "a"}, "status": {"phase": "Active"}}],
        NOW,
        include_object="None",
    )
    assert t["rows"] == [{"cells": ["a", "Active", "<unknown>"]}]
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Status", "Age"]


def test_table_default_includes_partial_metadata() -> None:
    t = table.table("", "Namespace", [{"metadata": {"name": "a"}}], NOW)
    assert t["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"name": "a"},
    }


def test_daemonset_row() -> None:
    obj = {
        "metadata": {"name": "agent", "creationTimestamp": "2026-01-10T11:00:00Z"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "spec": {
                    "nodeSelector": {"role": "edge", "disk": "ssd"},
                    "containers": [{"name": "c", "image": "busybox"}],
                }
            },
        },
        "status": {
            "desiredNumberScheduled": 5,
            "currentNumberScheduled": 4,
            "numberReady": 3,
            "updatedNumberScheduled": 2,
            "numberAvailable": 1,
        },
    }
    assert table.row_cells("apps", "DaemonSet", obj, NOW) == [
        "agent", 5, 4, 3, 2, 1, "disk=ssd,role=edge", "60m", "c", "busybox", "app=agent",
    ]  # fmt: skip
    names = [c.definition()["name"] for c in table.columns("apps", "DaemonSet")]
    assert names == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
        "Containers", "Images", "Selector",
    ]  # fmt: skip


def _job(
    spec: dict[str, object], status: dict[str, object], deleting: bool = False
) -> dict[str, object]:
    meta: dict[str, object] = {"name": "pi", "creationTimestamp": "2026-01-10T11:00:00Z"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-10T12:00:00Z"
    return {"metadata": meta, "spec": spec, "status": status}


def _cond(type_: str) -> dict[str, object]:
    return {"conditions": [{"type": type_, "status": "True"}]}


@pytest.mark.parametrize(
    ("job", "cells"),
    [
        (_job({"completions": 3}, {"succeeded": 2, "startTime": "2026-01-10T11:58:00Z"}), ["pi", "Running", "2/3", "2m"]),
        (_job({"parallelism": 4}, {}), ["pi", "Running", "0/1 of 4", ""]),
        (_job({"parallelism": 1}, {}), ["pi", "Running", "0/1", ""]),
        (
            _job(
                {"completions": 1},
                {"succeeded": 1, "startTime": "2026-01-10T11:00:00Z", "completionTime": "2026-01-10T11:00:42Z", **_cond("Complete")},
            ),
            ["pi", "Complete", "1/1", "42s"],
        ),
        (_job({"completions": 1}, _cond("Failed")), ["pi", "Failed", "0/1", ""]),
        (_job({"completions": 1}, _cond("FailureTarget")), ["pi", "FailureTarget", "0/1", ""]),
        (_job({"completions": 1}, _cond("Suspended")), ["pi", "Suspended", "0/1", ""]),
        (_job({"completions": 1}, _cond("Suspended"), deleting=True), ["pi", "Terminating", "0/1", ""]),
    ],
)  # fmt: skip
def test_job_row(job: dict[str, object], cells: list[object]) -> None:
    assert table.row_cells("batch", "Job", job, NOW)[:4] == cells


def test_cronjob_row() -> None:
    obj = {
        "metadata": {"name": "tick", "creationTimestamp": "2026-01-10T11:00:00Z"},
        "spec": {
            "schedule": "*/5 * * * *",
            "timeZone": "Europe/Berlin",
            "suspend": False,
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
            },
        },
        "status": {"active": [{"name": "tick-1"}], "lastScheduleTime": "2026-01-10T11:55:00Z"},
    }
    assert table.row_cells("batch", "CronJob", obj, NOW) == [
        "tick", "*/5 * * * *", "Europe/Berlin", "False", 1, "5m", "60m", "c", "busybox", "<none>",
    ]  # fmt: skip
    bare = {"metadata": {"name": "t"}, "spec": {"schedule": "@daily"}, "status": {}}
    assert table.row_cells("batch", "CronJob", bare, NOW)[2:6] == ["<none>", "<unset>", 0, "<none>"]


def test_pdb_rows() -> None:
    def pdb(spec: dict[str, object]) -> dict[str, object]:
        return {"metadata": {"name": "web"}, "spec": spec, "status": {"disruptionsAllowed": 2}}

    assert table.row_cells("policy", "PodDisruptionBudget", pdb({"minAvailable": "50%"}), NOW)[
        :4
    ] == ["web", "50%", "N/A", 2]
    assert table.row_cells("policy", "PodDisruptionBudget", pdb({"maxUnavailable": 1}), NOW)[
        :4
    ] == ["web", "N/A", "1", 2]


def _metric(utilization: int) -> dict[str, object]:
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": utilization},
        },
    }


@pytest.mark.parametrize(
    ("metrics", "current", "targets"),
    [
        ([_metric(80)], [], "cpu: <unknown>/80%"),
        (
            [_metric(80)],
            [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 12}},
                }
            ],
            "cpu: 12%/80%",
        ),
        ([], [], "<none>"),
        (
            [_metric(10), _metric(20), _metric(30)],
            [],
            "cpu: <unknown>/10%, cpu: <unknown>/20% + 1 more...",
        ),
    ],
)
def test_hpa_targets(metrics: list[object], current: list[object], targets: str) -> None:
    obj = {
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": metrics,
        },
        "status": {"currentReplicas": 3, "currentMetrics": current},
    }
    row = table.row_cells("autoscaling", "HorizontalPodAutoscaler", obj, NOW)
    assert row[:6] == ["web", "Deployment/web", targets, 2, 5, 3]


@pytest.mark.parametrize(
    ("service", "condition", "cells"),
    [
        (None, {"type": "Available", "status": "True", "reason": "Local"}, ["Local", "True"]),
        ({"namespace": "w", "name": "api"}, None, ["w/api", "Unknown"]),
        ({"namespace": "w", "name": "api"},
         {"type": "Available", "status": "False", "reason": "ServiceNotFound"},
         ["w/api", "False (ServiceNotFound)"]),
        ({"namespace": "w", "name": "api"}, {"type": "Available", "status": "False"},
         ["w/api", "False"]),
        ({"namespace": "w", "name": "api"},
         {"type": "Available", "status": "True", "reason": "Passed"}, ["w/api", "True"]),
    ],
)  # fmt: skip
def test_apiservice_row(
    service: dict[str, str] | None, condition: dict[str, str] | None, cells: list[str]
) -> None:
    obj = {
        "metadata": {"name": "v1.x", "creationTimestamp": "2026-01-10T11:00:00Z"},
        "spec": {"service": service} if service else {},
        "status": {"conditions": [condition]} if condition else {},
    }
    assert [c.name for c in table.columns("apiregistration.k8s.io", "APIService")] == [
        "Name",
        "Service",
        "Available",
        "Age",
    ]
    assert table.row_cells("apiregistration.k8s.io", "APIService", obj, NOW) == [
        "v1.x",
        *cells,
        "60m",
    ]
