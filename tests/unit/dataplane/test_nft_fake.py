"""The fake nftables keeps nft's rules: atomic transactions, references, typed errors.

Each case was checked against nft 1.0.6 on this machine's kernel (see tests/e2e/test_nft_executor.py
for the same cases run against the real ``nft``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from svcnet.dataplane.nft import (
    ACCEPT,
    Cmp,
    DnatMap,
    Element,
    Field,
    NftBusyError,
    NftError,
    NftExistsError,
    NftNotFoundError,
    NftSyntaxError,
    Numgen,
    Rule,
    SetSpec,
    TransactionBuilder,
    VmapLookup,
    goto,
    jump,
    rule,
)
from svcnet.dataplane.nft_fake import FakeNft

VMAP = SetSpec("ipv4_addr", "verdict")
MAP = SetSpec("ipv4_addr", "ipv4_addr")
PREFIXES = SetSpec("ipv4_addr", flags=("interval",))
PORT_RANGES = SetSpec("inet_proto . inet_service", flags=("interval",))
# An endpoint map as the proxy writes them: typeof data naming its transport protocol.
TCP_EP_MAP = SetSpec(
    "ip daddr . th dport . numgen random mod 1", "ip daddr . tcp dport", typeof=True, size=1024
)


def dnat_via_ep(proto: str) -> Rule:
    return rule(
        Cmp(Field.L4PROTO, proto),
        DnatMap((Field.IP_DADDR, Field.TH_DPORT, Numgen(2)), "ep"),
    )


def base() -> TransactionBuilder:
    b = TransactionBuilder("ip", "t")
    b.add_table()
    b.add_chain("a")
    b.add_chain("b")
    b.add_set("vm", VMAP)
    b.add_set("m", MAP)
    b.add_set("ep", TCP_EP_MAP)
    b.add_chain("c")
    b.add_rule("c", dnat_via_ep("tcp"))
    b.add_set("iv", PREFIXES)
    b.add_elements("iv", [Element(("10.0.0.0/8",))])
    b.add_set("pr", PORT_RANGES)
    b.add_elements("pr", [Element(("tcp", "80-90"))])
    return b


def fresh() -> FakeNft:
    f = FakeNft()
    f.apply_sync(base().build())
    return f


def tx(build: Callable[[TransactionBuilder], None]) -> TransactionBuilder:
    b = TransactionBuilder("ip", "t")
    build(b)
    return b


REFUSED: list[tuple[str, Callable[[TransactionBuilder], None], type[NftError]]] = [
    (
        "a prefix overlapping another in an interval set",
        lambda b: b.add_elements("iv", [Element(("10.1.0.0/16",))]),
        NftExistsError,
    ),
    (
        "a port range overlapping another in a concatenated interval set",
        lambda b: b.add_elements("pr", [Element(("tcp", "85-95"))]),
        NftExistsError,
    ),
    ("rule in a missing chain", lambda b: b.add_rule("zz", rule(ACCEPT)), NftNotFoundError),
    ("jump to a missing chain", lambda b: b.add_rule("a", rule(jump("zz"))), NftNotFoundError),
    (
        "lookup in a missing map",
        lambda b: b.add_rule("a", rule(VmapLookup((Field.IP_DADDR,), "zz"))),
        NftNotFoundError,
    ),
    (
        "element into a missing map",
        lambda b: b.add_elements("zz", [Element(("1.1.1.1",), ("2.2.2.2",))]),
        NftNotFoundError,
    ),
    (
        "verdict element to a missing chain",
        lambda b: b.add_elements("vm", [Element(("1.1.1.1",), goto("zz"))]),
        NftNotFoundError,
    ),
    (
        "delete a missing element",
        lambda b: b.delete_elements("m", [Element(("9.9.9.9",), ("2.2.2.2",))]),
        NftNotFoundError,
    ),
    ("flush a map as a set", lambda b: b.flush_set("m", is_map=False), NftNotFoundError),
    (
        "delete a chain a rule jumps to",
        lambda b: (b.add_rule("a", rule(jump("b"))), b.delete_chain("b")),
        NftBusyError,
    ),
    (
        "delete a chain an element jumps to",
        lambda b: (b.add_elements("vm", [Element(("1.1.1.1",), goto("b"))]), b.delete_chain("b")),
        NftBusyError,
    ),
    (
        "delete a map a rule uses",
        lambda b: (
            b.add_rule("a", rule(VmapLookup((Field.IP_DADDR,), "vm"))),
            b.delete_set("vm", is_map=True),
        ),
        NftBusyError,
    ),
    (
        "same key, other data",
        lambda b: b.add_elements(
            "m", [Element(("1.1.1.1",), ("2.2.2.2",)), Element(("1.1.1.1",), ("3.3.3.3",))]
        ),
        NftExistsError,
    ),
    ("delete a missing table", lambda b: (b.delete_table(), b.delete_table()), NftNotFoundError),
    # nft 1.0.6 checks a typeof map's data protocol against its first user in a transaction,
    # even when the kernel already holds a tcp user of it (chain "c" of base()).
    (
        "udp rule first user of a tcp-typed map",
        lambda b: b.add_rule("a", dnat_via_ep("udp")),
        NftSyntaxError,
    ),
]


@pytest.mark.parametrize(("name", "build", "error"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_transaction_leaves_state_unchanged(
    name: str, build: Callable[[TransactionBuilder], None], error: type[NftError]
) -> None:
    f = fresh()
    before = f.dump()

    def with_prefix(b: TransactionBuilder) -> None:
        b.add_elements("m", [Element(("5.5.5.5",), ("6.6.6.6",))])  # applied first, then undone
        build(b)

    with pytest.raises(error):
        f.apply_sync(tx(with_prefix).build())
    assert f.dump() == before


ACCEPTED: list[tuple[str, Callable[[TransactionBuilder], None]]] = [
    (
        "disjoint intervals, and the same interval again",
        lambda b: b.add_elements(
            "iv", [Element(("11.0.0.1",)), Element(("10.0.0.0/8",)), Element(("12.0.0.0/24",))]
        ),
    ),
    (
        "the same ports under another protocol",
        lambda b: b.add_elements("pr", [Element(("udp", "85-95"))]),
    ),
    (
        "re-adding the same element",
        lambda b: b.add_elements("m", [Element(("1.1.1.1",), ("2.2.2.2",))] * 2),
    ),
    ("delete a chain with rules", lambda b: (b.add_rule("b", rule(ACCEPT)), b.delete_chain("b"))),
    (
        "flush then delete a referenced chain",
        lambda b: (b.add_rule("a", rule(jump("b"))), b.flush_chain("a"), b.delete_chain("b")),
    ),
    (
        "delete then re-add a key with other data",
        lambda b: (
            b.add_elements("m", [Element(("1.1.1.1",), ("2.2.2.2",))]),
            b.delete_elements("m", [Element(("1.1.1.1",), ("2.2.2.2",))]),
            b.add_elements("m", [Element(("1.1.1.1",), ("3.3.3.3",))]),
        ),
    ),
    ("add-then-delete a table that may not exist", lambda b: (b.add_table(), b.delete_table())),
    ("tcp rule using a tcp-typed map", lambda b: b.add_rule("a", dnat_via_ep("tcp"))),
    (
        "udp rule after a tcp rule using a tcp-typed map in one transaction",
        lambda b: (b.add_rule("a", dnat_via_ep("tcp")), b.add_rule("b", dnat_via_ep("udp"))),
    ),
]


@pytest.mark.parametrize(("name", "build"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_transaction(name: str, build: Callable[[TransactionBuilder], None]) -> None:
    f = fresh()
    f.apply_sync(tx(build).build())
    assert f.transactions == 2


def test_dump_is_sorted_and_stable() -> None:
    f = fresh()
    f.apply_sync(
        tx(
            lambda b: b.add_elements(
                "m", [Element(("9.9.9.9",), ("1.1.1.1",)), Element(("1.1.1.1",), ("9.9.9.9",))]
            )
        ).build()
    )
    lines = f.dump().splitlines()
    assert lines.index("    1.1.1.1 : 9.9.9.9") < lines.index("    9.9.9.9 : 1.1.1.1")


def test_rendered_script_uses_nft_command_syntax() -> None:
    b = base()
    b.add_rule("a", rule(VmapLookup((Field.IP_DADDR,), "vm")))
    b.flush_set("m", is_map=True)
    script = b.build().render().splitlines()
    assert script[:2] == ["add table ip t", "add chain ip t a"]
    assert "add map ip t vm { type ipv4_addr : verdict ; }" in script
    assert "add rule ip t a ip daddr vmap @vm" in script
    assert script[-1] == "flush map ip t m"


@pytest.mark.parametrize(("name", "build"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_rebuild_makes_the_same_table_from_nothing(
    name: str, build: Callable[[TransactionBuilder], None]
) -> None:
    f = fresh()
    f.apply_sync(tx(build).build())
    if not f.table_exists("ip", "t"):
        return
    copy = FakeNft()
    copy.apply_sync(f.rebuild("ip", "t"))
    assert copy.dump() == f.dump()
