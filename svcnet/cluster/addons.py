"""The cluster add-ons ``svcnet up`` deploys through the API once the nodes are Ready, as
kubeadm does after its control plane is up: today the cluster DNS.

The DNS add-on is kubeadm's CoreDNS add-on with svcnet's server in the container:
- ServiceAccount ``kube-dns``, Deployment ``coredns`` (2 replicas, label ``k8s-app=kube-dns``)
  and Service ``kube-dns`` on the fixed ClusterIP (the 10th address of the service range,
  10.96.0.10 by default, which the API server keeps out of dynamic allocation), ports 53/UDP
  ``dns`` and 53/TCP ``dns-tcp``, all in ``kube-system``;
- the container's command is this installation's Python running ``-m svcnet.dns``: there is
  no container runtime and containers run on the node's filesystem, so the code and the
  interpreter are already where the pod runs;
- the server reads the API through a kubeconfig file in the cluster's data dir (the node
  filesystem is shared) whose server is the underlay gateway (``https://172.18.0.1:6443``):
  127.0.0.1 inside a pod is the pod's own loopback, and the ``kubernetes`` ClusterIP would
  make the DNS depend on the Service proxy it helps people debug. The API server's
  certificate carries the gateway as a SAN. The file carries a token of the ``kube-dns``
  ServiceAccount, which ClusterRole ``system:coredns`` (kubeadm's: list and watch of
  Services, EndpointSlices, Endpoints, Pods, Namespaces) is bound to: the server reads the
  API with least privilege, as CoreDNS does;
- probes as CoreDNS's manifest: liveness GET :8080/health, readiness GET :8181/ready (200
  once the record table has synced from the API). Readiness is probed every second instead
  of upstream's 10 s so that a fresh cluster answers names about a second after ``up``.

The ingress add-on is the controller of :mod:`svcnet.ingress` with its HAProxy in one pod, as
ingress-nginx's and HAProxy's own controllers ship:
- namespace ``svcnet-ingress``: ServiceAccount, Deployment ``svcnet-ingress-controller`` (one
  replica: it writes Ingress status, and two writers would need leader election) running
  ``python -m svcnet.ingress``, which starts HAProxy (master-worker) once its first
  configuration is checked; readiness is HAProxy's own ``/healthz`` on 10254;
- Service ``svcnet-ingress-controller`` of type LoadBalancer, ports 80 ``http`` and 443
  ``https``: its address from the LoadBalancer pool is the cluster's one entry point, and the
  controller copies it into every Ingress's ``status.loadBalancer`` (``--publish-service``);
- IngressClass ``svcnet`` (controller ``svcnet.io/ingress-controller``) marked default, so an
  Ingress naming no class — the seed's ``main-ingress`` — is served; GatewayClass ``svcnet``
  (controllerName ``svcnet.io/gateway-controller``), which the controller accepts;
- the controller reads the API through a kubeconfig of its own, written like the DNS one.

The storage add-on is the StorageClass ``standard`` (provisioner ``svcnet.io/local-path``,
``WaitForFirstConsumer``, reclaim ``Delete``) marked default, as k3s ships ``local-path``: a
claim naming no class gets a folder on the node its first pod is scheduled to, made by that
node's agent (:mod:`svcnet.agent.localpath`).

Building the objects is pure (:func:`dns_addon_objects`, :func:`ingress_addon_objects`); :func:`deploy_addons` applies them
with server-side apply, so running it again (``svcnet up`` on a cluster whose add-on exists,
or with another ``--upstream-dns``) updates them in place.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from svcnet.api.wellknown import (
    CONTROL_PLANE_ROLE,
    DEFAULT_CLASS_ANNOTATION,
    DEFAULT_INGRESS_CLASS_ANNOTATION,
    DEFAULT_STORAGE_CLASS,
    LOCAL_PATH_PROVISIONER,
    OS_LABEL,
)
from svcnet.cluster.up import ClusterConfig, api_get
from svcnet.dns.forward import Upstream
from svcnet.ingress.gatewayclass import GATEWAY_CONTROLLER_NAME
from svcnet.ingress.model import CONTROLLER_NAME
from svcnet.runtime.images import outermost, svcnet_paths

if TYPE_CHECKING:  # the CLI imports this module: keep aiohttp out until it deploys
    from svcnet.client.rest import ApiClient

DNS_NAMESPACE = "kube-system"
DNS_SERVICE = "kube-dns"
DNS_DEPLOYMENT = "coredns"
DNS_SERVICE_ACCOUNT = "kube-dns"
DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_IMAGE = "svcnet/dns"  # informational: the command below is what runs
INGRESS_NAMESPACE = "svcnet-ingress"
INGRESS_NAME = "svcnet-ingress-controller"  # Deployment, Service and ServiceAccount
INGRESS_CLASS = "svcnet"
INGRESS_LABELS = {
    "app.kubernetes.io/name": "svcnet-ingress",
    "app.kubernetes.io/component": "controller",
}
INGRESS_IMAGE = "svcnet/ingress"  # informational, as DNS_IMAGE
INGRESS_HEALTH_PORT = 10254
DNS_ZONE = "cluster.local"
DNS_REPLICAS = 2
DNS_PORT = 53
HEALTH_PORT = 8080
READY_PORT = 8181
# Answering after SIGTERM while the endpoint removal reaches every node's proxy (CoreDNS's
# `health { lameduck 5s }` in kubeadm's Corefile; here ~0.1 s is needed, 2 s leaves margin
# and keeps `svcnet down` quick). Below the grace period, so the server stops by itself.
LAMEDUCK_SECONDS = 2
GRACE_SECONDS = 5
FIELD_MANAGER = "svcnet-up"


@dataclass(frozen=True)
class DnsAddonSpec:
    """What the DNS add-on's objects depend on; everything else is fixed."""

    cluster_ip: str
    kubeconfig: str  # path on the node filesystem, read by the container
    python: str = sys.executable
    zone: str = DNS_ZONE
    upstreams: tuple[str, ...] = ()
    replicas: int = DNS_REPLICAS

    def node_paths(self) -> list[str]:
        """Folders of the node the server's command needs: svcnet's interpreter and source,
        and the kubeconfig's folder (outermost first, no repeats)."""
        return outermost(
            [
                *svcnet_paths(),
                os.path.dirname(os.path.abspath(self.kubeconfig)),
                os.path.dirname(os.path.dirname(os.path.realpath(self.python))),
            ]
        )

    def command(self) -> list[str]:
        argv = [
            self.python,
            "-m",
            "svcnet.dns",
            "--zone",
            self.zone,
            "--listen",
            f"0.0.0.0:{DNS_PORT}",
            "--kubeconfig",
            self.kubeconfig,
            "--health",
            f"0.0.0.0:{HEALTH_PORT}",
            "--ready",
            f"0.0.0.0:{READY_PORT}",
            "--lameduck",
            str(LAMEDUCK_SECONDS),
        ]
        for upstream in self.upstreams:
            argv += ["--upstream", upstream]
        return argv


