"""`svcnet up` stops at once, changing nothing, without root or without a needed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

TOOLS = ("ip", "nft", "conntrack", "nsenter", "unshare", "setsid", "sysctl")


def _up(
    tmp_path: Path, env: dict[str, str], prelude: str = "", extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    code = (
        "import os, sys\nfrom svcnet.cli.main import cli\n"
        + prelude
        + "sys.argv = ['svcnet', 'up', '--name', 'pfl', '--data-dir', sys.argv[1], "
        "'--kubeconfig', sys.argv[2], *sys.argv[3:]]\ncli()\n"
    )
    return subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(tmp_path / "data"),
            str(tmp_path / "kubeconfig"),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_without_root_up_stops_and_says_so(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        res = _up(tmp_path, dict(os.environ))
    else:
        # Drop to an unprivileged effective UID after the imports (the venv and the Python
        # installation may be root-only); `up` imports its preflight lazily, so import it first.
        prelude = "import svcnet.cluster.preflight\nos.seteuid(65534)\n"
        res = _up(tmp_path, dict(os.environ), prelude=prelude)
    assert res.returncode == 1
    assert "needs root" in res.stderr
    assert not (tmp_path / "data").exists()


def test_without_nft_up_names_the_nftables_package(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the package check runs after the root check")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if tool != "nft" and found:
            (bin_dir / tool).symlink_to(found)
    res = _up(tmp_path, {**os.environ, "PATH": str(bin_dir)})
    assert res.returncode == 1
    assert "nft" in res.stderr
    assert res.stderr.strip().endswith("apt-get install nftables")
    assert not (tmp_path / "data").exists()


def test_a_range_that_is_no_network_is_refused_as_kubectl_prints_it(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the range check runs after the root check")
    res = _up(tmp_path, dict(os.environ), extra=("--pod-cidr", "10.244.0.0/25", "--port", "0"))
    assert res.returncode == 1
    assert res.stderr == (
        'The cluster "pfl" is invalid: --pod-cidr: Invalid value: "10.244.0.0/25": holds 0 /24s, '
        "3 needed (a /24 per node)\n"
    )
    assert not (tmp_path / "data").exists()
