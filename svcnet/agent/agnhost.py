"""svcnet's agnhost: the subset of Kubernetes' e2e test image that networking tests use.

Run as ``python -m svcnet.agent.agnhost SUBCOMMAND ...`` or, inside pods, as ``agnhost``.

Start time matters more than anything else here (pod start p99 < 1 s with 100s of pods on a
2-core machine), so this module imports only ``socket``, ``threading`` and builtins: no
asyncio (~90 ms of imports), no argparse, no urllib. Servers are a thread per connection,
which is plenty for test traffic. Flags are parsed as Go's ``flag`` package does (``-x v``,
``--x=v``, booleans as ``--x`` or ``--x=false``).

Subcommands, with upstream's defaults:
- ``serve-hostname [--port 9376] [--tcp] [--udp] [--http=true]``: answer the hostname;
- ``netexec [--http-port 8080] [--udp-port 8081]``: HTTP ``/`` (NOW: time), ``/hostname``,
  ``/clientip`` (``ip:port`` of the caller), ``/echo?msg=``, ``/healthz``, ``/shutdown``,
  ``/exit?code=N``; UDP ``hostname``, ``echo <msg>``, ``clientip``;
- ``connect HOST:PORT [--timeout 5s] [--protocol tcp|udp|sctp]``: exit 0 on success, else
  print TIMEOUT, REFUSED or OTHER: <error> on stderr and exit 1;
- ``svcnet-page [--port 80] [--server nginx]``: the page the built-in nginx/httpd images serve.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable

Handler = Callable[[str, dict[str, str], tuple[str, int]], tuple[int, str]]
Flags = dict[str, "str | int | bool"]


class UsageError(Exception):
    pass


# name → default; the default's type is the flag's type (Go flag semantics).
FLAG_SPECS: dict[str, dict[str, str | int | bool]] = {
    "serve-hostname": {"port": 9376, "tcp": False, "udp": False, "http": True, "close": False},
    "netexec": {"http-port": 8080, "udp-port": 8081, "sctp-port": -1},
    "connect": {"timeout": "5s", "protocol": "tcp"},
    "svcnet-page": {"port": 80, "server": "nginx"},
}
_TRUE = ("1", "t", "true", "yes")


def parse_args(argv: list[str]) -> tuple[str, Flags, list[str]]:
    """(subcommand, flags with defaults filled in, positional arguments)."""
    if not argv or argv[0] not in FLAG_SPECS:
        raise UsageError(f"usage: agnhost {{{','.join(FLAG_SPECS)}}} [flags]")
    command, rest = argv[0], argv[1:]
    spec = FLAG_SPECS[command]
    flags: Flags = dict(spec)
    positional: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            positional.append(arg)
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in spec:
            raise UsageError(f"flag provided but not defined: -{name}")
        default = spec[name]
        if isinstance(default, bool):
            flags[name] = value.lower() in _TRUE if eq else True
            continue
        if not eq:
            if i >= len(rest):
                raise UsageError(f"flag needs an argument: -{name}")
            value = rest[i]
            i += 1
        try:
            flags[name] = int(value) if isinstance(default, int) else value
        except ValueError:
            raise UsageError(f'invalid value "{value}" for flag -{name}') from None
    return command, flags, positional


def parse_duration(text: str) -> float:
    """Go durations as agnhost flags take them ("5s", "500ms", "1m"), or plain seconds."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        head = text[: -len(suffix)]
        if text.endswith(suffix) and head.replace(".", "", 1).isdigit():
            return float(head) * scale
    return float(text)


def _unquote(s: str) -> str:
    s = s.replace("+", " ")
    if "%" not in s:
        return s
    out = bytearray()
    i = 0
    raw = s.encode()
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw):  # %XX
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode(errors="replace")


def parse_target(target: str) -> tuple[str, dict[str, str]]:
    """Request target → (path, first value of each query parameter)."""
    path, _, query = target.partition("?")
    params: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            params.setdefault(_unquote(key), _unquote(value))
    return path, params


# -- servers ---------------------------------------------------------------------------------
_REASONS = {200: "OK", 404: "Not Found"}


# Sockets bound by prebind() before the subcommand runs, taken by _listen().
_prebound: dict[tuple[int, int], socket.socket] = {}


