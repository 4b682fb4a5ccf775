"""Which ServiceAccounts a namespace lacks (pure): upstream's ``ServiceAccountsController``
(``pkg/controller/serviceaccount/serviceaccounts_controller.go``) ensures ``default`` in every
namespace that is Active, and creates it again whenever it is deleted."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from svcnet.api.objects import Obj

# kube-controller-manager's ServiceAccountsControllerOptions.ServiceAccounts.
SERVICE_ACCOUNTS_TO_ENSURE: tuple[str, ...] = ("default",)


def namespace_active(namespace: Mapping[str, Any]) -> bool:
    """Active, not Terminating: where new content may be created."""
    phase = (namespace.get("status") or {}).get("phase") or "Active"
    return phase == "Active" and not (namespace.get("metadata") or {}).get("deletionTimestamp")


def missing_service_accounts(
    namespace: Mapping[str, Any] | None,
    existing: Collection[str],
    wanted: tuple[str, ...] = SERVICE_ACCOUNTS_TO_ENSURE,
) -> list[Obj]:
    """The ServiceAccounts to create in ``namespace`` (None: it is gone) given the names it
    holds. A namespace that is not Active (Terminating) gets nothing, as upstream."""
    if namespace is None:
        return []
    meta = namespace.get("metadata") or {}
    if not namespace_active(namespace):
        return []
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": meta.get("name", "")},
        }
        for name in wanted
        if name not in existing
    ]
