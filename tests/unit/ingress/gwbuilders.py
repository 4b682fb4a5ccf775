"""Gateway API objects for tests, and a tracer over a rendered Gateway frontend.

Fixture ranges: endpoints 10.244.2.0/24, namespaces ``default`` and ``other``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from svcnet.dataplane.haproxy_config import MAIN_FILE, HaproxyConfig
from svcnet.ingress.gatewayclass import GATEWAY_CONTROLLER_NAME
from svcnet.ingress.haproxycfg import ERROR_BACKEND, NOT_FOUND_BACKEND

GW_CLASS = {"metadata": {"name": "svcnet"}, "spec": {"controllerName": GATEWAY_CONTROLLER_NAME}}


def listener(
    name: str,
    port: int = 80,
    protocol: str = "HTTP",
    hostname: str | None = None,
    certs: tuple[str, ...] = (),
    allowed_from: str | None = None,
    selector: dict[str, Any] | None = None,
    kinds: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "port": port, "protocol": protocol}
    if hostname:
        out["hostname"] = hostname
    if certs:
        refs = []
        for c in certs:
            ns, _, n = c.rpartition("/")
            refs.append({"name": n, **({"namespace": ns} if ns else {})})
        out["tls"] = {"mode": "Terminate", "certificateRefs": refs}
    allowed: dict[str, Any] = {}
    if allowed_from:
        allowed["namespaces"] = {"from": allowed_from}
        if selector is not None:
            allowed["namespaces"]["selector"] = selector
    if kinds is not None:
        allowed["kinds"] = kinds
    if allowed:
        out["allowedRoutes"] = allowed
    return out


def gateway(name: str, *listeners: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"gatewayClassName": "svcnet", "listeners": list(listeners)},
    }


def ref(
    service: str, port: int = 80, weight: int | None = None, namespace: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": service, "port": port}
    if weight is not None:
        out["weight"] = weight
    if namespace:
        out["namespace"] = namespace
    return out


def http_rule(
    *backends: dict[str, Any],
    matches: list[dict[str, Any]] | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"backendRefs": list(backends)}
    if matches is not None:
        out["matches"] = matches
    if filters is not None:
        out["filters"] = filters
    return out


def route(
    name: str,
    *rules: dict[str, Any],
    parents: list[dict[str, Any]] | None = None,
    hostnames: list[str] | None = None,
    namespace: str = "default",
    created: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "parentRefs": parents if parents is not None else [{"name": "gw"}],
        "rules": list(rules),
    }
    if hostnames:
        spec["hostnames"] = hostnames
    return {
        "metadata": {
            "name": name, "namespace": namespace, "generation": 2, "creationTimestamp": created,
        },
        "spec": spec,
    }  # fmt: skip


def grant(
    namespace: str, from_kind: str, from_ns: str, to_kind: str, name: str = ""
) -> dict[str, Any]:
    to: dict[str, Any] = {"group": "", "kind": to_kind}
    if name:
        to["name"] = name
    return {
        "metadata": {"name": f"allow-{from_ns}", "namespace": namespace},
        "spec": {
            "from": [
                {"group": "gateway.networking.k8s.io", "kind": from_kind, "namespace": from_ns}
            ],
            "to": [to],
        },
    }


# -- a tracer over one rendered Gateway frontend --------------------------------------------


def _acl(words: list[str], env: Mapping[str, Any]) -> bool:
    negate = words[0] == "!{"
    fetch, *rest = words[1:-1]
    if fetch == "method":
        return (env["method"] in rest) != negate
    if fetch == "ssl_fc":
        return env["ssl"] != negate
    m = re.fullmatch(r"(req\.hdr|urlp|var)\((.+)\)", fetch)
    value: Any
    if fetch == "path":
        value = env["path"]
    elif fetch.startswith("rand("):
        value = env["pick"]
    elif m and m.group(1) == "req.hdr":
        value = {k.lower(): v for k, v in env["headers"].items()}.get(m.group(2))
    elif m and m.group(1) == "urlp":
        value = env["query"].get(m.group(2))
    elif m:
        value = env["vars"].get(m.group(2))
    else:
        raise AssertionError(f"unexpected fetch {fetch}")
    how, args = rest[1], rest[2:]
    if how == "found":
        result = value is not None
    elif value is None:
        result = False
    elif how == "str":
        result = value in args
    elif how == "beg":
        result = any(value.startswith(a) for a in args)
    elif how == "end":
        result = any(value.endswith(a) for a in args)
    elif how == "reg":
        result = re.search(args[0], value) is not None
    elif how == "int":
        assert args[0] == "lt"
        result = int(value) < int(args[1])
    else:
        raise AssertionError(f"unexpected match {how}")
    return result != negate


def _holds(cond: list[str], env: Mapping[str, Any]) -> bool:
    i, ok = 0, True
    while i < len(cond):
        j = cond.index("}", i)
        ok = ok and _acl(cond[i : j + 1], env)
        i = j + 1
    return ok


def trace_gateway(
    config: HaproxyConfig,
    frontend: str,
    host: str,
    path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    pick: int = 0,
    ssl: bool = False,
) -> str:
    """The backend the frontend sends a request to, ``404``, ``500`` or ``redirect <url>``;
    ``pick`` stands for ``rand()``."""
    env: dict[str, Any] = {
        "path": path, "method": method, "headers": {"host": host, **(headers or {})},
        "query": query or {}, "vars": {}, "ssl": ssl, "pick": pick,
    }  # fmt: skip
    text = config.files[MAIN_FILE].decode()
    body = text.split(f"frontend {frontend}\n", 1)[1].split("\n\n", 1)[0]
    for line in body.splitlines():
        words = shlex.split(line)
        cond: list[str] = []
        if "if" in words:
            cond = words[words.index("if") + 1 :]
            words = words[: words.index("if")]
        if cond and not _holds(cond, env):
            continue
        if words[:1] == ["http-request"] and words[1].startswith("set-var("):
            var = words[1][len("set-var(") : -1]
            expr = words[2]
            if expr.startswith("req.hdr(host)"):
                env["vars"][var] = host.split(":", 1)[0].lower()
            elif expr.startswith("str("):
                env["vars"][var] = expr[4:-1]
            elif expr.startswith("rand("):
                env["vars"][var] = pick
        elif words[:2] == ["http-request", "redirect"]:
            location = words[3].replace("%[var(txn.host)]", env["vars"]["txn.host"])
            return "redirect " + location.replace("%[pathq]", path).replace("%[path]", env["path"])
        elif words[:2] == ["http-request", "set-path"]:
            env["path"] = words[2]
        elif words[:2] == ["http-request", "replace-path"]:
            env["path"] = re.sub(words[2], words[3].replace("%%", "%"), env["path"])
        elif words[:1] == ["use_backend"]:
            return {ERROR_BACKEND: "500"}.get(words[1], words[1])
        elif words[:1] == ["default_backend"]:
            return "404" if words[1] == NOT_FOUND_BACKEND else words[1]
    raise AssertionError("no default_backend")
