"""wrk's command line per mode and the summary its Lua hook prints."""

from __future__ import annotations

import pytest

from svcnet.testing.wrk import Mode, WrkOutputError, parse_summary, wrk_argv

WRK_OUTPUT = """\
Running 3s test @ http://10.141.1.3:8080/hostname
  1 threads and 8 connections
  35281 requests in 3.01s, 3.84MB read
Requests/sec:  11725.84
{"requests":35281,"duration_us":3008826,"bytes":4022034,"connect":1,"read":2,"write":0,\
"status":3,"timeout":4,"p50_us":592,"p90_us":1463,"p99_us":3652,"max_us":12451,"mean_us":766.0}
"""


@pytest.mark.parametrize(
    ("mode", "close_header"), [(Mode.NEW, True), (Mode.KEEPALIVE, False)], ids=["new", "keepalive"]
)
def test_argv_asks_for_a_new_connection_per_request_only_in_new_mode(
    mode: Mode, close_header: bool
) -> None:
    argv = wrk_argv("http://10.96.0.5/", mode, seconds=3, connections=8, threads=1, script="s.lua")
    assert argv[:4] == ["wrk", "-t1", "-c8", "-d3s"]
    assert argv[-1] == "http://10.96.0.5/"
    assert ("Connection: close" in argv) is close_header


def test_summary_is_parsed_from_the_last_json_line() -> None:
    r = parse_summary(WRK_OUTPUT)
    assert r.requests == 35281
    assert r.errors == 1 + 2 + 3 + 4
    assert (r.p50_ms, r.p99_ms, r.max_ms) == (0.592, 3.652, 12.451)
    assert r.rps == pytest.approx(35281 / 3.008826)


@pytest.mark.parametrize(
    "output", ["", "Running 3s test\n", "{not json\n"], ids=["empty", "no-hook", "bad"]
)
def test_missing_or_bad_summary_is_an_error(output: str) -> None:
    with pytest.raises(WrkOutputError):
        parse_summary(output)
