"""Rows for the table of docs/benchmarks.md, printed by the benches after their own figures.

A bench takes the machine's state when it starts (``Machine.now()``: the date and the load
average of /proc/loadavg, which on a shared machine says more about a timing than anything
else) and ends by printing one table row per measure: area, measure, figure, target, met,
command, machine state. What else ran alongside is for the person pasting the row to add.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HEADER = (
    "| area | measure | figure | target | met | command | measured (UTC; load at start; alongside) |\n"
    "|---|---|---|---|---|---|---|"
)


@dataclass(frozen=True)
class Machine:
    date: str
    load: str

    @classmethod
    def now(cls) -> Machine:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        return cls(time.strftime("%Y-%m-%d %H:%M", time.gmtime()), load)

    def __str__(self) -> str:
        return f"{self.date}; load {self.load}"


@dataclass(frozen=True)
class Row:
    area: str
    measure: str
    figure: str
    target: str = ""
    met: bool | None = None

    def markdown(self, command: str, machine: Machine) -> str:
        met = {True: "yes", False: "no", None: "—"}[self.met]
        cells = (self.area, self.measure, self.figure, self.target or "—", met)
        return "| " + " | ".join((*cells, f"`{command}`", str(machine))) + " |"


def command_line(prefix: str, argv: list[str] | None = None) -> str:
    """The command as a reader reruns it: ``prefix`` and the arguments this run was given."""
    return " ".join([prefix, *(sys.argv[1:] if argv is None else argv)])


def print_rows(rows: Iterable[Row], command: str, machine: Machine) -> None:
    print(f"\nRows for docs/benchmarks.md:\n{HEADER}")
    for row in rows:
        print(row.markdown(command, machine))
