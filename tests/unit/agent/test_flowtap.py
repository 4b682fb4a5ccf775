"""The agent's flow tap: kernel events from a source into the node's ring, waking readers; a
kernel that refuses the sockets costs the flows, never NetworkPolicy. Ranges: node-1's pods
10.244.1.0/24."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from svcnet.agent import flowtap
from svcnet.agent.flowtap import NodeFlows, node_flows, record_flows
from svcnet.dataplane.netlink_events import Event, FakeEvents
from svcnet.dataplane.nfnetlink import CtEntry, CtEvent, CtEventKind, LoggedPacket, Tuple
from svcnet.util.clock import FakeClock

NODE = "tap-node"


@pytest.fixture
def flows() -> Iterator[NodeFlows]:
    yield node_flows(NODE)
    flowtap._NODES.pop(NODE, None)


def new_conn(sport: int) -> CtEvent:
    return CtEvent(
        CtEventKind.NEW,
        CtEntry(
            Tuple("tcp", "10.244.1.5", "10.244.1.6", sport, 80),
            Tuple("tcp", "10.244.1.6", "10.244.1.5", 80, sport),
        ),
    )


async def test_events_reach_the_ring_and_wake_a_follower(flows: NodeFlows) -> None:
    source = FakeEvents()
    clock = FakeClock(start=1000.0)
    task = asyncio.create_task(record_flows(NODE, "10.244.1.0/24", lambda: None, source, clock))
    start = flows.ring.last_seq
    waiting = asyncio.create_task(flows.after(start, timeout=30))
    drop = LoggedPacket(11, "np:in:(closed)", Tuple("udp", "10.244.2.9", "10.244.1.6", 5, 53), None)
    await source.queue.put([new_conn(40000), drop])
    got = await asyncio.wait_for(waiting, 10)
    assert [(f.seq - start, f.time, f.verdict.value) for f in got] == [
        (1, 1000.0, "allowed"),
        (2, 1000.0, "dropped"),
    ]
    assert flows.running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not flows.running


async def test_after_returns_nothing_when_nothing_comes(flows: NodeFlows) -> None:
    assert await flows.after(flows.ring.last_seq, timeout=0.01) == []


def test_numbers_start_at_the_time_the_ring_was_made() -> None:
    """An agent that restarts numbers past its previous run (see NodeFlows)."""
    first = NodeFlows(clock=FakeClock(start=1000.0))
    later = NodeFlows(clock=FakeClock(start=1001.5))
    assert (first.ring.last_seq, later.ring.last_seq) == (1_000_000, 1_001_500)


class Refused:
    async def run(self, sink: Callable[[list[Event]], None]) -> None:
        raise PermissionError(1, "Operation not permitted")


async def test_a_refused_socket_ends_the_tap_quietly(flows: NodeFlows) -> None:
    await record_flows(NODE, "10.244.1.0/24", lambda: None, Refused())
    assert not flows.running and len(flows.ring) == 0
