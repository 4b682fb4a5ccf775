"""ServiceAccount admission: every new Pod runs as a ServiceAccount that exists, and gets its
API credentials as a projected volume, as upstream's plugin does
(``plugin/pkg/admission/serviceaccount/admission.go``).

On a Pod create (not a mirror pod):

* ``spec.serviceAccountName`` defaults to ``default`` (the strategy already filled it);
* the ServiceAccount must exist, else the create is Forbidden. ``default`` is made by the
  ServiceAccount controller just after its namespace, so it is looked up 10 times, 100-200 ms
  apart, before giving up (upstream's ``getServiceAccount``);
* unless ``automountServiceAccountToken`` is false (the pod's choice wins, then the
  ServiceAccount's), a volume ``kube-api-access-<5 random characters>`` projecting a bound
  token (3607 s, path ``token``), the ``kube-root-ca.crt`` ConfigMap's ``ca.crt`` and the
  namespace is mounted read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every
  init container and container that has nothing mounted there yet;
* a pod without ``imagePullSecrets`` gets the ServiceAccount's.

:func:`mount_service_account_token` is the pure part; :class:`ServiceAccountAdmission` looks the
account up and applies it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from svcnet.api.errors import Forbidden
from svcnet.api.meta import GENERATE_NAME_RANDOM_LENGTH, generate_name
from svcnet.api.objects import Obj
from svcnet.api.registry import PODS, SERVICEACCOUNTS, ResourceType
from svcnet.apiserver.satoken import WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
from svcnet.apiserver.storage import ObjectStore

DEFAULT_SERVICE_ACCOUNT = "default"
VOLUME_NAME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
_DEFAULT_LOOKUPS = 10


def token_volume_source() -> Obj:
    """``TokenVolumeSource()`` in its v1 form (with the defaults the API applies)."""
    return {
        "sources": [
            {
                "serviceAccountToken": {
                    "expirationSeconds": WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS,
                    "path": "token",
                }
            },
            {
                "configMap": {
                    "name": ROOT_CA_CONFIGMAP,
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {
                "downwardAPI": {
                    "items": [
                        {
                            "path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                        }
                    ]
                }
            },
        ],
        "defaultMode": 0o644,
    }


def should_automount(service_account: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """The pod's ``automountServiceAccountToken`` wins, then the ServiceAccount's; default on."""
    for source in ((pod.get("spec") or {}), service_account):
        value = source.get("automountServiceAccountToken")
        if value is not None:
            return bool(value)
    return True


def mount_service_account_token(pod: Obj, suffix: str) -> None:
    """``mountServiceAccountToken``: add the volume (named with ``suffix`` unless the pod
    already has a ``kube-api-access-*`` one) and mount it where nothing is mounted yet."""
    spec = pod.setdefault("spec", {})
    volumes = spec.get("volumes") or []
    existing = next(
        (
            str(v.get("name"))
            for v in volumes
            if str(v.get("name", "")).startswith(VOLUME_NAME_PREFIX)
        ),
        "",
    )
    name = existing or VOLUME_NAME_PREFIX + suffix
    needs_volume = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or ():
            mounts = container.get("volumeMounts") or []
            if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})
            container["volumeMounts"] = mounts
            needs_volume = True
    if needs_volume and not existing:
        volumes.append({"name": name, "projected": token_volume_source()})
        spec["volumes"] = volumes


def admit_pod(pod: Obj, service_account: Mapping[str, Any], suffix: str) -> None:
    """What the plugin changes in a new pod once its ServiceAccount is known."""
    if should_automount(service_account, pod):
        mount_service_account_token(pod, suffix)
    spec = pod["spec"]
    if not spec.get("imagePullSecrets") and service_account.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [
            {"name": s.get("name", "")} for s in service_account["imagePullSecrets"]
        ]


def _requested_name(meta: Mapping[str, Any]) -> str:
    """The name as the request carried it: upstream admits before generating a name, so a
    ReplicaSet's pods are refused as ``pods "web-7d4b9c-"``."""
    name, prefix = str(meta.get("name") or ""), str(meta.get("generateName") or "")
    if (
        prefix
        and name.startswith(prefix)
        and len(name) == len(prefix) + GENERATE_NAME_RANDOM_LENGTH
    ):
        return prefix
    return name


class ServiceAccountAdmission:
    def __init__(
        self,
        objects: ObjectStore,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.objects = objects
        self.sleep = sleep
        self.rng = rng or random.Random()

    async def admit_create(self, rt: ResourceType, obj: Obj) -> None:
        if rt is not PODS:
            return
        meta = obj["metadata"]
        if MIRROR_POD_ANNOTATION in (meta.get("annotations") or {}):
            return
        spec = obj.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = DEFAULT_SERVICE_ACCOUNT
        namespace, account = str(meta["namespace"]), str(spec["serviceAccountName"])
        sa = await self._service_account(namespace, account)
        if sa is None:
            name = _requested_name(meta)
            raise Forbidden(
                f'pods "{name}" is forbidden: error looking up service account '
                f'{namespace}/{account}: serviceaccount "{account}" not found',
                {"name": name, "kind": "pods"},
            )
        admit_pod(obj, sa, generate_name("", self.rng))

    async def _service_account(self, namespace: str, name: str) -> Obj | None:
        attempts = _DEFAULT_LOOKUPS if name == DEFAULT_SERVICE_ACCOUNT else 1
        # One interval for all the attempts, as upstream picks it.
        interval = (100 + self.rng.randrange(100)) / 1000
        for attempt in range(attempts):
            if attempt:
                await self.sleep(interval)
            found = await self.objects.get(SERVICEACCOUNTS, namespace, name)
            if found is not None:
                return found
        return None
