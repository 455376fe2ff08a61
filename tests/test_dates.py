"""Calendar arithmetic and typed date answers (rules/dates.py).

Expected dates are written out from the data dictionary's rule ("a date + 2 months is the
same day number two months later, or the month's last day when that month is shorter") and
a calendar, not computed by the module under test.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from screen_bot.rules.dates import (
    NEVER,
    DateError,
    DateUnit,
    parse_date,
    parse_iso_date,
    shift,
    window_shift,
)

SCREENED = date(2026, 11, 25)
EARLIEST = date(1900, 1, 1)
UNITS = ("days", "weeks", "months", "years")


def d(text: str) -> date:
    return date.fromisoformat(text)


# -- shift -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "amount", "unit", "expected"),
    [
        # the brief's and the dictionary's month-end rule
        ("2026-01-31", 1, "months", "2026-02-28"),
        ("2024-01-31", 1, "months", "2024-02-29"),
        ("2024-02-29", 1, "years", "2025-02-28"),
        ("2026-03-31", -1, "months", "2026-02-28"),
        ("2026-12-31", 2, "months", "2027-02-28"),
        ("2026-05-31", 1, "months", "2026-06-30"),
        ("2026-08-31", -2, "months", "2026-06-30"),
        # leap days, forward and back
        ("2024-02-29", 12, "months", "2025-02-28"),
        ("2024-02-29", -12, "months", "2023-02-28"),
        ("2024-02-29", -1, "years", "2023-02-28"),
        ("2024-02-29", 4, "years", "2028-02-29"),
        ("2024-02-29", 1, "months", "2024-03-29"),
        ("2024-02-29", -1, "months", "2024-01-29"),
        ("2023-02-28", 1, "years", "2024-02-28"),
        ("2025-02-28", -1, "years", "2024-02-28"),
        ("2024-02-28", 1, "days", "2024-02-29"),
        ("2023-02-28", 1, "days", "2023-03-01"),
        ("2024-03-01", -1, "days", "2024-02-29"),
        # year changes
        ("2026-12-15", 1, "months", "2027-01-15"),
        ("2026-01-15", -1, "months", "2025-12-15"),
        ("2026-11-30", 2, "months", "2027-01-30"),
        ("2026-12-31", 1, "days", "2027-01-01"),
        ("2026-01-01", -1, "weeks", "2025-12-25"),
        ("2026-01-10", -13, "months", "2024-12-10"),
        # the dictionary's windows: six weeks = 42 days
        ("2026-01-01", 6, "weeks", "2026-02-12"),
        ("2026-01-01", 42, "days", "2026-02-12"),
        # nothing to do
        ("2024-02-29", 0, "months", "2024-02-29"),
        ("2024-02-29", 0, "days", "2024-02-29"),
    ],
)
def test_shift(start: str, amount: int, unit: str, expected: str) -> None:
    assert shift(d(start), amount, unit) == d(expected)  # type: ignore[arg-type]


def step_months(year: int, month: int, count: int) -> tuple[int, int]:
    """The month ``count`` months on, one month at a time (independent of shift's divmod)."""
    step = 1 if count > 0 else -1
    for _ in range(abs(count)):
        month += step
        if month == 13:
            year, month = year + 1, 1
        elif month == 0:
            year, month = year - 1, 12
    return year, month


days_1900_2100 = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))


@given(days_1900_2100, st.integers(min_value=-600, max_value=600))
def test_shift_months_keeps_the_day_or_the_months_last_day(start: date, amount: int) -> None:
    result = shift(start, amount, "months")
    year, month = step_months(start.year, start.month, amount)
    assert (result.year, result.month) == (year, month)
    assert result.day == min(start.day, calendar.monthrange(year, month)[1])


@given(days_1900_2100, st.integers(min_value=-50, max_value=50))
def test_a_year_is_twelve_months(start: date, amount: int) -> None:
    assert shift(start, amount, "years") == shift(start, 12 * amount, "months")


@given(days_1900_2100, st.integers(min_value=-5000, max_value=5000))
def test_days_and_weeks_are_exact(start: date, amount: int) -> None:
    assert shift(start, amount, "days") == start + timedelta(days=amount)
    assert shift(start, amount, "weeks") == start + timedelta(days=7 * amount)
    assert shift(shift(start, amount, "days"), -amount, "days") == start


@given(days_1900_2100, days_1900_2100, st.integers(min_value=-600, max_value=600))
def test_shift_months_keeps_order(a: date, b: date, amount: int) -> None:
    early, late = min(a, b), max(a, b)
    assert shift(early, amount, "months") <= shift(late, amount, "months")


