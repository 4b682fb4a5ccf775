"""API-shaped objects for ingress tests, and a tracer over the rendered HAProxy frontend.

Fixture ranges: pods 10.244.0.0/16 (endpoints 10.244.1.x), the namespace ``default`` unless
a test says otherwise.
"""

from __future__ import annotations

import base64
import datetime
import shlex
from collections.abc import Mapping
from typing import Any

from svcnet.dataplane.haproxy_config import MAIN_FILE, HaproxyConfig
from svcnet.ingress.certs import self_signed
from svcnet.ingress.haproxycfg import HOSTS_MAP, NOT_FOUND_BACKEND, WILDCARDS_MAP
from svcnet.ingress.model import CONTROLLER_NAME

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def ingress_class(
    name: str = "svcnet", controller: str = CONTROLLER_NAME, default: bool = False
) -> dict[str, Any]:
    ann = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"metadata": {"name": name, "annotations": ann}, "spec": {"controller": controller}}


def backend(service: str, port: int | str = 80) -> dict[str, Any]:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"service": {"name": service, "port": ref}}


def path(p: str, service: str, path_type: str = "Prefix", port: int | str = 80) -> dict[str, Any]:
    return {"path": p, "pathType": path_type, "backend": backend(service, port)}


def rule(host: str | None, *paths: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"http": {"paths": list(paths)}}
    if host is not None:
        out["host"] = host
    return out


def ingress(
    name: str,
    *rules: dict[str, Any],
    namespace: str = "default",
    created: str = "2026-01-01T00:00:00Z",
    class_name: str | None = "svcnet",
    default_backend: dict[str, Any] | None = None,
    tls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": list(rules)}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if default_backend is not None:
        spec["defaultBackend"] = default_backend
    if tls is not None:
        spec["tls"] = tls
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": spec,
    }


def service(
    name: str, port: int = 80, port_name: str = "", namespace: str = "default"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": [{"name": port_name, "port": port, "targetPort": 8080}]},
    }


def endpoint_slice(
    service: str,
    *ips: str,
    port: int = 8080,
    port_name: str = "",
    not_ready: tuple[str, ...] = (),
    namespace: str = "default",
    name: str = "",
) -> dict[str, Any]:
    eps = [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]
    eps += [{"addresses": [ip], "conditions": {"ready": False}} for ip in not_ready]
    return {
        "metadata": {
            "name": name or f"{service}-abcde",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": eps,
    }


def key_pair(host: str) -> tuple[bytes, bytes]:
    pem = self_signed(host, NOW)
    cert, _, key = pem.partition(b"-----BEGIN PRIVATE KEY")
    return cert, b"-----BEGIN PRIVATE KEY" + key


def tls_secret(
    name: str, host: str, namespace: str = "default", secret_type: str = "kubernetes.io/tls"
) -> dict[str, Any]:
    cert, key = key_pair(host)
    return {
        "metadata": {"name": name, "namespace": namespace},
        "type": secret_type,
        "data": {
            "tls.crt": base64.b64encode(cert).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }


# -- a tracer over the rendered frontend ----------------------------------------------------


def _cond_holds(words: list[str], env: Mapping[str, str]) -> bool:
    """Evaluate ``{ … } { … } or { … }`` as HAProxy does (AND binds tighter than ``or``)."""
    alternatives: list[list[list[str]]] = [[]]
    i = 0
    while i < len(words):
        if words[i] == "or":
            alternatives.append([])
            i += 1
        elif words[i] in ("{", "!{"):
            j = words.index("}", i)
            alternatives[-1].append(words[i : j + 1])
            i = j + 1
        else:
            raise AssertionError(f"unexpected word {words[i]!r}")
    return any(all(_acl(a, env) for a in alt) for alt in alternatives)


def _acl(words: list[str], env: Mapping[str, str]) -> bool:
    negate = words[0] == "!{"
    fetch, *rest = words[1:-1]
    if fetch == "ssl_fc":
        value: str | None = "1" if env["ssl"] else None
        result = value is not None
    else:
        value = {"var(txn.vhost)": env.get("vhost"), "var(txn.host)": env.get("host"),
                 "path": env["path"]}[fetch]  # fmt: skip
        if rest[:2] == ["-m", "found"]:
            result = value is not None
        elif rest[:2] == ["-m", "str"]:
            result = value in rest[2:]
        elif rest[:2] == ["-m", "beg"]:
            result = value is not None and any(value.startswith(p) for p in rest[2:])
        else:
            raise AssertionError(f"unexpected ACL {words}")
    return result != negate


def trace(config: HaproxyConfig, host: str, path: str, ssl: bool = False) -> str:
    """Where the rendered configuration sends a request: a backend, ``404`` or ``redirect``."""
    maps = {
        name: dict(line.split() for line in config.files[name].decode().splitlines())
        for name in (HOSTS_MAP, WILDCARDS_MAP)
    }
    env: dict[str, Any] = {"host": host.split(":", 1)[0].lower(), "path": path, "ssl": ssl}
    text = config.files[MAIN_FILE].decode()
    frontend = text.split("frontend ingress\n", 1)[1].split("\n\n", 1)[0]
    for line in frontend.splitlines():
        words = shlex.split(line)
        cond: list[str] = []
        if "if" in words:
            cond = words[words.index("if") + 1 :]
            words = words[: words.index("if")]
        if words[:2] == ["http-request", "set-var(txn.vhost)"]:
            expr = words[2]
            if expr.startswith("str("):
                value: str | None = expr[4:-1]
            elif "field(2" in expr:
                # field(2,.,0): everything after the first ".", the first label dropped.
                _, dot, rest = env["host"].partition(".")
                value = maps[WILDCARDS_MAP].get(rest) if dot else None
            else:
                value = maps[HOSTS_MAP].get(env["host"])
            if value is not None and (not cond or _cond_holds(cond, env)):
                env["vhost"] = value
        elif words[:2] == ["http-request", "redirect"]:
            if _cond_holds(cond, env):
                return "redirect"
        elif words[:1] == ["use_backend"]:
            if not cond or _cond_holds(cond, env):
                return words[1]
        elif words[:1] == ["default_backend"]:
            return "404" if words[1] == NOT_FOUND_BACKEND else words[1]
    raise AssertionError("no default_backend")
