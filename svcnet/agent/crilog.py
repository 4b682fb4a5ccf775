"""Container log files in the CRI format, what containerd writes and kubelet reads.

Each entry is one line: ``<RFC3339Nano time> <stdout|stderr> <F|P> <content>\\n``. ``F`` ends a
line of the container's output; a line longer than :data:`MAX_LINE` bytes (or output still
without its newline when the stream ends) is cut into ``P`` (partial) entries, as
containerd's ``cio`` does. The time is when the agent read the bytes, so ``kubectl logs
--timestamps`` shows it per line and ``--since``/``--sinceTime`` select lines by it.

Pure: :class:`LineWriter` turns output chunks into entries, :func:`parse` and :func:`render`
serve ``kubectl logs`` (kubelet's ``ReadLogs``: since, tail, timestamps, limitBytes).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

MAX_LINE = 16 * 1024  # containerd's bufio size for a log line
STDOUT, STDERR = "stdout", "stderr"


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: nanoseconds with trailing zeros trimmed."""
    seconds, frac = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def parse_time(text: str) -> int:
    """An RFC 3339 time (any fraction, Z or an offset) as Unix nanoseconds."""
    head, _, rest = text.partition(".")
    frac = ""
    zone = ""
    if rest:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, zone = rest[:i], rest[i:]
    else:
        for sep in ("Z", "+", "-"):
            idx = head.rfind(sep, 10)
            if idx > 0:
                head, zone = head[:idx], head[idx:]
                break
    zone = "+00:00" if zone in ("Z", "z", "") else zone
    when = datetime.datetime.fromisoformat(head + zone)
    return int(when.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])


@dataclass(frozen=True)
class Entry:
    time_ns: int
    time: str
    stream: str
    partial: bool
    content: bytes

    def output(self, timestamps: bool) -> bytes:
        """What kubectl logs shows: a full line gets its newline back."""
        body = self.content if self.partial else self.content + b"\n"
        return (self.time.encode() + b" " + body) if timestamps else body


class LineWriter:
    """One stream's bytes → CRI entries (bytes to append to the file)."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self._pending = b""

    def _entry(self, ns: int, content: bytes, partial: bool) -> bytes:
        tag = b" P " if partial else b" F "
        return rfc3339nano(ns).encode() + b" " + self.stream.encode() + tag + content + b"\n"

    def feed(self, data: bytes, now_ns: int) -> bytes:
        buf = self._pending + data
        out = []
        while True:
            nl = buf.find(b"\n", 0, MAX_LINE + 1)
            if nl >= 0:
                out.append(self._entry(now_ns, buf[:nl], False))
                buf = buf[nl + 1 :]
            elif len(buf) > MAX_LINE:
                out.append(self._entry(now_ns, buf[:MAX_LINE], True))
                buf = buf[MAX_LINE:]
            else:
                break
        self._pending = buf
        return b"".join(out)

    def close(self, now_ns: int) -> bytes:
        """The stream ended: output left without a newline is a last (partial) entry."""
        rest, self._pending = self._pending, b""
        return self._entry(now_ns, rest, True) if rest else b""


def parse(data: bytes) -> tuple[list[Entry], int]:
    """The complete entries at the start of ``data`` and how many bytes they took."""
    entries = []
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl]
        pos = nl + 1
        parts = line.split(b" ", 3)
        if len(parts) < 3:
            continue  # not an entry (a file written by something else): skipped, as kubelet
        stamp = parts[0].decode(errors="replace")
        try:
            ns = parse_time(stamp)
        except ValueError:
            continue
        content = parts[3] if len(parts) == 4 else b""
        entries.append(Entry(ns, stamp, parts[1].decode(), parts[2] == b"P", content))
    return entries, pos


def select(entries: Iterable[Entry], since_ns: int | None, tail: int | None) -> list[Entry]:
    """kubelet's order: the last ``tail`` entries of the file, then those not before ``since``."""
    chosen = list(entries)
    if tail is not None:
        chosen = chosen[-tail:] if tail > 0 else []
    if since_ns is not None:
        chosen = [e for e in chosen if e.time_ns >= since_ns]
    return chosen
