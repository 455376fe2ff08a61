"""The one check of a referral label: a short code, never a name or a date of birth.

Every way in (Telegram, the terminal, ``/check``, batch files) goes through
:func:`check_referral`. A label holds at least one digit (a code, not a surname such as
"Smith" or "Jane.Doe") and no full calendar date with a four-digit year (a date of birth
identifies a patient; years from 1900 to this one, so that codes such as 01-02-0003 stay
codes), separated (1961-03-04, also 1961-03/04) or not (19610304, 04031961), also with the
month's English name or its first three letters (4-Mar-1961, 04march1961, 1961-MAR-04).
A label cannot tell every identifier from a code: a number (a hospital or phone number) or
a surname with digits (Smith12345) reads as one and is taken. The shape
alone (``REFERRAL_PATTERN``) is what a stored label is checked against, so records and
screenings kept before this rule still read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from .errors import BadReferral
from .session import REFERRAL_PATTERN
from .words import REFERRAL_REFUSED

_REFERRAL = re.compile(REFERRAL_PATTERN)
_DIGIT = re.compile(r"[0-9]")
# Overlapping (a lookahead) so that "01-02-2024-05-06" is read as each of its dates; the
# two separators may differ ("1961-03/04" is as much a date of birth as "1961-03-04").
_YEAR_FIRST = re.compile(r"(?=(?<![0-9])([0-9]{4})[-/._]([0-9]{1,2})[-/._]([0-9]{1,2})(?![0-9]))")
_YEAR_LAST = re.compile(r"(?=(?<![0-9])([0-9]{1,2})[-/._]([0-9]{1,2})[-/._]([0-9]{4})(?![0-9]))")
# Written without separators: exactly eight digits (a longer run is a number, not a date).
_COMPACT = re.compile(r"(?<![0-9])[0-9]{8}(?![0-9])")
FIRST_YEAR = 1900  # of a date of birth
_MAYBE_DATE = re.compile(r"[0-9]{4}[-/._][0-9]|[0-9][-/._][0-9]{4}|[0-9]{8}")  # a first look
# A month written as a word (read in lower case): its English name or first three letters.
# The parts may also run together (4Mar1961); a code without a day (MAR-2024-7, DEC12) is none.
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_SEP = "[-/._]?"
# A first look: a month's first three letters before or after a year from 19xx or 20xx
# (so that codes such as SITE-0042 are not read further).
_MAYBE_NAMED = re.compile(
    r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[A-Za-z]*[-/._]?(?:[0-9]{1,2}[-/._]?)?"
    r"(?:19|20)[0-9]{2}|(?:19|20)[0-9]{2}[-/._]?(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
)
_NAMED_DAY_FIRST = re.compile(
    rf"(?=(?<![0-9])([0-9]{{1,2}}){_SEP}{_MONTH}{_SEP}([0-9]{{4}})(?![0-9]))"
)
_NAMED_MONTH_FIRST = re.compile(rf"(?={_MONTH}{_SEP}([0-9]{{1,2}}){_SEP}([0-9]{{4}})(?![0-9]))")
_NAMED_YEAR_FIRST = re.compile(
    rf"(?=(?<![0-9])([0-9]{{4}}){_SEP}{_MONTH}{_SEP}([0-9]{{1,2}})(?![0-9]))"
)


def check_referral(text: str) -> str:
    """The referral as given, or :class:`BadReferral` with the one wording for it."""
    if not _REFERRAL.fullmatch(text) or not _DIGIT.search(text) or holds_a_date(text):
        raise BadReferral(REFERRAL_REFUSED)  # (fullmatch: $ would let a final newline in)
    return text


def holds_a_date(text: str) -> bool:
    """Whether ``text`` holds a valid date from 1900 to this year as year, month, day or
    day, month, year (also month, day, year, as written in the US): separated by two of
    ``- / . _`` (the same or not; one-digit days and months too), or eight digits without
    separators standing alone (19610304, 04031961, 03041961); or with the month as a word
    (its name or first three letters, any case), separated or not (4-Mar-1961, 4Mar1961,
    March-4-1961, 1961mar04)."""
    # (every row of a batch file is checked: most labels are ruled out by a first look)
    if _MAYBE_DATE.search(text) and any(_valid(*read) for read in _readings(text)):
        return True
    if "19" not in text and "20" not in text:  # no year from 1900 on (cheaper than a search)
        return False
    return bool(_MAYBE_NAMED.search(text)) and any(_valid(*read) for read in _named_readings(text))


def _readings(text: str) -> Iterator[tuple[str, str, str]]:
    """Every (year, month, day) a part of ``text`` may be written as, in digits."""
    for match in _YEAR_FIRST.finditer(text):
        yield match.group(1), match.group(2), match.group(3)
    for match in _YEAR_LAST.finditer(text):
        first, second, year = match.groups()
        yield year, second, first
        yield year, first, second
    for digits in _COMPACT.findall(text):
        yield digits[:4], digits[4:6], digits[6:]
        yield digits[4:], digits[2:4], digits[:2]
        yield digits[4:], digits[:2], digits[2:4]


def _named_readings(text: str) -> Iterator[tuple[str, str, str]]:
    """Every (year, month, day) a part of ``text`` may be written as, the month as a word."""
    lowered = text.lower()
    for match in _NAMED_DAY_FIRST.finditer(lowered):
        day, month, year = match.groups()
        yield year, _month_number(month), day
    for match in _NAMED_MONTH_FIRST.finditer(lowered):
        month, day, year = match.groups()
        yield year, _month_number(month), day
    for match in _NAMED_YEAR_FIRST.finditer(lowered):
        year, month, day = match.groups()
        yield year, _month_number(month), day


def _month_number(name: str) -> str:
    return str(_MONTHS.index(name[:3]) + 1)


def _valid(year: str, month: str, day: str) -> bool:
    try:
        written = date(int(year), int(month), int(day))
    except ValueError:
        return False
    return FIRST_YEAR <= written.year <= date.today().year