class AddonError(Exception):
    """The add-on cannot be deployed as asked (the message says what to pass instead)."""


def parse_upstreams(upstream_dns: str | None, gateway: str) -> tuple[str, ...]:
    """``svcnet up --upstream-dns``: comma-separated ``HOST[:PORT]``, checked for addresses the
    DNS pods can reach (a loopback address inside a pod is the pod's own)."""
    out = []
    for item in (upstream_dns or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            host = Upstream.parse(item).host
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError as e:
            raise AddonError(f"--upstream-dns {item!r}: not HOST[:PORT] with an IP address") from e
        if loopback:
            raise AddonError(
                f"--upstream-dns {item}: a loopback address inside a DNS pod is the pod's own; "
                f"give an address the pods reach, e.g. the underlay gateway {gateway} with a "
                "resolver listening on it"
            )
        out.append(item)
    return tuple(out)


def dns_addon_spec(cfg: ClusterConfig, upstream_dns: str | None = None) -> DnsAddonSpec:
    """The add-on of cluster ``cfg``; ``upstream_dns`` is ``svcnet up --upstream-dns``
    (comma-separated for several resolvers)."""
    upstreams = parse_upstreams(upstream_dns, cfg.gateway)
    return DnsAddonSpec(
        cluster_ip=cfg.cluster_dns,
        kubeconfig=str(dns_kubeconfig_path(cfg)),
        upstreams=upstreams,
    )


def dns_kubeconfig_path(cfg: ClusterConfig) -> Path:
    return cfg.root / "addons" / "kube-dns.kubeconfig"


def dns_kubeconfig_document(
    server: str,
    ca_data: str,
    token: str,
    user: str = DNS_SERVICE_ACCOUNT,
    namespace: str = DNS_NAMESPACE,
) -> dict[str, Any]:
    """A kubeconfig for an add-on (by default the DNS server): ``ca_data`` is already base64,
    as kubeconfigs hold it."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "svcnet", "cluster": {"server": server, "certificate-authority-data": ca_data}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": user, "context": {"cluster": "svcnet", "user": user, "namespace": namespace}}
        ],
        "current-context": user,
    }


def ingress_kubeconfig_path(cfg: ClusterConfig) -> Path:
    return cfg.root / "addons" / "ingress.kubeconfig"


def write_dns_kubeconfig(
    cfg: ClusterConfig,
    path: Path | None = None,
    user: str = DNS_SERVICE_ACCOUNT,
    namespace: str = DNS_NAMESPACE,
    token: str | None = None,
) -> Path:
    """An add-on's kubeconfig (the DNS server's unless told): the API server's CA, the
    gateway's URL and ``token`` (the admin token when none is given)."""
    admin = yaml.safe_load(cfg.apiserver_kubeconfig.read_text())
    ca_data = str(admin["clusters"][0]["cluster"]["certificate-authority-data"])
    base64.b64decode(ca_data, validate=True)  # fail here, not in two pods, if it is not
    if token is None:
        token = str(admin["users"][0]["user"]["token"])
    path = path or dns_kubeconfig_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # 0600 from the start: the file carries a token. JSON (which is YAML,
    # and kubectl reads it) so that the DNS pods load it without importing yaml.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(
            dns_kubeconfig_document(cfg.server_url, ca_data, token, user, namespace), f, indent=2
        )
    os.replace(tmp, path)
    return path


