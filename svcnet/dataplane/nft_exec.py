"""The real ``nft``: runs :class:`~svcnet.dataplane.nft.Transaction` values and reads tables back.

Each call runs one ``nft`` process (``nft -f -`` for a transaction, so it applies atomically);
``nft``'s messages become the typed errors of :mod:`svcnet.dataplane.nft`. The fake beside it is
:mod:`svcnet.dataplane.nft_fake`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

from svcnet.dataplane.nft import (
    Element,
    NftBusyError,
    NftError,
    NftExistsError,
    NftNotFoundError,
    NftSyntaxError,
    Transaction,
    TransactionBuilder,
)


def _json_values(v: Any) -> tuple[str, ...]:
    if isinstance(v, dict) and "elem" in v:
        v = v["elem"]["val"]
    if isinstance(v, dict) and "concat" in v:
        return tuple(str(x) for x in v["concat"])
    return (str(v),)


def parse_json_elements(doc: dict[str, Any]) -> list[Element]:
    """Elements of the first map in an ``nft -j list map`` document (timeouts dropped)."""
    for item in doc.get("nftables", []):
        body = item.get("map")
        if body is None:
            continue
        out: list[Element] = []
        for pair in body.get("elem", []):
            key, data = pair if isinstance(pair, list) else (pair, None)
            out.append(Element(_json_values(key), _json_values(data) if data is not None else None))
        return out
    return []


def classify_error(stderr: str, script: str = "") -> NftError:
    """Translate ``nft``'s message into the typed error it means."""
    msg = stderr.strip()
    if "No such file or directory" in msg:
        return NftNotFoundError(msg, script)
    # An interval set refuses an overlapping element: in nft itself for one field, in the
    # kernel (EEXIST) for concatenations.
    if "File exists" in msg or "overlaps with an existing" in msg:
        return NftExistsError(msg, script)
    if "Device or resource busy" in msg:
        return NftBusyError(msg, script)
    if (
        "syntax error" in msg
        or "datatype mismatch" in msg
        or "conflicting protocols" in msg
        or "Error: Could not" in msg
    ):
        return NftSyntaxError(msg, script)
    return NftError(msg or "nft failed", script)


class NftExecutor:
    """Runs transactions with the real ``nft``, optionally inside a named network namespace."""

    def __init__(self, netns: str | None = None, nft: str = "nft") -> None:
        self.netns = netns
        self.nft = nft

    def _argv(self, *args: str) -> list[str]:
        base = [self.nft, *args]
        return ["ip", "netns", "exec", self.netns, *base] if self.netns else base

    def apply_sync(self, tx: Transaction) -> None:
        script = tx.render()
        proc = subprocess.run(
            self._argv("-f", "-"), input=script.encode(), capture_output=True, check=False
        )
        if proc.returncode != 0:
            raise classify_error(proc.stderr.decode(errors="replace"), script)

    async def apply(self, tx: Transaction) -> None:
        script = tx.render()
        proc = await asyncio.create_subprocess_exec(
            *self._argv("-f", "-"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate(script.encode())
        if proc.returncode != 0:
            raise classify_error(err.decode(errors="replace"), script)

    def _run(self, *args: str) -> str:
        proc = subprocess.run(self._argv(*args), capture_output=True, check=False)
        if proc.returncode != 0:
            raise classify_error(proc.stderr.decode(errors="replace"))
        return proc.stdout.decode()

    def list_table(self, family: str, table: str) -> str:
        """The table as ``nft list table`` prints it."""
        return self._run("list", "table", family, table)

    def list_table_json(self, family: str, table: str) -> list[dict[str, Any]]:
        data = json.loads(self._run("-j", "list", "table", family, table))
        items: list[dict[str, Any]] = data.get("nftables", [])
        return items

    async def list_chains(self, family: str, table: str) -> set[str] | None:
        """The table's chain names, or None when the table does not exist (or has no chain)."""
        # "list chains" reads no set elements: cheap even with 10^5 of them.
        items = (await self._run_json("-j", "list", "chains", family)).get("nftables", [])
        names = {
            i["chain"]["name"] for i in items if "chain" in i and i["chain"].get("table") == table
        }
        # "list chains" prints no table objects: a table without chains counts as missing.
        return names or None

    async def list_elements(self, family: str, table: str, name: str) -> list[Element]:
        """The elements of a map (e.g. one the packet path writes: session affinity)."""
        return parse_json_elements(await self._run_json("-j", "list", "map", family, table, name))

    async def _run_json(self, *args: str) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            *self._argv(*args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise classify_error(err.decode(errors="replace"))
        doc: dict[str, Any] = json.loads(out)
        return doc

    def table_exists(self, family: str, table: str) -> bool:
        try:
            self._run("list", "table", family, table)
        except NftNotFoundError:
            return False
        return True

    def chain_names(self, family: str, table: str) -> set[str]:
        """Names of the table's chains (empty when the table does not exist)."""
        try:
            items = json.loads(self._run("-j", "list", "chains", family))
        except NftNotFoundError:
            return set()
        return {
            i["chain"]["name"]
            for i in items.get("nftables", [])
            if "chain" in i and i["chain"].get("table") == table
        }

    def delete_table_if_exists(self, family: str, table: str) -> None:
        # nft 1.0.6 has no "destroy": "add" first makes the delete always valid, atomically.
        b = TransactionBuilder(family, table)
        b.add_table()
        b.delete_table()
        self.apply_sync(b.build())

    def counts(self, family: str, table: str) -> tuple[int, int, int]:
        """(rules, set/map elements, chains) in the table, as the kernel holds them."""
        items = self.list_table_json(family, table)
        rules = sum(1 for i in items if "rule" in i)
        chains = sum(1 for i in items if "chain" in i)
        elements = 0
        for i in items:
            body = i.get("map") or i.get("set")
            if body is not None:
                elements += len(body.get("elem", []))
        return rules, elements, chains
