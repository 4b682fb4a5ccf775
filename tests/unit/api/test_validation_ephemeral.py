"""pods/ephemeralcontainers: only spec.ephemeralContainers changes, upstream's rules and texts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from svcnet.api.strategy import ephemeral_containers_update, strategy_for_kind
from svcnet.api.validation.core import validate_ephemeral_containers_update

STRATEGY = strategy_for_kind("v1", "Pod")


def _pod(ephemeral: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "web", "image": "nginx"}],
        "initContainers": [{"name": "init", "image": "nginx"}],
    }
    if ephemeral is not None:
        spec["ephemeralContainers"] = ephemeral
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "resourceVersion": "5"},
        "spec": spec,
        "status": {"phase": "Running"},
    }
    STRATEGY.default(pod)
    return pod


def _eph(**fields: Any) -> dict[str, Any]:
    return {"name": "debugger", "image": "busybox", **fields}


def _errors(old_ephemeral: list[dict[str, Any]] | None, new: dict[str, Any]) -> list[str]:
    old = _pod(old_ephemeral)
    updated = ephemeral_containers_update(new, old)
    return [str(e) for e in validate_ephemeral_containers_update(updated, old)]


CASES: list[tuple[str, list[dict[str, Any]] | None, list[dict[str, Any]], list[str]]] = [
    ("added", None, [_eph(stdin=True, tty=True, targetContainerName="web")], []),
    ("target an init container", None, [_eph(targetContainerName="init")], []),
    (
        "ports cannot be set",
        None,
        [_eph(ports=[{"containerPort": 80}])],
        ["spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container"],
    ),
    (
        "probes cannot be set",
        None,
        [_eph(readinessProbe={"tcpSocket": {"port": 80}})],
        [
            "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an "
            "Ephemeral Container"
        ],
    ),
    (
        "name of a container",
        None,
        [_eph(name="web")],
        ['spec.ephemeralContainers[0].name: Duplicate value: "web"'],
    ),
    (
        "unknown target",
        None,
        [_eph(targetContainerName="nope")],
        ['spec.ephemeralContainers[0].targetContainerName: Not found: "nope"'],
    ),
    (
        "image required",
        None,
        [{"name": "debugger"}],
        [
            "spec.ephemeralContainers[0].image: Required value",
        ],
    ),
    (
        "removed",
        [_eph()],
        [],
        [
            'spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be removed\n'
        ],
    ),
    (
        "changed",
        [_eph()],
        [_eph(image="nginx")],
        [
            'spec.ephemeralContainers[0]: Forbidden: existing ephemeral containers "debugger" may not be changed\n'
        ],
    ),
    ("another added after", [_eph()], [_eph(), _eph(name="second")], []),
]


@pytest.mark.parametrize(("old", "new", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_ephemeral_container_rules(
    old: list[dict[str, Any]] | None, new: list[dict[str, Any]], want: list[str]
) -> None:
    body = _pod(copy.deepcopy(old))
    body["spec"]["ephemeralContainers"] = copy.deepcopy(new)
    assert _errors(old, body) == want


def test_only_ephemeral_containers_change() -> None:
    old = _pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "changed"
    new["spec"]["ephemeralContainers"] = [_eph()]
    new["status"] = {"phase": "Failed"}
    new["metadata"]["labels"] = {"sneaked": "in"}
    out = ephemeral_containers_update(new, old)
    assert out["spec"]["containers"] == old["spec"]["containers"]
    assert out["status"] == old["status"]
    assert "labels" not in out["metadata"]
    (added,) = out["spec"]["ephemeralContainers"]
    # Container defaults apply to the new ephemeral container.
    assert added["terminationMessagePath"] == "/dev/termination-log"


def test_ephemeral_containers_cannot_be_set_on_create() -> None:
    pod = _pod([_eph()])
    STRATEGY.prepare_for_create(pod)
    assert [str(e) for e in STRATEGY.validate(pod)] == [
        "spec.ephemeralContainers: Forbidden: cannot be set on create"
    ]


def test_the_main_resource_cannot_change_them() -> None:
    old = _pod()
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [_eph()]
    errors = [str(e) for e in STRATEGY.validate_update(new, old)]
    assert any("pod updates may not change fields other than" in e for e in errors), errors
