"""`python -m svcnet.ingress`: the ingress controller with its HAProxy (the add-on's container).

    python -m svcnet.ingress --kubeconfig /d/addons/ingress.kubeconfig \\
        --publish-service svcnet-ingress/svcnet-ingress-controller

The controller runs HAProxy itself, as HAProxy's own Kubernetes controller does: the master
process is its child (``haproxy -W``), started once the caches have synced and the first
configuration passed ``haproxy -c`` — so the pod's readiness (HAProxy's ``/healthz``) means
"serving the cluster's routes". Its files live in a fresh directory (``--state-dir``, default
a temporary one), removed at exit with the process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import uvloop

from svcnet.dataplane.haproxy import HaproxyApplier, MasterWorker
from svcnet.ingress.haproxycfg import Layout
from svcnet.ingress.model import CONTROLLER_NAME
from svcnet.util.log import setup_logging

log = logging.getLogger("svcnet.ingress")

FAKE_CERT_NAME = "svcnet-ingress-default"  # the CN of the certificate hosts without one get


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m svcnet.ingress", description=__doc__.split("\n")[0])
    p.add_argument("--kubeconfig", help="kubeconfig of the API server to watch")
    p.add_argument("--controller", default=CONTROLLER_NAME, help="IngressClass spec.controller")
    p.add_argument(
        "--publish-service",
        metavar="NAMESPACE/NAME",
        help="the LoadBalancer Service whose addresses go to Ingress status",
    )
    p.add_argument("--state-dir", help="HAProxy's files and sockets (default: a temporary dir)")
    p.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    p.add_argument("--http-port", type=int, default=80)
    p.add_argument("--https-port", type=int, default=443)
    p.add_argument("--health-port", type=int, default=10254)
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


# ingress-nginx's "Fake Certificate", made by a short-lived child: cryptography would stay in
# the controller's memory (~12 MiB RSS) for as long as it runs, and an idle controller with no
# TLS host needs it this once.
_FAKE_CERT = (
    "import datetime, sys\n"
    "from svcnet.ingress.certs import self_signed\n"
    "sys.stdout.buffer.write(self_signed(sys.argv[1], datetime.datetime.now(datetime.UTC)))\n"
)


def fake_certificate() -> bytes:
    res = subprocess.run(
        [sys.executable, "-c", _FAKE_CERT, FAKE_CERT_NAME], capture_output=True, check=False
    )
    if res.returncode != 0 or not res.stdout:
        raise RuntimeError(f"making the default certificate: {res.stderr.decode(errors='replace')}")
    return res.stdout


async def run(args: argparse.Namespace) -> None:
    from svcnet.client.events import EventRecorder
    from svcnet.client.informer import SharedInformerFactory
    from svcnet.client.kubeconfig import in_cluster_config, load_kubeconfig
    from svcnet.client.rest import ApiClient
    from svcnet.ingress.controller import IngressController

    owned = args.state_dir is None
    state = Path(args.state_dir or tempfile.mkdtemp(prefix="svcnet-ingress-"))
    state.mkdir(parents=True, exist_ok=True)
    process = MasterWorker(
        master_socket=state / "master.sock", admin_socket=state / "admin.sock", binary=args.haproxy
    )
    layout = Layout(
        admin_socket=str(state / "admin.sock"),
        default_pem=fake_certificate(),
        http_port=args.http_port,
        https_port=args.https_port,
        health_port=args.health_port,
    )
    publish = None
    if args.publish_service:
        ns, _, name = args.publish_service.partition("/")
        publish = (ns, name)
    config = load_kubeconfig(args.kubeconfig) if args.kubeconfig else in_cluster_config()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with ApiClient(config) as client:
            factory = SharedInformerFactory(client)
            recorder = EventRecorder(client, "svcnet-ingress-controller")
            controller = IngressController(
                factory,
                HaproxyApplier(process, state / "config"),
                layout,
                controller=args.controller,
                publish_service=publish,
                status_client=client,
                recorder=recorder,
            )
            try:
                async with asyncio.TaskGroup() as tg:
                    factory.start(tg)
                    tg.create_task(recorder.run(), name="ingress-events")
                    tg.create_task(controller.run(), name="ingress-controller")
                    await stop.wait()
                    raise _Stop
            except* _Stop:
                pass
    finally:
        await process.stop()
        if owned:
            shutil.rmtree(state, ignore_errors=True)


class _Stop(Exception):
    """Raised inside the task group to cancel its tasks on SIGTERM."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("ingress", args.log_level)
    try:
        uvloop.run(run(args))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
