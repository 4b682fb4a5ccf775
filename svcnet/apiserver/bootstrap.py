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
from svcnet.api.registry import Registry
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
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
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
            "labels": {"kubernetes.io/service-name": "kubernetes"},
        },
        "addressType": "IPv6" if ":" in address else "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }


async def bootstrap(
    registry: Registry, handlers: ResourceHandlers, service_cidr: str, advertise: str, port: int
) -> None:
    opts = req.WriteOptions(field_manager=MANAGER)
    ns_rt = registry.by_plural("", "v1", "namespaces")
    svc_rt = registry.by_plural("", "v1", "services")
    ep_rt = registry.by_plural("", "v1", "endpoints")
    eps_rt = registry.by_plural("discovery.k8s.io", "v1", "endpointslices")
    assert ns_rt and svc_rt and ep_rt and eps_rt
    for name in DEFAULT_NAMESPACES:
        if await handlers.objects.get(ns_rt, None, name) is None:
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            with contextlib.suppress(AlreadyExists):
                await handlers.create_object(ns_rt, ns, opts)
    cluster_ip = well_known_ips(service_cidr)[0]
    if await handlers.objects.get(svc_rt, "default", "kubernetes") is None:
        with contextlib.suppress(AlreadyExists):
            await handlers.create_object(svc_rt, kubernetes_service(cluster_ip, port), opts)
    for rt, want in (
        (ep_rt, kubernetes_endpoints(advertise, port)),
        (eps_rt, kubernetes_endpointslice(advertise, port)),
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
