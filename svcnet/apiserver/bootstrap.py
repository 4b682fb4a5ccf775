"""What a fresh (or restarted) API server makes sure exists before it serves.

The default namespaces, and the ``kubernetes`` Service in ``default`` on the first IP of the
service range (port 443 ``https`` → the API server's port) with its Endpoints and
EndpointSlice pointing at the advertised address — what kube-apiserver's own controllers
(``systemnamespaces`` and the ``kubernetes`` service reconciler) maintain.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from svcnet.api.errors import AlreadyExists
from svcnet.api.registry import ENDPOINTS, ENDPOINTSLICES, NAMESPACES, SERVICES, Registry
from svcnet.api.wellknown import SERVICE_NAME_LABEL, SKIP_MIRROR_LABEL
from svcnet.apiserver import request as req
from svcnet.apiserver.admission import well_known_ips
from svcnet.apiserver.handlers import ResourceHandlers

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MANAGER = "kube-apiserver"


def kubernetes_service(cluster_ip: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
        },
    }


def kubernetes_endpoints(address: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {SKIP_MIRROR_LABEL: "true"},
        },
        "subsets": [
            {
                "addresses": [{"ip": address}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            }
        ],
    }


def kubernetes_endpointslice(address: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {SERVICE_NAME_LABEL: "kubernetes"},
        },
        "addressType": "IPv6" if ":" in address else "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }


async def bootstrap(
    registry: Registry, handlers: ResourceHandlers, service_cidr: str, advertise: str, port: int
) -> None:
    opts = req.WriteOptions(field_manager=MANAGER)
    for name in DEFAULT_NAMESPACES:
        if await handlers.objects.get(NAMESPACES, None, name) is None:
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            with contextlib.suppress(AlreadyExists):
                await handlers.create_object(NAMESPACES, ns, opts)
    cluster_ip = well_known_ips(service_cidr)[0]
    if await handlers.objects.get(SERVICES, "default", "kubernetes") is None:
        with contextlib.suppress(AlreadyExists):
            await handlers.create_object(SERVICES, kubernetes_service(cluster_ip, port), opts)
    for rt, want in (
        (ENDPOINTS, kubernetes_endpoints(advertise, port)),
        (ENDPOINTSLICES, kubernetes_endpointslice(advertise, port)),
    ):
        current = await handlers.objects.get(rt, "default", "kubernetes")
        if current is None:
            with contextlib.suppress(AlreadyExists):
                await handlers.create_object(rt, copy.deepcopy(want), opts)
            continue
        fields = ("subsets",) if rt.kind == "Endpoints" else ("addressType", "endpoints", "ports")
        if all(current.get(f) == want.get(f) for f in fields):
            continue
        info = req.RequestInfo(
            rt.group, rt.version, rt.plural, "default", "kubernetes", "", req.Verb.UPDATE
        )

        def mutate(
            cur: dict[str, Any], want: dict[str, Any] = want, fields: tuple[str, ...] = fields
        ) -> dict[str, Any]:
            for f in fields:
                cur[f] = copy.deepcopy(want[f])
            return cur

        await handlers.update_object(rt, info, mutate, opts)
