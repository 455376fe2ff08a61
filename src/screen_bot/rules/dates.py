"""Calendar arithmetic and typed date answers, counted from the screening date.

A ``date`` answer is a calendar date; a ``date or none`` answer is a date or :data:`NEVER`
("the event never happened"). Relative answers ("3 months ago") count from the screening
date, never from the wall clock, so a screening re-run later reads them the same way.
Every refusal is a :class:`DateError` whose message is one short line a coordinator can act
on.
"""

from __future__ import annotations

import calendar
import re
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta
from functools import lru_cache
from typing import Literal

from ..words import ascii_digits

NEVER = "none"
"""The value of a ``date or none`` answer meaning "the event never happened"."""

DateUnit = Literal["days", "weeks", "months", "years"]

EARLIEST_YEAR = 1900
_MAX_TEXT = 64  # longer than any date people type; keeps a pasted paragraph out of the regexes
_EXAMPLES = "write it like 14.08.2026, 2026-08-14, 14 Aug 2026 or 3 months ago"
_NEVER_WORDS = frozenset({"none", "never"})
# "no" is refused on purpose: in this bot "no" answers yes/no questions, and typed at "date
# of the most recent MI" it may as well mean "no date on record" (unknown) as "never had
# one". Reading it as never would turn missing data into a definite answer that can make a
# patient eligible, so the coordinator is asked to type "none" instead.
_AMBIGUOUS_NO = frozenset({"no", "n", "nope", "nil"})

# English names, not calendar.month_name: that one follows the process locale.
_MONTH_NAMES = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip
_MONTHS = {
    spelling: number
    for number, name in enumerate(_MONTH_NAMES, start=1)
    for spelling in (name, name[:3])
}
_MONTHS["sept"] = 9
_MONTH = "(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-9]{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>[0-9]+)"
_SEP = r"[ ./-]"

_ISO = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{1,2})-(?P<day>[0-9]{1,2})", re.ASCII)
_NUMERIC = re.compile(
    r"(?P<day>[0-9]{1,2})(?P<sep>[./-])(?P<month>[0-9]{1,2})(?P=sep)" + _YEAR, re.ASCII
)
_DAY_MONTH_NAME = re.compile(_DAY + _SEP + "?" + _MONTH + ",?" + _SEP + "?" + _YEAR, re.ASCII)
# Between the day and the year a separator is required: "aug 2026" is not 20 Aug 26.
_MONTH_NAME_DAY = re.compile(_MONTH + _SEP + "?" + _DAY + "(?:, ?|" + _SEP + ")" + _YEAR, re.ASCII)
_MONTH_YEAR = re.compile(_MONTH + _SEP + "?" + _YEAR, re.ASCII)

# A date whose comma belongs to it ("Aug 14, 2026", "14 Aug, 2026"): text split at commas
# (a quick check's values) keeps it whole.
_ANY_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ANY_DAY = r"[0-9]{1,2}(?:st|nd|rd|th)?"
DATE_WITH_COMMA = re.compile(
    rf"\b(?:{_ANY_MONTH}{_SEP}?{_ANY_DAY}|{_ANY_DAY}{_SEP}?{_ANY_MONTH}), *[0-9]{{4}}\b",
    re.ASCII | re.IGNORECASE,
)

_COUNT = r"(?P<count>[0-9]+|an?|one)"
_UNIT = r"(?P<unit>day|week|month|year)s?"
_AGO = re.compile(_COUNT + " ?" + _UNIT + " ago", re.ASCII)
_IN = re.compile("in " + _COUNT + " ?" + _UNIT, re.ASCII)
_NAMED_DAYS = {"today": 0, "yesterday": -1, "tomorrow": 1}


class DateError(ValueError):
    """A date answer that cannot be accepted; the message says what to type instead."""


def shift(day: date, amount: int, unit: DateUnit) -> date:
    """``day`` moved by ``amount`` units (negative: back in time).

    Months and years are calendar months: the same day number, or the target month's last
    day when that month is shorter (2026-01-31 + 1 month = 2026-02-28). Raises
    ``OverflowError`` when the result falls outside the years 1–9999.
    """
    if unit == "days":
        return day + timedelta(days=amount)
    if unit == "weeks":
        return day + timedelta(weeks=amount)
    if unit == "months":
        months = amount
    elif unit == "years":
        months = amount * 12
    else:
        raise ValueError(f"unknown unit {unit!r}; use days, weeks, months or years")
    year, month_index = divmod(day.year * 12 + day.month - 1 + months, 12)
    if not MINYEAR <= year <= MAXYEAR:
        raise OverflowError("date value out of range")
    month = month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def clamped_shift(day: date, amount: int, unit: DateUnit) -> date:
    """:func:`shift` for days tried as a clock: one that would leave the calendar (years
    1–9999) stops at its first or last day."""
    try:
        return shift(day, amount, unit)
    except OverflowError:
        return date.max if amount > 0 else date.min


