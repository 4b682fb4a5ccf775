"""The record table against the Kubernetes DNS specification and CoreDNS, case by case.

Each case is (qname, qtype, rcode, answer lines[, additional lines]); the reply is produced by
the real responder from the real table and read back with dnspython, so the wire encoding is
checked on every case too. Negative replies must carry the zone SOA in the authority section.

Fixture addresses: services 10.96.0.0/16 (fd00:96::/64 for the dual-stack one), pods
10.244.0.0/16. Namespaces: default, other, kube-system (and `lonely` with no services).
"""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from dns_sample_cluster import HTTP, SERIAL, Z

from svcnet.dns.projection import (
    EndpointInfo,
    EndpointSliceInfo,
    PortInfo,
    ServiceInfo,
    endpoint_slice_from_api,
    service_from_api,
)
from svcnet.dns.records import RecordTable
from svcnet.dns.respond import Responder


def ask(table: RecordTable, qname: str, qtype: str) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype)
    reply = Responder(table).respond(query.to_wire())
    assert isinstance(reply, bytes)
    return dns.message.from_wire(reply)


def lines(section: list[dns.rrset.RRset]) -> list[str]:
    return sorted(line for rrset in section for line in rrset.to_text().splitlines())


SOA_LINE = f"{Z} 5 IN SOA ns.dns.{Z} hostmaster.{Z} {SERIAL} 7200 1800 86400 5"
NX = "NXDOMAIN"
OK = "NOERROR"

