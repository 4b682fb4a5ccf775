"""API-shaped Service and EndpointSlice dicts for proxy tests.

Fixture ranges: pods 10.244.0.0/16 (node-1 10.244.1.0/24, node-2 10.244.2.0/24), Services
10.96.0.0/16, nodes 172.18.0.11 (node-1, the node under test) and 172.18.0.12, the machine
172.18.0.1, LoadBalancer pool 172.18.255.0/24, an off-cluster client 192.0.2.7.
"""

from __future__ import annotations

from typing import Any

NODE_IP = "172.18.0.11"
NODE_POD_GW = "10.244.1.1"
LOCAL_ADDRESSES = (NODE_IP, NODE_POD_GW, "127.0.0.1")
POD_A = "10.244.1.9"  # a client pod on node-1
OUTSIDE = "192.0.2.7"


def service(
    name: str = "web",
    cluster_ip: str = "10.96.0.5",
    ports: list[dict[str, Any]] | None = None,
    namespace: str = "default",
    **spec: Any,
) -> dict[str, Any]:
    status = spec.pop("status", {})
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "clusterIP": cluster_ip,
            "ports": ports
            if ports is not None
            else [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            **spec,
        },
        "status": status,
    }
    return body


def endpoint(
    ip: str,
    node: str = "node-1",
    ready: bool = True,
    serving: bool | None = None,
    terminating: bool = False,
) -> dict[str, Any]:
    return {
        "addresses": [ip],
        "conditions": {
            "ready": ready,
            "serving": ready if serving is None else serving,
            "terminating": terminating,
        },
        "nodeName": node,
    }


def endpoint_slice(
    service_name: str = "web",
    endpoints: list[dict[str, Any]] | None = None,
    ports: list[dict[str, Any]] | None = None,
    name: str | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name or f"{service_name}-abc",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": endpoints or [],
        "ports": ports
        if ports is not None
        else [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