def mount_node_folders(container: dict[str, Any], paths: list[str]) -> list[dict[str, Any]]:
    """An add-on's server is svcnet's own Python code: its pod mounts the folders of the node
    it needs (interpreter, source, its kubeconfig's folder) read-only as hostPath volumes; its
    sandbox shows nothing else of the node. The pod's volumes."""
    container["volumeMounts"] = [
        {"name": f"node-{i}", "mountPath": path, "readOnly": True} for i, path in enumerate(paths)
    ]
    return [
        {"name": f"node-{i}", "hostPath": {"path": path, "type": "Directory"}}
        for i, path in enumerate(paths)
    ]


def _probe(path: str, port: int, **timing: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"}, **timing}


def dns_addon_objects(spec: DnsAddonSpec) -> list[dict[str, Any]]:
    """The add-on's API objects, in the order to apply them."""
    meta = {"namespace": DNS_NAMESPACE, "labels": dict(DNS_LABELS)}
    ports = [
        {"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
        {"name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP"},
        {"name": "liveness-probe", "containerPort": HEALTH_PORT, "protocol": "TCP"},
        {"name": "readiness-probe", "containerPort": READY_PORT, "protocol": "TCP"},
    ]
    container = {
        "name": "coredns",
        "image": DNS_IMAGE,
        "imagePullPolicy": "Never",
        "command": spec.command(),
        "ports": ports,
        # CoreDNS's manifest: liveness with a long grace, readiness on the table's sync.
        "livenessProbe": _probe(
            "/health",
            HEALTH_PORT,
            initialDelaySeconds=60,
            timeoutSeconds=5,
            successThreshold=1,
            failureThreshold=5,
        ),
        "readinessProbe": _probe("/ready", READY_PORT, periodSeconds=1, timeoutSeconds=1),
    }
    volumes = mount_node_folders(container, spec.node_paths())
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DNS_DEPLOYMENT, **meta},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": dict(DNS_LABELS)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": dict(DNS_LABELS)},
                "spec": {
                    "serviceAccountName": DNS_SERVICE_ACCOUNT,
                    # The DNS server must not resolve through itself (CoreDNS's choice too).
                    "dnsPolicy": "Default",
                    "nodeSelector": {OS_LABEL: "linux"},
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": CONTROL_PLANE_ROLE, "effect": "NoSchedule"},
                    ],
                    "terminationGracePeriodSeconds": GRACE_SECONDS,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": DNS_SERVICE,
            "namespace": DNS_NAMESPACE,
            "labels": {
                **DNS_LABELS,
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        },
        "spec": {
            "selector": dict(DNS_LABELS),
            "clusterIP": spec.cluster_ip,
            "ports": [
                {"name": "dns", "port": DNS_PORT, "protocol": "UDP", "targetPort": DNS_PORT},
                {"name": "dns-tcp", "port": DNS_PORT, "protocol": "TCP", "targetPort": DNS_PORT},
            ],
        },
    }
    service_account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": DNS_SERVICE_ACCOUNT, **meta},
    }
    return [service_account, service, deployment]