_CYCLE = 146_097  # the days of 400 Gregorian years, after which the calendar repeats
_LAST = date.max.toordinal()


class OffCalendar:
    """A day before year 1 or after 9999: the end of a window moved past the calendar's end
    (``screening_date < last_mi_date + months(12)`` with the MI on 9999-12-30). It holds
    the day's count as :meth:`date.toordinal` would go on counting, and compares by it
    with dates and with its kind, as SQL compares such days: that window has not passed on
    9999-12-31. Not a date, so it is never a day to wait for."""

    __slots__ = ("ordinal",)

    def __init__(self, ordinal: int) -> None:
        self.ordinal = ordinal

    @staticmethod
    def _count(other: object) -> int | None:
        if isinstance(other, OffCalendar):
            return other.ordinal
        return other.toordinal() if isinstance(other, date) else None

    def __eq__(self, other: object) -> bool:
        count = self._count(other)
        return NotImplemented if count is None else self.ordinal == count

    def __lt__(self, other: object) -> bool:
        count = self._count(other)
        return NotImplemented if count is None else self.ordinal < count

    def __le__(self, other: object) -> bool:
        count = self._count(other)
        return NotImplemented if count is None else self.ordinal <= count

    def __gt__(self, other: object) -> bool:
        count = self._count(other)
        return NotImplemented if count is None else self.ordinal > count

    def __ge__(self, other: object) -> bool:
        count = self._count(other)
        return NotImplemented if count is None else self.ordinal >= count

    def __hash__(self) -> int:
        return hash(self.ordinal)

    def __repr__(self) -> str:
        year, month, day = _year_month_day(self.ordinal)
        return f"OffCalendar({year:05d}-{month:02d}-{day:02d})"


def window_shift(day: date | OffCalendar, amount: int, unit: DateUnit) -> date | OffCalendar:
    """:func:`shift` for evaluating rules: past the calendar (years 1–9999) the result is an
    :class:`OffCalendar` day, counted on as the calendar would go on, so an absurd date
    answer cannot crash a verdict and a window reaching past 9999 is not cut short."""
    if isinstance(day, date):
        try:
            return shift(day, amount, unit)
        except OverflowError:
            pass
    ordinal = day.toordinal() if isinstance(day, date) else day.ordinal
    if unit in ("days", "weeks"):
        ordinal += amount * (7 if unit == "weeks" else 1)
    elif unit in ("months", "years"):
        year, month, number = _year_month_day(ordinal)
        months = amount * 12 if unit == "years" else amount
        year, month_index = divmod(year * 12 + month - 1 + months, 12)
        days = calendar.monthrange(2000 + year % 400, month_index + 1)[1]  # same leap years
        ordinal = _ordinal(year, month_index + 1, min(number, days))
    else:
        raise ValueError(f"unknown unit {unit!r}; use days, weeks, months or years")
    return date.fromordinal(ordinal) if 1 <= ordinal <= _LAST else OffCalendar(ordinal)


def _ordinal(year: int, month: int, day: int) -> int:
    cycles = (year - 1) // 400  # whole 400-year cycles moved into the years 1–400
    return date(year - 400 * cycles, month, day).toordinal() + cycles * _CYCLE


def _year_month_day(ordinal: int) -> tuple[int, int, int]:
    cycles = (ordinal - 1) // _CYCLE
    day = date.fromordinal(ordinal - cycles * _CYCLE)
    return day.year + 400 * cycles, day.month, day.day


@lru_cache(maxsize=4096)
def remembered_shift(day: date | OffCalendar, amount: int, unit: DateUnit) -> date | OffCalendar:
    """:func:`window_shift`, remembered, for the compiled rules: a file of patients repeats
    the same dates (a transplant day, a month), and a shift by months looks the month up in
    the calendar. A module-level name, so a namespace holding it pickles by reference."""
    return window_shift(day, amount, unit)


def parse_date(
    text: str, screening_date: date, *, allow_none: bool = False, future: bool = False
) -> date | str:
    """A typed date answer: a ``date``, or :data:`NEVER` where ``allow_none``.

    ``future`` marks a planned date: it may lie after the screening date but not before it.
    Raises :class:`DateError` (and nothing else) for any text that is not accepted.
    """
    # other scripts' digits as a typed number's (٣ months ago, ３ months ago)
    cleaned = " ".join(ascii_digits(text).split()).lower().rstrip(".")
    if not cleaned:
        raise DateError(f"type a date: {_EXAMPLES}")
    if len(cleaned) > _MAX_TEXT:
        raise DateError(f"that is not a date; {_EXAMPLES}")
    if cleaned in _NEVER_WORDS:
        if allow_none:
            return NEVER
        raise DateError("this question needs a date; 'none' is not an answer here")
    if cleaned in _AMBIGUOUS_NO and allow_none:
        raise DateError("type 'none' if it never happened, or the date of the last one")
    value = _relative(cleaned, screening_date)
    if value is None:
        value = _absolute(cleaned, screening_date, future=future)
    return _checked(value, screening_date, future=future)


