"""Pod ↔ Service membership from indexes, and the tracker of our own slice writes."""

from __future__ import annotations

from typing import Any, cast

from svcnet.api.registry import PODS, SERVICES
from svcnet.client.informer import Informer
from svcnet.client.rest import ApiClient
from svcnet.controllers.endpointslice.controller import WriteTracker
from svcnet.controllers.endpointslice.membership import Membership


def informer(kind: str) -> Informer:
    rt = SERVICES if kind == "svc" else PODS
    assert rt is not None
    # Only the cache is used: no client call is ever made.
    return Informer(cast(ApiClient, None), rt)


def svc(name: str, selector: dict[str, str] | None, ns: str = "default") -> dict[str, Any]:
    spec: dict[str, Any] = {} if selector is None else {"selector": selector}
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": "1"}, "spec": spec}


def pod(name: str, labels: dict[str, str], ns: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}}


def membership() -> Membership:
    services, pods = informer("svc"), informer("pod")
    for s in (
        svc("web", {"app": "web"}),
        svc("web-canary", {"app": "web", "track": "canary"}),
        svc("db", {"app": "db"}),
        svc("ext", None),
        svc("web", {"app": "web"}, ns="other"),
    ):
        services.store.upsert(s)
    for p in (
        pod("w1", {"app": "web"}),
        pod("w2", {"app": "web", "track": "canary"}),
        pod("d1", {"app": "db"}),
        pod("w9", {"app": "web"}, ns="other"),
    ):
        pods.store.upsert(p)
    return Membership(services, pods)


def test_services_for_pod_checks_the_whole_selector_in_the_pods_namespace() -> None:
    m = membership()
    assert m.services_for_pod(pod("w1", {"app": "web"})) == ["default/web"]
    assert m.services_for_pod(pod("w2", {"app": "web", "track": "canary"})) == [
        "default/web",
        "default/web-canary",
    ]
    assert m.services_for_pod(pod("x", {"app": "none"})) == []


def test_pods_for_service() -> None:
    m = membership()
    names = [
        p["metadata"]["name"]
        for p in m.pods_for_service(svc("web-canary", {"app": "web", "track": "canary"}))
    ]
    assert names == ["w2"]
    assert sorted(
        p["metadata"]["name"] for p in m.pods_for_service(svc("web", {"app": "web"}))
    ) == ["w1", "w2"]


def test_service_without_selector_selects_nothing() -> None:
    m = membership()
    assert m.selector(svc("ext", None)) is None
    assert m.pods_for_service(svc("ext", None)) == []


def slice_(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}


def test_tracker_sees_a_cache_behind_our_writes() -> None:
    t = WriteTracker()
    t.wrote("default/web", slice_("web-a", "10"))
    cache: dict[str, dict[str, Any]] = {"default/web-a": slice_("web-a", "9")}
    assert t.stale("default/web", cache.get)
    cache["default/web-a"] = slice_("web-a", "10")
    assert not t.stale("default/web", cache.get)
    assert t.is_echo("default/web", slice_("web-a", "10"))
    assert not t.is_echo("default/web", slice_("web-a", "11"))


def test_tracker_waits_for_a_deletion_to_show() -> None:
    t = WriteTracker()
    t.deleted("default/web", "default/web-a")
    cache: dict[str, dict[str, Any]] = {"default/web-a": slice_("web-a", "3")}
    assert t.stale("default/web", cache.get)
    del cache["default/web-a"]
    assert not t.stale("default/web", cache.get)
    assert not t.stale("default/other", cache.get)
