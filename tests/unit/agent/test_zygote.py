"""The warm fork server for built-in images, for real but without namespaces (netns and
hostname None, so no root is needed): what the exec runner guarantees must hold for its
children too — exit codes, signals, logs, the container's own cmdline and environment.
Addresses: 127.0.0.1 only, on ports the kernel hands out."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from svcnet.agent.agnhost import _listen, prebind
from svcnet.agent.images import ensure_bin_dir
from svcnet.agent.zygote_runner import ZygoteProcess, ZygoteRunner
from svcnet.dataplane.process import ProcessError, ProcessSpec, RunningProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[ZygoteRunner]:
    r = ZygoteRunner(ensure_bin_dir(str(tmp_path / "bin")))
    yield r
    r.close()


def spec(runner: ZygoteRunner, tmp_path: Path, *argv: str, **env: str) -> ProcessSpec:
    return ProcessSpec(
        argv=argv,
        netns=None,
        hostname=None,
        log_path=str(tmp_path / "logs" / "c" / "0.log"),
        env={"PATH": f"{runner.bin_dir}:/usr/bin:/bin", **env},
    )


async def http_get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return data


async def test_netexec_listens_when_started_and_dies_by_sigterm_as_143(
    runner: ZygoteRunner, tmp_path: Path
) -> None:
    port = free_port()
    proc = await runner.start(spec(runner, tmp_path, "agnhost", "netexec", f"--http-port={port}"))
    assert isinstance(proc, ZygoteProcess)
    # Listening already: no retry loop (the readiness probe's first try must not be refused).
    assert b"200 OK" in await http_get(port, "/healthz")
    assert os.getpgid(proc.pid) == proc.pid  # its own process group, as the exec runner's
    assert await proc.stop(5) == 143
    assert proc.exit_code == 143


async def test_the_container_shows_its_own_command_and_environment_in_proc(
    runner: ZygoteRunner, tmp_path: Path
) -> None:
    port = free_port()
    proc = await runner.start(
        spec(runner, tmp_path, "agnhost", "netexec", f"--http-port={port}", GREETING="hi")
    )
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    environ = Path(f"/proc/{proc.pid}/environ").read_bytes().rstrip(b"\0").split(b"\0")
    assert cmdline == [b"agnhost", b"netexec", f"--http-port={port}".encode()]
    assert b"GREETING=hi" in environ
    assert not [e for e in environ if e.startswith(b"SVCNET_ZYGOTE")]
    await proc.stop(5)


@pytest.mark.parametrize(
    ("argv", "code", "log"),
    [
        (("agnhost", "connect", "127.0.0.1:1", "--timeout=1s"), 1, "REFUSED"),
        (("agnhost", "bogus"), 2, "usage: agnhost"),
    ],
)
async def test_exit_codes_and_output_reach_the_log(
    runner: ZygoteRunner, tmp_path: Path, argv: tuple[str, ...], code: int, log: str
) -> None:
    s = spec(runner, tmp_path, *argv)
    proc = await runner.start(s)
    assert await asyncio.wait_for(proc.wait(), 10) == code
    assert log in Path(s.log_path).read_text()


async def test_exit_code_of_the_shutdown_handler(runner: ZygoteRunner, tmp_path: Path) -> None:
    port = free_port()
    proc = await runner.start(spec(runner, tmp_path, "agnhost", "netexec", f"--http-port={port}"))
    await http_get(port, "/exit?code=7")
    assert await asyncio.wait_for(proc.wait(), 10) == 7


async def test_other_commands_go_to_the_exec_runner(runner: ZygoteRunner, tmp_path: Path) -> None:
    proc: RunningProcess = await runner.start(spec(runner, tmp_path, "sh", "-c", "exit 3"))
    assert not isinstance(proc, ZygoteProcess)
    assert await proc.wait() == 3


def test_an_agnhost_earlier_on_the_path_is_not_the_built_in_one(
    runner: ZygoteRunner, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "agnhost").write_text("#!/bin/sh\n")
    (other / "agnhost").chmod(0o755)
    s = spec(runner, tmp_path, "agnhost", "netexec")
    assert runner.serves(s)
    mine = ProcessSpec(s.argv, None, None, s.log_path, {"PATH": f"{other}:{runner.bin_dir}"})
    assert not runner.serves(mine)


async def test_a_failed_start_is_a_process_error(runner: ZygoteRunner, tmp_path: Path) -> None:
    s = spec(runner, tmp_path, "agnhost", "netexec")
    os.makedirs(s.log_path)  # a log "file" that is a directory: the child cannot open it
    with pytest.raises(ProcessError, match="Is a directory"):
        await runner.start(s)


def test_prebind_listens_before_the_subcommand_and_hands_it_the_socket() -> None:
    port = free_port()
    prebind(["netexec", f"--http-port={port}", "--udp-port=-1"])
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # accepted by the kernel: the socket listens before netexec runs
    sock = _listen(socket.SOCK_STREAM, port)
    assert sock.getsockname()[1] == port
    sock.close()


def test_prebind_leaves_a_taken_port_for_the_subcommand_to_report() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        prebind(["svcnet-page", "--port", str(port)])  # no exception here
        with pytest.raises(OSError):
            _listen(socket.SOCK_STREAM, port)
