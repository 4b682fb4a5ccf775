"""``svcnet exec POD -- CMD``: run a command in a pod's container through its node's agent.

The CLI finds the pod's node and the agent's address (InternalIP and
daemonEndpoints.kubeletEndpoint.Port) through the API, then speaks the same WebSocket
remotecommand protocol (``v5.channel.k8s.io``) to the agent that the API server forwards
``kubectl exec`` to. stdin is not forwarded; stdout/stderr stream as they come; the exit code
is the command's.
"""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import quote

from svcnet.cluster.up import api_get, load_cluster

STDOUT, STDERR, ERROR = 1, 2, 3


def exec_in_pod(data_dir: str, namespace: str, pod: str, container: str, command: list[str]) -> int:
    cfg = load_cluster(data_dir)
    if cfg is None:
        print(f"no svcnet cluster in {data_dir}", file=sys.stderr)
        return 1
    kubeconfig = cfg.apiserver_kubeconfig
    obj = api_get(kubeconfig, f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}")
    if obj is None or obj.get("kind") != "Pod":
        print(f'Error from server (NotFound): pods "{pod}" not found', file=sys.stderr)
        return 1
    spec = obj.get("spec") or {}
    containers = [str(c.get("name")) for c in spec.get("containers") or []]
    container = container or (containers[0] if containers else "")
    node_name = spec.get("nodeName")
    node = api_get(kubeconfig, f"/api/v1/nodes/{quote(str(node_name))}") if node_name else None
    if node is None:
        print(f"pod {pod} is not running on a node", file=sys.stderr)
        return 1
    status = node.get("status") or {}
    ip = next(
        (a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), ""
    )
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    import yaml

    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    return asyncio.run(_run(f"http://{ip}:{port}", token, namespace, pod, container, command))


async def _run(
    base: str, token: str, namespace: str, pod: str, container: str, command: list[str]
) -> int:
    import aiohttp

    params = [("command", c) for c in command] + [("stdout", "1"), ("stderr", "1")]
    url = f"{base}/exec/{quote(namespace)}/{quote(pod)}/{quote(container)}"
    code = 0
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                url,
                params=params,
                protocols=("v5.channel.k8s.io",),
                headers={"Authorization": f"Bearer {token}"},
            )
        except aiohttp.WSServerHandshakeError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return 1
        async with ws:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.BINARY or not msg.data:
                    continue
                channel, data = msg.data[0], msg.data[1:]
                if channel == STDOUT:
                    sys.stdout.buffer.write(data)
                    sys.stdout.buffer.flush()
                elif channel == STDERR:
                    sys.stderr.buffer.write(data)
                    sys.stderr.buffer.flush()
                elif channel == ERROR:
                    code = exit_code_of_status(data)
    return code


def exit_code_of_status(data: bytes) -> int:
    try:
        st = json.loads(data)
    except ValueError:
        return 1
    if st.get("status") == "Success":
        return 0
    for cause in (st.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", 1))
    print(st.get("message", ""), file=sys.stderr)
    return 1


__all__ = ["exec_in_pod", "exit_code_of_status"]
