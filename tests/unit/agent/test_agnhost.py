"""agnhost flag parsing (Go flag semantics), URL parsing, and the subcommands on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from svcnet.agent.agnhost import UsageError, connect, parse_args, parse_duration, parse_target


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5.0), ("500ms", 0.5), ("1m", 60.0), ("2", 2.0)]
)
def test_durations_parse_like_go(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("argv", "flags", "args"),
    [
        (["serve-hostname"], {"port": 9376, "http": True, "tcp": False, "udp": False}, []),
        (
            ["serve-hostname", "--tcp", "--http=false", "-port", "80"],
            {"tcp": True, "http": False, "port": 80},
            [],
        ),
        (["netexec", "--http-port=9000"], {"http-port": 9000, "udp-port": 8081}, []),
        (
            ["connect", "10.0.0.1:80", "--protocol", "udp"],
            {"protocol": "udp", "timeout": "5s"},
            ["10.0.0.1:80"],
        ),
    ],
)
def test_flags_and_upstream_defaults(
    argv: list[str], flags: dict[str, object], args: list[str]
) -> None:
    _, got, positional = parse_args(argv)
    assert ({k: got[k] for k in flags}, positional) == (flags, args)


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["nope"], "usage"),
        (["netexec", "--bogus"], "flag provided but not defined: -bogus"),
        (["netexec", "--http-port"], "flag needs an argument: -http-port"),
        (["netexec", "--http-port", "x"], 'invalid value "x" for flag -http-port'),
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], error: str) -> None:
    with pytest.raises(UsageError, match=error):
        parse_args(argv)


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/echo?msg=hello%20world", "/echo", {"msg": "hello world"}),
        ("/echo?msg=a+b&msg=c", "/echo", {"msg": "a b"}),
        ("/clientip", "/clientip", {}),
        ("/echo?msg=100%", "/echo", {"msg": "100%"}),
    ],
)
def test_request_targets(target: str, path: str, query: dict[str, str]) -> None:
    assert parse_target(target) == (path, query)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connect_succeeds_against_a_listener_and_is_refused_without() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        ok = connect({"timeout": "1s", "protocol": "tcp"}, [f"127.0.0.1:{port}"])
    refused = connect({"timeout": "1s", "protocol": "tcp"}, [f"127.0.0.1:{port}"])
    assert (ok, refused) == (0, 1)


def test_netexec_serves_echo_and_exits_with_the_shutdown_code() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-S",
            "-m",
            "svcnet.agent.agnhost",
            "netexec",
            f"--http-port={port}",
            "--udp-port=-1",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if connect({"timeout": "1s", "protocol": "tcp"}, [f"127.0.0.1:{port}"]) == 0:
                break
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(
                b"GET /echo?msg=hi HTTP/1.1\r\nHost: x\r\n\r\nGET /exit?code=3 HTTP/1.0\r\n\r\n"
            )
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert data.count(b"200 OK") == 2 and b"\r\n\r\nhi" in data
        assert proc.wait(timeout=5) == 3
    finally:
        proc.kill()
        proc.wait()
