"""The official Python client's own end-to-end suite (kubernetes-client/python,
``kubernetes/e2e_test``) against a real 2-node svcnet cluster (cluster_fixture: its own ranges,
API port and kubeconfig; ``svcnet down`` and a leak check at the end).

The client under test is the ``kubernetes`` package installed from PyPI into this environment
(a test dependency in pyproject.toml). Its wheel and its sdist do not ship the suite
(``setup.py`` lists no ``kubernetes.e2e_test``), so the suite's files are read, at a pinned
commit, from a git copy of kubernetes-client/python named by ``SVCNET_PYTHON_CLIENT_REPO``
(a ``.git`` directory or a bare mirror) and laid out in a temporary directory; nothing of it is
kept in this repository. The suite runs once, unchanged, in a subprocess, as its own CI runs it
(``pytest kubernetes/e2e_test`` from the repository root, the cluster named by ``KUBECONFIG``);
each of its tests is then one test here that passes only if that suite test passed — a skip is
not a pass; without the git copy every test here is skipped, naming what to set. Suite tests that fail today for a known reason are ``xfail(strict=True)`` with
that reason, so they turn red the day they start passing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cluster_fixture import Cluster
from cluster_fixture import svcnet_cluster as svcnet_cluster

pytestmark = pytest.mark.e2e

# kubernetes-client/python master of 2026-08-17 (36.0.0+snapshot: the suite of the client
# line the installed 37.x wheel was cut from).
SUITE_COMMIT = "024658493d124f046fc0a9827a2a3165cf2aee28"
REPO_ENV = "SVCNET_PYTHON_CLIENT_REPO"
# Where the session's `fetch` of github:kubernetes-client/python puts its mirror.
DEFAULT_REPO = "/work/.mirror/kubernetes-client+python/repo"
SUITE_DIR = "kubernetes/e2e_test"

SUITE_TIMEOUT = 400.0  # the suite takes about a minute; its loops without deadlines can hang


@dataclass(frozen=True)
class Known:
    """Why a suite test fails today, and the text its failure must show to count as that."""

    reason: str
    evidence: str


# Every test of the suite at SUITE_COMMIT (file::class::test), with the reason of those that
# do not pass against svcnet today.
SUITE: dict[str, Known | None] = {
    "test_apps.py::TestClientApps::test_create_daemonset": None,
    "test_apps.py::TestClientApps::test_create_deployment": None,
    "test_batch.py::TestClientBatch::test_job_apis": None,
    "test_client.py::TestClient::test_configmap_apis": None,
    "test_client.py::TestClient::test_exit_code": None,
    "test_client.py::TestClient::test_node_apis": None,
    "test_client.py::TestClient::test_pod_apis": None,
    "test_client.py::TestClient::test_pod_exec_close_channel": None,
    "test_client.py::TestClient::test_portforward_http": None,
    "test_client.py::TestClient::test_portforward_raw": None,
    "test_client.py::TestClient::test_replication_controller_apis": None,
    "test_client.py::TestClient::test_service_apis": None,
    "test_informer.py::TestSharedInformerE2E::test_added_event_and_cache_entry": None,
    "test_informer.py::TestSharedInformerE2E::test_cache_populated_after_start": None,
    "test_informer.py::TestSharedInformerE2E::test_deleted_event_removes_from_cache": None,
    "test_informer.py::TestSharedInformerE2E::test_modified_event_and_cache_refresh": None,
    "test_informer.py::TestSharedInformerE2E::test_resource_version_advances": None,
    "test_informer.py::TestSharedInformerE2E::test_resync_fires_modified_for_existing_objects": (
        None
    ),
    "test_issue_2387_proxy_ssl_context.py::TestProxySslContext::"
    "test_with_proxy_ssl_context_succeeds_when_proxy_ca_differs": None,
    "test_issue_2387_proxy_ssl_context.py::TestProxySslContext::"
    "test_without_proxy_ssl_context_fails_when_proxy_ca_differs": None,
    "test_utils.py::TestUtils::test_create_apiservice_from_yaml_with_conflict": None,
    "test_utils.py::TestUtils::test_create_apps_deployment_from_yaml": None,
    "test_utils.py::TestUtils::test_create_apps_deployment_from_yaml_obj": None,
    "test_utils.py::TestUtils::test_create_apps_deployment_from_yaml_object": None,
    "test_utils.py::TestUtils::test_create_apps_deployment_from_yaml_with_apply_is_idempotent": (
        None
    ),
    "test_utils.py::TestUtils::test_create_deployment_non_default_namespace_from_yaml": None,
    "test_utils.py::TestUtils::test_create_from_list_in_multi_resource_yaml": None,
    "test_utils.py::TestUtils::test_create_from_list_in_multi_resource_yaml_namespaced": None,
    "test_utils.py::TestUtils::test_create_from_multi_resource_yaml": None,
    "test_utils.py::TestUtils::test_create_from_multi_resource_yaml_with_conflict": None,
    "test_utils.py::TestUtils::test_create_from_multi_resource_yaml_with_multi_conflicts": None,
    "test_utils.py::TestUtils::test_create_general_list_from_yaml": None,
    "test_utils.py::TestUtils::test_create_implicit_service_list_from_yaml_with_conflict": None,
    "test_utils.py::TestUtils::test_create_multi_resource_from_directory": None,
    "test_utils.py::TestUtils::test_create_namespace_from_yaml": None,
    "test_utils.py::TestUtils::test_create_namespace_list_from_yaml": None,
    "test_utils.py::TestUtils::test_create_namespaced_apps_deployment_from_yaml": None,
    "test_utils.py::TestUtils::test_create_pod_from_yaml": None,
    "test_utils.py::TestUtils::test_create_rbac_role_from_yaml": None,
    "test_utils.py::TestUtils::test_create_rbac_role_from_yaml_with_verbose_enabled": None,
    "test_utils.py::TestUtils::test_create_service_from_yaml": None,
    # The suite skips it when metrics.k8s.io answers 404; a skip is not a pass.
    "test_utils.py::TestUtils::test_metrics_utilities_integration": Known(
        "metrics.k8s.io is not served (no metrics pipeline)", "Metrics API unavailable"
    ),
    "test_utils.py::TestUtilsUnitTests::test_format_quantity": None,
    "test_utils.py::TestUtilsUnitTests::test_parse_quantity": None,
    "test_watch.py::TestClient::test_watch_configmaps": None,
}


def _suite_repo() -> Path:
    repo = Path(os.environ.get(REPO_ENV, DEFAULT_REPO))
    has = subprocess.run(
        ["git", f"--git-dir={repo}", "cat-file", "-e", f"{SUITE_COMMIT}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if has.returncode != 0:
        # A machine without that copy cannot run the suite: reported as skipped (never as
        # passed), not as a failure of svcnet.
        pytest.skip(
            f"the Python client's e2e suite is not on PyPI: set {REPO_ENV} to a git directory of "
            f"github.com/kubernetes-client/python holding commit {SUITE_COMMIT} ({repo}: "
            f"{has.stderr.decode().strip() or 'no such commit'})"
        )
    return repo


def _lay_out_suite(repo: Path, root: Path) -> None:
    """The suite's files at SUITE_COMMIT under ``root/kubernetes/e2e_test`` (its tests open
    their YAML files by that path relative to the working directory)."""
    archive = subprocess.run(
        ["git", f"--git-dir={repo}", "archive", SUITE_COMMIT, SUITE_DIR],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)


# The suite imports itself as ``kubernetes.e2e_test``: the installed package's path gains the
# laid-out directory, so ``kubernetes`` itself is the installed one.
RUNNER = """
import sys, kubernetes, pytest
kubernetes.__path__.append(sys.argv[1])
sys.exit(pytest.main(sys.argv[2:]))
"""


@dataclass(frozen=True)
class Outcome:
    outcome: str  # passed | failure | error | skipped
    text: str  # the message and traceback of a failure, the reason of a skip


def _outcomes(junit: Path) -> dict[str, Outcome]:
    """``file::Class::test`` → its outcome, from the suite's JUnit report."""
    out: dict[str, Outcome] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        module, cls = case.attrib["classname"].rsplit(".", 1)
        key = f"{module.rsplit('.', 1)[-1]}.py::{cls}::{case.attrib['name']}"
        out[key] = Outcome("passed", "")
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                text = (child.attrib.get("message") or "") + "\n" + (child.text or "")
                out[key] = Outcome(child.tag, text)
                break
    return out


