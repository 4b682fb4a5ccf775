"""`python -m svcnet.dns`: the cluster DNS server as a process (the kube-dns add-on's container).

    python -m svcnet.dns --listen 0.0.0.0:53 --kubeconfig /etc/svcnet/dns.kubeconfig \\
        --zone cluster.local --upstream 192.0.2.53 --health 0.0.0.0:8080 --ready 0.0.0.0:8181

Objects come from the API (--kubeconfig, or the pod's service account when neither source is
given), or once from a file (--objects: YAML or JSON Services, EndpointSlices and Namespaces,
as `kubectl get -o yaml` prints them; namespaces of the objects count as existing) for tests
and benchmarks without an API server. Without --upstream, names outside the cluster zone get
SERVFAIL at once: the cluster is sealed unless asked otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import uvloop

from svcnet.dns.forward import Forwarder, Upstream
from svcnet.dns.projection import endpoint_slice_from_api, namespace_from_api, service_from_api
from svcnet.dns.records import DEFAULT_TTL, RecordTable
from svcnet.dns.server import DnsServer, ServerConfig
from svcnet.util.log import setup_logging

log = logging.getLogger("svcnet.dns")


def _hostport(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host or "0.0.0.0", int(port)
    return text, default_port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m svcnet.dns", description=__doc__.split("\n")[0])
    p.add_argument(
        "--listen",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="UDP+TCP address to answer on (repeatable; default 127.0.0.1:53)",
    )
    p.add_argument("--zone", default="cluster.local")
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL)
    p.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="resolver for names outside the zone (repeatable; default: none)",
    )
    p.add_argument("--kubeconfig", help="kubeconfig of the API server to watch")
    p.add_argument("--objects", help="serve the objects in this YAML/JSON file instead")
    p.add_argument("--health", metavar="HOST:PORT", help="serve GET /health (liveness)")
    p.add_argument("--ready", metavar="HOST:PORT", help="serve GET /ready (readiness)")
    p.add_argument(
        "--nameserver-ip",
        action="append",
        default=[],
        help="address for ns.dns.<zone> when there is no kube-system/kube-dns Service",
    )
    p.add_argument(
        "--lameduck",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep answering this long after SIGTERM (CoreDNS's health lameduck; default 0)",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def _documents(path: str) -> Iterator[Mapping[str, object]]:
    import yaml  # only for --objects: the add-on's pods never load it

    for doc in yaml.safe_load_all(Path(path).read_text()):
        if not isinstance(doc, Mapping):
            continue
        items = doc.get("items")
        if isinstance(items, list):
            yield from (i for i in items if isinstance(i, Mapping))
        else:
            yield doc


def load_objects(table: RecordTable, path: str) -> None:
    """Fill the table once from a file of API objects, through the same projections."""
    for obj in _documents(path):
        kind = obj.get("kind")
        meta = obj.get("metadata")
        ns = str(meta.get("namespace", "default")) if isinstance(meta, Mapping) else "default"
        if kind == "Namespace":
            table.set_namespace(namespace_from_api(obj))
        elif kind == "Service":
            table.set_namespace(ns.lower())
            table.set_service(service_from_api(obj))
        elif kind == "EndpointSlice":
            eps = endpoint_slice_from_api(obj)
            if eps is not None:
                table.set_namespace(eps.namespace)
                table.set_endpoint_slice(eps)
    table.set_synced()


async def run(args: argparse.Namespace) -> None:
    table = RecordTable(args.zone, ttl=args.ttl, clock=time.time, nameserver_ips=args.nameserver_ip)
    listen = [_hostport(x, 53) for x in (args.listen or ["127.0.0.1:53"])]
    config = ServerConfig(
        host=listen[0][0],
        port=listen[0][1],
        extra_listen=listen[1:],
        health=_hostport(args.health, 8080) if args.health else None,
        ready=_hostport(args.ready, 8181) if args.ready else None,
    )
    forwarder = Forwarder([Upstream.parse(u) for u in args.upstream]) if args.upstream else None
    server = DnsServer(table, config, forwarder)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.objects:
        load_objects(table, args.objects)
        _freeze_heap()
        await server.start()
        try:
            await stop.wait()
            await _lame_duck(args.lameduck)
        finally:
            await server.stop()
        return
    await _run_with_api(args, table, server, stop)


async def _run_with_api(
    args: argparse.Namespace, table: RecordTable, server: DnsServer, stop: asyncio.Event
) -> None:
    # Imported here so that --objects runs need no API client at all.
    from svcnet.client.informer import SharedInformerFactory
    from svcnet.client.kubeconfig import in_cluster_config, load_kubeconfig
    from svcnet.client.streams import StreamApiClient
    from svcnet.dns.controller import DnsController

    config = load_kubeconfig(args.kubeconfig) if args.kubeconfig else in_cluster_config()
    # Not aiohttp's client: list and watch are all this process does with the API, and
    # aiohttp would be a third of its resident memory (see svcnet.client.streams).
    async with StreamApiClient(config) as client:
        factory = SharedInformerFactory(client)
        controller = DnsController(factory, table)
        # Answer from the start (SERVFAIL for name errors until synced, as CoreDNS does);
        # readiness reports the sync.
        await server.start()
        try:
            async with asyncio.TaskGroup() as tg:
                factory.start(tg)
                tg.create_task(controller.run(), name="dns-controller")
                tg.create_task(_freeze_when_synced(controller.synced), name="dns-gc-freeze")
                await stop.wait()
                await _lame_duck(args.lameduck)
                raise _Stop
        except* _Stop:
            pass
        finally:
            await server.stop()


async def _lame_duck(seconds: float) -> None:
    # CoreDNS's `health { lameduck 5s }` (kubeadm's Corefile): a terminating pod leaves the
    # Service's endpoints at the moment it gets SIGTERM, but every node's proxy needs a
    # moment to stop sending to it; closing the sockets at once refuses what is still routed
    # here (ICMP port unreachable). Answering a little longer loses nothing.
    if seconds > 0:
        log.info("dns: lame duck for %.1fs", seconds)
        await asyncio.sleep(seconds)


def _freeze_heap() -> None:
    # The table is a large, long-lived heap: move it out of the collector's sight so that
    # full collections (triggered by the per-query garbage of the event loop) do not scan it
    # and show up as milliseconds in the latency tail.
    gc.collect()
    gc.freeze()


async def _freeze_when_synced(synced: asyncio.Event) -> None:
    await synced.wait()
    _freeze_heap()


class _Stop(Exception):
    """Raised inside the task group to cancel its tasks on SIGTERM."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("dns", args.log_level)
    try:
        uvloop.run(run(args))
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
