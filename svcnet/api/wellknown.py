"""The label, annotation and taint keys more than one component reads or writes.

Upstream keeps them in ``k8s.io/api`` (``well_known_labels.go``, ``well_known_taints.go``,
``annotation_key_constants.go``) and ``discovery/v1/well_known_labels.go``; svcnet's own keys
(LoadBalancer IPAM) sit beside them. A key only one module uses stays in that module.
"""

from __future__ import annotations

# -- nodes --------------------------------------------------------------------------------
HOSTNAME_LABEL = "kubernetes.io/hostname"
OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
ZONE_LABEL = "topology.kubernetes.io/zone"
NODE_ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
CONTROL_PLANE_ROLE = NODE_ROLE_LABEL_PREFIX + "control-plane"
"""The control-plane nodes' role label, and the key of their NoSchedule taint."""
EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

# -- namespaces ---------------------------------------------------------------------------
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set on every Namespace to its name, so namespace selectors (NetworkPolicy) can pick one."""

# -- Services, EndpointSlices, Endpoints ------------------------------------------------------
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
"""The Service an EndpointSlice belongs to."""
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
HEADLESS_LABEL = "service.kubernetes.io/headless"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"

# -- LoadBalancer IPAM (MetalLB's keys, so its manifests work unchanged) ---------------------
LB_CLASS = "svcnet.io/lb"
"""The ``spec.loadBalancerClass`` svcnet's LB controller serves (and a Service without one)."""
LB_IPS_ANNOTATION = "metallb.universe.tf/loadBalancerIPs"
LB_POOL_ANNOTATION = "metallb.universe.tf/ip-allocated-from-pool"
LB_ANNOUNCE_ANNOTATION = "svcnet.io/announcing-node"
# On a Node: every NetworkPolicy change up to this resourceVersion is enforced by its kernel.
NETPOL_PROGRAMMED_ANNOTATION = "svcnet.io/netpol-programmed-revision"
"""The node whose agent answers ARP for a LoadBalancer address (written by the controller)."""

# -- any object ---------------------------------------------------------------------------
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"

# -- Ingress ------------------------------------------------------------------------------
DEFAULT_INGRESS_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
"""``"true"`` on the IngressClass that Ingresses naming no class belong to."""
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
"""The class of an Ingress before ``spec.ingressClassName`` (deprecated, still honoured)."""

# -- storage ------------------------------------------------------------------------------------
# The StorageClass a claim without storageClassName gets (DefaultStorageClass admission).
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
# Set by the scheduler's volume binding on a WaitForFirstConsumer claim: the node its first
# pod goes to, where the provisioner makes the volume.
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
# Set by the PV controller on a claim it leaves to an external provisioner (both, as upstream).
STORAGE_PROVISIONER_ANNOTATION = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER_ANNOTATION = "volume.beta.kubernetes.io/storage-provisioner"
# On a PV: which provisioner made it (and so which one deletes it).
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"
BIND_COMPLETED_ANNOTATION = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER_ANNOTATION = "pv.kubernetes.io/bound-by-controller"
# svcnet's dynamic provisioner: a directory per claim under the data dir of the node its
# first pod runs on (k3s's rancher.io/local-path).
LOCAL_PATH_PROVISIONER = "svcnet.io/local-path"
DEFAULT_STORAGE_CLASS = "standard"
