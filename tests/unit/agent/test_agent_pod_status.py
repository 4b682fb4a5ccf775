"""Pod status (kubelet's generateAPIPodStatus) and /etc/resolv.conf per dnsPolicy."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.agent.containers import ContainerState, ContainerStatus, StateKind, Terminated
from svcnet.agent.pod_status import ContainerFacts, PodFacts, build_pod_status, render_resolv_conf

RUNNING = ContainerStatus(
    "a", ContainerState(StateKind.RUNNING, started_at=1_700_000_000.0), None, 0, True
)
CRASHED = ContainerStatus(
    "b",
    ContainerState(StateKind.WAITING, "CrashLoopBackOff", "back-off 10s"),
    Terminated(2, "Error", started_at=1_700_000_000.0, finished_at=1_700_000_001.0),
    1,
    False,
)


def facts(*containers: ContainerFacts, phase: str = "Running") -> PodFacts:
    return PodFacts("172.18.0.11", ("10.244.1.5",), 1_700_000_000.0, True, phase, containers)


def cond(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == ctype)


def test_all_ready_containers_make_the_pod_ready() -> None:
    st = build_pod_status(facts(ContainerFacts("a", "img", RUNNING, True, True, 42)), [], "T1")
    assert cond(st, "Ready")["status"] == "True"
    assert cond(st, "ContainersReady")["status"] == "True"
    assert cond(st, "PodScheduled")["status"] == "True"
    assert st["podIP"] == "10.244.1.5" and st["podIPs"] == [{"ip": "10.244.1.5"}]
    assert st["hostIPs"] == [{"ip": "172.18.0.11"}]
    cs = st["containerStatuses"][0]
    assert (cs["containerID"], cs["ready"], cs["started"]) == ("svcnet://42", True, True)
    assert cs["state"] == {"running": {"startedAt": "2023-11-14T22:13:20Z"}}


def test_unready_container_is_named_in_the_ready_condition() -> None:
    st = build_pod_status(
        facts(
            ContainerFacts("a", "img", RUNNING, True, True, 1),
            ContainerFacts("b", "img", CRASHED, False, False, None),
        ),
        [],
        "T",
    )
    ready = cond(st, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ContainersNotReady",
        "containers with unready status: [b]",
    )
    b = st["containerStatuses"][1]
    assert b["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert b["lastState"]["terminated"]["exitCode"] == 2
    assert b["restartCount"] == 1


def test_same_facts_give_the_same_status_so_nothing_is_rewritten() -> None:
    f = facts(ContainerFacts("a", "img", RUNNING, True, True, 42))
    first = build_pod_status(f, [], "T1")
    assert build_pod_status(f, first["conditions"], "T2") == first


def test_scheduler_condition_is_kept() -> None:
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"}
    st = build_pod_status(facts(), [scheduled], "T1")
    assert cond(st, "PodScheduled") == scheduled


NODE_RESOLV = "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        (
            {},
            "nameserver 10.96.0.10\nsearch prod.svc.cluster.local svc.cluster.local "
            "cluster.local\noptions ndots:5\n",
        ),
        ({"dnsPolicy": "Default"}, NODE_RESOLV),
        ({"dnsPolicy": "ClusterFirst", "hostNetwork": True}, NODE_RESOLV),
        (
            {"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True},
            "nameserver 10.96.0.10\nsearch prod.svc.cluster.local svc.cluster.local "
            "cluster.local\noptions ndots:5\n",
        ),
        (
            {
                "dnsPolicy": "None",
                "dnsConfig": {
                    "nameservers": ["1.1.1.1"],
                    "searches": ["a.b"],
                    "options": [{"name": "ndots", "value": "2"}],
                },
            },
            "nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n",
        ),
        (
            {"dnsConfig": {"options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}]}},
            "nameserver 10.96.0.10\nsearch prod.svc.cluster.local svc.cluster.local "
            "cluster.local\noptions ndots:1 edns0\n",
        ),
    ],
)
def test_resolv_conf_per_dns_policy(spec: dict[str, Any], want: str) -> None:
    pod = {"metadata": {"namespace": "prod"}, "spec": spec}
    assert render_resolv_conf(pod, "10.96.0.10", "cluster.local", NODE_RESOLV) == want