CASES: list[tuple[str, str, str, list[str]]] = [
    # ClusterIP service: A, FQDN only (search paths are the client's business)
    (
        "web.default.svc.cluster.local.",
        "A",
        OK,
        ["web.default.svc.cluster.local. 5 IN A 10.96.0.20"],
    ),
    ("web.default.svc.cluster.local.", "AAAA", OK, []),
    ("web.default.svc.cluster.local.", "TXT", OK, []),
    ("web.default.svc.cluster.local.", "MX", OK, []),
    ("web.default.svc.cluster.local.", "CNAME", OK, []),
    ("web.default.svc.cluster.local.", "PTR", OK, []),
    ("nope.default.svc.cluster.local.", "A", NX, []),
    ("nope.default.svc.cluster.local.", "TXT", NX, []),
    ("web.nons.svc.cluster.local.", "A", NX, []),
    ("web.other.svc.cluster.local.", "A", NX, []),
    ("api.other.svc.cluster.local.", "A", OK, ["api.other.svc.cluster.local. 5 IN A 10.96.5.5"]),
    # dual stack
    (
        "dual.default.svc.cluster.local.",
        "A",
        OK,
        ["dual.default.svc.cluster.local. 5 IN A 10.96.0.30"],
    ),
    (
        "dual.default.svc.cluster.local.",
        "AAAA",
        OK,
        ["dual.default.svc.cluster.local. 5 IN AAAA fd00:96::30"],
    ),
    # named ports: SRV and the A record of the port name
    (
        "_http._tcp.web.default.svc.cluster.local.",
        "SRV",
        OK,
        [
            "_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."
        ],
    ),
    (
        "_http._tcp.web.default.svc.cluster.local.",
        "A",
        OK,
        ["_http._tcp.web.default.svc.cluster.local. 5 IN A 10.96.0.20"],
    ),
    ("_http._udp.web.default.svc.cluster.local.", "SRV", NX, []),
    ("_nope._tcp.web.default.svc.cluster.local.", "SRV", NX, []),
    # CoreDNS strips the underscores only when present
    (
        "http.tcp.web.default.svc.cluster.local.",
        "SRV",
        OK,
        [
            "http.tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."
        ],
    ),
    # SRV on the service name: every port, unnamed ones included; weight 100/n
    (
        "web.default.svc.cluster.local.",
        "SRV",
        OK,
        [
            "web.default.svc.cluster.local. 5 IN SRV 0 50 80 web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. 5 IN SRV 0 50 9000 web.default.svc.cluster.local.",
        ],
    ),
    (
        "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
        "SRV",
        OK,
        [
            "_dns._udp.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local."
        ],
    ),
    # headless: one A per ready endpoint; not-ready left out
    (
        "hl.default.svc.cluster.local.",
        "A",
        OK,
        [
            "hl.default.svc.cluster.local. 5 IN A 10.244.1.5",
            "hl.default.svc.cluster.local. 5 IN A 10.244.2.6",
            "hl.default.svc.cluster.local. 5 IN A 10.244.3.7",
        ],
    ),
    (
        "web-0.hl.default.svc.cluster.local.",
        "A",
        OK,
        ["web-0.hl.default.svc.cluster.local. 5 IN A 10.244.1.5"],
    ),
    ("web-3.hl.default.svc.cluster.local.", "A", NX, []),
    (
        "10-244-3-7.hl.default.svc.cluster.local.",
        "A",
        OK,
        ["10-244-3-7.hl.default.svc.cluster.local. 5 IN A 10.244.3.7"],
    ),
    (
        "_http._tcp.hl.default.svc.cluster.local.",
        "SRV",
        OK,
        [
            "_http._tcp.hl.default.svc.cluster.local. 5 IN SRV 0 33 8080 10-244-3-7.hl.default.svc.cluster.local.",
            "_http._tcp.hl.default.svc.cluster.local. 5 IN SRV 0 33 8080 web-0.hl.default.svc.cluster.local.",
            "_http._tcp.hl.default.svc.cluster.local. 5 IN SRV 0 33 8080 web-1.hl.default.svc.cluster.local.",
        ],
    ),
    # IPv6 headless endpoints: AAAA, dashed names, ip6.arpa PTR
    (
        "hl6.default.svc.cluster.local.",
        "AAAA",
        OK,
        [
            "hl6.default.svc.cluster.local. 5 IN AAAA fd00:244::5",
            "hl6.default.svc.cluster.local. 5 IN AAAA fd00:244::6",
        ],
    ),
    ("hl6.default.svc.cluster.local.", "A", OK, []),
    (
        "fd00-244--6.hl6.default.svc.cluster.local.",
        "AAAA",
        OK,
        ["fd00-244--6.hl6.default.svc.cluster.local. 5 IN AAAA fd00:244::6"],
    ),
    (
        "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa.",
        "PTR",
        OK,
        [
            "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa. 5 IN PTR a.hl6.default.svc.cluster.local."
        ],
    ),
    # publishNotReadyAddresses: not-ready endpoints published
    (
        "pnr.default.svc.cluster.local.",
        "A",
        OK,
        ["pnr.default.svc.cluster.local. 5 IN A 10.244.4.9"],
    ),
    # a headless service without endpoints has no name
    ("empty.default.svc.cluster.local.", "A", NX, []),
    # an endpoint of a ClusterIP service has its own name in CoreDNS
    (
        "10-244-1-10.web.default.svc.cluster.local.",
        "A",
        OK,
        ["10-244-1-10.web.default.svc.cluster.local. 5 IN A 10.244.1.10"],
    ),
    ("10-244-9-9.web.default.svc.cluster.local.", "A", NX, []),
    # ExternalName
    (
        "ext.default.svc.cluster.local.",
        "CNAME",
        OK,
        ["ext.default.svc.cluster.local. 5 IN CNAME example.com."],
    ),
    (
        "ext.default.svc.cluster.local.",
        "A",
        OK,
        ["ext.default.svc.cluster.local. 5 IN CNAME example.com."],
    ),
    ("ext.default.svc.cluster.local.", "SRV", OK, []),
    ("ext.default.svc.cluster.local.", "TXT", OK, []),
    ("x.ext.default.svc.cluster.local.", "A", NX, []),
    # findServices skips an ExternalName Service when the name carries a port and protocol
    ("_http._tcp.ext.default.svc.cluster.local.", "SRV", NX, []),
    ("_http._tcp.ext.default.svc.cluster.local.", "A", NX, []),
    ("_http._tcp.ext.default.svc.cluster.local.", "CNAME", NX, []),
    ("_http._tcp.ext.default.svc.cluster.local.", "TXT", NX, []),
    ("_http._tcp.alias.default.svc.cluster.local.", "A", NX, []),
    (
        "alias.default.svc.cluster.local.",
        "A",
        OK,
        [
            "alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. 5 IN A 10.96.0.20",
        ],
    ),
    ("ipext.default.svc.cluster.local.", "A", NX, []),
    # PTR: ClusterIP → the service; endpoint → its own name
    (
        "20.0.96.10.in-addr.arpa.",
        "PTR",
        OK,
        ["20.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."],
    ),
    (
        "5.1.244.10.in-addr.arpa.",
        "PTR",
        OK,
        ["5.1.244.10.in-addr.arpa. 5 IN PTR web-0.hl.default.svc.cluster.local."],
    ),
    (
        "7.3.244.10.in-addr.arpa.",
        "PTR",
        OK,
        ["7.3.244.10.in-addr.arpa. 5 IN PTR 10-244-3-7.hl.default.svc.cluster.local."],
    ),
    (
        "10.1.244.10.in-addr.arpa.",
        "PTR",
        OK,
        ["10.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-10.web.default.svc.cluster.local."],
    ),
    (
        "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.",
        "PTR",
        OK,
        [
            "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa. 5 IN PTR dual.default.svc.cluster.local."
        ],
    ),
    ("8.3.244.10.in-addr.arpa.", "PTR", NX, []),
    ("99.99.96.10.in-addr.arpa.", "PTR", NX, []),
    # pods insecure
    (
        "10-244-1-5.default.pod.cluster.local.",
        "A",
        OK,
        ["10-244-1-5.default.pod.cluster.local. 5 IN A 10.244.1.5"],
    ),
    (
        "1-2-3-4.lonely.pod.cluster.local.",
        "A",
        OK,
        ["1-2-3-4.lonely.pod.cluster.local. 5 IN A 1.2.3.4"],
    ),
    (
        "fd00--1.default.pod.cluster.local.",
        "AAAA",
        OK,
        ["fd00--1.default.pod.cluster.local. 5 IN AAAA fd00::1"],
    ),
    ("fd00--1.default.pod.cluster.local.", "A", OK, []),
    ("1-2-3-4.nons.pod.cluster.local.", "A", NX, []),
    ("1-2-3.default.pod.cluster.local.", "A", NX, []),
    ("1-2-3-400.default.pod.cluster.local.", "A", NX, []),
    # namespaces, apex and fixed names
    ("default.svc.cluster.local.", "A", OK, []),
    ("lonely.svc.cluster.local.", "A", OK, []),
    ("default.svc.cluster.local.", "TXT", NX, []),
    ("nons.svc.cluster.local.", "A", NX, []),
    ("default.pod.cluster.local.", "A", OK, []),
    ("svc.cluster.local.", "A", OK, []),
    ("pod.cluster.local.", "A", OK, []),
    ("cluster.local.", "A", OK, []),
    ("cluster.local.", "TXT", NX, []),
    ("foo.cluster.local.", "A", NX, []),
    ("a.b.web.default.svc.cluster.local.", "A", NX, []),
    ("x.y.z.web.default.svc.cluster.local.", "A", NX, []),
    ("dns-version.cluster.local.", "TXT", OK, ['dns-version.cluster.local. 28800 IN TXT "1.1.0"']),
    ("dns-version.cluster.local.", "A", NX, []),
    # NS at a zone apex names the Service of the name servers (ns.go nsAddrs), in that zone,
    # the reverse zones included; anywhere else NS is NODATA or NXDOMAIN like A
    (
        "cluster.local.",
        "NS",
        OK,
        ["cluster.local. 5 IN NS kube-dns.kube-system.svc.cluster.local."],
    ),
    (
        "in-addr.arpa.",
        "NS",
        OK,
        ["in-addr.arpa. 5 IN NS kube-dns.kube-system.svc.in-addr.arpa."],
    ),
    ("svc.cluster.local.", "NS", OK, []),
    ("default.svc.cluster.local.", "NS", OK, []),
    ("web.default.svc.cluster.local.", "NS", OK, []),
    ("foo.cluster.local.", "NS", NX, []),
    ("foo.svc.cluster.local.", "NS", NX, []),
    ("ns.dns.cluster.local.", "A", OK, ["ns.dns.cluster.local. 5 IN A 10.96.0.10"]),
    ("ns.dns.cluster.local.", "AAAA", OK, []),
    ("ns.dns.cluster.local.", "SRV", OK, []),
    ("ns.dns.cluster.local.", "TXT", NX, []),
    # SOA is answered at a zone apex only; below it NODATA, whether or not the name exists
    ("cluster.local.", "SOA", OK, [SOA_LINE]),
    ("Cluster.LOCAL.", "SOA", OK, [SOA_LINE.replace(Z, "Cluster.LOCAL.")]),
    (
        "in-addr.arpa.",
        "SOA",
        OK,
        [SOA_LINE.replace(Z, "in-addr.arpa.")],
    ),
    ("web.default.svc.cluster.local.", "SOA", OK, []),
    ("_http._tcp.web.default.svc.cluster.local.", "SOA", OK, []),
    ("nope.default.svc.cluster.local.", "SOA", OK, []),
    ("svc.cluster.local.", "SOA", OK, []),
    ("foo.cluster.local.", "SOA", OK, []),
    ("20.0.96.10.in-addr.arpa.", "SOA", OK, []),
    # case-insensitive, and the reply keeps the question's case
    (
        "WEB.Default.SVC.Cluster.Local.",
        "A",
        OK,
        ["WEB.Default.SVC.Cluster.Local. 5 IN A 10.96.0.20"],
    ),
    (
        "_HTTP._TCP.web.default.svc.cluster.local.",
        "SRV",
        OK,
        [
            "_HTTP._TCP.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."
        ],
    ),
]


