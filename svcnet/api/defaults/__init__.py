"""Defaulting as upstream's ``SetDefaults_*`` functions, in place on wire-form objects.

One module per API group; :func:`default_object` dispatches on the object's kind. Defaulting
only fills what is absent, so it is safe to run on every create and update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from svcnet.api.defaults import (
    apiregistration,
    apps,
    autoscaling,
    batch,
    core,
    gateway,
    networking,
    rbac,
    storage,
)

Defaulter = Callable[[dict[str, Any]], None]

DEFAULTERS: dict[str, Defaulter] = {
    "Namespace": core.default_namespace,
    "Node": core.default_node,
    "Pod": core.default_pod,
    "Service": core.default_service,
    "Endpoints": core.default_endpoints,
    "Secret": core.default_secret,
    "EndpointSlice": core.default_endpoint_slice,
    "PersistentVolumeClaim": storage.default_persistent_volume_claim,
    "PersistentVolume": storage.default_persistent_volume,
    "StorageClass": storage.default_storage_class,
    "APIService": apiregistration.default_api_service,
    "Deployment": apps.default_deployment,
    "ReplicaSet": apps.default_replica_set,
    "StatefulSet": apps.default_stateful_set,
    "DaemonSet": apps.default_daemon_set,
    "Job": batch.default_job,
    "CronJob": batch.default_cron_job,
    "ReplicationController": core.default_replication_controller,
    "HorizontalPodAutoscaler": autoscaling.default_horizontal_pod_autoscaler,
    "NetworkPolicy": networking.default_network_policy,
    "Ingress": networking.default_ingress,
    "Gateway": gateway.default_gateway,
    "HTTPRoute": gateway.default_http_route,
    "RoleBinding": rbac.default_binding,
    "ClusterRoleBinding": rbac.default_binding,
}


def default_object(obj: dict[str, Any]) -> None:
    fn = DEFAULTERS.get(str(obj.get("kind", "")))
    if fn is not None:
        fn(obj)
