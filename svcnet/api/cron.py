"""Cron schedules as a CronJob's ``spec.schedule`` holds them: robfig/cron v3's
``ParseStandard`` (what the CronJob controller and its validation use upstream).

Five fields (minute, hour, day of month, month, day of week) of comma lists of ``*``, ``?``,
``N``, ``A-B`` and ``…/STEP``, month and weekday names (``JAN``, ``MON``), and the
descriptors ``@yearly``/``@annually``/``@monthly``/``@weekly``/``@daily``/``@midnight``/
``@hourly``. ``@every`` is left out: it is robfig's, and a CronJob schedule of that form
is rare. Error texts are robfig's, since upstream's validation prints them.

Written here rather than taken from ``croniter``: the grammar is small, robfig's error
messages and its day-of-month/day-of-week rule (OR unless one of them is ``*``) are what
kubectl users see, and croniter differs on both. Pure: no clock; ``next_after`` takes the
time to start from.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

_STAR = 1 << 63  # robfig's starBit: the field was ``*`` or ``?`` (matters for day matching)


class CronError(ValueError):
    """A schedule robfig would not parse; the message is robfig's."""


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int]


_MONTHS = {
    n: i + 1
    for i, n in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_DAYS = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS = (
    _Bounds(0, 59, {}),  # minute
    _Bounds(0, 23, {}),  # hour
    _Bounds(1, 31, {}),  # day of month
    _Bounds(1, 12, _MONTHS),  # month
    _Bounds(0, 6, _DAYS),  # day of week
)
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# robfig stops looking after five years (a schedule such as Feb 30 never fires).
_SEARCH_YEARS = 5


@dataclass(frozen=True)
class Schedule:
    """Bit sets per field, as robfig's ``SpecSchedule``."""

    minute: int
    hour: int
    dom: int
    month: int
    dow: int

    def _day_matches(self, t: datetime.datetime) -> bool:
        dom_match = (1 << t.day) & self.dom != 0
        # Python's weekday() is Monday = 0; cron's is Sunday = 0.
        dow_match = (1 << ((t.weekday() + 1) % 7)) & self.dow != 0
        if self.dom & _STAR or self.dow & _STAR:
            return dom_match and dow_match
        return dom_match or dow_match

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first activation strictly after ``after`` (an aware datetime; the schedule is
        read in its time zone), or None if none within five years (robfig's zero time)."""
        tz = after.tzinfo
        t = after.replace(second=0, microsecond=0, tzinfo=None) + datetime.timedelta(minutes=1)
        limit = t.year + _SEARCH_YEARS
        while t.year <= limit:
            if not (1 << t.month) & self.month:
                t = (t.replace(day=1, hour=0, minute=0) + datetime.timedelta(days=32)).replace(
                    day=1
                )
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + datetime.timedelta(days=1)
                continue
            if not (1 << t.hour) & self.hour:
                t = t.replace(minute=0) + datetime.timedelta(hours=1)
                continue
            if not (1 << t.minute) & self.minute:
                t += datetime.timedelta(minutes=1)
                continue
            found = t.replace(tzinfo=tz)
            # A wall time skipped by a DST jump does not exist; robfig moves on past it.
            if found.astimezone(datetime.UTC).astimezone(tz).replace(tzinfo=None) != t:
                t += datetime.timedelta(minutes=1)
                continue
            return found
        return None


def _number(text: str, bounds: _Bounds) -> int:
    named = bounds.names.get(text.lower())
    if named is not None:
        return named
    if not text.isdigit():
        raise CronError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
        )
    return int(text)


def _range(expr: str, bounds: _Bounds) -> int:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    extra = 0
    if low_and_high[0] in ("*", "?"):
        start, end, extra = bounds.low, bounds.high, _STAR
    else:
        start = _number(low_and_high[0], bounds)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _number(low_and_high[1], bounds)
        else:
            raise CronError(f"too many hyphens: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], _Bounds(0, 0, {}))
        # "N/step" means "N-max/step".
        if single:
            end = bounds.high
        if step > 1:
            extra = 0
    elif len(range_and_step) > 2:
        raise CronError(f"too many slashes: {expr}")
    if start < bounds.low:
        raise CronError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise CronError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    bits = 0
    for value in range(start, end + 1, step):
        bits |= 1 << value
    return bits | extra


def _field(text: str, bounds: _Bounds) -> int:
    bits = 0
    for expr in text.split(","):
        bits |= _range(expr, bounds)
    return bits


def parse_standard(spec: str) -> Schedule:
    """robfig's ``ParseStandard``; raises :class:`CronError` with robfig's message.

    A ``TZ=``/``CRON_TZ=`` prefix is the caller's to handle (upstream's validation refuses it
    in a CronJob, the controller reads it): here it is an error, as for any unknown field."""
    if not spec:
        raise CronError("empty spec string")
    text = spec.strip()
    if text.startswith("@"):
        expanded = _DESCRIPTORS.get(text)
        if expanded is None:
            raise CronError(f"unrecognized descriptor: {text}")
        text = expanded
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise CronError(
            f"expected exactly {len(_FIELDS)} fields, found {len(fields)}: [{' '.join(fields)}]"
        )
    minute, hour, dom, month, dow = (_field(f, b) for f, b in zip(fields, _FIELDS, strict=True))
    return Schedule(minute, hour, dom, month, dow)


def split_time_zone(spec: str) -> tuple[str | None, str]:
    """``("Europe/Berlin", "0 3 * * *")`` for ``"CRON_TZ=Europe/Berlin 0 3 * * *"``; the zone
    is None without a prefix."""
    for prefix in ("TZ=", "CRON_TZ="):
        if spec.startswith(prefix):
            zone, _, rest = spec[len(prefix) :].partition(" ")
            return zone, rest.strip()
    return None, spec
