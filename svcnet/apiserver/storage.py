"""Objects in the store: key layout, encoding, and the revision as ``resourceVersion``.

As kube-apiserver does with etcd, the stored bytes never carry ``metadata.resourceVersion``:
it is the key's ``mod_revision``, set when the object is read. To make that cheap on the hot
paths (lists of thousands, one event serialized for a hundred watchers) every stored value
starts with the same bytes, ``{"metadata":{"resourceVersion":""`` — so the version is spliced
into the bytes without decoding the object (:func:`object_bytes`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson

from svcnet.api.registry import ResourceType
from svcnet.apiserver.status import translate_store_error
from svcnet.store.interface import KeyValue, ListResult, Store, StoreError

_HEAD = b'{"metadata":{"resourceVersion":""'
_HEAD_EMPTY_META = b'{"metadata":{"resourceVersion":""}'


def encode(obj: dict[str, Any]) -> bytes:
    """The bytes stored for ``obj``: metadata first, its resourceVersion blank."""
    # Built with C-level dict operations (every write encodes): "metadata" and its
    # "resourceVersion" take the first places, where an existing key keeps its place.
    meta: dict[str, Any] = {"resourceVersion": "", **(obj.get("metadata") or {})}
    meta["resourceVersion"] = ""
    ordered: dict[str, Any] = {"metadata": None}
    ordered.update(obj)
    ordered["metadata"] = meta
    return orjson.dumps(ordered)


def object_bytes(kv: KeyValue) -> bytes:
    """The JSON of the stored object with its resourceVersion, without decoding it."""
    value = kv.value
    rv = str(kv.mod_revision).encode()
    if value.startswith(_HEAD):
        return b'{"metadata":{"resourceVersion":"' + rv + b'"' + value[len(_HEAD) :]
    # Written by something else: decode, as a fallback that is always right.
    return orjson.dumps(decode(kv))


def decode(kv: KeyValue) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(kv.value)
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    meta["resourceVersion"] = str(kv.mod_revision)
    return obj


def as_served(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` in the version of ``rt``: a custom resource is stored in the version it was
    written in and served in every version of its CRD (``None`` conversion changes only the
    apiVersion, upstream's ``nopConverter``)."""
    if rt.custom is not None:
        obj["apiVersion"] = rt.group_version
    return obj


class EncodedCache:
    """The encoded form of recent revisions, so N watchers serialize an event once."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._by_rev: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def get(self, kv: KeyValue) -> bytes:
        key = (kv.key, kv.mod_revision)
        hit = self._by_rev.get(key)
        if hit is not None:
            return hit
        return self.put(kv)

    def put(self, kv: KeyValue) -> bytes:
        """Encode ``kv`` now (a write answers with these bytes; its watchers then reuse them)."""
        data = object_bytes(kv)
        self._by_rev[(kv.key, kv.mod_revision)] = data
        if len(self._by_rev) > self._size:
            self._by_rev.popitem(last=False)
        return data


class ObjectStore:
    """Typed reads and writes of API objects; store errors become API errors here."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.encoded = EncodedCache()

    @staticmethod
    def key(rt: ResourceType, namespace: str | None, name: str) -> str:
        return rt.store_key(namespace, name)

    async def get_kv(self, rt: ResourceType, namespace: str | None, name: str) -> KeyValue | None:
        return await self.store.get(self.key(rt, namespace, name))

    async def get(
        self, rt: ResourceType, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        kv = await self.get_kv(rt, namespace, name)
        return None if kv is None else as_served(rt, decode(kv))

    async def list(
        self, rt: ResourceType, namespace: str | None, *, limit: int = 0, start_after: str = ""
    ) -> ListResult:
        return await self.store.list(
            rt.store_prefix(namespace), limit=limit, start_after=start_after
        )

    async def create(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        return (await self.create_encoded(rt, obj))[0]

    async def create_encoded(
        self, rt: ResourceType, obj: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes]:
        """Store a new object: the object with its resourceVersion, and its JSON — the bytes
        stored, with the version spliced in, shared by the answer and every watcher."""
        meta = obj["metadata"]
        name = meta["name"]
        try:
            kv = await self.store.create(self.key(rt, meta.get("namespace"), name), encode(obj))
        except StoreError as exc:
            raise translate_store_error(exc, rt, name) from exc
        meta["resourceVersion"] = str(kv.mod_revision)
        return obj, self.encoded.put(kv)

    async def update(
        self, rt: ResourceType, obj: dict[str, Any], expected_revision: int | None
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        name = meta["name"]
        try:
            kv = await self.store.update(
                self.key(rt, meta.get("namespace"), name), encode(obj), expected_revision
            )
        except StoreError as exc:
            raise translate_store_error(exc, rt, name) from exc
        meta["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def delete(
        self, rt: ResourceType, namespace: str | None, name: str, expected_revision: int | None
    ) -> dict[str, Any]:
        try:
            kv = await self.store.delete(self.key(rt, namespace, name), expected_revision)
        except StoreError as exc:
            raise translate_store_error(exc, rt, name) from exc
        return decode(kv)