@dataclass(frozen=True)
class SuiteRun:
    outcomes: dict[str, Outcome]
    output: str


@pytest.fixture(scope="module")
def suite_run(svcnet_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    repo = _suite_repo()
    root = tmp_path_factory.mktemp("python-client-suite")
    _lay_out_suite(repo, root)
    junit = root / "junit.xml"
    env = {**os.environ, "KUBECONFIG": str(svcnet_cluster.kubeconfig)}
    argv = [
        sys.executable, "-c", RUNNER, str(root / "kubernetes"),
        "-p", "no:cacheprovider", "-q", "-rfEs", f"--junitxml={junit}",
        "--rootdir", str(root), SUITE_DIR,
    ]  # fmt: skip
    try:
        res = subprocess.run(
            argv, cwd=root, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else ""
        pytest.fail(f"the suite did not end within {SUITE_TIMEOUT:.0f} s:\n{out[-5000:]}")
    assert junit.exists(), f"the suite did not run:\n{res.stdout[-5000:]}{res.stderr[-5000:]}"
    return SuiteRun(_outcomes(junit), res.stdout)


def test_the_suite_is_the_pinned_one(suite_run: SuiteRun) -> None:
    """The table above is the whole suite: a test it does not name is not silently left out."""
    assert sorted(suite_run.outcomes) == sorted(SUITE)


def _params() -> list[Any]:
    return [
        pytest.param(
            name,
            id=name.rsplit("::", 1)[-1],
            marks=[]
            if known is None
            else [pytest.mark.xfail(reason=known.reason, strict=True, raises=AssertionError)],
        )
        for name, known in SUITE.items()
    ]


@pytest.mark.parametrize("name", _params())
def test_suite_test_passes(suite_run: SuiteRun, name: str) -> None:
    got = suite_run.outcomes.get(name)
    if got is None:
        pytest.fail(f"{name} did not run:\n{suite_run.output[-3000:]}")
    known = SUITE[name]
    if known is not None and got.outcome != "passed" and known.evidence not in got.text:
        # Failing for another reason than the known one is a failure, not the expected one.
        pytest.fail(f"{name} {got.outcome}, not for the known reason ({known.reason}):\n{got.text}")
    assert got.outcome == "passed", f"{name} {got.outcome}:\n{got.text}"
