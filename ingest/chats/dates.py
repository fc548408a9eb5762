"""Numeric dates as chat exports print them ("31.12.23, 23:59", "12/31/23 11:59 PM",
"2024/03/01 15:25:10"), where the day/month order is only knowable from the whole file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

_DATE = re.compile(r"(?<!\d)(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})(?!\d)")
_TIME = re.compile(r"(?<!\d)(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(?!\d)")
# AM/PM as locales print it (moment.js, WhatsApp): English with or without dots, Korean,
# Japanese, Chinese. The hour alone cannot tell 12-hour from 24-hour clocks.
_PM = re.compile(r"\b[Pp]\.?\s?[Mm]\b\.?|오후|午後|下午")
_AM = re.compile(r"\b[Aa]\.?\s?[Mm]\b\.?|오전|午前|上午")


@dataclass(frozen=True)
class RawStamp:
    """The numbers of a printed date and time, before the day/month order is decided."""

    first: int
    second: int
    third: int
    year_first: bool
    separator: str
    hour: int
    minute: int
    second_of_minute: int
    meridiem: str | None  # "am", "pm" or None for a 24-hour clock


def scan_stamp(text: str) -> RawStamp | None:
    date = _DATE.search(text)
    if date is None:
        return None
    time = _TIME.search(text, date.end())
    if time is None:
        return None
    tail = text[time.end() :]
    meridiem = "pm" if _PM.search(tail) or _PM.search(text[: time.start()][-4:]) else None
    if meridiem is None and (_AM.search(tail) or _AM.search(text[: time.start()][-4:])):
        meridiem = "am"
    return RawStamp(
        first=int(date.group(1)),
        second=int(date.group(3)),
        third=int(date.group(4)),
        year_first=len(date.group(1)) == 4,
        separator=date.group(2),
        hour=int(time.group(1)),
        minute=int(time.group(2)),
        second_of_minute=int(time.group(3) or 0),
        meridiem=meridiem,
    )


def guess_day_first(stamps: Iterable[RawStamp]) -> bool:
    """Decide DD/MM vs MM/DD for a whole file: any first field over 12 means day-first, any
    second field over 12 means month-first; with no such evidence, dotted dates are
    European (day-first) and slashed dates with AM/PM are American (month-first)."""
    stamps = [s for s in stamps if not s.year_first]
    if any(s.first > 12 for s in stamps):
        return True
    if any(s.second > 12 for s in stamps):
        return False
    american = any(s.separator == "/" and s.meridiem for s in stamps)
    return not american


def to_datetime(stamp: RawStamp, day_first: bool) -> datetime | None:
    """A naive datetime (the local wall-clock time the export printed), or None if the
    numbers do not form a real date."""
    if stamp.year_first:
        year, month, day = stamp.first, stamp.second, stamp.third
    elif day_first:
        day, month, year = stamp.first, stamp.second, stamp.third
    else:
        month, day, year = stamp.first, stamp.second, stamp.third
    if year < 100:
        year += 2000
    hour = stamp.hour
    if stamp.meridiem == "pm" and hour < 12:
        hour += 12
    elif stamp.meridiem == "am" and hour == 12:
        hour = 0
    try:
        return datetime(year, month, day, hour, stamp.minute, stamp.second_of_minute)
    except ValueError:
        return None
