"""An HAProxy configuration as a value, and the Runtime API commands between two of them. Pure.

What a controller computes and :mod:`svcnet.dataplane.haproxy` applies: the files of one
configuration, its ``structure`` (the files with the servers' addresses, weights and states left
out: what a reload depends on) and the server slots with what each holds now.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAIN_FILE = "haproxy.cfg"


@dataclass(frozen=True, slots=True, order=True)
class ServerSlot:
    """One ``server`` line of a backend and what it holds; ``addr == ""`` is a free slot."""

    backend: str
    server: str
    addr: str = ""
    port: int = 0
    weight: int = 1

    @property
    def enabled(self) -> bool:
        return bool(self.addr)


@dataclass(frozen=True)
class HaproxyConfig:
    files: Mapping[str, bytes]  # relative path → content; MAIN_FILE is the configuration
    structure: bytes  # everything a reload depends on (no server addresses)
    servers: tuple[ServerSlot, ...] = ()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.structure).hexdigest()


def runtime_commands(old: Sequence[ServerSlot], new: Sequence[ServerSlot]) -> list[str]:
    """The Runtime API commands that take the slots from ``old`` to ``new`` (same structure)."""
    before = {(s.backend, s.server): s for s in old}
    out: list[str] = []
    for s in new:
        prev = before.get((s.backend, s.server))
        if prev == s:
            continue
        target = f"{s.backend}/{s.server}"
        if not s.enabled:
            if prev is None or prev.enabled:
                out.append(f"set server {target} state maint")
            continue
        moved = prev is None or (prev.addr, prev.port) != (s.addr, s.port)
        if moved and prev is not None and prev.enabled:
            # A slot handed to another endpoint leaves rotation before its address changes.
            out.append(f"set server {target} state maint")
        if moved:
            out.append(f"set server {target} addr {s.addr} port {s.port}")
        if prev is None or prev.weight != s.weight:
            out.append(f"set server {target} weight {s.weight}")
        if moved or prev is None or not prev.enabled:
            out.append(f"set server {target} state ready")
    return out


# Answer lines of "set server" that mean it did what was asked; a successful state or weight
# change answers nothing, so any other line is an error ("No such server.", …).
_OK_ANSWERS = ("IP changed from", "no need to change", "port changed from")


def refused_answers(answers: str) -> list[str]:
    return [
        line
        for line in (raw.strip() for raw in answers.splitlines())
        if line and not line.startswith(_OK_ANSWERS)
    ]
