"""The one check of a referral label: a short code, never a name or a date of birth.

Every way in (Telegram, the terminal, ``/check``, batch files) goes through
:func:`check_referral`. A label holds at least one digit (a code, not a surname such as
"Smith" or "Jane.Doe") and no full calendar date with a four-digit year (a date of birth
identifies a patient; years from 1900 to this one, so that codes such as 01-02-0003 stay
codes). The shape alone (``REFERRAL_PATTERN``) is what a stored label is
checked against, so records and screenings kept before this rule still read.
"""

from __future__ import annotations

import re
from datetime import date

from .errors import BadReferral
from .session import REFERRAL_PATTERN
from .words import REFERRAL_REFUSED

_REFERRAL = re.compile(REFERRAL_PATTERN)
_DIGIT = re.compile(r"[0-9]")
# Overlapping (a lookahead) so that "01-02-2024-05-06" is read as each of its dates.
_YEAR_FIRST = re.compile(r"(?=(?<![0-9])([0-9]{4})([-/._])([0-9]{1,2})\2([0-9]{1,2})(?![0-9]))")
_YEAR_LAST = re.compile(r"(?=(?<![0-9])([0-9]{1,2})([-/._])([0-9]{1,2})\2([0-9]{4})(?![0-9]))")
FIRST_YEAR = 1900  # of a date of birth
_MAYBE_DATE = re.compile(r"[0-9]{4}[-/._][0-9]|[0-9][-/._][0-9]{4}")  # a cheap first look


def check_referral(text: str) -> str:
    """The referral as given, or :class:`BadReferral` with the one wording for it."""
    if not _REFERRAL.fullmatch(text) or not _DIGIT.search(text) or holds_a_date(text):
        raise BadReferral(REFERRAL_REFUSED)  # (fullmatch: $ would let a final newline in)
    return text


def holds_a_date(text: str) -> bool:
    """Whether ``text`` holds a valid date from 1900 to this year as year, month, day or
    day, month, year (also month, day, year, as written in the US), separated by one of
    ``- / . _`` used twice; one-digit days and months too."""
    if _MAYBE_DATE.search(text) is None:  # (every row of a batch file is checked)
        return False
    for year, _, month, day in (m.groups() for m in _YEAR_FIRST.finditer(text)):
        if _valid(year, month, day):
            return True
    for first, _, second, year in (m.groups() for m in _YEAR_LAST.finditer(text)):
        if _valid(year, second, first) or _valid(year, first, second):
            return True
    return False


def _valid(year: str, month: str, day: str) -> bool:
    try:
        written = date(int(year), int(month), int(day))
    except ValueError:
        return False
    return FIRST_YEAR <= written.year <= date.today().year
