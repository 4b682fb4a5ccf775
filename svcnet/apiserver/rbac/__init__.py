"""RBAC (rbac.authorization.k8s.io/v1): upstream's ``plugin/pkg/auth/authorizer/rbac`` and
``pkg/registry/rbac`` — rule matching, the authorizer over an index of bindings, escalation
checks, the bootstrap policy, ClusterRole aggregation and the access reviews."""
