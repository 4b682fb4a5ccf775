"""The nfnetlink codec of ``svcnet flows``, on bytes captured from this kernel (x86-64, 6.18).

Captured in a scratch namespace (loopback only): an ``output`` chain logging to NFLOG group 11
a UDP packet to 127.0.0.2:9 (prefix ``np:eg:ns-a``) and a TCP SYN to 127.0.0.3:81 (prefix
``np:in:(closed)``), in one datagram; conntrack's NEW event of a TCP connection
127.0.0.1 -> 127.0.0.1:8080; and the NEW and DESTROY events of a UDP flow DNATed from
127.0.0.5:53 to 127.0.0.1:5353 (deleted with ``conntrack -D``). Netlink headers are in the
host's byte order: these captures are little-endian.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svcnet.dataplane import nfnetlink as nf
from svcnet.dataplane.netlink_events import decode
from svcnet.dataplane.nfnetlink import CtEntry, CtEvent, CtEventKind, LoggedPacket, Tuple

NFLOG_TWO_PACKETS = bytes.fromhex(
    "700000000004000000000000000000000200000b08000100080003000f000a006e703a65673a6e732d6100"
    "00080005000000000108000b000000000008000e000000000008000d0000000001210009004500001d3e5e"
    "40004011fe6e7f0000017f000002cd4100090009fe1d78000000900000000004000000000000000000000200"
    "000b080001000800030013000a006e703a696e3a28636c6f736564290000080005000000000108000b0000"
    "00000008000e000000000008000d0000000002400009004500003c7c7a40004006c03d7f0000017f000003"
    "8f860051727d564f00000000a002ffd7fe3200000204ffd70402080a1eead342000000000103030a140000"
    "000300000000000000000000000000000b"
)
CT_NEW_TCP = bytes.fromhex(
    "c4000000000100060000000000000000020000003400018014000180080001007f000001080002007f0000"
    "011c000280050001000600000006000200d8920000060003001f9000003400028014000180080001007f00"
    "0001080002007f0000011c0002800500010006000000060002001f90000006000300d892000008000c00c6"
    "68ba3108000300000000080800070000000078300004802c0001800500010001000000050002000a000000"
    "050003000000000006000400030000000600050000000000"
)
_DNAT_TUPLES = (
    "020000003400018014000180080001007f000001080002007f0000051c00028005000100110000000600"
    "02009c40000006000300003500003400028014000180080001007f000001080002007f0000011c0002800500"
    "0100110000000600020014e90000060003009c40000008000c00698fff48080003"
)
CT_NEW_UDP_DNAT = bytes.fromhex(
    "94000000000100060000000000000000" + _DNAT_TUPLES + "00000001a8080007000000001e"
)
CT_DESTROY_UDP_DNAT = bytes.fromhex(
    "940000000201000000000000dab4a9c7" + _DNAT_TUPLES + "00000003a8080007000000001d"
)

UDP_DNAT = CtEntry(
    Tuple("udp", "127.0.0.1", "127.0.0.5", 40000, 53),
    Tuple("udp", "127.0.0.1", "127.0.0.1", 5353, 40000),
)


def test_nflog_datagram_holds_two_packets_with_prefix_and_headers() -> None:
    assert decode(NFLOG_TWO_PACKETS) == [
        LoggedPacket(11, "np:eg:ns-a", Tuple("udp", "127.0.0.1", "127.0.0.2", 52545, 9), None),
        LoggedPacket(11, "np:in:(closed)", Tuple("tcp", "127.0.0.1", "127.0.0.3", 36742, 81), None),
    ]


@pytest.mark.parametrize(
    ("data", "event"),
    [
        (
            CT_NEW_TCP,
            CtEvent(
                CtEventKind.NEW,
                CtEntry(
                    Tuple("tcp", "127.0.0.1", "127.0.0.1", 55442, 8080),
                    Tuple("tcp", "127.0.0.1", "127.0.0.1", 8080, 55442),
                ),
            ),
        ),
        (CT_NEW_UDP_DNAT, CtEvent(CtEventKind.NEW, UDP_DNAT)),
        (CT_DESTROY_UDP_DNAT, CtEvent(CtEventKind.DESTROY, UDP_DNAT)),
    ],
    ids=["new-tcp", "new-udp-dnat", "destroy-udp-dnat"],
)
def test_conntrack_events(data: bytes, event: CtEvent) -> None:
    assert decode(data) == [event]


def test_nflog_conntrack_attribute_gives_the_address_before_dnat() -> None:
    """Kernels with CONFIG_NETFILTER_NETLINK_GLUE_CT attach the entry (NFULA_CT) to a logged
    packet: built here from the captured ctnetlink attributes, as the kernel nests them."""
    ct_attrs = nf.messages(CT_NEW_UDP_DNAT).__next__().attrs
    payload = bytes.fromhex("4500001d000040004011000" + "07f0000017f000001") + struct.pack(
        ">HHHH", 40000, 5353, 9, 0
    )
    attrs = (
        nf._attr(nf.NFULA_PREFIX, b"np:in:x:svc\0")
        + nf._attr(nf.NFULA_PAYLOAD, payload)
        + nf._attr(nf.NFULA_CT | 0x8000, ct_attrs)
    )
    msg = nf.Message((nf.NFNL_SUBSYS_ULOG << 8) | nf.NFULNL_MSG_PACKET, 0, 2, 11, attrs)
    logged = nf.logged_packet(msg)
    assert logged is not None
    assert logged.packet == Tuple("udp", "127.0.0.1", "127.0.0.1", 40000, 5353)
    assert logged.ct == UDP_DNAT


def test_nflog_bind_request_layout() -> None:
    """nlmsghdr (host order), nfgenmsg with the group big-endian, NFULA_CFG_CMD = BIND."""
    data = nf.nflog_bind(11, seq=7)
    assert struct.unpack_from("=IHHII", data) == (28, 0x0401, 0x5, 7, 0)
    assert data[16:20] == bytes([0, 0, 0, 11])
    assert data[20:] == bytes.fromhex("05000100") + b"\x01" + b"\0\0\0"


def test_nflog_config_request_attributes() -> None:
    (msg,) = nf.messages(nf.nflog_config(11, 64, 5, 20))
    assert msg.res_id == 11
    a = nf.attributes(msg.attrs)
    assert a[nf.NFULA_CFG_MODE] == struct.pack(">IBB", 64, nf.NFULNL_COPY_PACKET, 0)
    assert a[nf.NFULA_CFG_FLAGS] == struct.pack(">H", nf.NFULNL_CFG_F_CONNTRACK)
    assert a[nf.NFULA_CFG_TIMEOUT] == struct.pack(">I", 5)
    assert a[nf.NFULA_CFG_QTHRESH] == struct.pack(">I", 20)


def test_error_message_code() -> None:
    err = struct.pack("=IHHII", 36, nf.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -1) + bytes(16)
    (msg,) = nf.messages(err)
    assert nf.error_code(msg) == 1


@pytest.mark.parametrize(
    "data",
    [
        CT_NEW_TCP[:-3],  # message longer than the datagram
        struct.pack("=IHHII", 8, 0, 0, 0, 0),  # length below the header's
        NFLOG_TWO_PACKETS[:28] + b"\xff\x00" + NFLOG_TWO_PACKETS[30:],  # attribute too long
    ],
    ids=["truncated", "short-length", "attribute-overrun"],
)
def test_malformed_is_refused(data: bytes) -> None:
    with pytest.raises(nf.MalformedError):
        decode(data)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_malformed(data: bytes) -> None:
    with contextlib.suppress(nf.MalformedError):
        decode(data)


@given(st.binary(min_size=16, max_size=200))
def test_arbitrary_attributes_after_a_valid_header(body: bytes) -> None:
    for mtype in (0x0100, 0x0102, 0x0400):
        data = struct.pack("=IHHII", 16 + 4 + len(body), mtype, 0, 0, 0) + b"\0\0\0\x0b" + body
        with contextlib.suppress(nf.MalformedError):
            decode(data)


def test_ip_header_without_ports_and_not_ipv4() -> None:
    icmp = bytes.fromhex("45000054000040004001000" + "00a0000010a000002") + b"\x08\x00"
    assert nf.ip_header(icmp) == Tuple("icmp", "10.0.0.1", "10.0.0.2", 0, 0)
    assert nf.ip_header(b"\x60" + bytes(39)) is None
