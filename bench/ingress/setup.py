"""The objects of the ingress bench. Pure: manifests as data.

- ``bench-backend``: one pod answering every request from memory, HTTP on 8080 and HTTPS on
  8443 (HAProxy, one thread: C, so the figures are the paths' and not a Python server's);
  Service ``bench-backend`` selects it.
- Ingress ``bench``: host ``bench.example.com`` → that Service, served by the add-on.
- ``bench-nginx``: the peer to beat, nginx (Debian's nginx-light, the built-in ``nginx``
  image) proxying the same host to the same pod, as ingress-nginx's ``server`` block does
  (upstream keep-alive, the forwarded headers, no access log — the add-on's HAProxy logs
  nothing either), with as many workers as HAProxy has threads (one per CPU), on the add-on's
  node, behind a LoadBalancer Service of its own: the same path from the machine as the add-on.

Both proxies terminate TLS with the same kind of certificate (P-256, from
:func:`svcnet.ingress.certs.self_signed`): wrk sends no SNI to an address, so the add-on
answers with its default certificate, made the same way.
"""

from __future__ import annotations

from typing import Any

HOST = "bench.example.com"
BACKEND = "bench-backend"
NGINX = "bench-nginx"
HTTP_PORT = 8080
HTTPS_PORT = 8443

# Certificate and configuration reach the pods through the environment: written to the pod's
# own /tmp at start, no volume needed.
_WRITE_FILES = 'printf "%s" "$PEM" > /tmp/tls.pem && printf "%s" "$CONF" > /tmp/server.conf'

BACKEND_CFG = f"""\
global
  nbthread 1
defaults
  mode http
  timeout client 10s
  timeout server 10s
  timeout connect 1s
frontend web
  bind :{HTTP_PORT}
  bind :{HTTPS_PORT} ssl crt /tmp/tls.pem
  http-request return status 200 content-type text/plain string "bench-backend"
"""


def nginx_conf(backend_ip: str) -> str:
    return f"""\
worker_processes auto;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path /tmp/nginx-client-body;
    proxy_temp_path /tmp/nginx-proxy;
    fastcgi_temp_path /tmp/nginx-fastcgi;
    uwsgi_temp_path /tmp/nginx-uwsgi;
    scgi_temp_path /tmp/nginx-scgi;
    upstream backend {{
        server {backend_ip}:{HTTP_PORT};
        keepalive 64;
    }}
    server {{
        listen 80 default_server;
        listen 443 ssl default_server;
        ssl_certificate /tmp/tls.pem;
        ssl_certificate_key /tmp/tls.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        server_name {HOST};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
        }}
    }}
}}
"""


def _pod(name: str, image: str, node: str, command: str, pem: bytes, conf: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "nodeName": node, "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "server", "image": image,
                "command": ["sh", "-c", f"{_WRITE_FILES} && exec {command}"],
                "env": [{"name": "PEM", "value": pem.decode()}, {"name": "CONF", "value": conf}],
            }],
        },
    }  # fmt: skip


def _service(name: str, ports: dict[int, int], kind: str = "ClusterIP") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": kind, "selector": {"app": name}, "ports": [
            {"name": f"p{port}", "port": port, "targetPort": target}
            for port, target in ports.items()
        ]},
    }  # fmt: skip


def backend_objects(node: str, pem: bytes) -> list[dict[str, Any]]:
    return [
        _pod(BACKEND, "haproxy", node, "haproxy -db -f /tmp/server.conf", pem, BACKEND_CFG),
        _service(BACKEND, {80: HTTP_PORT}),
    ]


def route_ingress(name: str, host: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"rules": [{"host": host, "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": BACKEND, "port": {"number": 80}}},
        }]}}]},
    }  # fmt: skip


def nginx_objects(node: str, pem: bytes, backend_ip: str) -> list[dict[str, Any]]:
    command = "nginx -c /tmp/server.conf -g 'daemon off;'"
    return [
        _pod(NGINX, "nginx", node, command, pem, nginx_conf(backend_ip)),
        _service(NGINX, {80: 80, 443: 443}, "LoadBalancer"),
    ]
