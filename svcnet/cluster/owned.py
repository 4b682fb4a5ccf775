"""What a cluster made on the machine, recorded as it makes it: its cleanup removes only that.

Several clusters (a user's, a test's, another engineer's) share one machine, so names and
ranges alone do not tell whose a namespace, link, route or nft table is: a cleanup that
removed everything matching its own prefix or ranges once removed the seal route of a running
cluster whose pod range coincided with a test cluster's Service range. Instead each thing is
made with an operation that fails when it already exists (``ip netns add``, ``ip link add``,
``ip route add``, ``nft create table``) and is recorded right after the kernel accepted it,
so a recorded thing is always one this cluster made. A crash between the two leaks that one
thing rather than risk removing another's.

The record is a journal, one JSON line per change in ``<state dir>/made.jsonl``:
``{"op": "made", "kind": "netns", "name": "svcnet-node-1"}``, ``{"op": "gone", ...}`` when
the cluster removed it while running (a node removed), routes with their fields. Appending a
line costs the same for the hundredth node as for the first.

Pod namespaces are made by a node's agent inside that node and named
``<node namespace>_<pod...>`` (see :mod:`svcnet.agent.sandbox`); they belong to the cluster
that owns the node namespace, which no other cluster can hold at the same time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from svcnet.dataplane.netns import Route, RouteType

JOURNAL = "made.jsonl"


class Kind(Enum):
    NETNS = "netns"  # a node namespace (its pods' namespaces go with it)
    LINK = "link"  # a link of the machine's namespace
    ROUTE = "route"  # a route of the machine's main table
    NFT_TABLE = "nft-table"  # "<family> <name>" in the machine's namespace


@dataclass(frozen=True)
class Owned:
    """Everything the journal says exists now, in the order it was made."""

    netns: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    nft_tables: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.netns or self.links or self.routes or self.nft_tables)


def route_to_dict(r: Route) -> dict[str, object]:
    return {"dst": r.dst, "via": r.via, "dev": r.dev, "type": r.type.value, "metric": r.metric}


def route_from_dict(d: dict[str, object]) -> Route:
    metric = d.get("metric")
    return Route(
        dst=str(d["dst"]),
        via=str(d["via"]) if d.get("via") else None,
        dev=str(d["dev"]) if d.get("dev") else None,
        type=RouteType(str(d.get("type", "unicast"))),
        metric=int(str(metric)) if metric is not None else None,
    )


class Journal:
    """Appends to (and reads) one cluster's record of what it made."""

    def __init__(self, state_dir: str) -> None:
        self.path = Path(state_dir) / JOURNAL

    def made(self, kind: Kind, name: str) -> None:
        self._append({"op": "made", "kind": kind.value, "name": name})

    def gone(self, kind: Kind, name: str) -> None:
        self._append({"op": "gone", "kind": kind.value, "name": name})

    def made_route(self, route: Route) -> None:
        self._append({"op": "made", "kind": Kind.ROUTE.value, "route": route_to_dict(route)})

    def gone_route(self, route: Route) -> None:
        self._append({"op": "gone", "kind": Kind.ROUTE.value, "route": route_to_dict(route)})

    def _append(self, entry: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line: a crash leaves at worst a torn last line, which read skips.
        with open(self.path, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")

    def read(self) -> Owned:
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return Owned()
        now: dict[Kind, dict[str, None]] = {k: {} for k in Kind}  # ordered sets
        routes: dict[Route, None] = {}
        for line in lines:
            try:
                entry = json.loads(line)
                kind = Kind(entry["kind"])
                made = entry["op"] == "made"
                if kind is Kind.ROUTE:
                    route = route_from_dict(entry["route"])
                    if made:
                        routes[route] = None
                    else:
                        routes.pop(route, None)
                elif made:
                    now[kind][str(entry["name"])] = None
                else:
                    now[kind].pop(str(entry["name"]), None)
            except (ValueError, KeyError, TypeError):
                continue
        return Owned(
            netns=tuple(now[Kind.NETNS]),
            links=tuple(now[Kind.LINK]),
            routes=tuple(routes),
            nft_tables=tuple(now[Kind.NFT_TABLE]),
        )

    def remove(self) -> bool:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            return False
        return True


__all__ = ["JOURNAL", "Journal", "Kind", "Owned", "route_from_dict", "route_to_dict"]
