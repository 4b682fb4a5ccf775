"""The record table: projections in, wire-ready answers out, kept current incrementally.

Pure. The answer to a name is computed by the rules of CoreDNS plugin/kubernetes (kubernetes.go
Records/findServices/findPods, reverse.go, plugin/backend_lookup.go A/AAAA/SRV/TXT/SOA, and
handler.go for which types end in NXDOMAIN or NOERROR without data), from indexes keyed by
(namespace, name) — never by walking all objects. The names every Service owns (the service
name, `_port._proto.` names, one name per endpoint) are resolved ahead of time for A, AAAA and
SRV and kept in `fast`, keyed by the lowercased wire name plus qtype; the server answers those
with one dict lookup. A change to one Service or EndpointSlice recomputes only that Service's
entries and the PTR entries of the addresses it had or has.

Where this follows CoreDNS and not only the specification (github.com/kubernetes/dns
docs/specification.md):
- `<endpoint>.<svc>.<ns>.svc` answers for every Service with that endpoint, not only
  headless ones, and so does the PTR of every ready endpoint address.
- a headless Service without ready endpoints, a missing named port and a namespace that does
  not exist are NXDOMAIN; `<ns>.svc.<zone>`, `svc.<zone>` and the apex are NOERROR/NODATA.
- TXT is answered only for `dns-version.<zone>` ("1.1.0", TTL 28800); a TXT query for a name
  that has no service records is NXDOMAIN (also `<ns>.svc.<zone>`), as plugin.TXT does.
- SOA is answered at a zone apex only (the cluster zone, in-addr.arpa, ip6.arpa); any name
  below one, existing or not, is NOERROR/NODATA, since handler.go looks nothing up for it.
- NS at a zone apex names the kube-dns Service under that zone (ns.go nsAddrs: the Service
  whose endpoints are this server), reverse zones included; `ns.dns.<zone>` when there is
  none. Elsewhere NS is answered like A without data. AXFR/IXFR are refused.
- an ExternalName Service has no `<endpoint>.` nor `_port._proto.` names (NXDOMAIN).
- pods "insecure" (kubeadm's Corefile): any well-formed `<a-b-c-d>.<ns>.pod` in an existing
  namespace answers its address.
"""

from __future__ import annotations

import ipaddress
import math
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from svcnet.dns import names as n
from svcnet.dns.names import Kind, QueryName
from svcnet.dns.projection import EndpointSliceInfo, PortInfo, ServiceInfo
from svcnet.dns.wire import (
    QUESTION_POINTER,
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    SOA_ANSWER,
    SOA_AUTHORITY,
    TYPE_A,
    TYPE_AAAA,
    TYPE_AXFR,
    TYPE_CNAME,
    TYPE_IXFR,
    TYPE_NS,
    TYPE_PTR,
    TYPE_SOA,
    TYPE_SRV,
    TYPE_TXT,
    Answer,
    Soa,
    WireError,
    encode_name,
    encode_rr,
    rdata_address,
    rdata_srv,
    rdata_txt,
)

DNS_SCHEMA_VERSION = "1.1.0"
DNS_VERSION_TTL = 28800
DEFAULT_TTL = 5
MAX_CNAME_CHAIN = 10  # backend_lookup.go maxCnameChainLength: previous records allowed
KUBE_DNS = ("kube-system", "kube-dns")
PRECOMPUTED_TYPES = (TYPE_A, TYPE_AAAA, TYPE_SRV)

_NO_PORTS = (PortInfo("", "", -1),)


@dataclass(frozen=True, slots=True)
class _Item:
    """One CoreDNS msg.Service: an address with a port and the name it lives under, or a CNAME."""

    ip: str
    port: int
    target: str  # the owner name of the address (SRV target), with trailing dot
    cname: str = ""  # ExternalName target, with trailing dot


@dataclass(frozen=True, slots=True)
class _Endpoint:
    ip: str
    host: str  # hostname, or the dashed IP
    ports: tuple[PortInfo, ...]


@dataclass(frozen=True, slots=True)
class _View:
    """A Service's published endpoints, indexed: answers for one endpoint name or one PTR
    must not cost a walk over every endpoint (a StatefulSet may have thousands)."""

    endpoints: tuple[_Endpoint, ...]
    by_host: dict[str, tuple[_Endpoint, ...]]
    by_ip: dict[str, tuple[_Endpoint, ...]]