@dataclass(frozen=True)
class IngressAddonSpec:
    kubeconfig: str  # path on the node filesystem, read by the container
    python: str = sys.executable
    haproxy: str = "/usr/sbin/haproxy"

    def node_paths(self) -> list[str]:
        """svcnet's interpreter and source, and the kubeconfig's folder (haproxy is in the
        image's /usr, its state in the pod's /tmp)."""
        return outermost([*svcnet_paths(), os.path.dirname(os.path.abspath(self.kubeconfig))])

    def command(self) -> list[str]:
        return [
            self.python,
            "-m",
            "svcnet.ingress",
            "--kubeconfig",
            self.kubeconfig,
            "--publish-service",
            f"{INGRESS_NAMESPACE}/{INGRESS_NAME}",
            "--haproxy",
            self.haproxy,
            "--health-port",
            str(INGRESS_HEALTH_PORT),
        ]


def ingress_addon_spec(cfg: ClusterConfig) -> IngressAddonSpec:
    return IngressAddonSpec(
        kubeconfig=str(ingress_kubeconfig_path(cfg)),
        haproxy=shutil.which("haproxy") or "/usr/sbin/haproxy",
    )


def ingress_addon_objects(spec: IngressAddonSpec) -> list[dict[str, Any]]:
    """The ingress add-on's API objects, in the order to apply them."""
    meta = {"namespace": INGRESS_NAMESPACE, "labels": dict(INGRESS_LABELS)}
    container = {
        "name": "controller",
        "image": INGRESS_IMAGE,
        "imagePullPolicy": "Never",
        "command": spec.command(),
        "ports": [
            {"name": "http", "containerPort": 80, "protocol": "TCP"},
            {"name": "https", "containerPort": 443, "protocol": "TCP"},
            {"name": "healthz", "containerPort": INGRESS_HEALTH_PORT, "protocol": "TCP"},
        ],
        "livenessProbe": _probe(
            "/healthz", INGRESS_HEALTH_PORT, initialDelaySeconds=60, failureThreshold=5
        ),
        "readinessProbe": _probe(
            "/healthz", INGRESS_HEALTH_PORT, periodSeconds=1, timeoutSeconds=1
        ),
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": INGRESS_NAMESPACE, "labels": dict(INGRESS_LABELS)},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": INGRESS_NAME, **meta},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {
                "name": INGRESS_CLASS,
                "labels": dict(INGRESS_LABELS),
                "annotations": {DEFAULT_INGRESS_CLASS_ANNOTATION: "true"},
            },
            "spec": {"controller": CONTROLLER_NAME},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": INGRESS_CLASS, "labels": dict(INGRESS_LABELS)},
            "spec": {"controllerName": GATEWAY_CONTROLLER_NAME},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": INGRESS_NAME, **meta},
            "spec": {
                "type": "LoadBalancer",
                "selector": dict(INGRESS_LABELS),
                "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
                    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"},
                ],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": INGRESS_NAME, **meta},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(INGRESS_LABELS)},
                "template": {
                    "metadata": {"labels": dict(INGRESS_LABELS)},
                    "spec": {
                        "serviceAccountName": INGRESS_NAME,
                        "nodeSelector": {OS_LABEL: "linux"},
                        "terminationGracePeriodSeconds": 30,
                        "containers": [container],
                        "volumes": mount_node_folders(container, spec.node_paths()),
                    },
                },
            },
        },
    ]


