"""A checklist step answered by typing (the terminal; the bot takes it too).

The user types the exceptions to the checklist's default: for ``none_apply`` the numbers
of the items that apply, for ``all_hold`` those that do not hold; ``0`` (or ``none`` /
``no``, resp. ``all`` / ``yes``) when there are none; ``3?`` marks item 3 unknown; ``?``
alone marks every item unknown. Numbers may be separated by spaces or commas; an item
given twice must be marked the same way both times.
"""

from __future__ import annotations

import re

from .answers import AnswerError, is_unknown_text, typed_form
from .protocol.schema import Checklist

NO_EXCEPTION = {
    "none_apply": frozenset({"0", "none", "no", "nothing", "none of these", "n", "нет"}),
    "all_hold": frozenset({"0", "all", "yes", "all hold", "all of these", "y", "да"}),
}
_TOKEN = re.compile(r"^(?P<number>\d{1,3})(?P<unknown>\?)?$")


def parse_checklist(checklist: Checklist, count: int, text: str) -> list[bool | None]:
    """The answers of a checklist step of ``count`` items, from what the user typed."""
    cleaned = typed_form(text)
    if is_unknown_text(cleaned):
        return [None] * count
    answers: list[bool | None] = [checklist.default] * count
    if cleaned in NO_EXCEPTION[checklist.mode]:
        return answers
    tokens = [t for t in re.split(r"[\s,;]+", cleaned) if t]
    exceptions = "apply" if checklist.mode == "none_apply" else "do not hold"
    given: dict[int, bool | None] = {}
    for token in tokens:
        match = _TOKEN.match(token)
        number = int(match["number"]) if match else 0
        if match is None or not 1 <= number <= count:
            raise AnswerError(
                f"Please type the numbers (1–{count}) of those that {exceptions}, 0 if none; "
                "3? marks one unknown, ? all unknown."
            )
        mark = None if match["unknown"] else not checklist.default
        if given.get(number, mark) != mark:
            raise AnswerError(
                f"Item {number} is given twice, once with ? and once without: "
                f"type it once, {number} or {number}?."
            )
        given[number] = mark
        answers[number - 1] = mark
    return answers
