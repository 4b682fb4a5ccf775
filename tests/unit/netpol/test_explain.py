"""``svcnet policy explain``'s answer: the verdict of each direction and what decided it.

Fixture ranges: see ``builders`` (x/a on node-1, x/c on node-2).
"""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.netpol.explain import (
    Backend,
    Cluster,
    UnknownPodError,
    UnknownServicePortError,
    explain,
    explanation_json,
    render,
    service_backends,
)
from svcnet.netpol.model import (
    PodKey,
    Protocol,
    namespace_info,
    pod_info,
    policy_info,
)

from .builders import layout, policy

DENY = policy("deny", policy_types=["Ingress", "Egress"])
FROM_C = policy(
    "from-c",
    podSelector={"matchLabels": {"pod": "a"}},
    ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "c"}}}], "ports": [{"port": 80}]}],
)
C_OUT = policy("c-out", podSelector={"matchLabels": {"pod": "c"}}, egress=[{}])


def answer(policies: list[dict[str, Any]], src: str, dst: str, port: int = 80) -> str:
    objs = layout()
    pods = [p for p in (pod_info(o) for o in objs if o["kind"] == "Pod") if p is not None]
    nss = [namespace_info(o) for o in objs if o["kind"] == "Namespace"]
    e = explain(
        [policy_info(p) for p in policies],
        pods,
        nss,
        PodKey(*src.split("/")),
        PodKey(*dst.split("/")),
        Protocol.TCP,
        port,
    )
    return render(e)


@pytest.mark.parametrize(
    ("policies", "src", "dst", "port", "lines"),
    [
        (
            [],
            "y/a",
            "x/a",
            80,
            [
                "y/a (10.244.1.20) -> x/a (10.244.1.10):80/TCP: allowed",
                "  egress of y/a: allowed (no policy selects it for Egress)",
                "  ingress of x/a: allowed (no policy selects it for Ingress)",
            ],
        ),
        (
            [DENY, FROM_C, C_OUT],
            "x/c",
            "x/a",
            80,
            [
                "x/c (10.244.2.12) -> x/a (10.244.1.10):80/TCP: allowed",
                "  egress of x/c: allowed by x/c-out egress[0]",
                "  ingress of x/a: allowed by x/from-c ingress[0]",
            ],
        ),
        (
            [DENY, FROM_C],
            "x/c",
            "x/a",
            81,
            [
                "x/c (10.244.2.12) -> x/a (10.244.1.10):81/TCP: DROPPED",
                "  egress of x/c: DROPPED: isolated by x/deny; no rule of them allows it",
                "  ingress of x/a: DROPPED: isolated by x/deny, x/from-c; no rule of them allows it",
            ],
        ),
        (
            [DENY],
            "x/a",
            "x/a",
            80,
            [
                "x/a (10.244.1.10) -> x/a (10.244.1.10):80/TCP: allowed (a pod always reaches itself)"
            ],
        ),
    ],
)
def test_explain(
    policies: list[dict[str, Any]], src: str, dst: str, port: int, lines: list[str]
) -> None:
    assert answer(policies, src, dst, port).splitlines() == lines


def test_unknown_pod_is_an_error_not_a_verdict() -> None:
    with pytest.raises(UnknownPodError):
        answer([], "x/a", "x/nobody")


@pytest.mark.parametrize(
    ("text", "with_port", "want"),
    [
        ("x/a", False, ("x", "a", 0, "TCP")),
        ("a", False, ("default", "a", 0, "TCP")),
        ("x/a:81", True, ("x", "a", 81, "TCP")),
        ("x/a:53/udp", True, ("x", "a", 53, "UDP")),
    ],
)
def test_cli_endpoints(text: str, with_port: bool, want: tuple[str, str, int, str]) -> None:
    from svcnet.cli.policy import parse_endpoint

    assert parse_endpoint(text, with_port) == want


@pytest.mark.parametrize(
    ("text", "with_port"),
    [("x/a:81", False), ("x/a:0", True), ("x/a:http", True), ("x/a:80/icmp", True), ("x/", True)],
)
def test_cli_refuses_bad_endpoints(text: str, with_port: bool) -> None:
    import click

    from svcnet.cli.policy import parse_endpoint

    with pytest.raises(click.BadParameter):
        parse_endpoint(text, with_port)


def test_matrix_is_every_pair_judged_as_explain_does() -> None:
    objs = layout()
    cluster = Cluster(
        [policy_info(DENY)],
        [p for p in (pod_info(o) for o in objs if o["kind"] == "Pod") if p is not None],
        [namespace_info(o) for o in objs if o["kind"] == "Namespace"],
    )
    keys = sorted(cluster.pods)
    cells = cluster.matrix(keys, keys, Protocol.TCP, 80)
    assert len(cells) == 81
    allowed = {(str(c.src.key), str(c.dst.key)) for c in cells if c.allowed}
    assert allowed == {
        (str(s), str(d))
        for s in keys
        for d in keys
        if s == d or "x" not in (s.namespace, d.namespace)
    }
    assert explanation_json(cells[0])["from"] == str(keys[0])


SERVICE = {
    "metadata": {"name": "web", "namespace": "x"},
    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "serve-80-tcp"}]},
}


def slice_(ready: bool | None, port_name: str = "http") -> dict[str, Any]:
    cond = {} if ready is None else {"ready": ready}
    return {
        "ports": [{"name": port_name, "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.1.10"], "conditions": cond,
             "targetRef": {"kind": "Pod", "name": "a", "namespace": "x"}},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("port", "slices", "backends"),
    [
        ("80", [slice_(True)], [Backend(PodKey("x", "a"), 8080, Protocol.TCP)]),
        ("http", [slice_(None)], [Backend(PodKey("x", "a"), 8080, Protocol.TCP)]),
        ("80", [slice_(False)], []),
        ("80", [slice_(True, "other")], []),
    ],
    ids=["by-number", "by-name", "unready", "other-port"],
)
def test_service_backends_are_the_slices_endpoints_on_their_port(
    port: str, slices: list[dict[str, Any]], backends: list[Backend]
) -> None:
    assert service_backends(SERVICE, slices, port) == backends


def test_unknown_service_port_is_an_error() -> None:
    with pytest.raises(UnknownServicePortError, match="has no port 81"):
        service_backends(SERVICE, [], "81")
