"""Kubeconfig loading, merging and removal (kind's behaviour), and in-cluster config."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from svcnet.client.kubeconfig import (
    KubeconfigError,
    in_cluster_config,
    load_kubeconfig,
    merge_kubeconfig,
    remove_from_kubeconfig,
)

CA = b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"

OTHER: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {
            "name": "prod",
            "cluster": {"server": "https://10.0.0.1:6443", "certificate-authority": "prod-ca.crt"},
        }
    ],
    "users": [{"name": "prod-admin", "user": {"token": "prod-token"}}],
    "contexts": [
        {"name": "prod", "context": {"cluster": "prod", "user": "prod-admin", "namespace": "team"}}
    ],
    "current-context": "prod",
}


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_merge_into_a_missing_file_creates_it_private(tmp_path: Path) -> None:
    target = tmp_path / "kube" / "config"
    merge_kubeconfig(target, "svcnet", "https://127.0.0.1:6443", CA, "tok")
    assert target.stat().st_mode & 0o777 == 0o600
    cfg = load_kubeconfig(target)
    assert (cfg.server, cfg.ca_data, cfg.token) == ("https://127.0.0.1:6443", CA, "tok")


def test_merge_keeps_other_entries_and_switches_context(tmp_path: Path) -> None:
    target = write(tmp_path / "config", OTHER)
    merge_kubeconfig(target, "svcnet", "https://127.0.0.1:6443", CA, "tok")
    data = yaml.safe_load(target.read_text())
    assert [c["name"] for c in data["clusters"]] == ["prod", "svcnet"]
    assert [u["name"] for u in data["users"]] == ["prod-admin", "svcnet"]
    assert data["current-context"] == "svcnet"
    assert data["clusters"][0] == OTHER["clusters"][0]


def test_merge_without_set_current_leaves_the_current_context(tmp_path: Path) -> None:
    target = write(tmp_path / "config", OTHER)
    merge_kubeconfig(target, "svcnet", "https://x:1", CA, "tok", set_current=False)
    assert yaml.safe_load(target.read_text())["current-context"] == "prod"


def test_merging_twice_replaces_our_entries(tmp_path: Path) -> None:
    target = tmp_path / "config"
    merge_kubeconfig(target, "svcnet", "https://old:1", CA, "old")
    merge_kubeconfig(target, "svcnet", "https://new:2", CA, "new")
    data = yaml.safe_load(target.read_text())
    assert len(data["clusters"]) == len(data["users"]) == len(data["contexts"]) == 1
    assert load_kubeconfig(target).server == "https://new:2"


def test_remove_takes_out_only_our_entries(tmp_path: Path) -> None:
    target = write(tmp_path / "config", OTHER)
    merge_kubeconfig(target, "svcnet", "https://x:1", CA, "tok")
    remove_from_kubeconfig(target, "svcnet")
    data = yaml.safe_load(target.read_text())
    for key in ("clusters", "users", "contexts"):
        assert data[key] == OTHER[key]
    assert data["current-context"] == ""  # it was ours, as kind leaves it


def test_remove_keeps_someone_elses_current_context(tmp_path: Path) -> None:
    target = write(tmp_path / "config", OTHER)
    merge_kubeconfig(target, "svcnet", "https://x:1", CA, "tok", set_current=False)
    remove_from_kubeconfig(target, "svcnet")
    assert yaml.safe_load(target.read_text())["current-context"] == "prod"


def test_remove_from_a_missing_file_is_fine(tmp_path: Path) -> None:
    remove_from_kubeconfig(tmp_path / "nothing", "svcnet")
    assert not (tmp_path / "nothing").exists()


def test_load_a_named_context_with_a_relative_ca_file(tmp_path: Path) -> None:
    (tmp_path / "prod-ca.crt").write_bytes(CA)
    target = write(tmp_path / "config", OTHER)
    merge_kubeconfig(target, "svcnet", "https://x:1", CA, "tok")
    cfg = load_kubeconfig(target, context="prod")
    assert (cfg.server, cfg.token, cfg.ca_data, cfg.namespace) == (
        "https://10.0.0.1:6443",
        "prod-token",
        CA,
        "team",
    )


def test_kubeconfig_env_merges_files_first_wins(tmp_path: Path, monkeypatch: Any) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    merge_kubeconfig(a, "svcnet", "https://a:1", CA, "ta")
    merge_kubeconfig(b, "svcnet", "https://b:1", CA, "tb")
    monkeypatch.setenv("KUBECONFIG", f"{a}:{b}")
    assert load_kubeconfig().server == "https://a:1"


def test_insecure_skip_tls_verify_and_client_certs_are_read(tmp_path: Path) -> None:
    data = {
        "clusters": [
            {"name": "c", "cluster": {"server": "https://h:1", "insecure-skip-tls-verify": True}}
        ],
        "users": [
            {
                "name": "u",
                "user": {
                    "client-certificate-data": base64.b64encode(b"CERT").decode(),
                    "client-key-data": base64.b64encode(b"KEY").decode(),
                },
            }
        ],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    cfg = load_kubeconfig(write(tmp_path / "config", data))
    assert cfg.insecure_skip_tls_verify
    assert (cfg.client_cert_data, cfg.client_key_data) == (b"CERT", b"KEY")


@pytest.mark.parametrize(
    ("data", "context", "message"),
    [
        ({}, None, "no kubeconfig"),
        ({"contexts": [], "current-context": ""}, None, "current-context is not set"),
        (OTHER, "nope", 'context "nope" does not exist'),
    ],
)
def test_load_errors_say_what_is_missing(
    tmp_path: Path, data: dict[str, Any], context: str | None, message: str
) -> None:
    path = tmp_path / "config"
    if data:
        write(path, data)
    with pytest.raises(KubeconfigError, match=message):
        load_kubeconfig(path, context)


def test_in_cluster_config_reads_the_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "namespace").write_text("kube-system")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    cfg = in_cluster_config(env, tmp_path)
    assert (cfg.server, cfg.bearer_token(), cfg.ca_data, cfg.namespace) == (
        "https://10.96.0.1:443",
        "sa-token",
        CA,
        "kube-system",
    )
    # A rotated token is picked up on the next request.
    (tmp_path / "token").write_text("rotated")
    assert cfg.bearer_token() == "rotated"


def test_in_cluster_config_outside_a_cluster_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="not in a cluster"):
        in_cluster_config({}, tmp_path)
