"""The real ``nft`` agrees with the fake: the same transactions are refused with the same
typed errors and leave the table unchanged; the accepted ones are accepted.

Runs in a scratch network namespace of its own (removed in ``finally``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from svcnet.dataplane.nft import NftError, TransactionBuilder
from svcnet.dataplane.nft_exec import NftExecutor

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]


def _cases() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "unit" / "dataplane" / "test_nft_fake.py"
    spec = importlib.util.spec_from_file_location("nft_fake_cases", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CASES = _cases()


@pytest.fixture
def nft() -> Iterator[NftExecutor]:
    ns = f"kpxx-{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ex = NftExecutor(netns=ns)
        ex.apply_sync(CASES.base().build())
        yield ex
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.parametrize(
    ("name", "build", "error"), CASES.REFUSED, ids=[r[0] for r in CASES.REFUSED]
)
def test_real_nft_refuses_like_the_fake(
    nft: NftExecutor, name: str, build: Callable[[TransactionBuilder], None], error: type[NftError]
) -> None:
    before = nft.list_table("ip", "t")
    with pytest.raises(error):
        nft.apply_sync(CASES.tx(build).build())
    assert nft.list_table("ip", "t") == before


@pytest.mark.parametrize(("name", "build"), CASES.ACCEPTED, ids=[a[0] for a in CASES.ACCEPTED])
def test_real_nft_accepts_like_the_fake(
    nft: NftExecutor, name: str, build: Callable[[TransactionBuilder], None]
) -> None:
    nft.apply_sync(CASES.tx(build).build())
