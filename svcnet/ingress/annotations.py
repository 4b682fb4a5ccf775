"""Ingress annotations this controller reads: a small set, each with the meaning ingress-nginx
gives it. Pure.

An annotation is read under ``ingress.svcnet.io/<name>`` or, where the meaning is ingress-
nginx's, under ``nginx.ingress.kubernetes.io/<name>`` (ours first when both are set):

* ``rewrite-target`` — the path the backend sees: the request's path is replaced by it (the
  query string kept), as ingress-nginx does for a target without capture groups. A target with
  ``$1``-style captures needs ingress-nginx's ``use-regex`` paths, which are not served: the
  annotation is ignored with a Warning.
* ``ssl-redirect`` — ``"false"`` turns the HTTP → HTTPS redirect of the Ingress's TLS hosts off.
* ``proxy-connect-timeout``, ``proxy-read-timeout`` — seconds (an integer, as ingress-nginx
  reads them): the time to connect to an endpoint, and to wait for its response.
* ``limit-rps`` — requests per second from one client address (HAProxy's 1 s sliding rate per
  source address); above it the request gets ``503``, ingress-nginx's default
  ``limit-req-status-code``. ingress-nginx also lets a burst of 5 times the rate through; this does not.

A value that cannot be read is ignored with a Warning event ``InvalidAnnotation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SVCNET_PREFIX = "ingress.svcnet.io/"
NGINX_PREFIX = "nginx.ingress.kubernetes.io/"
REASON_INVALID_ANNOTATION = "InvalidAnnotation"

REWRITE_TARGET = "rewrite-target"
SSL_REDIRECT = "ssl-redirect"
CONNECT_TIMEOUT = "proxy-connect-timeout"
READ_TIMEOUT = "proxy-read-timeout"
LIMIT_RPS = "limit-rps"
NAMES = (REWRITE_TARGET, SSL_REDIRECT, CONNECT_TIMEOUT, READ_TIMEOUT, LIMIT_RPS)


@dataclass(frozen=True, slots=True)
class BackendSettings:
    """What an Ingress's annotations change in the backends its rules use."""

    rewrite_target: str = ""
    timeout_connect: int = 0  # seconds; 0 = the controller's default
    timeout_server: int = 0
    rate_limit: int = 0  # requests per second per client address; 0 = none
    limit_scope: str = ""  # namespace/name of the Ingress: each has its own counters

    @property
    def empty(self) -> bool:
        return self == BackendSettings()


@dataclass(frozen=True, slots=True)
class IngressSettings:
    backend: BackendSettings = field(default_factory=BackendSettings)
    ssl_redirect: bool = True


def _read(annotations: Mapping[str, str], name: str) -> str | None:
    for prefix in (SVCNET_PREFIX, NGINX_PREFIX):
        value = annotations.get(prefix + name)
        if value is not None:
            return str(value).strip()
    return None


def _seconds(value: str, name: str, warnings: list[str]) -> int:
    if value.isdigit() and 0 < int(value) <= 86400:
        return int(value)
    warnings.append(f"{name}: {value!r} is not a number of seconds from 1 to 86400; ignored")
    return 0


def read_settings(annotations: Mapping[str, str], source: str) -> tuple[IngressSettings, list[str]]:
    """The settings of an Ingress (``source``: its namespace/name) and a message per
    annotation that could not be read."""
    warnings: list[str] = []
    rewrite = _read(annotations, REWRITE_TARGET) or ""
    if rewrite and (not rewrite.startswith("/") or "$" in rewrite or any(
        c in rewrite for c in " \t\r\n\0'\"%\\"
    )):  # fmt: skip
        warnings.append(
            f"{REWRITE_TARGET}: {rewrite!r} is not served (an absolute path without capture"
            " groups, spaces or quotes); ignored"
        )
        rewrite = ""
    redirect = _read(annotations, SSL_REDIRECT)
    if redirect is not None and redirect.lower() not in ("true", "false"):
        warnings.append(f"{SSL_REDIRECT}: {redirect!r} is not true or false; ignored")
        redirect = None
    connect = _read(annotations, CONNECT_TIMEOUT)
    read = _read(annotations, READ_TIMEOUT)
    rps = _read(annotations, LIMIT_RPS)
    limit = 0
    if rps is not None:
        if rps.isdigit() and 0 < int(rps) <= 1_000_000:
            limit = int(rps)
        else:
            warnings.append(f"{LIMIT_RPS}: {rps!r} is not a positive integer; ignored")
    backend = BackendSettings(
        rewrite_target=rewrite,
        timeout_connect=_seconds(connect, CONNECT_TIMEOUT, warnings) if connect else 0,
        timeout_server=_seconds(read, READ_TIMEOUT, warnings) if read else 0,
        rate_limit=limit,
        limit_scope=source if limit else "",
    )
    settings = IngressSettings(backend, ssl_redirect=(redirect or "true").lower() == "true")
    return settings, warnings