def prebind(argv: list[str]) -> None:
    """Bind and listen on the ports the server subcommand in ``argv`` will serve.

    The warm fork server (:mod:`svcnet.agent.zygote`) calls this before it reports the
    container started, as a compiled server listens within a moment of its exec: a readiness
    probe sent right after "started" then meets a listening socket. Errors are left for the
    subcommand itself to meet and report (exit 1 with its message), as without prebind.
    """
    try:
        command, flags, _ = parse_args(argv)
    except UsageError:
        return
    ports: list[tuple[int, int]] = []
    if command == "netexec":
        ports.append((socket.SOCK_STREAM, int(flags["http-port"])))
        if int(flags["udp-port"]) > 0:
            ports.append((socket.SOCK_DGRAM, int(flags["udp-port"])))
    elif command == "serve-hostname":
        if flags["tcp"] or flags["http"]:
            ports.append((socket.SOCK_STREAM, int(flags["port"])))
        if flags["udp"]:
            ports.append((socket.SOCK_DGRAM, int(flags["port"])))
    elif command == "svcnet-page":
        ports.append((socket.SOCK_STREAM, int(flags["port"])))
    for kind, port in ports:
        try:
            _prebound[(kind, port)] = _bind(kind, port)
        except OSError:
            return


def _listen(kind: int, port: int) -> socket.socket:
    s = _prebound.pop((kind, port), None)
    return s if s is not None else _bind(kind, port)


def _bind(kind: int, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    if kind == socket.SOCK_STREAM:
        s.listen(128)
    return s


def _http_conn(conn: socket.socket, peer: tuple[str, int], handler: Handler) -> None:
    f = conn.makefile("rb")
    try:
        while True:
            line = f.readline(65536)
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                return
            keep_alive = len(parts) > 2 and parts[2] == "HTTP/1.1"
            length = 0
            while True:
                h = f.readline(65536)
                if h in (b"\r\n", b"\n", b""):
                    break
                key, _, value = h.decode("latin-1").partition(":")
                key = key.strip().lower()
                if key == "content-length":
                    length = int(value.strip() or 0)
                elif key == "connection":
                    keep_alive = value.strip().lower() != "close"
            if length:
                f.read(length)
            path, query = parse_target(parts[1])
            status, body = handler(path, query, peer)
            data = body.encode()
            conn.sendall(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(data)}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n".encode()
                + data
            )
            if not keep_alive:
                return
    except (OSError, ValueError):
        return
    finally:
        f.close()
        conn.close()


