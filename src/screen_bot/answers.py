"""Turn what people type (or a batch file holds) into a checked answer value.

``None`` is the answer *unknown*. Every rejection is an :class:`AnswerError` whose message
is one short line the user can act on.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .protocol.schema import Question

UNKNOWN_WORDS = frozenset(
    {"?", "unknown", "not known", "not known yet", "unsure", "dont know", "don't know", "skip"}
)
YES_WORDS = frozenset({"yes", "y", "true", "1"})
NO_WORDS = frozenset({"no", "n", "false", "0"})
_NUMBER = re.compile(
    r"^(?P<value>[+-]?\d+(?:[.,]\d*)?|[+-]?[.,]\d+)"
    r"(?:\s*/\s*(?P<uln>\d+(?:[.,]\d+)?))?\s*(?P<unit>.*)$"
)
_ULN_UNITS = {"x", "×", "xuln", "×uln", "uln", "timesuln"}


class AnswerError(ValueError):
    """An answer that does not fit its question."""


def is_unknown_text(text: str) -> bool:
    return " ".join(text.strip().lower().split()) in UNKNOWN_WORDS


def parse_text(question: Question, text: str) -> Any:
    """Parse a typed answer; raise :class:`AnswerError` with a one-line explanation."""
    cleaned = text.strip()
    if not cleaned:
        raise AnswerError("Please type an answer (or ? if it is not known).")
    if is_unknown_text(cleaned):
        return None
    if question.type == "yes_no":
        word = cleaned.lower()
        if word in YES_WORDS:
            return True
        if word in NO_WORDS:
            return False
        raise AnswerError("Please answer yes or no (or ? if it is not known).")
    if question.type == "choice":
        return _parse_choice(question, cleaned)
    return _parse_number(question, cleaned)


def check_value(question: Question, value: Any) -> Any:
    """Check an already-typed value (JSON batch input); ``None`` is unknown."""
    if value is None:
        return None
    if question.type == "yes_no":
        if isinstance(value, bool):
            return value
        raise AnswerError("expected true or false")
    if question.type == "choice":
        if isinstance(value, str) and value in (question.choices or []):
            return value
        raise AnswerError(f"expected one of {', '.join(question.choices or [])}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnswerError(f"expected a number{_range(question)}")
    return _in_range(question, value)


def _parse_choice(question: Question, text: str) -> str:
    choices = question.choices or []
    lowered = text.lower()
    exact = [c for c in choices if c.lower() == lowered]
    prefixed = [c for c in choices if c.lower().startswith(lowered)]
    if exact:
        return exact[0]
    if len(prefixed) == 1:
        return prefixed[0]
    raise AnswerError(f"Please answer one of: {', '.join(choices)}.")


def _unit_key(unit: str) -> str:
    return unit.lower().replace("μ", "u").replace("µ", "u").replace(" ", "").replace("micro", "u")


def _parse_number(question: Question, text: str) -> int | float:
    match = _NUMBER.match(text)
    if match is None:
        raise AnswerError(f"Please type a number{_range(question)}.")
    value = float(match["value"].replace(",", "."))
    unit = _unit_key(match["unit"])
    if match["uln"] is not None:
        if not question.uln_ratio:
            raise AnswerError(f"Please type one number{_range(question)}.")
        uln = float(match["uln"].replace(",", "."))
        if uln == 0:
            raise AnswerError("The upper limit of normal cannot be 0.")
        value /= uln
        unit = "" if unit in _ULN_UNITS or not unit else unit
        if unit:
            raise AnswerError("Type the value and its upper limit of normal, e.g. 45/40.")
    elif unit and not (question.uln_ratio and unit in _ULN_UNITS):
        value = _convert(question, value, unit)
    if question.type == "int":
        if value != int(value):
            raise AnswerError(f"Please type a whole number{_range(question)}.")
        value = int(value)
    return _in_range(question, value)


def _convert(question: Question, value: float, unit: str) -> float:
    if question.unit and unit == _unit_key(question.unit):
        return value
    for alt in question.also_accepts:
        if unit == _unit_key(alt.unit):
            return value / alt.divide_by
    accepted = [u for u in [question.unit, *(a.unit for a in question.also_accepts)] if u]
    if accepted:
        raise AnswerError(f"Unit not recognised; use {' or '.join(accepted)}.")
    raise AnswerError(f"Please type just the number{_range(question)}.")


def _in_range(question: Question, value: int | float) -> int | float:
    if not math.isfinite(value):
        raise AnswerError(f"expected a finite number{_range(question)}")
    if question.type == "int":
        if value != int(value):
            raise AnswerError(f"expected a whole number{_range(question)}")
        value = int(value)
    low, high = question.min, question.max
    if low is not None and high is not None and not low <= value <= high:
        raise AnswerError(f"{_fmt(value)} is out of range{_range(question)}.")
    return value


def _fmt(number: float) -> str:
    return f"{number:g}"


def _range(question: Question) -> str:
    if question.min is None or question.max is None:
        return ""
    unit = f" {question.unit}" if question.unit else ""
    return f" ({_fmt(question.min)}–{_fmt(question.max)}{unit})"
