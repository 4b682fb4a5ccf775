"""The root CA publisher: the ``kube-root-ca.crt`` ConfigMap in every namespace."""