def storage_addon_objects() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": DEFAULT_STORAGE_CLASS,
                "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
            },
            "provisioner": LOCAL_PATH_PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    ]


# kubeadm's CoreDNS add-on role: what the DNS server's informers read, nothing else.
DNS_CLUSTER_ROLE = "system:coredns"
# The DNS server reads its kubeconfig once, at start: its token lives as long as a legacy
# ServiceAccount token would (until the ServiceAccount goes), bounded at a year.
DNS_TOKEN_SECONDS = 365 * 24 * 3600


def dns_rbac_objects() -> list[dict[str, Any]]:
    """The DNS server's least-privilege identity: ClusterRole ``system:coredns`` (list and
    watch of what it serves names from) bound to its ServiceAccount, as kubeadm installs it."""
    rbac = "rbac.authorization.k8s.io"
    return [
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": DNS_CLUSTER_ROLE},
            "rules": [
                {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                 "verbs": ["list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                 "verbs": ["list", "watch"]},
            ],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": DNS_CLUSTER_ROLE},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": DNS_CLUSTER_ROLE},
            "subjects": [
                {"kind": "ServiceAccount", "name": DNS_SERVICE_ACCOUNT, "namespace": DNS_NAMESPACE}
            ],
        },
    ]  # fmt: skip


async def _service_account_token(client: ApiClient, namespace: str, name: str) -> str:
    answer = await client.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": DNS_TOKEN_SECONDS},
        },
    )
    return str(answer["status"]["token"])


async def deploy_addons(
    client: ApiClient, cluster: ClusterConfig, upstream_dns: str | None = None
) -> list[str]:
    """Apply every add-on of ``cluster`` through ``client`` (an open
    :class:`svcnet.client.rest.ApiClient`); returns ``kind/name`` of what was applied.

    The DNS server's ServiceAccount and its RBAC objects go first: its kubeconfig carries a
    token of that account, written before its pods can start. (The ingress controller still
    uses the admin token: it writes the status of many kinds.)"""
    dns_objects = dns_addon_objects(dns_addon_spec(cluster, upstream_dns))
    identity = [o for o in dns_objects if o["kind"] == "ServiceAccount"] + dns_rbac_objects()
    applied = []
    for obj in identity:
        await client.apply(obj, FIELD_MANAGER, force=True)
        applied.append(f"{obj['kind'].lower()}/{obj['metadata']['name']}")
    token = await _service_account_token(client, DNS_NAMESPACE, DNS_SERVICE_ACCOUNT)
    write_dns_kubeconfig(cluster, token=token)
    write_dns_kubeconfig(cluster, ingress_kubeconfig_path(cluster), INGRESS_NAME, INGRESS_NAMESPACE)
    every = [
        *(o for o in dns_objects if o["kind"] != "ServiceAccount"),
        *ingress_addon_objects(ingress_addon_spec(cluster)),
        *storage_addon_objects(),
    ]
    for obj in every:
        await client.apply(obj, FIELD_MANAGER, force=True)
        applied.append(f"{obj['kind'].lower()}/{obj['metadata']['name']}")
    return applied


def deploy_addons_blocking(cluster: ClusterConfig, upstream_dns: str | None = None) -> list[str]:
    """:func:`deploy_addons` for synchronous callers (``svcnet up``), with the API server's
    own kubeconfig."""
    from svcnet.client.kubeconfig import load_kubeconfig
    from svcnet.client.rest import ApiClient

    async def run() -> list[str]:
        async with ApiClient(load_kubeconfig(cluster.apiserver_kubeconfig)) as client:
            return await deploy_addons(client, cluster, upstream_dns)

    return asyncio.run(run())