def parse_iso_date(
    value: object, screening_date: date, *, allow_none: bool, future: bool
) -> date | str:
    """A batch date value: a ``date``, an ISO ``YYYY-MM-DD`` string, or ``"none"`` if allowed."""
    expected = "expected a date as YYYY-MM-DD" + (" or none" if allow_none else "")
    if isinstance(value, datetime):
        raise DateError(f"{expected}, not a date and time")
    if isinstance(value, date):
        return _checked(value, screening_date, future=future)
    if not isinstance(value, str):
        raise DateError(expected)
    cleaned = value.strip()
    if cleaned.lower() == NEVER:
        if allow_none:
            return NEVER
        raise DateError(f"{expected}; none is not allowed here")
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", cleaned, re.ASCII)
    if match is None:
        raise DateError(expected)
    year, month, day = (int(part) for part in match.groups())
    return _checked(_calendar_date(year, month, day), screening_date, future=future)


def _relative(text: str, screening_date: date) -> date | None:
    """``today``, ``3 months ago``, ``in 2 weeks`` …; None when ``text`` is not relative."""
    if text in _NAMED_DAYS:
        return screening_date + timedelta(days=_NAMED_DAYS[text])
    sign = -1
    match = _AGO.fullmatch(text)
    if match is None:
        sign, match = 1, _IN.fullmatch(text)
    if match is None:
        return None
    count = 1 if match["count"] in ("a", "an", "one") else int(match["count"])
    unit: DateUnit = match["unit"] + "s"  # type: ignore[assignment]
    try:
        return shift(screening_date, sign * count, unit)
    except OverflowError:
        raise DateError(f"{count} {unit} is too far from the screening date") from None


def _absolute(text: str, screening_date: date, *, future: bool) -> date:
    if match := _ISO.fullmatch(text):
        year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
        if month > 12 and 1 <= day <= 12:
            raise DateError(f"write year-month-day: {year}-{day:02d}-{month:02d}")
        return _calendar_date(year, month, day)
    if match := _NUMERIC.fullmatch(text):
        day, month, sep = int(match["day"]), int(match["month"]), match["sep"]
        year = _full_year(match["year"], screening_date, future=future)
        if month > 12 and 1 <= day <= 12:
            raise DateError(f"dates are day first: {month:02d}{sep}{day:02d}{sep}{year}")
        return _calendar_date(year, month, day)
    match = _DAY_MONTH_NAME.fullmatch(text) or _MONTH_NAME_DAY.fullmatch(text)
    if match:
        year = _full_year(match["year"], screening_date, future=future)
        return _calendar_date(year, _MONTHS[match["month"]], int(match["day"]))
    if match := _MONTH_YEAR.fullmatch(text):
        name = _MONTH_NAMES[_MONTHS[match["month"]] - 1].capitalize()
        raise DateError(f"which day in {name}? e.g. 14 {name} {match['year']}")
    raise DateError(f"that is not a date; {_EXAMPLES}")


def _full_year(digits: str, screening_date: date, *, future: bool) -> int:
    """A four-digit year; two digits are refused with the century they most likely mean."""
    if len(digits) == 2:
        # The year nearest the screening date on the side the answer may lie.
        guess = screening_date.year // 100 * 100 + int(digits)
        if future and guess < screening_date.year:
            guess += 100
        elif not future and guess > screening_date.year:
            guess -= 100
        raise DateError(f"write the year in full: {guess}")
    if len(digits) != 4:
        raise DateError(f"write the year with four digits, e.g. {screening_date.year}")
    return int(digits)


def _calendar_date(year: int, month: int, day: int) -> date:
    if not 1 <= month <= 12:
        raise DateError(f"there is no month {month}")
    if year < EARLIEST_YEAR:
        raise DateError(f"{year} is before {EARLIEST_YEAR}; check the year")
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        name = _MONTH_NAMES[month - 1].capitalize()
        raise DateError(f"{name} {year} has {days} days, not {day}")
    return date(year, month, day)


def _checked(value: date, screening_date: date, *, future: bool) -> date:
    if value.year < EARLIEST_YEAR:
        raise DateError(f"{value.year} is before {EARLIEST_YEAR}; check the year")
    if future and value < screening_date:
        raise DateError(
            f"a planned date cannot be in the past: {value.isoformat()} is before "
            f"the screening date {screening_date.isoformat()}"
        )
    if not future and value > screening_date:
        raise DateError(
            f"{value.isoformat()} is after the screening date {screening_date.isoformat()}"
        )
    return value