_EMPTY_VIEW = _View((), {}, {})


def _is_v4(ip: str) -> bool:
    return "." in ip


def _fast_key(name: str, qtype: int) -> bytes:
    return encode_name(name) + struct.pack(">H", qtype)


class RecordTable:
    """Services, EndpointSlices and Namespaces in; answers out.

    `fast` maps (lowercased wire qname + qtype) → Answer for the precomputed names; `lookup`
    answers any name by the rules. Both give the same answer for the same question.
    """

    def __init__(
        self,
        zone: str = "cluster.local",
        ttl: int = DEFAULT_TTL,
        clock: Callable[[], float] | None = None,
        nameserver_ips: Iterable[str] = (),
    ) -> None:
        self.zone = zone.strip(".").lower() + "."
        self.zone_labels = n.zone_labels(self.zone)
        self.ttl = ttl
        self._clock = clock
        self._nameserver_ips = tuple(nameserver_ips)
        self.serial = 0
        self.soa = Soa(ttl=min(ttl, 300), serial=0, minimum=ttl)
        self.synced = False
        # Bumped by every change: whoever keeps replies made from the table drops them.
        self.generation = 0
        self.fast: dict[bytes, Answer] = {}
        self._services: dict[tuple[str, str], ServiceInfo] = {}
        self._slices: dict[tuple[str, str], EndpointSliceInfo] = {}
        self._slices_of: dict[tuple[str, str], dict[str, EndpointSliceInfo]] = {}
        self._namespaces: set[str] = set()
        self._services_in: dict[str, set[str]] = {}
        self._ptr_services: dict[str, set[tuple[str, str]]] = {}
        self._ptr_endpoints: dict[str, set[tuple[str, str]]] = {}
        self._ptr_ips_of: dict[tuple[str, str], set[str]] = {}
        self._owned: dict[tuple[str, str], list[bytes]] = {}
        self._views: dict[tuple[str, str], _View] = {}

    # ---- changes -------------------------------------------------------------------------

    def set_service(self, svc: ServiceInfo) -> None:
        old = self._services.get(svc.key)
        if old == svc:
            return
        self._services[svc.key] = svc
        self._services_in.setdefault(svc.namespace, set()).add(svc.name)
        self._changed([svc.key])

    def delete_service(self, namespace: str, name: str) -> None:
        key = (namespace.lower(), name.lower())
        if self._services.pop(key, None) is None:
            return
        names = self._services_in.get(key[0])
        if names is not None:
            names.discard(key[1])
            if not names:
                del self._services_in[key[0]]
        self._changed([key])

    def set_endpoint_slice(self, eps: EndpointSliceInfo) -> None:
        old = self._slices.get(eps.key)
        if old == eps:
            return
        touched = [eps.service_key]
        if old is not None and old.service_key != eps.service_key:
            self._slices_of.get(old.service_key, {}).pop(old.name, None)
            touched.append(old.service_key)
        self._slices[eps.key] = eps
        self._slices_of.setdefault(eps.service_key, {})[eps.name] = eps
        self._changed(touched)

    def delete_endpoint_slice(self, namespace: str, name: str) -> None:
        old = self._slices.pop((namespace.lower(), name), None)
        if old is None:
            return
        group = self._slices_of.get(old.service_key, {})
        group.pop(old.name, None)
        if not group:
            self._slices_of.pop(old.service_key, None)
        self._changed([old.service_key])

    def set_namespace(self, name: str) -> None:
        if name in self._namespaces:
            return
        self._namespaces.add(name)
        self._changed([(name, s) for s in sorted(self._services_in.get(name, ()))])

    def delete_namespace(self, name: str) -> None:
        if name not in self._namespaces:
            return
        self._namespaces.discard(name)
        self._changed([(name, s) for s in sorted(self._services_in.get(name, ()))])

    def set_synced(self, synced: bool = True) -> None:
        if synced != self.synced:
            self.synced = synced
            self.generation += 1

    def _changed(self, keys: Iterable[tuple[str, str]]) -> None:
        self.generation += 1
        if self._clock is not None:
            self.serial = int(self._clock())
            self.soa = Soa(ttl=self.soa.ttl, serial=self.serial, minimum=self.soa.minimum)
        dirty_ips: set[str] = set()
        for key in keys:
            dirty_ips |= self._refresh_service(key)
        for ip in dirty_ips:
            self._refresh_ptr(ip)

    def _refresh_service(self, key: tuple[str, str]) -> set[str]:
        """Recompute the fast entries and PTR index of one Service; returns the IPs to redo."""
        self._views.pop(key, None)
        for k in self._owned.pop(key, ()):
            self.fast.pop(k, None)
        dirty = self._ptr_ips_of.pop(key, set())
        for ip in dirty:
            self._ptr_services.get(ip, set()).discard(key)
            self._ptr_endpoints.get(ip, set()).discard(key)
        svc = self._services.get(key)
        ips: set[str] = set()
        if svc is not None:
            for ip in svc.cluster_ips:
                self._ptr_services.setdefault(ip, set()).add(key)
                ips.add(ip)
        for ep in self._endpoints(key, svc):
            self._ptr_endpoints.setdefault(ep.ip, set()).add(key)
            ips.add(ep.ip)
        if ips:
            self._ptr_ips_of[key] = ips
        if svc is not None and svc.type != "ExternalName":
            owned: list[bytes] = []
            for name in self._names_of(svc):
                labels = n.split_name(name)
                q = n.parse_labels(labels, self.zone_labels)
                for qtype in PRECOMPUTED_TYPES:
                    answer = self._resolve(q, qtype, name)
                    if answer.rcode != RCODE_NOERROR:
                        continue  # name errors depend on sync state: the rules answer them
                    try:
                        k = _fast_key(name, qtype)
                    except WireError:
                        break
                    self.fast[k] = answer
                    owned.append(k)
            if owned:
                self._owned[key] = owned
        return dirty | ips

    def _names_of(self, svc: ServiceInfo) -> list[str]:
        base = f"{svc.name}.{svc.namespace}.svc.{self.zone}"
        out = [base]
        out.extend(f"_{p.name}._{p.protocol.lower()}.{base}" for p in svc.ports if p.name)
        out.extend(sorted({f"{ep.host}.{base}" for ep in self._endpoints(svc.key, svc)}))
        return out

    def _refresh_ptr(self, ip: str) -> None:
        try:
            k = _fast_key(n.reverse_name(ip), TYPE_PTR)
        except (ValueError, WireError):
            return
        answer = self._ptr_answer(ip)
        if answer is None:
            self.fast.pop(k, None)
        else:
            self.fast[k] = answer

    # ---- indexes -------------------------------------------------------------------------

    def namespace_exists(self, namespace: str) -> bool:
        return namespace in self._namespaces

    def _endpoints(self, key: tuple[str, str], svc: ServiceInfo | None) -> tuple[_Endpoint, ...]:
        return self._view(key, svc).endpoints

    def _view(self, key: tuple[str, str], svc: ServiceInfo | None) -> _View:
        """The endpoints DNS publishes for a Service, in a stable order, cached until the
        Service or one of its slices changes.

        Ready ones only (a missing condition counts as ready); not-ready ones too when the
        Service publishes not-ready addresses — the EndpointSlice controller marks those ready
        anyway, this keeps the rule true when it does not.
        """
        view = self._views.get(key)
        if view is not None:
            return view
        group = self._slices_of.get(key)
        if not group:
            return _EMPTY_VIEW
        publish = svc is not None and svc.publish_not_ready
        out: list[_Endpoint] = []
        for name in sorted(group):
            eps = group[name]
            if eps.address_type not in ("IPv4", "IPv6"):
                continue
            ports = eps.ports or _NO_PORTS
            for e in eps.endpoints:
                if not (e.ready or publish):
                    continue
                for ip in e.addresses:
                    out.append(_Endpoint(ip, e.hostname or n.dashed_ip(ip), ports))
        by_host: dict[str, list[_Endpoint]] = {}
        by_ip: dict[str, list[_Endpoint]] = {}
        for ep in out:
            by_host.setdefault(ep.host, []).append(ep)
            by_ip.setdefault(ep.ip, []).append(ep)
        view = _View(
            tuple(out),
            {h: tuple(v) for h, v in by_host.items()},
            {ip: tuple(v) for ip, v in by_ip.items()},
        )
        self._views[key] = view
        return view

    def _nameservers(self, zone: str) -> tuple[str, tuple[str, ...]]:
        """ns.go nsAddrs: (name, addresses) of the name servers in `zone` — the Service in
        front of this server (kube-dns, ClusterIP), else this server's own addresses."""
        kube_dns = self._services.get(KUBE_DNS)
        if kube_dns is not None and kube_dns.cluster_ips:
            return f"{KUBE_DNS[1]}.{KUBE_DNS[0]}.svc.{zone}", kube_dns.cluster_ips
        return f"ns.dns.{zone}", self._nameserver_ips

    # ---- the rules -----------------------------------------------------------------------

    def lookup(self, qname: str, qtype: int) -> Answer:
        """The answer to (qname, qtype) by the rules; names outside the zones → forward."""
        labels = n.split_name(qname)
        return self.lookup_labels(labels, qtype)

    def lookup_labels(self, labels: tuple[str, ...], qtype: int) -> Answer:
        q = n.parse_labels(labels, self.zone_labels)
        return self._resolve(q, qtype, ".".join(labels) + ".")

    def _negative(self, q: QueryName, rcode: int, forward: bool = False) -> Answer:
        if rcode == RCODE_NXDOMAIN and not self.synced:
            # handler.go: before the first sync a name error would be a lie → SERVFAIL.
            rcode = RCODE_SERVFAIL
        return Answer(rcode, soa=SOA_AUTHORITY, zone=q.zone, forward=forward)

    def _records(self, q: QueryName) -> list[_Item] | None:
        """CoreDNS Records(): the items for a name, [] for NODATA, None for a name error."""
        kind = q.kind
        if kind in (Kind.APEX, Kind.SVC_APEX, Kind.POD_APEX):
            return []
        if kind in (Kind.NAMESPACE, Kind.POD_NAMESPACE):
            return [] if q.namespace in self._namespaces else None
        if kind is Kind.POD:
            if q.namespace not in self._namespaces:
                return None
            ip = n.pod_label_ip(q.service)
            if not ip:
                return None
            return [_Item(ip, 0, f"{q.service}.{q.namespace}.pod.{q.zone}")]
        if kind is Kind.SERVICE:
            return self._find_service(q)
        return None

    def _services_for(self, q: QueryName, qtype: int) -> list[_Item] | None:
        """CoreDNS Services(): ns.dns.<zone> has the name servers' addresses (for A and AAAA
        only: isDefaultNS), the rest is Records()."""
        if q.kind is Kind.NS_DNS:
            if qtype not in (TYPE_A, TYPE_AAAA):
                return []
            name = f"ns.dns.{q.zone}"
            return [_Item(ip, 0, name) for ip in self._nameservers(q.zone)[1]]
        return self._records(q)

    def _find_service(self, q: QueryName) -> list[_Item] | None:
        if q.namespace not in self._namespaces:
            return None
        svc = self._services.get((q.namespace, q.service))
        if svc is None:
            return None
        if svc.type == "ExternalName":
            # findServices: no endpoints, and no port/protocol names (SRV is not implemented
            # for external services), so such a name does not exist.
            if q.endpoint or q.port or q.protocol:
                return None
            if not svc.external_name or _looks_like_ip(svc.external_name):
                return None
            return [_Item("", 0, "", cname=svc.external_name + ".")]
        base = f"{svc.name}.{svc.namespace}.svc.{q.zone}"
        items: list[_Item] = []
        if svc.headless or q.endpoint:
            view = self._view(svc.key, svc)
            chosen = view.by_host.get(q.endpoint, ()) if q.endpoint else view.endpoints
            for ep in chosen:
                for p in ep.ports:
                    if _port_matches(q, p):
                        items.append(_Item(ep.ip, p.port, f"{ep.host}.{base}"))
            return items or None
        matched = False
        for p in svc.ports:
            if not _port_matches(q, p):
                continue
            matched = True
            items.extend(_Item(ip, p.port, base) for ip in svc.cluster_ips)
        return items if matched else None

    def _resolve(self, q: QueryName, qtype: int, qname: str) -> Answer:
        kind = q.kind
        if kind is Kind.OUTSIDE:
            return Answer(RCODE_SERVFAIL, forward=True)
        apex = kind in (Kind.APEX, Kind.REVERSE_APEX)
        if qtype == TYPE_SOA:
            # handler.go: SOA only for the zone itself; below it nothing is looked up.
            if apex:
                return Answer(RCODE_NOERROR, soa=SOA_ANSWER, zone=q.zone)
            return self._negative(q, RCODE_NOERROR)
        if qtype in (TYPE_AXFR, TYPE_IXFR):
            return Answer(RCODE_REFUSED)
        if qtype == TYPE_NS and apex:
            return self._ns_answer(q)
        if kind in (Kind.REVERSE, Kind.REVERSE_OTHER, Kind.REVERSE_APEX):
            return self._resolve_reverse(q, qtype)
        if qtype == TYPE_TXT:
            if kind is Kind.DNS_VERSION:
                rr = encode_rr(
                    QUESTION_POINTER, TYPE_TXT, DNS_VERSION_TTL, rdata_txt(DNS_SCHEMA_VERSION)
                )
                return Answer(RCODE_NOERROR, rr, 1)
            items = self._records(q)
            return self._negative(q, RCODE_NOERROR if items else RCODE_NXDOMAIN)
        if qtype == TYPE_PTR:
            # A forward name asked for PTR: reverse.go falls back to Records() for the rcode.
            return self._negative(q, RCODE_NXDOMAIN if self._records(q) is None else RCODE_NOERROR)
        found = self._services_for(q, qtype)
        if found is None:
            return self._negative(q, RCODE_NXDOMAIN)
        if qtype in (TYPE_A, TYPE_AAAA):
            rrs, count, external = self._addresses(found, qtype, QUESTION_POINTER, qname, 0, q)
            if not count:
                return self._negative(q, RCODE_NOERROR)
            return Answer(RCODE_NOERROR, b"".join(rrs), count, external=external)
        if qtype == TYPE_SRV:
            return self._srv(q, found)
        if qtype == TYPE_CNAME:
            if found and found[0].cname:
                rr = encode_rr(QUESTION_POINTER, TYPE_CNAME, self.ttl, encode_name(found[0].cname))
                return Answer(RCODE_NOERROR, rr, 1)
            return self._negative(q, RCODE_NOERROR)
        return self._negative(q, RCODE_NOERROR)

    def _addresses(
        self,
        items: list[_Item],
        qtype: int,
        owner: bytes,
        qname: str,
        depth: int,
        q: QueryName,
    ) -> tuple[list[bytes], int, str]:
        """plugin.A / plugin.AAAA: addresses of the family, deduplicated; CNAMEs chased in zone."""
        want_v4 = qtype == TYPE_A
        rrs: list[bytes] = []
        count = 0
        external = ""
        seen: set[str] = set()
        for it in items:
            if it.cname:
                target = it.cname
                if target == qname or depth > MAX_CNAME_CHAIN:
                    continue  # x CNAME x, or too long a chain
                try:
                    cname_rr = encode_rr(owner, TYPE_CNAME, self.ttl, encode_name(target))
                except WireError:
                    continue
                tq = n.parse_labels(n.split_name(target), self.zone_labels)
                if tq.kind is Kind.OUTSIDE:
                    rrs.append(cname_rr)
                    count += 1
                    external = target
                    continue
                sub = self._services_for(tq, qtype)
                if sub is None:
                    continue
                sub_rrs, sub_count, sub_ext = self._addresses(
                    sub, qtype, encode_name(target), target, depth + 1, tq
                )
                if sub_count:
                    rrs.append(cname_rr)
                    rrs.extend(sub_rrs)
                    count += 1 + sub_count
                    external = external or sub_ext
                continue
            if _is_v4(it.ip) != want_v4 or it.ip in seen:
                continue
            seen.add(it.ip)
            rrs.append(encode_rr(owner, qtype, self.ttl, rdata_address(it.ip)))
            count += 1
        return rrs, count, external

    def _srv(self, q: QueryName, found: list[_Item]) -> Answer:
        # Services() drops ExternalName items for SRV; weights are computed over what is left,
        # port -1 items included, as backend_lookup.go's first loop does.
        items = [it for it in found if not it.cname]
        if not items:
            return self._negative(q, RCODE_NOERROR)
        weight = max(1, math.floor(100.0 / float(100 * len(items)) * 100))
        answer: list[bytes] = []
        extra: list[bytes] = []
        seen_srv: set[tuple[str, int]] = set()
        seen_addr: set[tuple[str, str]] = set()
        for it in items:
            if it.port == -1:
                continue
            try:
                target_wire = encode_name(it.target)
            except WireError:
                continue
            if (it.target, it.port) not in seen_srv:
                seen_srv.add((it.target, it.port))
                answer.append(
                    encode_rr(
                        QUESTION_POINTER,
                        TYPE_SRV,
                        self.ttl,
                        rdata_srv(0, weight, it.port, it.target),
                    )
                )
            if (it.target, it.ip) not in seen_addr:
                seen_addr.add((it.target, it.ip))
                rtype = TYPE_A if _is_v4(it.ip) else TYPE_AAAA
                extra.append(encode_rr(target_wire, rtype, self.ttl, rdata_address(it.ip)))
        if not answer:
            return self._negative(q, RCODE_NOERROR)
        return Answer(RCODE_NOERROR, b"".join(answer), len(answer), b"".join(extra), len(extra))

    def _ns_answer(self, q: QueryName) -> Answer:
        target, ips = self._nameservers(q.zone)
        if not ips:
            return self._negative(q, RCODE_NOERROR)
        target_wire = encode_name(target)
        rr = encode_rr(QUESTION_POINTER, TYPE_NS, self.ttl, target_wire)
        extra = [
            encode_rr(target_wire, TYPE_A if _is_v4(ip) else TYPE_AAAA, self.ttl, rdata_address(ip))
            for ip in ips
        ]
        return Answer(RCODE_NOERROR, rr, 1, b"".join(extra), len(extra))

    def _resolve_reverse(self, q: QueryName, qtype: int) -> Answer:
        if q.kind is Kind.REVERSE and qtype == TYPE_PTR:
            answer = self._ptr_answer(q.ip)
            if answer is not None:
                return answer
            # kubeadm's Corefile: `fallthrough in-addr.arpa ip6.arpa` → the next plugin.
            return self._negative(q, RCODE_NXDOMAIN, forward=True)
        if q.kind is Kind.REVERSE_APEX:
            return self._negative(q, RCODE_NOERROR)  # parse.go: apex queries are NODATA
        return self._negative(q, RCODE_NXDOMAIN, forward=True)

    def _ptr_answer(self, ip: str) -> Answer | None:
        """reverse.go serviceRecordForIP: a ClusterIP names its Service (one), else every ready
        endpoint with that address names itself under its Service."""
        targets: list[str] = []
        svcs = self._ptr_services.get(ip)
        if svcs:
            ns, name = min(svcs)
            targets.append(f"{name}.{ns}.svc.{self.zone}")
        else:
            for key in sorted(self._ptr_endpoints.get(ip, ())):
                for ep in self._view(key, self._services.get(key)).by_ip.get(ip, ()):
                    t = f"{ep.host}.{key[1]}.{key[0]}.svc.{self.zone}"
                    if t not in targets:
                        targets.append(t)
        rrs: list[bytes] = []
        for t in targets:
            try:
                rrs.append(encode_rr(QUESTION_POINTER, TYPE_PTR, self.ttl, encode_name(t)))
            except WireError:
                continue
        if not rrs:
            return None
        return Answer(RCODE_NOERROR, b"".join(rrs), len(rrs))

    # ---- introspection (tests, `svcnet dns` tooling) --------------------------------------

    def service_count(self) -> int:
        return len(self._services)


def _port_matches(q: QueryName, p: PortInfo) -> bool:
    # kubernetes.go matchPortAndProtocol: an absent port/protocol in the query matches all.
    return (not q.port or q.port == p.name) and (not q.protocol or q.protocol == p.protocol.lower())


def _looks_like_ip(name: str) -> bool:
    # msg.Service.HostType(): an ExternalName that parses as an IP is not a CNAME.
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
