"""Calendar arithmetic (placeholder until the leaves branch lands)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Literal

NEVER = "none"
WindowUnit = Literal["days", "weeks", "months", "years"]


def shift(day: date, amount: int, unit: WindowUnit) -> date:
    if unit == "days":
        return day + timedelta(days=amount)
    if unit == "weeks":
        return day + timedelta(weeks=amount)
    months = amount * (12 if unit == "years" else 1)
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


class DateError(ValueError):
    pass


def parse_date(text: str, screening_date: date, *, allow_none: bool = False, future: bool = False):  # type: ignore[no-untyped-def]
    cleaned = text.strip().lower()
    if allow_none and cleaned in ("none", "never"):
        return NEVER
    if cleaned == "today":
        return screening_date
    try:
        day = date.fromisoformat(cleaned)
    except ValueError:
        raise DateError("Please type a date, e.g. 2026-08-14") from None
    return _check(day, screening_date, future)


def parse_iso_date(value: object, screening_date: date, *, allow_none: bool = False, future: bool = False):  # type: ignore[no-untyped-def]
    if isinstance(value, date):
        return _check(value, screening_date, future)
    if isinstance(value, str):
        if allow_none and value.strip().lower() == "none":
            return NEVER
        try:
            return _check(date.fromisoformat(value.strip()), screening_date, future)
        except ValueError:
            pass
    raise DateError("expected a date as YYYY-MM-DD" + (" or none" if allow_none else ""))


def _check(day: date, screening_date: date, future: bool) -> date:
    if not future and day > screening_date:
        raise DateError(f"{day} is after the screening date {screening_date}")
    if future and day < screening_date:
        raise DateError("a planned date cannot be in the past")
    return day


def format_date(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
