"""Fixtures of the DNS tests (the sample cluster lives in dns_sample_cluster.py)."""

from __future__ import annotations

import pytest
from dns_sample_cluster import build_table

from svcnet.dns.records import RecordTable


@pytest.fixture(scope="module")
def table() -> RecordTable:
    return build_table()


@pytest.fixture
def fresh_table() -> RecordTable:
    return build_table()
