"""A referral is a short code, never a name or a date of birth: one rule, on every way in."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from itertools import product
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_runner import invoke
from screen_bot.errors import BadReferral
from screen_bot.protocol.catalog import Catalog
from screen_bot.quick_check import read
from screen_bot.referrals import check_referral
from screen_bot.session import REFERRAL_PATTERN
from screen_bot.settings import default_dialogs_dir

DATE_FORMATS = (
    *("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y_%m_%d"),
    *("%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y", "%d_%m_%Y", "%m/%d/%Y"),
)
SEPARATORS = "-/._"
ORDERS = ("%Y{}%m{}%d", "%d{}%m{}%Y", "%m{}%d{}%Y")  # month, day too: either way round
# Every order with any two separators, the same or not ("1961-03/04"); or none (19610304).
EVERY_FORM = tuple(
    order.format(first, second)
    for order in ORDERS
    for first, second in product(SEPARATORS, repeat=2)
)
COMPACT = tuple(order.format("", "") for order in ORDERS)  # eight digits only
# The month as a word (%b: its first three letters, %B: its name), with no separator too.
NAMED_ORDERS = ("%d{}{}{}%Y", "{}{}%d{}%Y", "%Y{}{}{}%d")
NAMED_FORMS = tuple(
    order.format(first, month, second)
    if order.startswith("%")
    else order.format(month, first, second)
    for order in NAMED_ORDERS
    for month in ("%b", "%B")
    for first, second in product(("", *SEPARATORS), repeat=2)
)
MONTH_WORDS = {date(2000, m, 1).strftime(f).lower() for m in range(1, 13) for f in ("%b", "%B")}
NAMES = ["Smith", "Jane.Doe", "Doe_Jane", "JDoe/1961-03-04", "R-04.03.1961", "3/25/1961"]
NAMES += ["R19610304", "1961-03/04"]  # a date of birth without separators, or mixed


def holds_a_date(label: str) -> bool:
    """Whether any stretch of ``label`` not inside a run of digits reads as a date from 1900 to
    this year in one of the formats, the month in digits or as a word in any case
    (strptime, not the rule's own reading)."""
    for start in range(len(label)):
        for end in range(start + 8, min(start + 17, len(label)) + 1):
            before, after = label[start - 1 : start], label[end : end + 1]
            stretch = label[start:end]
            # a run of digits is read whole; a month's word ends one ("0Jan012000")
            if (before.isdigit() and stretch[0].isdigit()) or (
                after.isdigit() and stretch[-1].isdigit()
            ):
                continue
            word = "".join(c for c in stretch if c.isalpha()).lower()
            forms = NAMED_FORMS if word in MONTH_WORDS else ()  # (strptime is slow)
            for form in forms or EVERY_FORM + (COMPACT if len(stretch) == 8 else ()):
                try:
                    year = datetime.strptime(stretch, form).year
                except ValueError:
                    continue
                if 1900 <= year <= date.today().year:
                    return True
    return False


def accepted(label: str) -> bool:
    try:
        check_referral(label)
    except BadReferral:
        return False
    return True


@pytest.mark.parametrize(
    "label",
    NAMES
    + ["R-2024/02/29", "P7-1961-3-4", "31-12-1999X", "R-1961.03.04", "R_1961_03_04"]
    # without separators, or with two different ones
    + ["19610304", "R19610304", "R-04031961", "1961-03/04", "04.03-1961", "R-3_4.1961"]
    # the month as a word: its first three letters or its name, in any case, run together too
    + ["4-Mar-1961", "4Mar1961", "Mar-04-1961", "1961-Mar-04", "04march1961", "March-4-1961"]
    + ["R-4.MAR.1961", "1961march4", "SEPT/30-sep-1999", "Feb29-2000", "31DEC1999X"],
)
def test_names_and_dates_of_birth_are_refused(label: str) -> None:
    with pytest.raises(BadReferral, match="at least one digit.*never a name or a date of birth"):
        check_referral(label)


@pytest.mark.parametrize(
    "label",
    ["R-0423", "R-7", "2024-001", "R-2023-02-29", "R-1961-13-45"]
    # site-subject-sequence codes whose year would be before 1900 or after this one
    + ["01-02-0003", "S01-02-0042", "7-3-9999", "R-10/11/0001"]
    # eight digits that are no date either way round, or more than eight; a year alone
    + ["R-12345678", "99999999", "R-119610304", "196103041", "2026-001", "BD-1961"]
    # a month's name with no day, no such day, a year out of range or in a longer number
    + ["MAR-2024-7", "DEC12", "JAN-2024", "2024-MAR", "Feb29-2001", "4-Mar-1899", "4-Mar-19610"]
    # a label cannot tell these from a code: a surname with digits, an NHS or a phone number
    + ["Smith12345", "9434765919", "07700900123"],
)
def test_codes_are_taken_as_given(label: str) -> None:
    assert check_referral(label) == label


def with_a_date(prefix: str, day: date, form: str, suffix: str) -> str:
    return prefix + day.strftime(form) + suffix


labels = st.from_regex(REFERRAL_PATTERN, fullmatch=True) | st.builds(
    with_a_date,
    st.from_regex(r"[A-Za-z0-9._/-]{0,6}", fullmatch=True),
    st.dates(date(1000, 1, 1), date(9999, 12, 31)),
    st.sampled_from(DATE_FORMATS + EVERY_FORM + COMPACT + NAMED_FORMS),
    st.from_regex(r"[A-Za-z0-9._/-]{0,6}", fullmatch=True),
)


@given(labels)
def test_every_label_taken_has_a_digit_and_no_date(label: str) -> None:
    shaped = re.fullmatch(REFERRAL_PATTERN, label) is not None
    wanted = shaped and any(c in "0123456789" for c in label) and not holds_a_date(label)
    assert accepted(label) == wanted


def written(day: date, order: str, separators: str, padded: bool) -> str:
    """``day`` in ``order`` (of Y, m, d), joined by ``separators`` (two, or none: eight
    digits); days and months of one digit unless ``padded`` (always, without separators)."""
    width = 2 if padded or not separators else 1
    part = {"Y": f"{day.year:04d}", "m": f"{day.month:0{width}d}", "d": f"{day.day:0{width}d}"}
    first, second, third = (part[letter] for letter in order)
    return first + separators[:1] + second + separators[1:] + third


@given(
    st.dates(date(1900, 1, 1), date.today()),
    st.sampled_from(("Ymd", "dmY", "mdY")),
    st.sampled_from(["", *("".join(pair) for pair in product(SEPARATORS, repeat=2))]),
    st.booleans(),
    st.from_regex(r"|[A-Za-z]|[A-Za-z0-9][A-Za-z0-9._/-]{0,4}[A-Za-z._/-]", fullmatch=True),
    st.from_regex(r"([A-Za-z._/-][A-Za-z0-9._/-]{0,5})?", fullmatch=True),
)
def test_a_date_of_birth_is_refused_however_it_is_written(
    day: date, order: str, separators: str, padded: bool, prefix: str, suffix: str
) -> None:
    label = prefix + written(day, order, separators, padded) + suffix
    assert re.fullmatch(REFERRAL_PATTERN, label), label  # a code's shape: refused for the date
    assert not accepted(label), label


MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July")
MONTH_NAMES += ("August", "September", "October", "November", "December")


@given(
    st.dates(date(1900, 1, 1), date.today()),
    st.sampled_from(("dBY", "BdY", "YBd")),
    st.booleans(),
    st.sampled_from((str.lower, str.upper, str.title, str.swapcase)),
    st.sampled_from(["", *SEPARATORS]),
    st.sampled_from(["", *SEPARATORS]),
    st.booleans(),
    st.from_regex(r"|[A-Za-z]|[A-Za-z0-9][A-Za-z0-9._/-]{0,4}[A-Za-z._/-]", fullmatch=True),
    st.from_regex(r"([A-Za-z._/-][A-Za-z0-9._/-]{0,5})?", fullmatch=True),
)
def test_a_date_of_birth_with_the_month_as_a_word_is_refused(
    day: date,
    order: str,
    short: bool,
    case: Callable[[str], str],
    first: str,
    second: str,
    padded: bool,
    prefix: str,
    suffix: str,
) -> None:
    name = MONTH_NAMES[day.month - 1]
    part = {
        "Y": f"{day.year:04d}",
        "B": case(name[:3] if short else name),
        "d": f"{day.day:02d}" if padded else str(day.day),
    }
    one, two, three = (part[letter] for letter in order)
    label = prefix + one + first + two + second + three + suffix
    assert re.fullmatch(REFERRAL_PATTERN, label), label  # a code's shape: refused for the date
    assert not accepted(label), label


@pytest.mark.parametrize("name", NAMES)
def test_a_name_is_refused_on_every_way_in(isolated: Path, name: str) -> None:
    ran = invoke("chat", "-p", "blina-dli", "--referral", name, stdin="40\n")
    assert ran.returncode == 2 and "never a name" in ran.stderr
    protocol = Catalog(default_dialogs_dir()).get("blina-dli")
    reading = read(protocol, f"ref {name}, age 40", date(2026, 1, 15))
    assert reading.referral is None and "never a name" in reading.unread[0].why
    Path("rows.csv").write_text(f"referral,age\n{name},40\nR-0423,40\n")
    Path("rows.jsonl").write_text(
        "".join(json.dumps({"referral": r, "age": 40}) + "\n" for r in (name, "R-0423"))
    )
    for rows in ("rows.csv", "rows.jsonl"):
        for engine in ("python", "duckdb"):
            ran = invoke("screen", rows, "-p", "blina-dli", "--engine", engine, "--format", "json")
            assert ran.returncode == 2, (rows, engine, ran)
            (screened,) = (json.loads(line) for line in ran.stdout.splitlines())
            assert screened["referral"] == "R-0423"
            assert "row 1: referral: " in ran.stderr and "never a name" in ran.stderr
