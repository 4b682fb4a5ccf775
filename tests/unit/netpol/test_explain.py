"""``svcnet policy explain``'s answer: the verdict of each direction and what decided it.

Fixture ranges: see ``builders`` (x/a on node-1, x/c on node-2).
"""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.netpol.explain import UnknownPodError, explain, render
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
