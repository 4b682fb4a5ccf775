"""CRI log entries: written as containerd writes them, read as kubelet reads them."""

from __future__ import annotations

import pytest

from svcnet.agent import crilog

T0 = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (T0, "2023-11-14T22:13:20.123456789Z"),
        (1_700_000_000_120_000_000, "2023-11-14T22:13:20.12Z"),
        (1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),
    ],
)
def test_times_are_go_rfc3339nano_and_parse_back(ns: int, text: str) -> None:
    assert crilog.rfc3339nano(ns) == text
    assert crilog.parse_time(text) == ns


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2023-11-14T22:13:20Z", 1_700_000_000_000_000_000),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000_000_000_000),
        ("2023-11-14T22:13:20.5-00:00", 1_700_000_000_500_000_000),
    ],
)
def test_since_time_accepts_rfc3339_with_offsets(text: str, ns: int) -> None:
    assert crilog.parse_time(text) == ns


@pytest.mark.parametrize(
    ("chunks", "closed", "want"),
    [
        (["a\nb\n"], False, [("F", b"a"), ("F", b"b")]),
        (["a", "b\nc"], False, [("F", b"ab")]),
        (["a", "b\nc"], True, [("F", b"ab"), ("P", b"c")]),
        (
            ["x" * (crilog.MAX_LINE + 3) + "\n"],
            False,
            [("P", b"x" * crilog.MAX_LINE), ("F", b"xxx")],
        ),
        (["\n"], False, [("F", b"")]),
    ],
)
def test_lines_become_full_and_partial_entries(
    chunks: list[str], closed: bool, want: list[tuple[str, bytes]]
) -> None:
    w = crilog.LineWriter("stderr")
    data = b"".join(w.feed(c.encode(), T0) for c in chunks)
    if closed:
        data += w.close(T0)
    entries, used = crilog.parse(data)
    assert used == len(data)
    assert [("P" if e.partial else "F", e.content) for e in entries] == want
    assert {e.stream for e in entries} <= {"stderr"}
    assert {e.time_ns for e in entries} <= {T0}


def test_output_restores_the_newline_of_full_lines_only() -> None:
    w = crilog.LineWriter("stdout")
    entries, _ = crilog.parse(w.feed(b"one\ntw", T0) + w.close(T0))
    assert b"".join(e.output(False) for e in entries) == b"one\ntw"
    stamp = b"2023-11-14T22:13:20.123456789Z "
    assert b"".join(e.output(True) for e in entries) == stamp + b"one\n" + stamp + b"tw"


def test_tail_comes_before_since_as_in_kubelet() -> None:
    w = crilog.LineWriter("stdout")
    data = w.feed(b"old\n", T0) + w.feed(b"new1\nnew2\n", T0 + 10)
    entries, _ = crilog.parse(data)
    assert [e.content for e in crilog.select(entries, T0 + 5, 2)] == [b"new1", b"new2"]
    assert [e.content for e in crilog.select(entries, None, 3)] == [b"old", b"new1", b"new2"]
    assert crilog.select(entries, T0 + 11, None) == []


def test_a_half_written_entry_is_left_for_the_next_read() -> None:
    data = crilog.LineWriter("stdout").feed(b"a\nb\n", T0)
    entries, used = crilog.parse(data[:-3])
    assert [e.content for e in entries] == [b"a"]
    assert data[used:].startswith(b"2023")
