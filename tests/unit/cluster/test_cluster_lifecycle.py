"""The pure pieces of ``svcnet up``/``status``: which flag a conflict blames, the kubeconfig the
context is merged from, the node rows ``status`` shows, where the context goes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from svcnet.cluster.claims import NAME_FLAG, Conflict
from svcnet.cluster.lifecycle import (
    NodeRow,
    kubeconfig_entry,
    log_tails,
    name_conflicts,
    node_rows,
    user_kubeconfig,
)
from svcnet.cluster.supervisor import ComponentStatus
from svcnet.cluster.underlay import UnderlayConfig, node_net

NAME_CLASH = Conflict(NAME_FLAG, "svcnet", 'namespace "svcnet-node-1" exists')
RANGE_CLASH = Conflict("--pod-cidr", "10.244.0.0/16", "overlaps route 10.244.0.0/16")


def test_without_prefix_a_name_clash_blames_name() -> None:
    got = name_conflicts([NAME_CLASH, RANGE_CLASH], prefix=None)
    assert [c.field for c in got] == ["--name", "--pod-cidr"]
    assert got[0].value == NAME_CLASH.value and got[0].detail == NAME_CLASH.detail


def test_with_prefix_a_name_clash_blames_prefix() -> None:
    assert name_conflicts([NAME_CLASH, RANGE_CLASH], prefix="svc") == [NAME_CLASH, RANGE_CLASH]


def test_kubeconfig_entry_reads_server_ca_and_token() -> None:
    ca = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    kcfg = {
        "clusters": [
            {
                "name": "svcnet",
                "cluster": {
                    "server": "https://127.0.0.1:16443",
                    "certificate-authority-data": base64.b64encode(ca).decode(),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": "t0ken"}}],
    }
    assert kubeconfig_entry(kcfg) == ("https://127.0.0.1:16443", ca, "t0ken")


def test_node_rows_show_agent_state_stopped_and_readiness() -> None:
    cfg = UnderlayConfig(prefix="t", underlay_cidr="172.29.1.0/24", pod_cidr="10.160.0.0/16")
    nets = [node_net(cfg, i) for i in (1, 2, 3)]
    components = {
        "agent-node-1": ComponentStatus("agent-node-1", pid=10, state="Running"),
        "agent-node-2": ComponentStatus("agent-node-2", pid=11, state="Running"),
    }
    rows = node_rows(nets, components, {"node-1": "True", "node-2": "False"}, stopped=["node-2"])
    assert rows == (
        NodeRow("node-1", nets[0].ip, "t-node-1", "Running", "True"),
        NodeRow("node-2", nets[1].ip, "t-node-2", "Stopped", "False"),
        NodeRow("node-3", nets[2].ip, "t-node-3", "-", "Unknown"),
    )


@pytest.mark.parametrize(
    ("explicit", "env", "want"),
    [
        ("/x/explicit", "/a/first:/b/second", "/x/explicit"),
        (None, ":/a/first:/b/second", "/a/first"),
        (None, "", "HOME/.kube/config"),
    ],
)
def test_user_kubeconfig_order(
    explicit: str | None, env: str, want: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", env)
    assert user_kubeconfig(explicit) == Path(want.replace("HOME", str(tmp_path)))


def test_log_tails_name_each_log_and_skip_empty(tmp_path: Path) -> None:
    (tmp_path / "b.log").write_text("".join(f"line {i}\n" for i in range(15)))
    (tmp_path / "a.log").write_text("only\n")
    (tmp_path / "empty.log").write_text("")
    (tmp_path / "notes.txt").write_text("not a log\n")
    assert log_tails(tmp_path) == [
        "--- a.log\nonly",
        "--- b.log\n" + "\n".join(f"line {i}" for i in range(5, 15)),
    ]
