"""`python -m svcnet.dns`: argument forms and the --objects loader."""

from __future__ import annotations

from pathlib import Path

from svcnet.dns.__main__ import _hostport, load_objects, parse_args
from svcnet.dns.records import RecordTable
from svcnet.dns.wire import TYPE_A

OBJECTS = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: db-1, namespace: shop, labels: {kubernetes.io/service-name: db}}
  addressType: IPv4
  endpoints: [{addresses: [10.244.1.5], hostname: db-0}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None}
"""


def test_objects_file_fills_the_table(tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(OBJECTS)
    table = RecordTable()
    load_objects(table, str(path))
    assert table.synced and table.namespace_exists("shop")
    assert table.lookup("web.shop.svc.cluster.local.", TYPE_A).an_count == 1
    assert table.lookup("db-0.db.shop.svc.cluster.local.", TYPE_A).an_count == 1


HOSTPORTS = [
    ("0.0.0.0:53", ("0.0.0.0", 53)),
    (":5353", ("0.0.0.0", 5353)),
    ("127.0.0.1", ("127.0.0.1", 53)),
    ("[::1]:5300", ("::1", 5300)),
    ("[::]", ("::", 53)),
]


def test_listen_address_forms() -> None:
    for text, want in HOSTPORTS:
        assert _hostport(text, 53) == want


def test_defaults_are_sealed() -> None:
    args = parse_args([])
    assert args.upstream == [] and args.zone == "cluster.local" and args.ttl == 5
