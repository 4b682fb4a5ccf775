"""``python -m svcnet.apiserver --data-dir DIR [--port N] [--listen ADDR] [--store URL]
[--prepare-workers N] [--authorization-mode RBAC|AlwaysAllow]``:
the API server alone, in the foreground (the CLI's ``svcnet apiserver`` does the same)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from svcnet.api.ranges import DEFAULT_SERVICE_CIDR
from svcnet.apiserver.preparepool import default_workers
from svcnet.apiserver.server import ApiServer, ApiServerConfig
from svcnet.util.gctune import tune_gc


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m svcnet.apiserver")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--listen", action="append", default=None)
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--store", default="")
    p.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR)
    p.add_argument("--advertise-address", default="127.0.0.1")
    p.add_argument("--log-level", default="INFO")
    p.add_argument(
        "--prepare-workers",
        type=int,
        default=default_workers(),
        help="processes that prepare creates beside the server's own (default: %(default)s)",
    )
    p.add_argument(
        "--authorization-mode",
        choices=("RBAC", "AlwaysAllow"),
        default="RBAC",
        help="RBAC (default), or AlwaysAllow: every authenticated request is allowed",
    )
    args = p.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = ApiServerConfig(
        data_dir=args.data_dir,
        listen_addresses=tuple(args.listen or ["127.0.0.1"]),
        port=args.port,
        store_url=args.store,
        service_cidr=args.service_cidr,
        advertise_address=args.advertise_address,
        prepare_workers=args.prepare_workers,
        authorization_mode=args.authorization_mode,
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio works too
        pass
    asyncio.run(_serve(config))


async def _serve(config: ApiServerConfig) -> None:
    server = ApiServer(config)
    await server.start()
    tune_gc()
    # The line a supervisor (or a test) waits for: the port actually bound.
    print(f"serving {server.url} kubeconfig={server.kubeconfig_path}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    main()
