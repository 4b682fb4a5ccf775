"""Service admission: ClusterIP and NodePort allocation with rollback and release.

Fixture ranges: service CIDR 10.96.0.0/16 (10.96.0.1 and 10.96.0.10 reserved), NodePorts
30000-32767.
"""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api.errors import Invalid
from svcnet.apiserver.admission import ServiceAllocator


def _alloc() -> ServiceAllocator:
    return ServiceAllocator("10.96.0.0/16", (30000, 32767))


def _svc(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}], **spec},
    }


def test_cluster_ip_is_allocated_and_consistent() -> None:
    a = _alloc()
    svc = _svc()
    a.admit_create(svc).commit()
    ip = svc["spec"]["clusterIP"]
    assert ip.startswith("10.96.") and svc["spec"]["clusterIPs"] == [ip]
    assert ip not in ("10.96.0.1", "10.96.0.10")


def test_requested_ip_in_use_is_invalid() -> None:
    a = _alloc()
    a.admit_create(_svc(clusterIP="10.96.5.5")).commit()
    with pytest.raises(Invalid) as err:
        a.admit_create(_svc(clusterIP="10.96.5.5"))
    assert str(err.value) == (
        'Service "web" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.5.5"}: '
        "failed to allocate IP 10.96.5.5: provided IP is already allocated"
    )


def test_headless_gets_no_ip() -> None:
    svc = _svc(clusterIP="None")
    _alloc().admit_create(svc).commit()
    assert svc["spec"]["clusterIPs"] == ["None"]


def test_rollback_releases_ip_and_ports() -> None:
    a = _alloc()
    txn = a.admit_create(
        _svc(type="NodePort", clusterIP="10.96.7.7", ports=[{"port": 80, "nodePort": 30080}])
    )
    txn.rollback()
    a.admit_create(
        _svc(type="NodePort", clusterIP="10.96.7.7", ports=[{"port": 80, "nodePort": 30080}])
    ).commit()


def test_failed_create_leaks_nothing() -> None:
    a = _alloc()
    a.admit_create(_svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])).commit()
    with pytest.raises(Invalid, match="provided port is already allocated"):
        a.admit_create(
            _svc(type="NodePort", clusterIP="10.96.8.8", ports=[{"port": 80, "nodePort": 30080}])
        )
    a.admit_create(_svc(clusterIP="10.96.8.8")).commit()


def test_node_ports_released_on_type_change() -> None:
    a = _alloc()
    old = _svc(type="NodePort", ports=[{"port": 80, "nodePort": 30090}])
    a.admit_create(old).commit()
    new = _svc(
        type="ClusterIP",
        clusterIP=old["spec"]["clusterIP"],
        ports=[{"port": 80, "nodePort": 30090}],
    )
    a.admit_update(new, old).commit()
    assert "nodePort" not in new["spec"]["ports"][0]
    assert new["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    a.admit_create(_svc(type="NodePort", ports=[{"port": 80, "nodePort": 30090}])).commit()


def test_load_balancer_local_gets_health_check_port() -> None:
    svc = _svc(type="LoadBalancer", externalTrafficPolicy="Local")
    _alloc().admit_create(svc).commit()
    assert 30000 <= svc["spec"]["healthCheckNodePort"] <= 32767
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767


def test_release_frees_everything() -> None:
    a = _alloc()
    svc = _svc(type="NodePort", clusterIP="10.96.9.9", ports=[{"port": 80, "nodePort": 30099}])
    a.admit_create(svc).commit()
    a.release(svc)
    a.admit_create(
        _svc(type="NodePort", clusterIP="10.96.9.9", ports=[{"port": 80, "nodePort": 30099}])
    ).commit()


def test_rebuild_marks_stored_services() -> None:
    a = _alloc()
    a.rebuild([_svc(clusterIP="10.96.3.3", clusterIPs=["10.96.3.3"])])
    with pytest.raises(Invalid):
        a.admit_create(_svc(clusterIP="10.96.3.3"))


def test_external_name_releases_cluster_ip() -> None:
    a = _alloc()
    old = _svc(clusterIP="10.96.4.4")
    a.admit_create(old).commit()
    new = _svc(type="ExternalName", externalName="db.example.com")
    a.admit_update(new, old).commit()
    assert "clusterIP" not in new["spec"]
    a.admit_create(_svc(clusterIP="10.96.4.4")).commit()
