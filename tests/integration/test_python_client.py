"""The Python ``kubernetes`` client against the server: CRUD, list, patch, watch."""

from __future__ import annotations

import threading

import pytest
from apiserver_harness import RunningServer
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


@pytest.fixture
def core(apiserver: RunningServer) -> client.CoreV1Api:
    api_client = config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    return client.CoreV1Api(api_client)


def test_service_crud(core: client.CoreV1Api, namespace: str) -> None:
    body = client.V1Service(
        metadata=client.V1ObjectMeta(name="py", labels={"app": "py"}),
        spec=client.V1ServiceSpec(
            selector={"app": "py"}, ports=[client.V1ServicePort(port=80, target_port=8080)]
        ),
    )
    created = core.create_namespaced_service(namespace, body)
    assert created.spec.cluster_ip.startswith("10.96.")
    assert created.spec.type == "ClusterIP" and created.spec.session_affinity == "None"
    listed = core.list_namespaced_service(namespace, label_selector="app=py")
    assert [s.metadata.name for s in listed.items] == ["py"]
    patched = core.patch_namespaced_service("py", namespace, {"metadata": {"labels": {"x": "1"}}})
    assert patched.metadata.labels == {"app": "py", "x": "1"}
    core.delete_namespaced_service("py", namespace)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_service("py", namespace)
    assert err.value.status == 404


def test_watch_stream(core: client.CoreV1Api, namespace: str) -> None:
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    seen: list[tuple[str, str]] = []

    def run() -> None:
        w = watch.Watch()
        for event in w.stream(
            core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=5
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pw"), data={"a": "1"})
    )
    core.delete_namespaced_config_map("pw", namespace)
    t.join(10)
    assert seen == [("ADDED", "pw"), ("DELETED", "pw")]
