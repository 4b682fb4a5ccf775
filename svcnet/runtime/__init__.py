"""What containerd + runc give a kubelet: images (a root filesystem and its config) and the
sandbox a container runs in (namespaces, capabilities, mounts, securityContext)."""