@given(days_1900_2100, st.integers(min_value=-600, max_value=600))
def test_months_there_and_back_never_overshoots(start: date, amount: int) -> None:
    back = shift(shift(start, amount, "months"), -amount, "months")
    assert back <= start
    if start.day <= 28:
        assert back == start


@pytest.mark.parametrize("unit", UNITS)
def test_shift_beyond_the_calendar_is_an_overflow(unit: str) -> None:
    with pytest.raises(OverflowError):
        shift(date(9999, 12, 31), 1, unit)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        shift(date(1, 1, 1), -1, unit)  # type: ignore[arg-type]


def test_shift_refuses_an_unknown_unit() -> None:
    with pytest.raises(ValueError, match="unknown unit"):
        shift(SCREENED, 1, "fortnights")  # type: ignore[arg-type]


# -- parse_date: accepted forms ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-08-14",
        "2026-8-14",
        "14.08.2026",
        "14/08/2026",
        "14-08-2026",
        "14.8.2026",
        "14 Aug 2026",
        "14 August 2026",
        "14 AUGUST 2026",
        "Aug 14 2026",
        "Aug 14, 2026",
        "August 14 2026",
        "14 aug. 2026",
        "14-AUG-2026",
        "14th Aug 2026",
        "  14.08.2026  ",
        "14  Aug   2026",
        "14.08.2026.",
    ],
)
def test_absolute_forms(text: str) -> None:
    assert parse_date(text, SCREENED) == date(2026, 8, 14)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 Sept 2026", "2026-09-03"),
        ("3 sep 2026", "2026-09-03"),
        ("5 May 2026", "2026-05-05"),
        ("May 5 2026", "2026-05-05"),
        ("1 Jan 1900", "1900-01-01"),
        ("29.02.2024", "2024-02-29"),
        ("25.11.2026", "2026-11-25"),
        ("2nd Mar 2026", "2026-03-02"),
        ("31 dec 2025", "2025-12-31"),
    ],
)
def test_absolute_dates(text: str, expected: str) -> None:
    assert parse_date(text, SCREENED) == d(expected)


@pytest.mark.parametrize(
    ("screened", "text", "expected"),
    [
        ("2026-11-25", "today", "2026-11-25"),
        ("2026-11-25", "TODAY", "2026-11-25"),
        ("2026-11-25", "yesterday", "2026-11-24"),
        ("2027-01-01", "yesterday", "2026-12-31"),
        ("2026-11-25", "1 day ago", "2026-11-24"),
        ("2026-11-25", "0 days ago", "2026-11-25"),
        ("2026-11-25", "3 days ago", "2026-11-22"),
        ("2026-03-01", "1 day ago", "2026-02-28"),
        ("2024-03-01", "1 day ago", "2024-02-29"),
        ("2026-11-25", "6 weeks ago", "2026-10-14"),
        ("2026-11-25", "a week ago", "2026-11-18"),
        ("2026-11-25", "one week ago", "2026-11-18"),
        ("2026-11-25", "2 months ago", "2026-09-25"),
        ("2026-03-31", "1 month ago", "2026-02-28"),
        ("2024-03-31", "a month ago", "2024-02-29"),
        ("2026-01-15", "2 months ago", "2025-11-15"),
        ("2026-11-25", "3months ago", "2026-08-25"),
        ("2026-11-25", "a year ago", "2025-11-25"),
        ("2026-11-25", "an year ago", "2025-11-25"),
        ("2024-02-29", "1 year ago", "2023-02-28"),
        ("2025-02-28", "1 year ago", "2024-02-28"),
        ("2026-11-25", "10 years ago", "2016-11-25"),
        ("2026-11-25", "  2   Weeks   Ago ", "2026-11-11"),
    ],
)
def test_relative_forms_count_from_the_screening_date(
    screened: str, text: str, expected: str
) -> None:
    assert parse_date(text, d(screened)) == d(expected)


@pytest.mark.parametrize(
    ("screened", "text", "expected"),
    [
        ("2026-11-25", "today", "2026-11-25"),
        ("2026-11-25", "tomorrow", "2026-11-26"),
        ("2026-12-31", "tomorrow", "2027-01-01"),
        ("2026-11-25", "in 3 days", "2026-11-28"),
        ("2026-11-25", "in a week", "2026-12-02"),
        ("2026-11-25", "in 2 weeks", "2026-12-09"),
        ("2026-01-31", "in 1 month", "2026-02-28"),
        ("2026-11-25", "in 3 months", "2027-02-25"),
        ("2024-02-29", "in a year", "2025-02-28"),
        ("2026-11-25", "14.08.2027", "2027-08-14"),
        ("2026-11-25", "25.11.2026", "2026-11-25"),
    ],
)
def test_planned_dates(screened: str, text: str, expected: str) -> None:
    assert parse_date(text, d(screened), future=True) == d(expected)


