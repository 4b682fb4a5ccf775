"""Node admission of pods bound without the scheduler (kubelet's canAdmitPod): NodePorts."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.agent.admission import admit


def pod(*ports: tuple[int, str, str]) -> dict[str, Any]:
    """A pod whose one container asks for (hostPort, protocol, hostIP) each."""
    return {
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "ports": [
                        {"containerPort": p, "hostPort": p, "protocol": proto, "hostIP": ip}
                        for p, proto, ip in ports
                    ],
                }
            ]
        }
    }


@pytest.mark.parametrize(
    ("new", "running", "rejected"),
    [
        (pod((80, "TCP", "")), [pod((80, "TCP", ""))], True),
        (pod((80, "TCP", "")), [pod((80, "UDP", ""))], False),
        (pod((80, "TCP", "")), [pod((81, "TCP", ""))], False),
        (pod((80, "TCP", "10.0.0.1")), [pod((80, "TCP", "10.0.0.2"))], False),
        (pod((80, "TCP", "10.0.0.1")), [pod((80, "TCP", ""))], True),  # 0.0.0.0 takes all
        (pod(), [pod((80, "TCP", ""))], False),
        (pod((80, "TCP", "")), [], False),
    ],
)
def test_a_host_port_held_by_an_active_pod_is_rejected(
    new: dict[str, Any], running: list[dict[str, Any]], rejected: bool
) -> None:
    assert (admit(new, running) is not None) is rejected


def test_rejection_words_are_kubelets() -> None:
    r = admit(pod((80, "TCP", "")), [pod((80, "TCP", ""))])
    assert r is not None
    message = (
        "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
    )
    assert (r.reason, r.message) == ("NodePorts", message)
    assert r.status == {
        "phase": "Failed",
        "reason": "NodePorts",
        "message": f"Pod was rejected: {message}",
    }
