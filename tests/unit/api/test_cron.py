"""robfig/cron's ParseStandard and Next, as CronJobs use them: fields, names, steps, the
day-of-month/day-of-week rule, descriptors, time zones, and robfig's error messages."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest

from svcnet.api.cron import CronError, parse_standard, split_time_zone

UTC = datetime.UTC


def at(text: str, tz: datetime.tzinfo = UTC) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=tz)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("* * * * *", "2026-01-01T10:00:30", "2026-01-01T10:01:00"),
        ("* * * * *", "2026-01-01T10:00:00", "2026-01-01T10:01:00"),
        ("*/5 * * * *", "2026-01-01T10:01:00", "2026-01-01T10:05:00"),
        ("7/20 * * * *", "2026-01-01T10:30:00", "2026-01-01T10:47:00"),
        ("0 3 * * *", "2026-01-01T03:00:00", "2026-01-02T03:00:00"),
        ("0 0 1 * *", "2026-01-31T12:00:00", "2026-02-01T00:00:00"),
        ("30 6-16/4 * * 1-5", "2026-01-02T15:00:00", "2026-01-05T06:30:00"),  # Fri → Mon
        ("0 0 * * sun", "2026-01-01T00:00:00", "2026-01-04T00:00:00"),
        ("0 0 1 jan,jul *", "2026-02-01T00:00:00", "2026-07-01T00:00:00"),
        # Both day fields restricted: either may match (the 13th or a Friday).
        ("0 0 13 * 5", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),
        # One of them `*`: both must match (a Friday in February).
        ("0 0 * 2 5", "2026-01-01T00:00:00", "2026-02-06T00:00:00"),
        ("0 0 29 2 *", "2026-01-01T00:00:00", "2028-02-29T00:00:00"),
        ("@hourly", "2026-01-01T10:59:59", "2026-01-01T11:00:00"),
        ("@daily", "2026-01-01T10:00:00", "2026-01-02T00:00:00"),
        ("@weekly", "2026-01-01T00:00:00", "2026-01-04T00:00:00"),
        ("@monthly", "2026-01-15T00:00:00", "2026-02-01T00:00:00"),
        ("@yearly", "2026-01-15T00:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_next_activation(schedule: str, after: str, expected: str) -> None:
    assert parse_standard(schedule).next_after(at(after)) == at(expected)


def test_a_date_that_never_comes_has_no_next_time() -> None:
    assert parse_standard("0 0 30 2 *").next_after(at("2026-01-01T00:00:00")) is None


def test_the_schedule_is_read_in_the_zone_of_the_time_given() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    got = parse_standard("0 3 * * *").next_after(at("2026-06-01T12:00:00", UTC).astimezone(berlin))
    assert got is not None
    assert got.astimezone(UTC) == at("2026-06-02T01:00:00")  # 03:00 CEST


def test_a_wall_time_skipped_by_dst_is_passed_over() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    # 2026-03-29 02:30 does not exist in Berlin (clocks jump 02:00 → 03:00).
    got = parse_standard("30 2 * * *").next_after(at("2026-03-28T12:00:00", berlin))
    assert got == at("2026-03-30T02:30:00", berlin)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("61 * * * *", "end of range (61) above maximum (59): 61"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("5-2 * * * *", "beginning of range (5) beyond end of range (2): 5-2"),
        (
            "x * * * *",
            'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax',
        ),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ],
)
def test_robfigs_errors(schedule: str, message: str) -> None:
    with pytest.raises(CronError) as e:
        parse_standard(schedule)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("TZ=UTC * * * * *", ("UTC", "* * * * *")),
        ("CRON_TZ=Europe/Berlin 0 3 * * *", ("Europe/Berlin", "0 3 * * *")),
        ("0 3 * * *", (None, "0 3 * * *")),
    ],
)
def test_time_zone_prefix(spec: str, expected: tuple[str | None, str]) -> None:
    assert split_time_zone(spec) == expected