@pytest.mark.parametrize(
    ("text", "expected", "future"),
    [
        ("٣ months ago", "2026-08-25", False),
        ("３ months ago", "2026-08-25", False),
        ("٣months ago", "2026-08-25", False),
        ("١٠ days ago", "2026-11-15", False),
        ("in ٢ weeks", "2026-12-09", True),
        ("١٤.٠٨.٢٠٢٦", "2026-08-14", False),
        ("２０２６-０８-１４", "2026-08-14", False),
        ("١٤ Aug ٢٠٢٦", "2026-08-14", False),
    ],
)
def test_other_scripts_digits_are_read_as_in_a_number(
    text: str, expected: str, future: bool
) -> None:
    # "٣ months ago" was "that is not a date", where ٣ is read as 3 in a number
    assert parse_date(text, SCREENED, future=future) == d(expected)


@pytest.mark.parametrize("text", ["none", "None", " NEVER ", "never"])
def test_none_where_allowed(text: str) -> None:
    assert parse_date(text, SCREENED, allow_none=True) == NEVER


# -- parse_date: refusals ----------------------------------------------------------------------


def refused(text: str, screened: date = SCREENED, **options: bool) -> str:
    with pytest.raises(DateError) as info:
        parse_date(text, screened, **options)
    message = str(info.value)
    assert message.strip() and "\n" not in message, "one line that says something"
    return message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("08/14/2026", "dates are day first: 14/08/2026"),
        ("08.14.2026", "dates are day first: 14.08.2026"),
        ("1-31-2026", "dates are day first: 31-01-2026"),
        ("2026-14-08", "write year-month-day: 2026-08-14"),
        ("14.13.2026", "there is no month 13"),
        ("14.00.2026", "there is no month 0"),
        ("31.02.2026", "February 2026 has 28 days, not 31"),
        ("29.02.2025", "February 2025 has 28 days, not 29"),
        ("30 Feb 2024", "February 2024 has 29 days, not 30"),
        ("31.04.2026", "April 2026 has 30 days, not 31"),
        ("00.01.2026", "January 2026 has 31 days, not 0"),
        ("2026-02-30", "February 2026 has 28 days, not 30"),
        ("14.08.26", "write the year in full: 2026"),
        ("14/08/99", "write the year in full: 1999"),
        ("14 Aug 26", "write the year in full: 2026"),
        ("Aug 14, 26", "write the year in full: 2026"),
        ("14.08.202", "write the year with four digits, e.g. 2026"),
        ("14.08.20266", "write the year with four digits, e.g. 2026"),
        ("31.12.1899", "1899 is before 1900; check the year"),
        ("1899-12-31", "1899 is before 1900; check the year"),
        ("200 years ago", "1826 is before 1900; check the year"),
        ("Aug 2026", "which day in August? e.g. 14 August 2026"),
        ("14.08.2027", "2027-08-14 is after the screening date 2026-11-25"),
        ("26.11.2026", "2026-11-26 is after the screening date 2026-11-25"),
        ("tomorrow", "2026-11-26 is after the screening date 2026-11-25"),
        ("in 2 weeks", "2026-12-09 is after the screening date 2026-11-25"),
        ("none", "this question needs a date; 'none' is not an answer here"),
        ("never", "this question needs a date; 'none' is not an answer here"),
    ],
)
def test_refusals_say_why(text: str, message: str) -> None:
    assert refused(text) == message


def test_a_two_digit_year_for_a_planned_date_points_forward() -> None:
    assert refused("14.08.27", future=True) == "write the year in full: 2027"
    assert refused("14.08.26", date(2026, 1, 1), future=True) == "write the year in full: 2026"


@pytest.mark.parametrize("text", ["yesterday", "3 days ago", "24.11.2026", "2026-01-01"])
def test_a_planned_date_cannot_be_in_the_past(text: str) -> None:
    assert refused(text, future=True).startswith("a planned date cannot be in the past: ")
    assert "before the screening date 2026-11-25" in refused(text, future=True)


