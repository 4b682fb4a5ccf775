"""GatewayClass status conditions (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.ingress.gatewayclass import (
    gateway_class_conditions,
    is_accepted_gateway_class,
    is_our_gateway_class,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def gc(controller: str = "svcnet.io/gateway-controller", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "svcnet", "generation": 3},
        "spec": {"controllerName": controller},
        "status": status,
    }


@pytest.mark.parametrize(
    ("controller", "ours"),
    [("svcnet.io/gateway-controller", True), ("example.net/gateway-controller", False)],
)
def test_only_classes_of_our_controller_name_are_ours(controller: str, ours: bool) -> None:
    assert is_our_gateway_class(gc(controller)) is ours


def test_a_new_class_is_accepted_at_its_generation() -> None:
    [cond] = gateway_class_conditions(gc(), T0)
    assert cond == {
        "type": "Accepted",
        "status": "True",
        "reason": "Accepted",
        "message": "accepted by the svcnet ingress controller",
        "observedGeneration": 3,
        "lastTransitionTime": T0,
    }


def test_the_transition_time_moves_only_when_the_status_changes() -> None:
    accepted = gateway_class_conditions(gc(), T0)
    assert gateway_class_conditions(gc(conditions=accepted), T1) == accepted
    pending = [{**accepted[0], "status": "Unknown", "reason": "Pending"}]
    [cond] = gateway_class_conditions(gc(conditions=pending), T1)
    assert (cond["status"], cond["lastTransitionTime"]) == ("True", T1)


def test_a_class_with_parameters_is_not_accepted() -> None:
    with_params = gc()
    with_params["spec"]["parametersRef"] = {"group": "", "kind": "ConfigMap", "name": "p"}
    [cond] = gateway_class_conditions(with_params, T0)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidParameters")
    assert not is_accepted_gateway_class(with_params) and is_accepted_gateway_class(gc())
