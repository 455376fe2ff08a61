"""A referral is a short code, never a name or a date of birth: one rule, on every way in."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
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
US_ORDER = ("%m.%d.%Y", "%m-%d-%Y", "%m_%d_%Y")  # refused too: day and month either way round
NAMES = ["Smith", "Jane.Doe", "Doe_Jane", "JDoe/1961-03-04", "R-04.03.1961", "3/25/1961"]


def holds_a_date(label: str) -> bool:
    """Whether any stretch of ``label`` between non-digits reads as a date from 1900 to
    this year in one of the formats (strptime, not the rule's own reading)."""
    for start in range(len(label)):
        for end in range(start + 8, len(label) + 1):
            before, after = label[start - 1 : start], label[end : end + 1]
            if before.isdigit() or after.isdigit():
                continue
            for form in DATE_FORMATS + US_ORDER:
                try:
                    year = datetime.strptime(label[start:end], form).year
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
    NAMES + ["R-2024/02/29", "P7-1961-3-4", "31-12-1999X", "R-1961.03.04", "R_1961_03_04"],
)
def test_names_and_dates_of_birth_are_refused(label: str) -> None:
    with pytest.raises(BadReferral, match="at least one digit.*never a name or a date of birth"):
        check_referral(label)


@pytest.mark.parametrize(
    "label",
    ["R-0423", "R-7", "2024-001", "R-2023-02-29", "R-1961-13-45"]
    # site-subject-sequence codes whose year would be before 1900 or after this one
    + ["01-02-0003", "S01-02-0042", "7-3-9999", "R-10/11/0001"],
)
def test_codes_are_taken_as_given(label: str) -> None:
    assert check_referral(label) == label


def with_a_date(prefix: str, day: date, form: str, suffix: str) -> str:
    return prefix + day.strftime(form) + suffix


labels = st.from_regex(REFERRAL_PATTERN, fullmatch=True) | st.builds(
    with_a_date,
    st.from_regex(r"[A-Za-z0-9._/-]{0,6}", fullmatch=True),
    st.dates(date(1000, 1, 1), date(9999, 12, 31)),
    st.sampled_from(DATE_FORMATS),
    st.from_regex(r"[A-Za-z0-9._/-]{0,6}", fullmatch=True),
)


@given(labels)
def test_every_label_taken_has_a_digit_and_no_date(label: str) -> None:
    shaped = re.fullmatch(REFERRAL_PATTERN, label) is not None
    wanted = shaped and any(c in "0123456789" for c in label) and not holds_a_date(label)
    assert accepted(label) == wanted


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