@pytest.mark.parametrize("text", ["no", "No", "n", "nope"])
def test_no_is_not_read_as_never(text: str) -> None:
    assert "type 'none' if it never happened" in refused(text, allow_none=True)
    assert refused(text).startswith("that is not a date")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "soon",
        "last week",
        "3 hours ago",
        "-3 days ago",
        "3 days",
        "14th",
        "2026",
        "14.08",
        "14.08-2026",
        "14 Augtober 2026",
        "x" * 500,
        "14.08.2026 " * 10,
    ],
)
def test_garbage_is_refused_with_examples(text: str) -> None:
    assert "14.08.2026" in refused(text)


@pytest.mark.parametrize(
    "text",
    [
        "999999999999999999 days ago",
        "999999999999999999 weeks ago",
        "999999999999999999 months ago",
        "999999999999999999 years ago",
        "99999999999999999999999999999999999999999999999999 days ago",
        "3000000 days ago",
    ],
)
def test_huge_counts_are_refused_not_overflowed(text: str) -> None:
    assert "too far from the screening date" in refused(text)


def test_huge_future_counts_are_refused() -> None:
    assert "too far" in refused("in 999999999999999999 years", future=True)


# -- parse_date: properties --------------------------------------------------------------------

DATE_BITS = st.sampled_from(
    [
        "0", "1", "12", "14", "29", "31", "00", "99", "2024", "2026", "1899", "9999", "0000",
        "999999999999999999", "-", ".", "/", " ", ",", "aug", "Sept", "feb.", "th", "ago",
        "day", "days", "weeks", "months", "years", "a", "an", "one", "in", "today", "tomorrow",
        "none", "no", "never", "²", "\u00a0", "\t", "\x00", "٣",
    ]
)  # fmt: skip
date_like_text = st.lists(DATE_BITS, max_size=8).map("".join)
screening_dates = st.dates(min_value=date(1901, 1, 1), max_value=date(2100, 12, 31))


@given(
    st.one_of(st.text(), date_like_text),
    screening_dates,
    st.booleans(),
    st.booleans(),
)
def test_parse_date_raises_only_date_errors(
    text: str, screened: date, allow_none: bool, future: bool
) -> None:
    try:
        value = parse_date(text, screened, allow_none=allow_none, future=future)
    except DateError as error:
        assert str(error).strip() and "\n" not in str(error)
        return
    if value == NEVER:
        assert allow_none
        return
    assert isinstance(value, date)
    assert value.year >= 1900
    assert value >= screened if future else value <= screened


MONTH_ABBREVIATIONS = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
]  # fmt: skip


def spellings(day: date) -> list[str]:
    month = MONTH_ABBREVIATIONS[day.month - 1]
    return [
        day.isoformat(),
        f"{day.day:02d}.{day.month:02d}.{day.year}",
        f"{day.day}/{day.month}/{day.year}",
        f"{day.day} {month} {day.year}",
        f"{month} {day.day}, {day.year}",
    ]


@given(st.dates(min_value=EARLIEST, max_value=date(2100, 12, 31)), screening_dates)
def test_a_date_after_the_screening_date_is_refused_unless_planned(
    day: date, screened: date
) -> None:
    for text in spellings(day):
        if day > screened:
            with pytest.raises(DateError, match="is after the screening date"):
                parse_date(text, screened)
            assert parse_date(text, screened, future=True) == day
        elif day < screened:
            assert parse_date(text, screened) == day
            with pytest.raises(DateError, match="a planned date cannot be in the past"):
                parse_date(text, screened, future=True)
        else:
            assert parse_date(text, screened) == parse_date(text, screened, future=True) == day


@given(screening_dates, st.integers(min_value=0, max_value=500), st.sampled_from(UNITS))
def test_n_units_ago_is_shift_back(screened: date, count: int, unit: str) -> None:
    expected = shift(screened, -count, unit)  # type: ignore[arg-type]
    if expected.year < 1900:
        assert "before 1900" in refused(f"{count} {unit} ago", screened)
    else:
        assert parse_date(f"{count} {unit} ago", screened) == expected


# -- parse_iso_date ----------------------------------------------------------------------------


def iso(value: object, **options: bool) -> date | str:
    return parse_iso_date(
        value,
        SCREENED,
        allow_none=options.get("allow_none", False),
        future=options.get("future", False),
    )


def iso_refused(value: object, **options: bool) -> str:
    with pytest.raises(DateError) as info:
        iso(value, **options)
    return str(info.value)


