"""The pure APIService plans: which local APIServices exist (autoregister), the Available
condition of a non-local one (the available-condition controller's checks, in order), and
when its status is rewritten."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api import apiservice as plan
from svcnet.api.apiservice import AUTOMANAGED_LABEL, NOT_PROXIED

NOW = "2026-01-10T12:00:00Z"


def _names(objs: Any) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_wanted_local_names_each_group_version_with_upstreams_priorities() -> None:
    wanted = plan.wanted_local([("", "v1"), ("apps", "v1"), ("gateway.networking.k8s.io", "v1")],
                               [("example.com", "v1")])  # fmt: skip
    assert list(wanted) == ["v1.", "v1.apps", "v1.gateway.networking.k8s.io", "v1.example.com"]
    specs = {name: (o["spec"]["groupPriorityMinimum"], o["spec"]["versionPriority"])
             for name, o in wanted.items()}  # fmt: skip
    assert specs == {
        "v1.": (18000, 1),
        "v1.apps": (17800, 15),
        "v1.gateway.networking.k8s.io": (1000, 100),
        "v1.example.com": (1000, 100),
    }
    labels = {name: o["metadata"]["labels"][AUTOMANAGED_LABEL] for name, o in wanted.items()}
    assert labels == {"v1.": "onstart", "v1.apps": "onstart",
                      "v1.gateway.networking.k8s.io": "onstart", "v1.example.com": "true"}  # fmt: skip
    assert "service" not in wanted["v1."]["spec"]


def _existing(name: str, managed: str | None, **spec: Any) -> dict[str, Any]:
    labels = {AUTOMANAGED_LABEL: managed} if managed else {}
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


def test_plan_registration_creates_repairs_and_deletes_only_what_it_manages() -> None:
    wanted = plan.wanted_local([("", "v1"), ("apps", "v1"), ("batch", "v1")], [])
    existing = [
        _existing("v1.", "onstart", **wanted["v1."]["spec"]),  # as wanted: untouched
        _existing("v1.apps", "onstart", group="apps", version="v1", groupPriorityMinimum=1,
                  versionPriority=1),  # edited: its spec put back
        _existing("v1.batch", None, group="batch", version="v1", groupPriorityMinimum=5,
                  versionPriority=5),  # a user's under a local name: left alone
        _existing("v1.gone.example.com", "true"),  # no longer served: deleted
        _existing("v1.old", "onstart"),  # likewise
        _existing("v1alpha1.wardle.k8s.io", None),  # a user's: left alone
    ]  # fmt: skip
    got = plan.plan_registration(wanted, existing)
    assert got.create == ()
    assert got.update == (("v1.apps", wanted["v1.apps"]["spec"]),)
    assert got.delete == ("v1.gone.example.com", "v1.old")
    missing = plan.plan_registration(wanted, existing[2:])
    assert _names(missing.create) == ["v1.", "v1.apps"]


def _remote(port: int = 443) -> dict[str, Any]:
    return {"spec": {"group": "wardle.k8s.io", "version": "v1alpha1",
                     "service": {"namespace": "w", "name": "api", "port": port}}}  # fmt: skip


def _service(type_: str = "ClusterIP", port_name: str = "https") -> dict[str, Any]:
    return {"spec": {"type": type_, "ports": [{"name": port_name, "port": 443}]}}


def _endpoints(port_name: str = "https", addresses: bool = True) -> dict[str, Any]:
    subset = {"addresses": [{"ip": "10.244.1.5"}] if addresses else [],
              "ports": [{"name": port_name, "port": 8443}]}  # fmt: skip
    return {"subsets": [subset]}


DISCOVERY = (
    "FailedDiscoveryCheck",
    f'{NOT_PROXIED}: requests for wardle.k8s.io/v1alpha1 are not forwarded to service/api in "w"',
)


@pytest.mark.parametrize(
    ("apiservice", "service", "endpoints", "reason", "message"),
    [
        (_remote(), None, None, "ServiceNotFound", 'service/api in "w" is not present'),
        (_remote(8443), _service(), _endpoints(), "ServicePortError",
         'service/api in "w" is not listening on port 8443'),
        (_remote(), _service(), None, "EndpointsNotFound",
         'cannot find endpoints for service/api in "w"'),
        (_remote(), _service(), _endpoints(addresses=False), "MissingEndpoints",
         'endpoints for service/api in "w" have no addresses with port name "https"'),
        (_remote(), _service(), _endpoints("other"), "MissingEndpoints",
         'endpoints for service/api in "w" have no addresses with port name "https"'),
        (_remote(), _service(), _endpoints(), *DISCOVERY),
        # Only a ClusterIP Service has its port and endpoints checked, as upstream.
        (_remote(8443), _service("ExternalName"), None, *DISCOVERY),
    ],
    ids=["no-service", "port", "no-endpoints", "no-addresses", "no-port-name", "discovery",
         "externalname"],
)  # fmt: skip
def test_availability_of_a_non_local_apiservice(
    apiservice: dict[str, Any],
    service: dict[str, Any] | None,
    endpoints: dict[str, Any] | None,
    reason: str,
    message: str,
) -> None:
    got = plan.availability(apiservice, service, endpoints)
    assert (got.status, got.reason) == ("False", reason)
    # Every message says svcnet proxies nothing (the upstream part first).
    expected = message if reason == "FailedDiscoveryCheck" else f"{message} ({NOT_PROXIED})"
    assert got.message == expected


def test_a_local_apiservice_is_available() -> None:
    assert plan.availability({"spec": {"group": "apps"}}, None, None) == plan.LOCAL


def test_status_with_keeps_the_transition_time_while_the_status_stays() -> None:
    first = plan.status_with(None, plan.LOCAL, NOW)
    assert first == {"conditions": [{"type": "Available", "status": "True",
                                     "lastTransitionTime": NOW, "reason": "Local",
                                     "message": "Local APIServices are always available"}]}  # fmt: skip
    assert plan.status_with(first, plan.LOCAL, "2026-01-10T13:00:00Z") is None
    moved = plan.Availability("True", "Passed", "all checks passed")
    second = plan.status_with(first, moved, "2026-01-10T13:00:00Z")
    assert second is not None
    assert second["conditions"][0]["lastTransitionTime"] == NOW
    down = plan.Availability("False", "ServiceNotFound", "gone")
    third = plan.status_with(second, down, "2026-01-10T14:00:00Z")
    assert third is not None
    assert third["conditions"][0]["lastTransitionTime"] == "2026-01-10T14:00:00Z"
