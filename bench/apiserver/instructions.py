"""Instructions per Service create, whole server, counted by valgrind (load-independent).

The machine is shared and wall-clock or CPU-time figures move by 2-3x with what else runs;
the number of instructions a create costs does not. This runs the API server (or the bare
handler, ``bare.py``) under ``valgrind --tool=callgrind``, makes ``--warmup`` creates, zeroes the
counters, makes ``--creates`` more over ``--clients`` HTTPS keep-alive connections (aiohttp
client, outside valgrind), dumps the counters and prints user-space instructions per create:
HTTP, TLS, routing, the create pipeline and the SQLite group commit. Kernel time (syscalls) is
not counted. valgrind may hide CPU features such as AES-NI, so the TLS crypto share is larger
than on the real CPU; compare runs with each other, not with seconds.

Usage: ``.venv/bin/python bench/apiserver/instructions.py [--target server|bare]``
(Debian package ``valgrind``; a run takes about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import orjson

# bench.py beside this file (this runs as a script, like bench.py).
sys.path.insert(0, str(Path(__file__).parent))
from bench import NS, service

REPO = Path(__file__).resolve().parents[2]


async def _creates(url: str, token: str, cafile: str, start: int, count: int, clients: int) -> None:
    ctx = ssl.create_default_context(cafile=cafile)
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(ssl=ctx, limit=0)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as s:
        todo = list(range(start, start + count))

        async def worker() -> None:
            while todo:
                i = todo.pop()
                async with s.post(
                    f"{url}/api/v1/namespaces/{NS}/services",
                    data=service(i),
                    headers={"Content-Type": "application/json"},
                ) as r:
                    if r.status != 201:
                        raise RuntimeError(f"create {i}: {r.status} {await r.text()}")
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(clients)))


async def _namespace(url: str, token: str, cafile: str) -> None:
    ctx = ssl.create_default_context(cafile=cafile)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        async with s.post(f"{url}/api/v1/namespaces", data=body, headers=headers) as r:
            if r.status != 201:
                raise RuntimeError(f"namespace: {r.status} {await r.text()}")


def measure(target: str, warmup: int, creates: int, clients: int) -> float:
    """User-space instructions per create."""
    tmp = Path(tempfile.mkdtemp(prefix="svcnet-instr-"))
    server: subprocess.Popen[str] | None = None
    try:
        apiserver = [sys.executable, "-m", "svcnet.apiserver", "--data-dir", str(tmp)]
        apiserver += ["--port", "0", "--log-level", "WARNING"]
        # One process, so that every instruction of a create is counted under valgrind (a
        # prepare worker would run the decode and validation half outside it).
        apiserver += ["--prepare-workers", "0"]
        if target == "bare":
            # The credentials the API server makes, for the bare handler to serve with.
            first = subprocess.Popen(apiserver, stdout=subprocess.PIPE, text=True, cwd=REPO)
            assert first.stdout is not None
            first.stdout.readline()
            first.terminate()
            first.wait(10)
            cmd = [sys.executable, str(Path(__file__).with_name("bare.py"))]
            cmd += [str(tmp / "apiserver.crt"), str(tmp / "apiserver.key"), str(tmp / "bare.db")]
        else:
            cmd = apiserver
        out = tmp / "callgrind.out"
        vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        server = subprocess.Popen(
            vg + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )
        assert server.stdout is not None
        m = re.search(r"serving (\S+)", server.stdout.readline())
        if not m:
            raise RuntimeError("server did not start under valgrind")
        url, token, cafile = m.group(1), (tmp / "token").read_text().strip(), str(tmp / "ca.crt")
        if target != "bare":
            asyncio.run(_namespace(url, token, cafile))
        asyncio.run(_creates(url, token, cafile, 0, warmup, clients))
        subprocess.run(
            ["callgrind_control", "-z", str(server.pid)], check=True, capture_output=True
        )
        asyncio.run(_creates(url, token, cafile, 1_000_000, creates, clients))
        subprocess.run(
            ["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True
        )
        dumped = (tmp / "callgrind.out.1").read_text(errors="replace")
        m = re.search(r"^summary: (\d+)", dumped, re.M)
        if not m:
            raise RuntimeError("no callgrind summary in the dump")
        return int(m.group(1)) / creates
    finally:
        if server is not None:
            server.terminate()
            server.wait(120)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", choices=("server", "bare"), default="server")
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--creates", type=int, default=400)
    p.add_argument("--clients", type=int, default=16)
    args = p.parse_args()
    per = measure(args.target, args.warmup, args.creates, args.clients)
    print(f"{args.target}: {per / 1000:,.0f}k instructions per create (user space, callgrind)")


if __name__ == "__main__":
    main()