@pytest.mark.parametrize(
    ("qname", "qtype", "rcode", "answer"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_answer(table: RecordTable, qname: str, qtype: str, rcode: str, answer: list[str]) -> None:
    reply = ask(table, qname, qtype)
    assert dns.rcode.to_text(reply.rcode()) == rcode
    assert lines(reply.answer) == sorted(answer)
    assert reply.flags & dns.flags.AA
    # CoreDNS replies from miekg's SetReply: RA is never set on the kubernetes plugin's answers
    assert not reply.flags & dns.flags.RA


NEGATIVE = [(q, t) for q, t, rc, ans in CASES if not ans]


@pytest.mark.parametrize(("qname", "qtype"), NEGATIVE, ids=[f"{q}-{t}" for q, t in NEGATIVE])
def test_negative_answers_carry_the_zone_soa(table: RecordTable, qname: str, qtype: str) -> None:
    reply = ask(table, qname, qtype)
    assert len(reply.authority) == 1
    soa = reply.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA
    zone = next((z for z in ("in-addr.arpa.", "ip6.arpa.") if qname.endswith(z)), Z)
    assert soa.name.to_text().lower() == zone
    assert soa.to_text().split()[4:] == [
        f"ns.dns.{zone}",
        f"hostmaster.{zone}",
        str(SERIAL),
        "7200",
        "1800",
        "86400",
        "5",
    ]


def test_soa_owner_keeps_the_query_case(table: RecordTable) -> None:
    reply = ask(table, "nope.default.svc.CLUSTER.local.", "A")
    assert reply.authority[0].name.to_text() == "CLUSTER.local."


def test_srv_answers_carry_target_addresses(table: RecordTable) -> None:
    reply = ask(table, "_http._tcp.hl.default.svc.cluster.local.", "SRV")
    assert lines(reply.additional) == [
        "10-244-3-7.hl.default.svc.cluster.local. 5 IN A 10.244.3.7",
        "web-0.hl.default.svc.cluster.local. 5 IN A 10.244.1.5",
        "web-1.hl.default.svc.cluster.local. 5 IN A 10.244.2.6",
    ]


def test_clusterip_srv_additional_is_the_service_address(table: RecordTable) -> None:
    reply = ask(table, "_http._tcp.web.default.svc.cluster.local.", "SRV")
    assert lines(reply.additional) == ["web.default.svc.cluster.local. 5 IN A 10.96.0.20"]


def test_ns_answer_carries_glue(table: RecordTable) -> None:
    reply = ask(table, "cluster.local.", "NS")
    assert lines(reply.additional) == ["kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"]


def test_ns_without_the_kube_dns_service_names_ns_dns() -> None:
    # ns.go: when no Service has this server among its endpoints, its own addresses under
    # ns.dns.<zone>.
    t = RecordTable("cluster.local", nameserver_ips=("192.0.2.53",))
    t.set_synced()
    reply = ask(t, "cluster.local.", "NS")
    assert lines(reply.answer) == ["cluster.local. 5 IN NS ns.dns.cluster.local."]
    assert lines(reply.additional) == ["ns.dns.cluster.local. 5 IN A 192.0.2.53"]
    assert lines(ask(t, "ns.dns.cluster.local.", "A").answer) == [
        "ns.dns.cluster.local. 5 IN A 192.0.2.53"
    ]


def _cname_chain(length: int) -> RecordTable:
    """`length` ExternalName Services c0 → c1 → … ending at ClusterIP Service `end`."""
    t = RecordTable("cluster.local")
    t.set_namespace("default")
    for i in range(length):
        target = f"c{i + 1}" if i + 1 < length else "end"
        t.set_service(
            ServiceInfo(
                "default",
                f"c{i}",
                type="ExternalName",
                external_name=f"{target}.default.svc.cluster.local",
            )
        )
    t.set_service(ServiceInfo("default", "end", cluster_ips=("10.96.0.99",), ports=(HTTP,)))
    t.set_synced()
    return t


# backend_lookup.go: a CNAME is added while fewer than maxCnameChainLength (10) + 1 records
# came before it, so 11 CNAMEs resolve and a 12th ends the chain with nothing (NODATA).
@pytest.mark.parametrize(("length", "records"), [(11, 12), (12, 0)])
def test_cname_chain_length(length: int, records: int) -> None:
    query = dns.message.make_query("c0.default.svc.cluster.local.", "A", use_edns=0, payload=4096)
    reply = Responder(_cname_chain(length)).respond(query.to_wire())
    assert isinstance(reply, bytes)
    message = dns.message.from_wire(reply)
    assert message.rcode() == dns.rcode.NOERROR and not message.flags & dns.flags.TC
    assert len(lines(message.answer)) == records


def test_name_errors_before_sync_are_servfail() -> None:
    t = RecordTable("cluster.local")
    t.set_namespace("default")
    assert dns.rcode.to_text(ask(t, "nope.default.svc.cluster.local.", "A").rcode()) == "SERVFAIL"
    t.set_synced()
    assert dns.rcode.to_text(ask(t, "nope.default.svc.cluster.local.", "A").rcode()) == "NXDOMAIN"


def test_other_zone_name() -> None:
    t = RecordTable("k8s.example")
    t.set_namespace("default")
    t.set_service(ServiceInfo("default", "web", cluster_ips=("10.96.0.20",), ports=(HTTP,)))
    t.set_synced()
    assert lines(ask(t, "web.default.svc.k8s.example.", "A").answer) == [
        "web.default.svc.k8s.example. 5 IN A 10.96.0.20"
    ]
    assert ask(t, "web.default.svc.cluster.local.", "A").rcode() == dns.rcode.SERVFAIL  # outside


def test_outside_names_without_upstream_are_servfail(table: RecordTable) -> None:
    reply = ask(table, "example.com.", "A")
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert not reply.answer and not reply.authority


def test_fast_index_and_rules_agree(table: RecordTable) -> None:
    """Every precomputed entry equals what the rules give for the same question."""
    assert table.fast  # the precomputed table is not empty
    for key, answer in table.fast.items():
        labels: list[str] = []
        i = 0
        while key[i]:
            labels.append(key[i + 1 : i + 1 + key[i]].decode())
            i += 1 + key[i]
        qtype = int.from_bytes(key[i + 1 : i + 3], "big")
        assert table.lookup_labels(tuple(labels), qtype) == answer


# ---- incremental changes -----------------------------------------------------------------


def test_updating_a_service_changes_its_answer(fresh_table: RecordTable) -> None:
    t = fresh_table
    t.set_service(ServiceInfo("default", "web", cluster_ips=("10.96.0.21",), ports=(HTTP,)))
    assert lines(ask(t, "web.default.svc.cluster.local.", "A").answer) == [
        "web.default.svc.cluster.local. 5 IN A 10.96.0.21"
    ]
    assert ask(t, "20.0.96.10.in-addr.arpa.", "PTR").rcode() == dns.rcode.NXDOMAIN
    assert lines(ask(t, "21.0.96.10.in-addr.arpa.", "PTR").answer) == [
        "21.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."
    ]


def test_deleting_a_service_removes_every_name(fresh_table: RecordTable) -> None:
    t = fresh_table
    t.delete_service("default", "hl")
    for name in ("hl.default.svc.cluster.local.", "web-0.hl.default.svc.cluster.local."):
        assert ask(t, name, "A").rcode() == dns.rcode.NXDOMAIN
    # the slice is still there: its endpoints keep their PTR, as CoreDNS's endpoint index does
    assert ask(t, "5.1.244.10.in-addr.arpa.", "PTR").rcode() == dns.rcode.NOERROR


def test_endpoint_becoming_ready_appears(fresh_table: RecordTable) -> None:
    t = fresh_table
    t.set_endpoint_slice(
        EndpointSliceInfo(
            "default",
            "hl-1",
            "hl",
            endpoints=(EndpointInfo(("10.244.3.8",), hostname="web-3"),),
            ports=(PortInfo("http", "TCP", 8080),),
        )
    )
    assert lines(ask(t, "hl.default.svc.cluster.local.", "A").answer) == [
        "hl.default.svc.cluster.local. 5 IN A 10.244.3.8"
    ]
    assert ask(t, "web-0.hl.default.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN
    assert ask(t, "5.1.244.10.in-addr.arpa.", "PTR").rcode() == dns.rcode.NXDOMAIN


def test_deleting_the_last_slice_of_a_headless_service_makes_it_nxdomain(
    fresh_table: RecordTable,
) -> None:
    t = fresh_table
    t.delete_endpoint_slice("default", "hl-1")
    assert ask(t, "hl.default.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN


def test_namespace_deleted_hides_its_services(fresh_table: RecordTable) -> None:
    t = fresh_table
    t.delete_namespace("other")
    assert ask(t, "api.other.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN
    t.set_namespace("other")
    assert ask(t, "api.other.svc.cluster.local.", "A").rcode() == dns.rcode.NOERROR


def test_a_change_touches_only_that_services_entries() -> None:
    t = RecordTable("cluster.local")
    t.set_namespace("default")
    for i in range(10_000):
        t.set_service(
            ServiceInfo(
                "default", f"s{i}", cluster_ips=(f"10.96.{i // 256}.{i % 256}",), ports=(HTTP,)
            )
        )
    before = dict(t.fast)
    t.set_service(ServiceInfo("default", "s5", cluster_ips=("10.97.0.5",), ports=(HTTP,)))
    changed = {k for k in set(before) | set(t.fast) if before.get(k) is not t.fast.get(k)}
    # s5's A, AAAA, SRV for its name and its port name, and the two PTR entries
    assert len(changed) == 8


# ---- projections at the door -------------------------------------------------------------


def test_service_projection_from_api() -> None:
    svc = service_from_api(
        {
            "metadata": {"name": "Web", "namespace": "default"},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.20",
                "clusterIPs": ["10.96.0.20", "fd00::20"],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 9000}],
                "publishNotReadyAddresses": True,
            },
        }
    )
    assert svc == ServiceInfo(
        "default",
        "web",
        cluster_ips=("10.96.0.20", "fd00::20"),
        ports=(PortInfo("http", "TCP", 80), PortInfo("", "TCP", 9000)),
        publish_not_ready=True,
    )


def test_headless_and_external_projections() -> None:
    hl = service_from_api(
        {"metadata": {"name": "h", "namespace": "x"}, "spec": {"clusterIP": "None"}}
    )
    assert hl.headless and hl.cluster_ips == ()
    ext = service_from_api(
        {
            "metadata": {"name": "e", "namespace": "x"},
            "spec": {"type": "ExternalName", "externalName": "Example.COM."},
        }
    )
    assert ext.external_name == "example.com" and not ext.headless


def test_endpoint_slice_projection_from_api() -> None:
    eps = endpoint_slice_from_api(
        {
            "metadata": {
                "name": "web-abc",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "endpoints": [
                {
                    "addresses": ["10.244.1.5"],
                    "hostname": "web-0",
                    "conditions": {"ready": True},
                    "nodeName": "node-1",
                    "targetRef": {"kind": "Pod", "name": "web-0"},
                },
                {"addresses": ["10.244.1.6"], "conditions": {"ready": False, "serving": True}},
                {"addresses": ["10.244.1.7"]},
            ],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        }
    )
    assert eps is not None
    assert eps.service == "web"
    assert [(e.addresses, e.hostname, e.ready, e.serving) for e in eps.endpoints] == [
        (("10.244.1.5",), "web-0", True, True),
        (("10.244.1.6",), "", False, True),
        (("10.244.1.7",), "", True, True),
    ]
    assert eps.endpoints[0].node_name == "node-1" and eps.endpoints[0].target_pod == "web-0"


def test_slice_without_service_label_is_ignored() -> None:
    assert endpoint_slice_from_api({"metadata": {"name": "x", "namespace": "d"}}) is None


def test_a_reply_made_before_a_change_is_not_reused_after_it(fresh_table: RecordTable) -> None:
    responder = Responder(fresh_table)
    query = dns.message.make_query("web.default.svc.cluster.local.", "A")
    first = responder.respond(query.to_wire())
    assert first == responder.respond(query.to_wire())  # the same bytes, from the reply cache
    fresh_table.set_service(
        ServiceInfo("default", "web", cluster_ips=("10.96.0.77",), ports=(HTTP,))
    )
    reply = responder.respond(query.to_wire())
    assert isinstance(reply, bytes)
    assert lines(dns.message.from_wire(reply).answer) == [
        "web.default.svc.cluster.local. 5 IN A 10.96.0.77"
    ]


def test_replies_differ_only_in_the_id(table: RecordTable) -> None:
    responder = Responder(table)
    a = dns.message.make_query("Web.default.svc.cluster.local.", "A")
    b = dns.message.make_query("Web.default.svc.cluster.local.", "A")
    b.id = (a.id + 1) % 65536
    ra, rb = responder.respond(a.to_wire()), responder.respond(b.to_wire())
    assert isinstance(ra, bytes) and isinstance(rb, bytes)
    assert ra[2:] == rb[2:] and ra[:2] != rb[:2]
