"""DefaultStorageClass admission: a claim created without ``storageClassName`` gets the
default class (upstream ``plugin/pkg/admission/storage/storageclass/setdefault``). An empty
string is an explicit "no class" and is left alone, as upstream does."""

from __future__ import annotations

from svcnet.api.objects import Obj
from svcnet.api.registry import PERSISTENTVOLUMECLAIMS, STORAGECLASSES, ResourceType
from svcnet.api.storageclass import default_class
from svcnet.apiserver.storage import ObjectStore, decode

BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


class DefaultStorageClass:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    async def admit_create(self, rt: ResourceType, obj: Obj) -> None:
        if rt is not PERSISTENTVOLUMECLAIMS:
            return
        spec = obj.setdefault("spec", {})
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if spec.get("storageClassName") is not None or BETA_CLASS_ANNOTATION in annotations:
            return
        listed = await self.objects.list(STORAGECLASSES, None)
        name = default_class(decode(kv) for kv in listed.items)
        if name is not None:
            spec["storageClassName"] = name
