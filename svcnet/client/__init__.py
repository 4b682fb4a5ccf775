"""The only way components reach the cluster.

``kubeconfig`` (configuration), ``rest`` (the async REST client, errors translated at the
boundary), ``informer`` (list + watch caches shared per process), ``workqueue`` (rate-limited,
deduplicating key queue), ``events`` (core/v1 Event recorder) and ``fake`` (a faithful fake API
server for unit tests).
"""
