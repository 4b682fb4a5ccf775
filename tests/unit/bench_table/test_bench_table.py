"""The rows the benches print for docs/benchmarks.md: the table's columns, and each bench's
verdict against its target."""

from __future__ import annotations

from typing import Any

import pytest

from bench.proxy.sync_cost import rows as sync_rows
from bench.table import HEADER, Machine, Row, print_rows

MACHINE = Machine("2026-12-07 23:40", "1.20 0.90 0.80")


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_a_row_has_the_columns_of_the_table() -> None:
    line = Row("proxy", "full sync", "2.00 s", "< 3 s", True).markdown("python -m x", MACHINE)
    assert len(cells(line)) == len(cells(HEADER.splitlines()[0]))
    assert cells(line) == [
        "proxy",
        "full sync",
        "2.00 s",
        "< 3 s",
        "yes",
        "`python -m x`",
        "2026-12-07 23:40; load 1.20 0.90 0.80",
    ]


@pytest.mark.parametrize(
    ("met", "target", "shown"),
    [(True, "< 1 s", ("< 1 s", "yes")), (False, "< 1 s", ("< 1 s", "no")), (None, "", ("—", "—"))],
)
def test_target_and_verdict_cells(met: bool | None, target: str, shown: tuple[str, str]) -> None:
    line = Row("a", "m", "f", target, met).markdown("c", MACHINE)
    assert tuple(cells(line)[3:5]) == shown


def test_print_rows_prints_the_header_then_one_line_per_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_rows([Row("a", "m1", "f1"), Row("a", "m2", "f2")], "cmd", MACHINE)
    out = capsys.readouterr().out.strip().splitlines()
    header_at = out.index(HEADER.splitlines()[0])
    assert [cells(line)[1] for line in out[header_at + 2 :]] == ["m1", "m2"]


def sync_result(services: int, full_s: float, partial_p50_ms: float) -> dict[str, Any]:
    return {
        "services": services,
        "full_s": full_s,
        "full_build_s": 0.5,
        "full_apply_s": full_s - 0.5,
        "full_min_s": full_s,
        "full_cpu_s": 1.0,
        "partial_p50_ms": partial_p50_ms,
        "partial_max_ms": partial_p50_ms * 2,
        "partial_build_ms": 0.3,
        "rules": 34,
        "chains": 19,
        "elements": services * 15,
        "rss_mib": 100,
    }


@pytest.mark.parametrize(
    ("full_s", "partial_ms", "met"),
    [(2.9, 49.0, (True, True)), (3.1, 51.0, (False, False)), (2.0, 60.0, (True, False))],
)
def test_sync_cost_judges_the_full_sync_at_10k_and_the_partial_at_every_size(
    full_s: float, partial_ms: float, met: tuple[bool, bool]
) -> None:
    small = sync_rows([sync_result(1_000, full_s, partial_ms)])
    big = sync_rows([sync_result(10_000, full_s, partial_ms)])
    assert small[0].met is None and small[0].target == ""  # no target below 10,000 Services
    assert small[1].met is met[1]
    assert (big[0].met, big[1].met) == met
    assert big[2].figure.startswith("34 rules, 19 chains, 150,000 elements")