# -- readiness: for `svcnet up` (wait briefly) and `svcnet status` ---------------------------
def ready_dns_endpoints(slices: dict[str, Any] | None) -> list[str]:
    """Addresses of the ready endpoints in kube-dns's EndpointSlices (sorted, unique)."""
    out: set[str] = set()
    for s in (slices or {}).get("items") or []:
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is not False:
                out.update(str(a) for a in ep.get("addresses") or [])
    return sorted(out)


def dns_endpoints(cfg: ClusterConfig, timeout: float = 2.0) -> list[str]:
    path = (
        f"/apis/discovery.k8s.io/v1/namespaces/{DNS_NAMESPACE}/endpointslices"
        f"?labelSelector=kubernetes.io/service-name%3D{DNS_SERVICE}"
    )
    return ready_dns_endpoints(api_get(cfg.apiserver_kubeconfig, path, timeout=timeout))


def wait_dns_ready(cfg: ClusterConfig, timeout: float) -> list[str]:
    """Poll (50 ms) until kube-dns has a ready endpoint or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        ready = dns_endpoints(cfg)
        if ready or time.monotonic() >= deadline:
            return ready
        time.sleep(0.05)


def dns_answers_from(netns: str, server: str, name: str, timeout: float) -> bool:
    """One A query for ``name`` to ``server`` from inside node namespace ``netns``: True once
    an answer (any rcode) comes back. Before the node's Service rules have a DNS endpoint, the
    query is rejected (ICMP port unreachable: "connection refused") or lost."""
    import socket

    import dns.exception
    import dns.message

    from svcnet.agent.portforward import socket_in

    query = dns.message.make_query(name, "A")
    with socket_in(f"/run/netns/{netns}", socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((server, DNS_PORT))
            sock.send(query.to_wire())
            reply = dns.message.from_wire(sock.recv(4096))
        except (OSError, dns.exception.DNSException):
            return False
    return reply.id == query.id


def wait_dns_answers(cfg: ClusterConfig, timeout: float) -> list[str]:
    """Wait until the cluster DNS answers from every node (what a pod started now would
    ask first), or ``timeout`` passes; the nodes it does not answer from yet."""
    deadline = time.monotonic() + timeout
    name = f"kubernetes.default.svc.{DNS_ZONE}"
    pending = [n.netns for n in cfg.node_nets()]
    while pending:
        pending = [ns for ns in pending if not dns_answers_from(ns, cfg.cluster_dns, name, 0.2)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return pending


def dns_status_line(cfg: ClusterConfig, want: int = DNS_REPLICAS) -> str:
    """One line for ``svcnet status``: ``kube-dns 10.96.0.10: 2/2 ready (10.244.1.2, …)``."""
    ready = dns_endpoints(cfg)
    ips = f" ({', '.join(ready)})" if ready else ""
    return f"kube-dns {cfg.cluster_dns}: {len(ready)}/{want} ready{ips}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m svcnet.cluster.addons --data-dir D [--upstream-dns X]``: (re)deploy the
    add-ons of a running cluster."""
    import argparse

    from svcnet.cluster.up import load_cluster

    p = argparse.ArgumentParser(prog="python -m svcnet.cluster.addons")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--upstream-dns", default=None)
    args = p.parse_args(argv)
    cfg = load_cluster(args.data_dir)
    if cfg is None:
        print(f"no svcnet cluster in {args.data_dir}", file=sys.stderr)
        return 1
    try:
        applied = deploy_addons_blocking(cfg, args.upstream_dns)
    except AddonError as e:
        print(str(e), file=sys.stderr)
        return 1
    for what in applied:
        print(f"{what} applied")
    return 0


__all__ = [
    "DNS_DEPLOYMENT",
    "DNS_NAMESPACE",
    "DNS_SERVICE",
    "AddonError",
    "DnsAddonSpec",
    "IngressAddonSpec",
    "deploy_addons",
    "deploy_addons_blocking",
    "dns_addon_objects",
    "dns_addon_spec",
    "dns_endpoints",
    "dns_kubeconfig_document",
    "dns_status_line",
    "ingress_addon_objects",
    "ingress_addon_spec",
    "parse_upstreams",
    "ready_dns_endpoints",
    "wait_dns_answers",
    "wait_dns_ready",
    "write_dns_kubeconfig",
]

if __name__ == "__main__":
    sys.exit(main())
