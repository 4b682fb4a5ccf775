"""merge_kubeconfig/remove_from_kubeconfig with the real kubectl, as `svcnet up`/`down` use them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from svcnet.client.kubeconfig import load_kubeconfig, merge_kubeconfig, remove_from_kubeconfig

KUBECTL = "/usr/bin/kubectl"

OTHER = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "prod", "cluster": {"server": "https://192.0.2.1:6443"}}],
    "users": [{"name": "prod", "user": {"token": "t"}}],
    "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}],
    "current-context": "prod",
}


def kubectl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update({"KUBECONFIG": str(config), "HOME": str(config.parent)})
    return subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=60)


def test_kubectl_works_after_merge_and_forgets_us_after_remove(
    apiserver: Any, tmp_path: Path
) -> None:
    cfg = load_kubeconfig(apiserver.kubeconfig)
    assert cfg.ca_data and cfg.token
    target = tmp_path / ".kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(OTHER))
    merge_kubeconfig(target, "svcnet", cfg.server, cfg.ca_data, cfg.token)

    got = kubectl(target, "get", "namespace", "default", "-o", "name")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "namespace/default"
    contexts = kubectl(target, "config", "get-contexts", "-o", "name").stdout.split()
    assert sorted(contexts) == ["prod", "svcnet"]

    remove_from_kubeconfig(target, "svcnet")
    contexts = kubectl(target, "config", "get-contexts", "-o", "name").stdout.split()
    assert contexts == ["prod"]
    assert yaml.safe_load(target.read_text())["clusters"] == OTHER["clusters"]
