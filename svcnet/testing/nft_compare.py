"""Comparing a real nft table with the fake's: both as the kernel holds them, normalised.

The fake keeps rules as svcnet's own objects and the kernel as bytecode that ``nft -j`` prints
back in its own canonical form, so the two cannot be compared field by field. Instead the
fake's table is loaded into a second, scratch namespace (:meth:`FakeNft.rebuild`) and both
kernels' ``nft -j list table`` are compared, once stripped of what differs between two
equal tables: object handles, the ``metainfo`` header, the order nft lists objects in, and
the time left on elements with a timeout.
"""

from __future__ import annotations

import json
from typing import Any

from svcnet.dataplane.nft import NftNotFoundError
from svcnet.dataplane.nft_exec import NftExecutor
from svcnet.dataplane.nft_fake import FakeNft

_VOLATILE = frozenset({"handle", "expires"})
_KINDS = ("table", "chain", "set", "map", "rule")


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def normalised(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``nft -j list table`` items without handles, metainfo and timers, in a stable order:
    objects by kind and name, set elements sorted, rules kept in their chain's order."""
    objects: list[dict[str, Any]] = []
    for item in items:
        if "metainfo" in item:
            continue
        item = _strip(item)
        for kind in ("set", "map"):
            body = item.get(kind)
            if body is not None and "elem" in body:
                body["elem"] = sorted(body["elem"], key=_sort_key)
        objects.append(item)

    def order(item: dict[str, Any]) -> tuple[int, str]:
        kind, body = next(iter(item.items()))
        rank = _KINDS.index(kind) if kind in _KINDS else len(_KINDS)
        return rank, str(body.get("chain" if kind == "rule" else "name", ""))

    # sorted() is stable: rules of one chain stay in the order nft listed them.
    return sorted(objects, key=order)


def real_table(nft: NftExecutor, family: str, table: str) -> list[dict[str, Any]] | None:
    """The table as the kernel holds it, normalised; None when it does not exist."""
    try:
        return normalised(nft.list_table_json(family, table))
    except NftNotFoundError:
        return None


def fake_table_in_kernel(
    fake: FakeNft, scratch: NftExecutor, family: str, table: str
) -> list[dict[str, Any]] | None:
    """The fake's table loaded into the scratch namespace's kernel, normalised; None when the
    fake has no such table. The scratch namespace's copy of the table is replaced."""
    scratch.delete_table_if_exists(family, table)
    if not fake.table_exists(family, table):
        return None
    scratch.apply_sync(fake.rebuild(family, table))
    return real_table(scratch, family, table)
