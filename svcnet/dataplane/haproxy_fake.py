"""A faithful fake of an HAProxy master-worker process, for unit tests of appliers.

It keeps HAProxy's rules that an applier depends on:

* ``check`` refuses a configuration whose ``use_backend``/``default_backend`` names a backend
  that is not defined, whose backends repeat, or that names a map, certificate or crt-list
  file (or a crt-list entry) that does not exist next to it, or a ``-m reg`` regular expression
  PCRE2 refuses and Python's ``re`` takes (``\\N{name}``, ``\\u``), with HAProxy's file:line
  message; ``refuse`` adds words that make it fail as HAProxy would on something it cannot
  parse;
* a worker reads ``server`` lines when it starts (``start``, ``reload``): a ``disabled`` server
  is out of rotation until ``set server … state ready``;
* the Runtime API changes one worker's servers only; a reload starts over from the file;
* ``set server`` on a server that does not exist answers ``No such server.``, as HAProxy does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from svcnet.dataplane.haproxy import HaproxyError

_REGEX = re.compile(r"-m reg ('(?:[^']|'\"'\"')*')")
# Escapes Python's re takes and PCRE2 refuses: the case where HAProxy alone says no.
_PCRE2_REFUSES = re.compile(r"(?<!\\)(?:\\\\)*\\(?:N\{|u)")
_FILE_ARGS = re.compile(r"map_str\(([^)]+)\)|\bcrt-list (\S+)|\bcrt (\S+)")


@dataclass
class FakeServer:
    addr: str
    port: int
    weight: int
    ready: bool


@dataclass
class FakeHaproxy:
    refuse: set[str] = field(default_factory=set)
    config_file: Path | None = None
    running: bool = False
    reloads: int = 0
    restarts: int = 0
    checks: int = 0
    commands: list[str] = field(default_factory=list)
    servers: dict[tuple[str, str], FakeServer] = field(default_factory=dict)

    async def check(self, config_file: Path) -> str:
        self.checks += 1
        return check_config(config_file, self.refuse)

    async def start(self, config_file: Path) -> None:
        if check_config(config_file, self.refuse):
            raise HaproxyError("haproxy refused to start")
        self.config_file = config_file
        self.running = True
        self._load()

    async def reload(self) -> None:
        if self.config_file is None:
            raise HaproxyError("haproxy was never started")
        if not self.running:  # as MasterWorker: a process that is gone is started again
            self.restarts += 1
            await self.start(self.config_file)
            return
        # A failed reload leaves the old worker serving (master-worker "wait mode").
        if check_config(self.config_file, self.refuse):
            raise HaproxyError("reload failed: the old worker still serves")
        self.reloads += 1
        self._load()

    async def stop(self) -> None:
        self.running = False

    def _load(self) -> None:
        assert self.config_file is not None
        self.servers = {
            (backend, name): server for backend, name, server in _servers(self.config_file)
        }

    async def runtime(self, commands: Sequence[str]) -> str:
        if not self.running:
            raise HaproxyError("admin socket: connection refused")
        out = []
        for command in commands:
            self.commands.append(command)
            out.append(self._one(command.split()))
        return "".join(out)

    def _one(self, words: list[str]) -> str:
        if len(words) < 4 or words[:2] != ["set", "server"] or "/" not in words[2]:
            return "Unknown command.\n"
        backend, _, name = words[2].partition("/")
        server = self.servers.get((backend, name))
        if server is None:
            return "No such server.\n"
        what, args = words[3], words[4:]
        if what == "addr" and args:
            old = server.addr
            server.addr = args[0]
            if len(args) >= 3 and args[1] == "port":
                server.port = int(args[2])
            return f"IP changed from '{old}' to '{server.addr}' by 'stats socket command'\n"
        if what == "weight" and args and args[0].isdigit() and int(args[0]) <= 256:
            server.weight = int(args[0])
            return "\n"
        if what == "state" and args and args[0] in ("ready", "maint", "drain"):
            server.ready = args[0] == "ready"
            return "\n"
        return "Require 'addr', 'weight' or 'state'.\n"

    def served(self, backend: str) -> list[tuple[str, int, int]]:
        """The endpoints in rotation in ``backend``: (address, port, weight), sorted."""
        return sorted(
            (s.addr, s.port, s.weight)
            for (b, _), s in self.servers.items()
            if b == backend and s.ready
        )


def _servers(config_file: Path) -> list[tuple[str, str, FakeServer]]:
    out = []
    backend = ""
    for line in config_file.read_text().splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] in ("backend", "frontend", "global", "defaults", "listen"):
            backend = words[1] if words[0] == "backend" and len(words) > 1 else ""
        elif words[0] == "server" and backend and len(words) >= 3:
            addr, _, port = words[2].rpartition(":")
            weight = int(words[words.index("weight") + 1]) if "weight" in words else 1
            out.append(
                (backend, words[1], FakeServer(addr, int(port), weight, "disabled" not in words))
            )
    return out


def check_config(config_file: Path, refuse: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    try:
        text = config_file.read_text()
    except OSError as e:
        return f"[ALERT] cannot open configuration file {config_file}: {e}"
    base = config_file.parent
    # HAProxy names the file and line of what it cannot parse.
    errors = [
        f"[ALERT] config : parsing [{config_file}:{n}] : cannot parse '{word}'"
        for word in sorted(refuse)
        for n, line in enumerate(text.splitlines(), 1)
        if word in line
    ]
    for n, line in enumerate(text.splitlines(), 1):
        for word in _REGEX.findall(line):
            regex = word[1:-1].replace("'\"'\"'", "'")
            if _PCRE2_REFUSES.search(regex):
                errors.append(
                    f"[ALERT] config : parsing [{config_file}:{n}] : error detected while parsing"
                    f" switching rule : regex '{regex}' is invalid (error=PCRE2 does not support"
                    " \\F, \\L, \\l, \\N{name}, \\U, or \\u)."
                )
    backends: list[str] = []
    used: set[str] = set()
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["backend"]:
            backends.append(words[1])
        elif words[:1] in (["use_backend"], ["default_backend"]):
            used.add(words[1])
        for m in _FILE_ARGS.finditer(line):
            rel = next(g for g in m.groups() if g)
            if not (base / rel).is_file():
                errors.append(f"[ALERT] '{rel}': no such file")
            elif m.group(2):
                for entry in (base / rel).read_text().splitlines():
                    if entry.strip() and not (base / entry.split()[0]).is_file():
                        errors.append(f"[ALERT] crt-list '{rel}': no such file {entry.split()[0]}")
    errors += [f"[ALERT] duplicate backend '{b}'" for b in set(backends) if backends.count(b) > 1]
    errors += [
        f"[ALERT] unable to find required backend '{b}'" for b in sorted(used - set(backends))
    ]
    return "\n".join(errors)
