"""Pending changes per Service: recorded at the door, cancelled when undone, drained once."""

from __future__ import annotations

from svcnet.proxy.changetracker import ChangeTracker
from svcnet.proxy.model import ServiceKey

from .builders import endpoint, endpoint_slice, service

WEB = ServiceKey("default", "web")


def test_service_and_its_slice_make_one_change() -> None:
    t = ChangeTracker()
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    changes = t.drain()
    assert list(changes) == [WEB]
    assert changes[WEB].previous is None
    current = changes[WEB].current
    assert current is not None
    ((sp, eps),) = current.port_endpoints()
    assert (sp.port, [e.ip for e in eps]) == (80, ["10.244.1.5"])
    assert t.pending() == 0


def test_change_undone_before_the_sync_cancels_out() -> None:
    t = ChangeTracker()
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    t.drain()
    t.upsert_slice(endpoint_slice(endpoints=[]))
    t.upsert_slice(endpoint_slice(endpoints=[endpoint("10.244.1.5")]))
    assert t.drain() == {}


def test_update_that_changes_nothing_the_proxy_reads_records_nothing() -> None:
    t = ChangeTracker()
    t.upsert_service(service())
    t.drain()
    relabelled = service()
    relabelled["metadata"]["labels"] = {"app": "web"}
    t.upsert_service(relabelled)
    assert t.pending() == 0


def test_previous_is_the_state_at_the_last_drain() -> None:
    t = ChangeTracker()
    t.upsert_service(service())
    t.drain()
    t.upsert_service(service(cluster_ip="10.96.0.5", ports=[{"name": "http", "port": 81}]))
    t.upsert_service(service(cluster_ip="10.96.0.5", ports=[{"name": "http", "port": 82}]))
    change = t.drain()[WEB]
    assert change.previous is not None and change.current is not None
    assert (change.previous.ports[0].port, change.current.ports[0].port) == (80, 82)


def test_deleted_service_drains_as_current_none() -> None:
    t = ChangeTracker()
    t.upsert_service(service())
    t.drain()
    t.delete_service(service())
    assert t.drain()[WEB].current is None


def test_slices_of_one_service_are_merged() -> None:
    t = ChangeTracker()
    t.upsert_service(service())
    t.upsert_slice(endpoint_slice(name="web-1", endpoints=[endpoint("10.244.1.5")]))
    t.upsert_slice(endpoint_slice(name="web-2", endpoints=[endpoint("10.244.2.5", "node-2")]))
    t.delete_slice(endpoint_slice(name="web-1"))
    snap = t.snapshot(WEB)
    assert snap is not None
    assert [e.ip for _, eps in snap.port_endpoints() for e in eps] == ["10.244.2.5"]


def test_slice_without_service_name_label_is_ignored() -> None:
    t = ChangeTracker()
    s = endpoint_slice(endpoints=[endpoint("10.244.1.5")])
    del s["metadata"]["labels"]
    t.upsert_slice(s)
    assert t.pending() == 0
