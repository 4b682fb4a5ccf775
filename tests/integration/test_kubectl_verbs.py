"""kubectl label, annotate, patch, scale, describe, edit, delete with cascading, get -w."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from apiserver_harness import KUBECTL, Kubectl

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: web, image: nginx}
"""


def _get(k: Kubectl, *what: str) -> dict:
    return json.loads(k("get", *what, "-o", "json"))


def test_label_and_annotate(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=SERVICE)
    assert kubectl("label", "svc", "web", "tier=front").strip() == "service/web labeled"
    assert kubectl("annotate", "svc", "web", "owner=team-a").strip() == "service/web annotated"
    meta = _get(kubectl, "svc", "web")["metadata"]
    assert meta["labels"] == {"app": "web", "tier": "front"}
    assert meta["annotations"]["owner"] == "team-a"
    kubectl("label", "svc", "web", "tier-")
    assert "tier" not in _get(kubectl, "svc", "web")["metadata"]["labels"]


@pytest.mark.parametrize(
    ("patch_type", "patch", "expect"),
    [
        ("json", '[{"op": "replace", "path": "/spec/ports/0/port", "value": 81}]', 81),
        ("merge", '{"spec": {"ports": [{"name": "http", "port": 82, "targetPort": 8080}]}}', 82),
        (
            "strategic",
            '{"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9090}]}}',
            80,
        ),
    ],
)
def test_patch_types(kubectl: Kubectl, patch_type: str, patch: str, expect: int) -> None:
    kubectl("apply", "-f", "-", input=SERVICE)
    out = kubectl("patch", "svc", "web", "--type", patch_type, "-p", patch)
    assert out.strip() == "service/web patched"
    ports = _get(kubectl, "svc", "web")["spec"]["ports"]
    assert ports[0]["port"] == expect
    if patch_type == "strategic":
        # Merged by the port's merge key: the port stays, its targetPort changes.
        assert len(ports) == 1 and ports[0]["targetPort"] == 9090


def test_scale_deployment_through_scale_subresource(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=DEPLOYMENT)
    assert kubectl("scale", "deploy", "web", "--replicas=5").strip() == "deployment.apps/web scaled"
    d = _get(kubectl, "deploy", "web")
    assert d["spec"]["replicas"] == 5
    assert d["metadata"]["generation"] == 2


def test_describe_shows_events_of_the_object(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=SERVICE)
    uid = _get(kubectl, "svc", "web")["metadata"]["uid"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.1"},
        "involvedObject": {
            "kind": "Service",
            "name": "web",
            "namespace": kubectl.namespace,
            "uid": uid,
            "apiVersion": "v1",
        },
        "reason": "Synced",
        "message": "service synced by test",
        "type": "Normal",
        "source": {"component": "it"},
        "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
    }
    kubectl("create", "-f", "-", input=json.dumps(event))
    out = kubectl("describe", "svc", "web")
    assert re.search(r"^Selector:\s+app=web$", out, re.M), out
    assert "Synced" in out and "service synced by test" in out


def test_edit_through_kube_editor(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("apply", "-f", "-", input=SERVICE)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/targetPort: 8080/targetPort: 7070/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    proc = kubectl.run("edit", "svc", "web", env={"KUBE_EDITOR": str(editor)})
    assert proc.stdout.strip() == "service/web edited"
    assert _get(kubectl, "svc", "web")["spec"]["ports"][0]["targetPort"] == 7070


def test_delete_background_removes_the_owner_at_once(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=DEPLOYMENT)
    assert kubectl("delete", "deploy", "web").strip() == 'deployment.apps "web" deleted'
    assert kubectl.run("get", "deploy", "web", check=False).returncode == 1
    # TODO(gc): when svcnet/controllers/gc.py runs beside the server, assert that the
    # ReplicaSets the Deployment owned are deleted too.


@pytest.mark.parametrize(
    ("cascade", "finalizer"), [("orphan", "orphan"), ("foreground", "foregroundDeletion")]
)
def test_delete_orphan_and_foreground_leave_owner_with_finalizer(
    kubectl: Kubectl, cascade: str, finalizer: str
) -> None:
    kubectl("apply", "-f", "-", input=DEPLOYMENT)
    kubectl("delete", "deploy", "web", f"--cascade={cascade}", "--wait=false")
    meta = _get(kubectl, "deploy", "web")["metadata"]
    assert meta["finalizers"] == [finalizer]
    assert meta["deletionTimestamp"]
    # TODO(gc): with the garbage collector running, assert the dependents are orphaned or
    # deleted first and that the owner then disappears.
    kubectl("patch", "deploy", "web", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    assert kubectl.run("get", "deploy", "web", check=False).returncode == 1


def test_watch_prints_events_as_they_happen(kubectl: Kubectl) -> None:
    # kubectl lists, then watches from the list's resourceVersion: once the list has printed
    # "before", every later change is an event of the watch, however long it takes to connect.
    kubectl("create", "configmap", "before")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["KUBECONFIG"] = str(kubectl.kubeconfig)
    proc = subprocess.Popen(
        [KUBECTL, "-n", kubectl.namespace, "get", "configmaps", "-w", "--output-watch-events"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen: list[list[str]] = []

    def read_until(name: str, count: int) -> None:
        assert proc.stdout is not None
        # readline blocks: the timeout of the whole wait is the kubectl process's, below.
        while len([s for s in seen if s[1:2] == [name]]) < count:
            line = proc.stdout.readline()
            assert line, f"kubectl ended; saw {seen}"
            seen.append(line.split())

    timer = threading.Timer(30, proc.kill)
    timer.start()
    try:
        read_until("before", 1)
        kubectl("create", "configmap", "watched", "--from-literal=a=1")
        kubectl("label", "configmap", "watched", "x=1")
        kubectl("delete", "configmap", "watched")
        read_until("watched", 3)
    finally:
        timer.cancel()
        proc.terminate()
        proc.wait(10)
    assert [s[0] for s in seen if s[1] == "before"] == ["ADDED"], seen
    events = [s[0] for s in seen if s[1] == "watched"]
    assert events == ["ADDED", "MODIFIED", "DELETED"], seen