def test_iso_accepts_dates_iso_strings_and_none() -> None:
    assert iso(date(2026, 8, 14)) == date(2026, 8, 14)
    assert iso("2026-08-14") == date(2026, 8, 14)
    assert iso(" 2026-08-14 ") == date(2026, 8, 14)
    assert iso("2024-02-29") == date(2024, 2, 29)
    assert iso("none", allow_none=True) == NEVER
    assert iso("NONE", allow_none=True) == NEVER
    assert iso("2027-01-01", future=True) == date(2027, 1, 1)


@pytest.mark.parametrize(
    "value",
    ["14.08.2026", "2026-8-14", "20260814", "2026-W33-5", "today", "", 20260814, 2026.0, None,
     True, ["2026-08-14"], {"date": "2026-08-14"}],
)  # fmt: skip
def test_iso_refuses_other_forms_with_the_expected_one(value: object) -> None:
    assert iso_refused(value) == "expected a date as YYYY-MM-DD"
    assert iso_refused(value, allow_none=True) == "expected a date as YYYY-MM-DD or none"


def test_iso_refusals_say_why() -> None:
    assert iso_refused(datetime(2026, 8, 14, 9, 30)) == (
        "expected a date as YYYY-MM-DD, not a date and time"
    )
    assert iso_refused("none") == "expected a date as YYYY-MM-DD; none is not allowed here"
    assert iso_refused("2026-02-30") == "February 2026 has 28 days, not 30"
    assert iso_refused("2026-13-01") == "there is no month 13"
    assert iso_refused("1899-12-31") == "1899 is before 1900; check the year"
    assert iso_refused(date(1899, 12, 31)) == "1899 is before 1900; check the year"
    assert iso_refused("2026-11-26") == "2026-11-26 is after the screening date 2026-11-25"
    assert iso_refused(date(2027, 1, 1)) == "2027-01-01 is after the screening date 2026-11-25"
    assert iso_refused("2026-11-24", future=True).startswith("a planned date cannot be in the past")


batch_values = st.one_of(
    st.text(),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
    st.integers(),
    st.floats(),
    st.none(),
    st.booleans(),
    st.dates(),
    st.datetimes(),
)


@given(batch_values, st.booleans(), st.booleans())
def test_parse_iso_date_raises_only_date_errors(
    value: object, allow_none: bool, future: bool
) -> None:
    try:
        result = parse_iso_date(value, SCREENED, allow_none=allow_none, future=future)
    except DateError:
        return
    assert result == NEVER or isinstance(result, date)


@given(st.dates(min_value=EARLIEST, max_value=SCREENED))
def test_an_iso_date_parses_back_to_the_same_date(day: date) -> None:
    assert iso(day.isoformat()) == day
    assert parse_date(day.isoformat(), SCREENED) == day


def test_a_window_past_the_calendars_end_has_not_passed_on_its_last_day() -> None:
    # MI on 9999-12-30: the year after it ends on 10000-12-30, after 9999-12-31
    end = window_shift(date(9999, 12, 30), 12, "months")
    assert date.max < end and not end <= date.max and end != date.max
    assert repr(end) == "OffCalendar(10000-12-30)"
    assert window_shift(date(9999, 12, 31), 1, "days") < end
    assert window_shift(end, -12, "months") == date(9999, 12, 30)  # and back on the calendar
    # 10000 is a leap year (divisible by 400): Feb 29 exists, and Mar 31 - 1 month clamps to it
    assert repr(window_shift(date(9999, 3, 31), 11, "months")) == "OffCalendar(10000-02-29)"
    assert window_shift(date(9999, 12, 31), 1, "weeks") > window_shift(
        date(9999, 12, 31), 6, "days"
    )
    before = window_shift(date(1, 1, 1), -1, "days")
    assert before < date.min and repr(before) == "OffCalendar(00000-12-31)"
    assert window_shift(date(2026, 1, 31), 1, "months") == date(2026, 2, 28)


@given(
    day=st.dates(min_value=date(9000, 1, 1)),
    amount=st.integers(min_value=0, max_value=2400),
    unit=st.sampled_from(UNITS),
)
def test_a_shift_past_the_calendar_is_the_calendar_4000_years_earlier(
    day: date, amount: int, unit: DateUnit
) -> None:
    # the Gregorian calendar repeats every 400 years: past 9999 it goes on as 4000 years before
    far = window_shift(day, amount, unit)
    near = shift(day.replace(year=day.year - 4000), amount, unit)
    if isinstance(far, date):
        assert far == near.replace(year=near.year + 4000)
    else:
        assert repr(far) == f"OffCalendar({near.year + 4000:05d}-{near.month:02d}-{near.day:02d})"
