"""What ``svcnet up``, ``down``, ``status`` and ``apiserver`` do, behind the click commands."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click
import yaml

from svcnet.client.kubeconfig import merge_kubeconfig, remove_from_kubeconfig
from svcnet.cluster.supervisor import Component, read_status, write_spec

READY_TIMEOUT = 60.0


def default_data_dir(name: str) -> str:
    if os.geteuid() == 0:
        return f"/var/lib/svcnet/{name}"
    return str(Path.home() / ".local" / "share" / "svcnet" / name)


def user_kubeconfig(explicit: str | None) -> Path:
    """Where to merge our context: --kubeconfig, else the first $KUBECONFIG entry, else ~/.kube/config."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _components(name: str, data_dir: Path) -> list[Component]:
    logs = data_dir / "logs"
    py = sys.executable
    return [
        Component(
            "controlplane",
            (py, "-m", "svcnet.cluster.controlplane", "--data-dir", str(data_dir / "apiserver"),
             "--listen", "127.0.0.1", "--advertise-address", "127.0.0.1"),
            str(logs / "controlplane.log"),
        ),
    ]


def _ready(kubeconfig: Path) -> bool:
    """True once the API server answers /readyz with the credentials it wrote."""
    try:
        cfg = yaml.safe_load(kubeconfig.read_text())
    except (OSError, yaml.YAMLError):
        return False
    cluster = cfg["clusters"][0]["cluster"]
    token = cfg["users"][0]["user"]["token"]
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    req = urllib.request.Request(
        cluster["server"] + "/readyz", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def up(name: str, nodes: int, data_dir: str, upstream_dns: str | None,
       kubeconfig: str | None) -> None:
    root = Path(data_dir)
    state = root / "state"
    if (pid := _read_pid(state / "supervisor.pid")) is not None:
        click.echo(f"svcnet cluster {name!r} is already running (supervisor pid {pid}).")
        status(name, data_dir)
        return
    for d in (state, root / "logs", root / "apiserver"):
        d.mkdir(parents=True, exist_ok=True)
    apiserver_kubeconfig = root / "apiserver" / "kubeconfig"
    apiserver_kubeconfig.unlink(missing_ok=True)
    write_spec(state / "spec.json", _components(name, root))
    started = time.monotonic()
    with open(root / "logs" / "supervisor.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "svcnet.cluster.supervisor", "--state-dir", str(state)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
        )
    (state / "supervisor.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + READY_TIMEOUT
    while not (apiserver_kubeconfig.exists() and _ready(apiserver_kubeconfig)):
        if proc.poll() is not None or time.monotonic() > deadline:
            click.echo("svcnet did not come up; the control plane's log ends with:", err=True)
            log = root / "logs" / "controlplane.log"
            if log.exists():
                click.echo("\n".join(log.read_text().splitlines()[-20:]), err=True)
            down(name, data_dir, kubeconfig)
            raise SystemExit(1)
        time.sleep(0.05)
    cfg = yaml.safe_load(apiserver_kubeconfig.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    target = user_kubeconfig(kubeconfig)
    merge_kubeconfig(
        target, name, cluster["server"],
        base64.b64decode(cluster["certificate-authority-data"]),
        cfg["users"][0]["user"]["token"], context_name=name,
    )
    elapsed = time.monotonic() - started
    click.echo(f"svcnet cluster {name!r} is up in {elapsed:.1f}s; kubectl context {name!r} "
               f"is in {target}.")
    click.echo("Try:\n  kubectl get namespaces\n  kubectl apply -f examples/\n"
               "  kubectl get svc -A\n  svcnet status\n  svcnet down")


def down(name: str, data_dir: str, kubeconfig: str | None) -> None:
    root = Path(data_dir)
    state = root / "state"
    pid = _read_pid(state / "supervisor.pid")
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    (state / "supervisor.pid").unlink(missing_ok=True)
    remove_from_kubeconfig(user_kubeconfig(kubeconfig), name, context_name=name)
    click.echo(f"svcnet cluster {name!r} is down.")


def status(name: str, data_dir: str) -> None:
    root = Path(data_dir)
    state = root / "state"
    pid = _read_pid(state / "supervisor.pid")
    if pid is None:
        click.echo(f"svcnet cluster {name!r} is not running.")
        return
    click.echo(f"cluster {name!r}: supervisor pid {pid}, data in {root}")
    click.echo(f"{'COMPONENT':<16}{'STATE':<12}{'PID':<9}{'RESTARTS':<10}LAST EXIT")
    for st in read_status(state).values():
        last = "-" if st.last_exit_code is None else str(st.last_exit_code)
        click.echo(f"{st.name:<16}{st.state:<12}{st.pid or '-'!s:<9}{st.restarts:<10}{last}")


def run_apiserver_foreground(
    data_dir: str, bind_addresses: list[str], port: int, store_url: str | None,
    service_cidr: str, node_port_range: str, advertise_address: str | None,
) -> None:
    from svcnet.apiserver.server import ApiServerConfig
    from svcnet.cluster.controlplane import serve
    from svcnet.util.log import setup_logging

    setup_logging("apiserver")
    low, high = (int(x) for x in node_port_range.split("-", 1))
    config = ApiServerConfig(
        data_dir=Path(data_dir),
        listen_addresses=tuple(bind_addresses),
        port=port,
        store_url=store_url or "",
        service_cidr=service_cidr,
        node_port_range=(low, high),
        advertise_address=advertise_address or bind_addresses[0],
    )
    import uvloop

    uvloop.install()
    asyncio.run(serve(config, controllers=False))
