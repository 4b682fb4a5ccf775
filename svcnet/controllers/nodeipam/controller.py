"""Node IPAM, wired: Nodes → a queue of node names → the :class:`CidrSet` → a PATCH of
spec.podCIDR/podCIDRs (upstream's range allocator).

Before the first allocation every podCIDR already on a node is marked used, so a restart
never hands out a block twice. A deleted node's block is released. With no block left the
node gets a ``CIDRNotAvailable`` Warning event and is retried when a node goes away.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from svcnet.api import objects
from svcnet.api.errors import ApiError, NotFound
from svcnet.api.ranges import DEFAULT_CLUSTER_CIDR
from svcnet.api.registry import NODES
from svcnet.client.events import WARNING, EventRecorder
from svcnet.client.informer import SharedInformerFactory, enqueue_handler
from svcnet.client.rest import ApiClient
from svcnet.controllers.nodeipam.plan import (
    DEFAULT_NODE_MASK,
    CidrExhausted,
    CidrSet,
    CidrSetError,
    cidr_not_available_message,
    node_pod_cidrs,
    pod_cidr_patch,
)
from svcnet.controllers.runtime import DONE, Controller, Result, TemporaryError
from svcnet.util.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)


COMPONENT = "node-ipam-controller"  # its queue and its events' source


class NodeIpam:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
        node_mask_size: int = DEFAULT_NODE_MASK,
        recorder: EventRecorder | None = None,
        *,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.cidrs = CidrSet(cluster_cidr, node_mask_size)
        self.nodes = factory.informer_for(NODES)
        # node name → the blocks we know it holds (what to release when it is deleted).
        self.owned: dict[str, list[str]] = {}
        # node name → uid of the node we last wrote a podCIDR to.
        self.assigned_uid: dict[str, str] = {}
        self.waiting: set[str] = set()
        self.controller = Controller(
            COMPONENT,
            self.reconcile,
            workers=1,
            informers=[self.nodes],
            recorder=recorder,
            clock=clock,
        )
        self.nodes.add_event_handler(enqueue_handler(self.controller.enqueue))

    def _occupy(self, node: Mapping[str, Any]) -> None:
        name = objects.name(node)
        for cidr in node_pod_cidrs(node):
            try:
                self.cidrs.occupy(cidr)
            except CidrSetError as e:
                # A CIDR set by hand outside our range is the node's business, not ours.
                log.warning("node %s: podCIDR %s not managed by node IPAM: %s", name, cidr, e)
                continue
            if cidr not in self.owned.setdefault(name, []):
                self.owned[name].append(cidr)

    def _release(self, name: str) -> None:
        self.assigned_uid.pop(name, None)
        for cidr in self.owned.pop(name, []):
            self.cidrs.release(cidr)
            log.info("node IPAM: released %s of node %s", cidr, name)

    async def reconcile(self, name: str) -> Result:
        node = self.nodes.store.get(name)
        uid = str((node or {}).get("metadata", {}).get("uid", ""))
        if node is not None and name in self.assigned_uid and self.assigned_uid[name] != uid:
            # Deleted and registered again under the same name: the old block is free.
            self._release(name)
        if node is None:
            self._release(name)
            self.waiting.discard(name)
            for other in sorted(self.waiting):
                self.controller.enqueue(other)
            return DONE
        if node_pod_cidrs(node):
            self._occupy(node)
            self.waiting.discard(name)
            return DONE
        if self.assigned_uid.get(name) == uid:
            # We wrote its podCIDR and the cache has not caught up yet: the update will
            # come back through the watch; allocating again would waste a block.
            return DONE
        try:
            cidr = self.cidrs.allocate_next()
        except CidrExhausted as e:
            if name not in self.waiting and self.recorder is not None:
                self.recorder.event(
                    node, WARNING, "CIDRNotAvailable", cidr_not_available_message(name)
                )
            self.waiting.add(name)
            log.warning("node IPAM: node %s: %s", name, e)
            return DONE
        try:
            # The uid is a precondition: never write the block to a namesake node.
            patch = {**pod_cidr_patch(cidr), "metadata": {"uid": uid}}
            await self.client.patch(NODES, name, patch, "merge")
        except NotFound:
            self.cidrs.release(cidr)
            return DONE
        except ApiError as e:
            self.cidrs.release(cidr)
            raise TemporaryError(f"node {name}: setting podCIDR {cidr}: {e}") from e
        self.owned.setdefault(name, []).append(cidr)
        self.assigned_uid[name] = uid
        self.waiting.discard(name)
        log.info("node IPAM: node %s gets podCIDR %s", name, cidr)
        return DONE

    async def run(self) -> None:
        await self.nodes.wait_for_sync()
        # Rebuild from what the nodes carry before handing anything out.
        for node in self.nodes.store.list():
            self._occupy(node)
        await self.controller.run()


__all__ = ["NodeIpam"]
