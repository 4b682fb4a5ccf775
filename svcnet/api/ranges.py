"""The cluster's default address ranges (DESIGN.md, "One machine, many nodes").

Every component that needs a range takes it as a parameter; these are the values a cluster
gets when nobody passes one, stated once so that the API server's ClusterIP allocator, the node
IPAM, the proxy, the agent's resolv.conf and ``svcnet up`` agree.
"""

from __future__ import annotations

import ipaddress

DEFAULT_UNDERLAY_CIDR = "172.18.0.0/16"
"""The "LAN" between nodes: node IPs and NodePorts."""

DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"
"""Pod IPs, a /24 per node (``node.spec.podCIDR``)."""

DEFAULT_SERVICE_CIDR = "10.96.0.0/16"
"""ClusterIPs."""

DEFAULT_LB_CIDR = "172.18.255.0/24"
"""``type: LoadBalancer`` addresses: inside the underlay, so the machine reaches them on-link."""

DEFAULT_NODE_PORT_LOW, DEFAULT_NODE_PORT_HIGH = 30000, 32767
DEFAULT_NODE_PORT_RANGE = f"{DEFAULT_NODE_PORT_LOW}-{DEFAULT_NODE_PORT_HIGH}"

UNDERLAY_GATEWAY = str(ipaddress.ip_network(DEFAULT_UNDERLAY_CIDR)[1])
"""The machine's address on the underlay bridge: where nodes reach the API server."""

KUBERNETES_SERVICE_IP = str(ipaddress.ip_network(DEFAULT_SERVICE_CIDR)[1])
"""The ``kubernetes`` Service: the first address of the service range, as upstream."""

CLUSTER_DNS_IP = str(ipaddress.ip_network(DEFAULT_SERVICE_CIDR)[10])
"""The ``kube-dns`` Service: the tenth address of the service range, as kubeadm picks it."""
