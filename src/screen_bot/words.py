"""Wording shared by every front end (terminal, Telegram, quiz, exports), said once."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date

VERDICT_HEADLINE = {
    "eligible": "PRE-SCREEN PASSED: eligible on every criterion checked. "
    "The investigator must still confirm eligibility.",
    "not_eligible": "NOT ELIGIBLE",
    "unresolved": "UNRESOLVED: nothing failed, but some answers are still open",
}
# the start of each line after a block's first (a reason's quote and outlook, a quote's
# own line breaks): a message is split between blocks, never inside one
INDENT = "   "
VERDICT_NAME = {"eligible": "ELIGIBLE", "not_eligible": "NOT ELIGIBLE", "unresolved": "UNRESOLVED"}
# A failure that may pass: on a retest (labs, LVEF, QTc) or later (time-based criteria).
RECOVERY = {"retest": "may pass on a retest", "wait": "may pass later"}
NO_RECOVERY = "will not pass later"  # the dictionary's "may pass later: no"
# Why an unresolved verdict stays open.
OPEN_KIND = {
    "missing": "missing data",
    "judgment": "investigator judgment",
    "confirm": "to confirm by measurement",
}
REFERRAL_RULE = (
    "a short code with at least one digit, such as R-0423 (letters, digits, . _ / -; no "
    "spaces, at most 32 characters), never a name or a date of birth"
)
REFERRAL_REFUSED = f"The referral must be {REFERRAL_RULE}."
NOT_KEPT = "Stopped; this screening was not finished and is not kept."
# What the terminal dialog reads as a command, never as an answer (Telegram's are /commands).
QUIT_WORDS = frozenset({"quit", "exit", "q"})
TERMINAL_COMMANDS = QUIT_WORDS | {"help", "h", "back", "restart"}


def meets_from_text(meets_from: date, anchor: str | None) -> str:
    """When a failure may pass: ``from 2026-01-31`` (a screening date), or ``when
    planned_infusion_date is on or after 2026-02-21`` (a date among the answers: a screening
    before that day can pass, with that date planned)."""
    if anchor:
        return f"when {anchor} is on or after {meets_from.isoformat()}"
    return f"from {meets_from.isoformat()}"


def open_from_text(meets_from: date, anchor: str | None, open_on: Sequence[str]) -> str:
    """When a failure no longer fails but is not met: ``no longer fails when
    planned_infusion_date is on or after 2026-01-20, then open until
    marrow_relapse_after_allo_hsct is known`` (an answer still unknown keeps it open)."""
    known = "is known" if len(open_on) == 1 else "are known"
    return (
        f"no longer fails {meets_from_text(meets_from, anchor)}, "
        f"then open until {', '.join(open_on)} {known}"
    )


# The Arabic decimal and thousands separators, as the marks typed with ASCII digits
_ARABIC_MARKS = str.maketrans({"\u066b": ".", "\u066c": ","})


def ascii_digits(text: str) -> str:
    """``text`` with the digits of other scripts (``１２``, ``١٢``) as ASCII digits and the
    Arabic decimal and thousands separators (``٫``, ``٬``) as ``.`` and ``,``: what is
    typed in another script is read as the same text in ASCII (numbers, dates)."""
    if text.isascii():
        return text
    digits = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    return digits.translate(_ARABIC_MARKS)


def sentence(text: str) -> str:
    """``text`` ending with a full stop, unless it ends a sentence already (``?``, ``!``,
    ``.``): a message with more after it (``… — did you mean µmol/L? Type it again``)."""
    return text if text.endswith((".", "?", "!")) else f"{text}."


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 case``, ``2 cases``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def printable(text: str) -> str:
    """``text`` with each character a terminal would act on (escape sequences, bell, line
    breaks) written as its escape, as :func:`repr` writes it: input quoted back is shown,
    never run."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def quoted(text: str, limit: int = 60) -> str:
    """Input quoted back in a message: at most ``limit`` characters of it, :func:`printable`."""
    return printable(text if len(text) <= limit else text[: limit - 1] + "…")