def _serve_stream(
    sock: socket.socket, on_conn: Callable[[socket.socket, tuple[str, int]], None]
) -> threading.Thread:
    def loop() -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            threading.Thread(target=on_conn, args=(conn, peer[:2]), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def _serve_udp(sock: socket.socket, answer: Callable[[str, tuple[str, int]], str]) -> None:
    def loop() -> None:
        while True:
            try:
                data, addr = sock.recvfrom(65535)
                sock.sendto(answer(data.decode(errors="replace").strip(), addr[:2]).encode(), addr)
            except OSError:
                return

    threading.Thread(target=loop, daemon=True).start()


class _Exit:
    """The main thread waits here; a handler (``/shutdown``) sets the exit code."""

    def __init__(self) -> None:
        self.code = 0
        self.event = threading.Event()

    def set(self, code: int) -> None:
        self.code = code
        self.event.set()

    def wait(self) -> int:
        self.event.wait()
        time.sleep(0.05)  # let the response that asked for the exit go out
        return self.code


# -- subcommands -----------------------------------------------------------------------------
def serve_hostname(flags: Flags, _args: list[str]) -> int:
    name = socket.gethostname()
    port = int(flags["port"])
    if flags["tcp"]:

        def tcp(conn: socket.socket, _peer: tuple[str, int]) -> None:
            try:
                conn.sendall(name.encode())
            finally:
                conn.close()

        _serve_stream(_listen(socket.SOCK_STREAM, port), tcp)
    elif flags["http"]:
        sock = _listen(socket.SOCK_STREAM, port)
        _serve_stream(sock, lambda c, p: _http_conn(c, p, lambda path, q, peer: (200, name)))
    if flags["udp"]:
        _serve_udp(_listen(socket.SOCK_DGRAM, port), lambda msg, addr: name)
    print(f"Serving on port {port}.", flush=True)
    return _Exit().wait()


def netexec(flags: Flags, _args: list[str]) -> int:
    name = socket.gethostname()
    done = _Exit()

    def http(path: str, query: dict[str, str], peer: tuple[str, int]) -> tuple[int, str]:
        if path == "/":
            return 200, f"NOW: {time.strftime('%Y-%m-%d %H:%M:%S')}"
        if path == "/hostname":
            return 200, name
        if path == "/clientip":
            return 200, f"{peer[0]}:{peer[1]}"
        if path == "/echo":
            return 200, query.get("msg", "")
        if path == "/healthz":
            return 200, "ok"
        if path in ("/shutdown", "/exit"):
            done.set(int(query.get("code", "0") or 0))
            return 200, ""
        return 404, "404 page not found\n"

    def udp(msg: str, addr: tuple[str, int]) -> str:
        if msg == "hostname":
            return name
        if msg.startswith("echo "):
            return msg[5:]
        if msg == "clientip":
            return f"{addr[0]}:{addr[1]}"
        return "unknown command"

    http_port = int(flags["http-port"])
    sock = _listen(socket.SOCK_STREAM, http_port)
    _serve_stream(sock, lambda c, p: _http_conn(c, p, http))
    print(f"Started HTTP server on port {http_port}", flush=True)
    udp_port = int(flags["udp-port"])
    if udp_port > 0:
        _serve_udp(_listen(socket.SOCK_DGRAM, udp_port), udp)
        print(f"Started UDP server on port {udp_port}", flush=True)
    return done.wait()


def svcnet_page(flags: Flags, _args: list[str]) -> int:
    name = socket.gethostname()
    server = str(flags["server"])
    page = (
        f"<!DOCTYPE html>\n<html><head><title>Welcome to {server}!</title></head>\n"
        f"<body><h1>Welcome to {server}!</h1>\n<p>Served by pod {name}.</p></body></html>\n"
    )
    port = int(flags["port"])
    sock = _listen(socket.SOCK_STREAM, port)
    _serve_stream(sock, lambda c, p: _http_conn(c, p, lambda path, q, peer: (200, page)))
    print(f"{server} (svcnet built-in) serving pod {name} on port {port}", flush=True)
    return _Exit().wait()


def connect(flags: Flags, args: list[str]) -> int:
    if len(args) != 1:
        print("usage: agnhost connect HOST:PORT [--timeout 5s] [--protocol tcp]", file=sys.stderr)
        return 1
    host, _, port_s = args[0].rpartition(":")
    host = host.strip("[]")
    timeout = parse_duration(str(flags["timeout"]))
    proto = str(flags["protocol"]).lower()
    kinds = {
        "tcp": (socket.SOCK_STREAM, 0),
        "udp": (socket.SOCK_DGRAM, 0),
        "sctp": (socket.SOCK_STREAM, getattr(socket, "IPPROTO_SCTP", 132)),
    }
    if proto not in kinds:
        print(f"Unsupported protocol {flags['protocol']}", file=sys.stderr)
        return 1
    kind, ipproto = kinds[proto]
    try:
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind, ipproto)
        s.settimeout(timeout)
        try:
            s.connect((host, int(port_s)))
            if proto == "udp":
                # UDP has no handshake: success is an answer (netexec and serve-hostname
                # answer any datagram); ICMP port unreachable arrives as ECONNREFUSED.
                s.send(b"hostname")
                s.recv(65535)
        finally:
            s.close()
        return 0
    except TimeoutError:
        print("TIMEOUT", file=sys.stderr)
    except ConnectionRefusedError:
        print("REFUSED", file=sys.stderr)
    except OSError as e:
        print(f"OTHER: {e}", file=sys.stderr)
    return 1


COMMANDS: dict[str, Callable[[Flags, list[str]], int]] = {
    "serve-hostname": serve_hostname,
    "netexec": netexec,
    "connect": connect,
    "svcnet-page": svcnet_page,
}


def main(argv: list[str] | None = None) -> int:
    try:
        command, flags, args = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        return COMMANDS[command](flags, args)
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # e.g. the port is taken: say so and fail, as the real one does
        print(f"agnhost {command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # daemon threads may be blocked in accept(); do not wait for them
