"""The yardstick for the create benchmark: a bare aiohttp + uvloop + SQLite (WAL) + orjson
create handler over the same HTTPS, with nothing of the API machinery.

``python bench/apiserver/bare.py CERT KEY DBFILE [--plain]`` prints ``serving
https://127.0.0.1:PORT`` (``http://`` with ``--plain``). The bench runs it under the same wrk
load right after the API server, so that the ratio between the two does not depend on what
else the shared machine is doing; and over plain HTTP under ``hey -c 16``, as on the machine
the 3,000/s target was set on (about 10,500 creates/s there), to say how fast this machine is
today. A repeated name replaces the row (hey sends one body over and over).
"""

from __future__ import annotations

import asyncio
import sqlite3
import ssl
import sys

import orjson
import uvloop
from aiohttp import web


async def serve(cert: str, key: str, db: str, plain: bool) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
    put = "INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)"

    async def create(request: web.Request) -> web.Response:
        obj = orjson.loads(await request.read())
        value = orjson.dumps(obj)
        conn.execute(put, (obj["metadata"]["name"], value))
        return web.Response(body=value, status=201, content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/v1/namespaces/{ns}/services", create)
    ctx = None
    if not plain:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    print(f"serving {'http' if plain else 'https'}://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.install()
    cert, key, db = sys.argv[1:4]
    asyncio.run(serve(cert, key, db, plain="--plain" in sys.argv[4:]))
