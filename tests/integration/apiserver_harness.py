"""Harness of the integration tests: the API server in a thread, kubectl, raw HTTPS.

The server runs in-process, in a thread with its own event loop (so tests can call kubectl
synchronously), on a free loopback port with a temporary data dir and a SQLite store. One
server serves the whole session; each test works in its own namespace. KUBECONFIG points at
a kubeconfig in the temporary dir: ~/.kube is never touched. Beside it, in the same loop,
run the controllers every namespace relies on (its ``default`` ServiceAccount, without which
a Pod create is refused, and ``kube-root-ca.crt``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from svcnet.apiserver.server import ApiServer, ApiServerConfig
from svcnet.client.informer import SharedInformerFactory
from svcnet.client.kubeconfig import load_kubeconfig
from svcnet.client.rest import ApiClient
from svcnet.controllers.rootcacert.controller import RootCACertPublisher
from svcnet.controllers.serviceaccount.controller import ServiceAccountsController

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@dataclass
class RunningServer:
    server: ApiServer
    loop: asyncio.AbstractEventLoop
    data_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def kubeconfig(self) -> Path:
        return self.server.kubeconfig_path

    @property
    def token(self) -> str:
        assert self.server.credentials is not None
        return self.server.credentials.token

    @property
    def ca_file(self) -> str:
        assert self.server.credentials is not None
        return str(self.server.credentials.ca_cert)


async def run_namespace_controllers(server: ApiServer) -> None:
    """What a cluster's controller manager does for every namespace (its ``default``
    ServiceAccount, which a Pod create needs, and ``kube-root-ca.crt``), until cancelled."""
    config = load_kubeconfig(server.kubeconfig_path)
    async with ApiClient(config) as api:
        factory = SharedInformerFactory(api)
        controllers = [
            ServiceAccountsController(api, factory),
            RootCACertPublisher(api, factory, (config.ca_data or b"").decode()),
        ]
        tasks = [*factory.start(), *(asyncio.create_task(c.run()) for c in controllers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def start_in_thread(
    config: ApiServerConfig, namespace_controllers: bool = True
) -> tuple[RunningServer, threading.Thread]:
    loop = asyncio.new_event_loop()
    server = ApiServer(config)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        if namespace_controllers:
            _controllers[loop] = loop.create_task(run_namespace_controllers(server))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="apiserver", daemon=True)
    thread.start()
    started.wait(60)
    if failure:
        raise failure[0]
    return RunningServer(server, loop, config.data_dir), thread


# The namespace controllers' task of each server's loop.
_controllers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


async def _stop(running: RunningServer) -> None:
    task = _controllers.pop(running.loop, None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await running.server.stop()


def stop_in_thread(running: RunningServer, thread: threading.Thread) -> None:
    fut = asyncio.run_coroutine_threadsafe(_stop(running), running.loop)
    fut.result(30)
    running.loop.call_soon_threadsafe(running.loop.stop)
    thread.join(30)
    running.loop.close()


@dataclass
class Kubectl:
    kubeconfig: Path
    namespace: str

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        full_env.update({"KUBECONFIG": str(self.kubeconfig), "HOME": str(self.kubeconfig.parent)})
        full_env.update(env or {})
        proc = subprocess.run(
            [KUBECTL, *(["-n", self.namespace] if self.namespace else []), *args],
            input=input,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def __call__(self, *args: str, input: str | None = None) -> str:
        return self.run(*args, input=input).stdout


class Http:
    """Raw HTTPS requests to the server, for what kubectl cannot send (bad bodies, no token)."""

    def __init__(self, server: RunningServer) -> None:
        import ssl

        self.server = server
        self.ctx = ssl.create_default_context(cafile=server.ca_file)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        token: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        import urllib.error
        import urllib.request

        h = {"Content-Type": content_type, **(headers or {})}
        if token == "default":
            token = self.server.token
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.server.url + path, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()
