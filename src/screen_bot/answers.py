"""Turn what people type (or a batch file holds) into a checked answer value.

``None`` is the answer *unknown*. Every rejection is an :class:`AnswerError` whose message
is one short line the user can act on. Dates are checked against the screening date:
relative forms ("3 months ago") count from it, and a date after it is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from .protocol.schema import Question
from .rules.dates import EARLIEST_YEAR, NEVER, DateError, parse_date, parse_iso_date
from .rules.units import spoken_unit_key
from .words import ascii_digits, quoted

UNKNOWN_WORDS = frozenset(
    {"?", "unknown", "not known", "not known yet", "unsure", "dont know", "don't know", "skip"}
    | {"unk", "n/a", "na", "-", "—", "idk", "not done", "not measured"}
)
# Not "ok": at the bedside "hiv ok" means normal, i.e. no; it is refused, as other words are.
YES_WORDS = frozenset({"yes", "y", "true", "1", "yep", "yeah", "да", "ja", "si", "oui"})
NO_WORDS = frozenset({"no", "n", "false", "0", "nope", "нет", "nein", "non"})
YES_NO_FORMS = "yes / no (y / n, да / нет), or ? if it is not known"
MULTIPLE_SEPARATORS = (",", ";", "\n")  # between the choices of a multi-select answer
NONE_OF_THESE = frozenset({"none", "none of these", "nothing"})
MAX_TEXT = 500
MAX_NUMBER_TEXT = 40  # characters of a typed number: more is not a measurement
# Significant digits a double holds for every decimal (C's DBL_DIG): a typed number with more
# is read only where a program wrote it from its double (_written_from_a_double), else it
# would be another value, maybe across a limit (49.999999999999999 is the double 50).
MAX_DIGITS = 15
# A number's digits may hold several marks (. or ,) here so that "1,200,000" is refused
# whole rather than read as 1.2 followed by a unit; _decimal reads them.
_NUMBER = re.compile(
    r"^(?P<value>[+-]?(?:\d+(?:[.,]\d+)*[.,]?|[.,]\d+))"
    r"(?:\s*/\s*(?P<uln>[+-]?\d+(?:[.,]\d+)*))?\s*(?P<unit>.*)$"
)
# One mark after a whole part of 1 to 3 digits (not 0) and before exactly 3 digits may be a
# thousands separator as well as a decimal mark: 1,200 is 1.2 or 1200.
_THOUSANDS = re.compile(r"0*[1-9]\d{0,2}[.,]\d{3}")
_RANGE = re.compile(r"(?:-|−|–|—|±|\+\s*/?\s*-|to\s)\s*[\d.,]")  # after a number: "60-65"
_EXPONENT = re.compile(r"[eE][+-]?\d")  # after a number: "1e2"
_ULN_UNITS = {"x", "xuln", "uln", "timesuln"}
_LIMIT = 1e15  # larger numbers are never answers (and would overflow int/float conversions)


class AnswerError(ValueError):
    """An answer that does not fit its question."""


class AmbiguousChoice(AnswerError):
    """A typed beginning of a choice that also begins a later word of another choice."""


class _MaybeThousands(AnswerError):
    """A number part (value or uln) whose one mark may be a thousands separator (1,200)."""

    def __init__(self, part: str, digits: str, small: str, large: str) -> None:
        super().__init__(f"{digits} could be {small} or {large}")
        self.part, self.digits, self.small, self.large = part, digits, small, large


Marks = dict[str, "_MaybeThousands | None"]  # part -> read as thousands (the part) or not


def typed_form(text: str) -> str:
    """What a typed word is matched as: lower case, single spaces, without a full stop or
    exclamation mark at the end."""
    return " ".join(text.strip().lower().split()).rstrip(".!")


ALWAYS_UNKNOWN = frozenset({"?"})  # never a choice: the unknown every hint shows


def is_unknown_text(text: str) -> bool:
    return typed_form(text) in UNKNOWN_WORDS


def names_a_choice(question: Question, text: str) -> bool:
    """Whether ``text`` is one of the question's choices as typed: a choice spelled like a
    word for unknown ("unknown", "not known") is that choice (a synonym may not be one)."""
    if question.type != "choice":
        return False
    return typed_form(text) in map(typed_form, question.choices or [])


def today(zone: tzinfo = UTC, now: datetime | None = None) -> date:
    """The day it is in ``zone`` at ``now`` (this moment when None): the screening date of
    a dialog screening in the site's zone (SCREEN_BOT_TIMEZONE), of a batch row without
    ``screened_on`` in UTC (the data dictionary's)."""
    return (now or datetime.now(UTC)).astimezone(zone).date()


def parse_text(question: Question, text: str, screened_on: date | None = None) -> Any:
    """Parse a typed answer; raise :class:`AnswerError` with a one-line explanation."""
    cleaned = text.strip()
    if not cleaned:
        raise AnswerError("Please type an answer (or ? if it is not known).")
    if is_unknown_text(cleaned) and not names_a_choice(question, cleaned):
        return None
    if question.type == "text":
        return _text(cleaned)
    if question.type == "yes_no":
        word = typed_form(cleaned)
        if word in YES_WORDS:
            return True
        if word in NO_WORDS:
            return False
        raise AnswerError(f"Please answer {YES_NO_FORMS}.")
    if question.type == "choice":
        if question.multiple:
            return _parse_choices(question, cleaned)
        return _parse_choice(question, cleaned)
    if question.type in ("date", "date_or_none"):
        try:
            return parse_date(
                cleaned,
                screened_on or today(),
                allow_none=question.type == "date_or_none",
                future=question.future,
            )
        except DateError as err:
            raise AnswerError(str(err)) from None
    return _parse_number(question, cleaned)


def check_value(question: Question, value: Any, screened_on: date | None = None) -> Any:
    """Check a value from a JSON batch row or a stored session; ``None`` is unknown."""
    if value is None:
        return None
    if question.type == "text":
        if isinstance(value, str):
            return _text(value)
        raise AnswerError("expected text")
    if question.type == "yes_no":
        if isinstance(value, bool):
            return value
        raise AnswerError("expected true or false")
    if question.type == "choice":
        if question.multiple:
            if isinstance(value, str):
                return _parse_choices(question, value)
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return _chosen(question, [_exact_choice(question, v) for v in value])
            raise AnswerError(f"expected a list of {', '.join(question.choices or [])}")
        return _exact_choice(question, value)
    if question.type in ("date", "date_or_none"):
        try:
            return parse_iso_date(
                value,
                screened_on or today(),
                allow_none=question.type == "date_or_none",
                future=question.future,
            )
        except DateError as err:
            raise AnswerError(str(err)) from None
    if isinstance(value, str):  # "133 µmol/L", "45/40": the same forms a typed answer takes
        return _parse_number(question, value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnswerError(f"expected a number{_range(question)}")
    return _in_range(question, value)


Checker = Callable[[Any, date], Any]


def checker(question: Question) -> Checker:
    """``check_value`` for one question, with a fast path for values already well typed.

    Batch rows and a dialog's typed answers are mostly values of the right type: those are
    accepted without the general checks; anything else goes through :func:`check_value`
    (same result).
    """
    kind = question.type

    def general(value: Any, screened_on: date) -> Any:
        return check_value(question, value, screened_on)

    if kind == "yes_no":
        return lambda v, d: v if v is True or v is False else general(v, d)
    if kind in ("int", "number") and question.min is not None and question.max is not None:
        low, high = question.min, question.max
        exact = (int,) if kind == "int" else (int, float)
        return lambda v, d: v if type(v) in exact and low <= v <= high else general(v, d)
    if kind == "choice" and not question.multiple:
        choices = frozenset(question.choices or ())
        return lambda v, d: v if type(v) is str and v in choices else general(v, d)
    if kind in ("date", "date_or_none"):
        if question.future:
            return general
        never = NEVER if kind == "date_or_none" else None

        def iso_date(value: Any, screened_on: date) -> Any:
            if value == never:
                return never
            if type(value) is date:  # a dialog's typed answer (not a datetime)
                if value.year >= EARLIEST_YEAR and value <= screened_on:
                    return value
                return general(value, screened_on)
            if type(value) is str and len(value) == 10 and value[4] == value[7] == "-":
                try:
                    day = date.fromisoformat(value)
                except ValueError:
                    return general(value, screened_on)
                if day.year >= EARLIEST_YEAR and day <= screened_on:
                    return day
            return general(value, screened_on)

        return iso_date
    return general


def _text(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise AnswerError(f"Please keep it under {MAX_TEXT} characters.")
    return text


def _exact_choice(question: Question, value: Any) -> str:
    choices = question.choices or []
    if isinstance(value, str) and value in choices:
        return value
    whole = isinstance(value, int) and not isinstance(value, bool)
    if question.ordered and whole and str(value) in choices:
        return str(value)
    raise AnswerError(f"expected one of {', '.join(choices)}")


def _parse_choice(question: Question, text: str) -> str:
    choices = question.choices or []
    lowered = typed_form(text)
    synonyms = {typed_form(k): v for k, v in question.synonyms.items()}
    if lowered in synonyms:
        return synonyms[lowered]
    exact = [c for c in choices if c.lower() == lowered]
    prefixed = [c for c in choices if c.lower().startswith(lowered)]
    if exact:
        return exact[0]
    if len(prefixed) == 1:
        # "cd19" begins cd19_car_t only, but names other_cd19_antibody as well
        named = [c for c in choices if c in prefixed or _begins_a_later_word(c, lowered)]
        if len(named) == 1:
            return prefixed[0]
        raise AmbiguousChoice(
            f"'{quoted(text, 40)}' could be {', '.join(named)}: please type more of it."
        )
    raise AnswerError(f"Please answer one of: {', '.join(choices)}.")


def _begins_a_later_word(choice: str, lowered: str) -> bool:
    """Whether a word of ``choice`` after its first (words split at _ and spaces) begins
    with ``lowered``."""
    return any(w.startswith(lowered) for w in re.split(r"[_\s]+", choice.lower())[1:])


def _parse_choices(question: Question, text: str) -> tuple[str, ...]:
    """Comma-separated choices; 'none' (unless it is a choice) for none of them; text that
    names no choice at all (separators only) is refused."""
    choices = question.choices or []
    typed = typed_form(text)
    if typed in NONE_OF_THESE and typed not in map(typed_form, choices):
        return ()
    words = [w.strip() for w in re.split(f"[{''.join(MULTIPLE_SEPARATORS)}]", text) if w.strip()]
    if not words:  # "" or "," names nothing: unknown is no value, none of them is 'none'
        raise AnswerError("No choice given; write 'none' for none of them.")
    picked = []
    for word in words:
        try:
            picked.append(_parse_choice(question, word))
        except AmbiguousChoice:
            raise
        except AnswerError:
            raise AnswerError(
                f"'{quoted(word, 40)}' is not one of: {', '.join(choices)} (separate them with "
                "commas; 'none' for none of them)."
            ) from None
    return _chosen(question, picked)


def _chosen(question: Question, picked: list[str]) -> tuple[str, ...]:
    """The picked choices once each, in the question's order."""
    return tuple(c for c in question.choices or [] if c in picked)


def _parse_number(question: Question, text: str) -> int | float:
    """The number ``text`` gives for ``question``. A mark that may be a thousands separator
    (1,200 or 1.200, _THOUSANDS) is never guessed: a dot is a decimal mark when no reading
    with a separator is an answer (1200 × ULN is out of range: 1.200 is 1.2); otherwise,
    and for a comma always, the number is refused, naming the readings that are answers."""
    text = ascii_digits(text)  # ١,٢٠٠/٤٠, ١٬٢٠٠/٤٠ or １,２００/４０ is read as 1,200/40
    try:
        return _read_number(question, text, {})
    except _MaybeThousands:
        pass
    found = _ambiguities(question, text)
    readings = _readings(question, text, {})
    commas = any("," in ambiguous.digits for ambiguous in found)
    if len(readings) == 1 and not any(readings[0][0].values()) and not commas:
        return readings[0][1]  # only the decimal reading is an answer, its marks dots
    if len(readings) == 2 ** len(found) and len({value for _, value in readings}) == 1:
        return readings[0][1]  # every reading is this answer (0/1.200 is 0 either way)
    if not readings:  # no reading is an answer: say why the decimal one is not
        return _read_number(question, text, _AS_DECIMALS)
    # a part read as a decimal is offered with a 4th decimal where 1.105 would be asked again
    separated = {part for marks, _ in readings for part, mark in marks.items() if mark}
    shown = [_retyped(text, marks, separated) for marks, _ in readings]
    if len(found) == 1:
        said = f"{found[0].digits} could be {found[0].small} or {found[0].large}"
    else:
        said = f"{text} could be read more than one way"
    ending = " if that is what you mean" if len(shown) == 1 else ""
    raise AnswerError(f"{said}: type {' or '.join(shown)}{ending}.")


_AS_DECIMALS: Marks = {"value": None, "uln": None}


def _readings(question: Question, text: str, marks: Marks) -> list[tuple[Marks, int | float]]:
    """Every answer ``text`` gives with each ambiguous mark read either way: decimal first."""
    try:
        return [(marks, _read_number(question, text, marks))]
    except _MaybeThousands as found:
        return _readings(question, text, marks | {found.part: None}) + _readings(
            question, text, marks | {found.part: found}
        )
    except AnswerError:
        return []


def _ambiguities(question: Question, text: str) -> list[_MaybeThousands]:
    """The parts of ``text`` whose mark may be a thousands separator."""
    found: list[_MaybeThousands] = []
    marks: Marks = {}
    while True:
        try:
            _read_number(question, text, marks)
            return found
        except _MaybeThousands as more:
            found.append(more)
            marks = marks | {more.part: None}
        except AnswerError:
            return found


def _retyped(text: str, marks: Marks, separated: set[str]) -> str:
    """``text`` as it would be typed to mean ``marks``' reading (1,200 as 1.2 or 1200), its
    numbers written plainly and its spaces collapsed, so that it is never longer than the
    text read. A decimal reading that would be asked about again (1.105, its part read with a
    separator elsewhere: ``separated``) is given a 4th decimal (1.1050)."""
    match = _NUMBER.match(text)
    assert match is not None  # a text read before
    for part in ("uln", "value"):  # from the right: the spans stay where they are
        if match[part] is None:
            continue
        digits = match[part].lstrip("+-").rstrip(".,")
        chosen = marks.get(part)
        if chosen is not None:
            new = chosen.large
        else:
            new = format(Decimal(digits.replace(",", ".")).normalize(), "f")
            if _THOUSANDS.fullmatch(new) and part in separated:
                new += "0"  # 1.105 is asked about: 1.1050 is not
            elif _THOUSANDS.fullmatch(new) and part not in marks:
                new = digits  # 1.1050, read as typed: not written as 1.105
        start, end = match.span(part)
        text = text[:start] + match[part].replace(digits, new, 1) + text[end:]
    return re.sub(r"\s*/\s*", "/", " ".join(text.split()))


def _read_number(question: Question, text: str, marks: Marks) -> int | float:
    """The number ``text`` gives, each part's ambiguous mark read as ``marks`` says (a part
    not in ``marks``: raise _MaybeThousands)."""
    match = _NUMBER.match(text) if len(text) <= MAX_NUMBER_TEXT else None
    if match is None:
        raise AnswerError(f"Please type a number{_range(question)}.")
    rest = match["unit"]
    if _RANGE.match(rest):
        raise AnswerError(f"Please type one number, not a range{_range(question)}.")
    if _EXPONENT.match(rest):
        raise AnswerError(f"Please type the number in plain digits, not as {text}.")
    if match["value"].startswith("-") and (question.min is None or question.min >= 0):
        raise AnswerError(f"Please type the number without a minus sign{_range(question)}.")
    # Decimal, as typed: 51.3 µmol/L ÷ 17.1 is 3 mg/dL exactly, and 30.6/10.2 is 3 × ULN;
    # in binary floating point they would be 2.9999999999999996 and 3.0000000000000004,
    # the wrong side of a "< 3" or "≤ 3" limit.
    value = _decimal(question, text, match, "value", marks)
    unit = spoken_unit_key(rest.rstrip("."))
    bare = match["uln"] is None and not unit
    if match["uln"] is not None:
        if not question.uln_ratio:
            raise AnswerError(f"Please type one number{_range(question)}.")
        if match["uln"].startswith("-"):
            raise AnswerError("The upper limit of normal must be a positive number.")
        uln = _decimal(question, text, match, "uln", marks)
        if uln == 0:
            raise AnswerError("The upper limit of normal cannot be 0.")
        value /= uln
        unit = "" if unit in _ULN_UNITS or not unit else unit
        if unit:
            raise AnswerError("Type the value and its upper limit of normal, e.g. 45/40.")
    elif unit and not (question.uln_ratio and unit in _ULN_UNITS):
        value = _convert(question, value, unit)
    return _in_range(question, float(value), hint=bare)


def _decimal(
    question: Question, text: str, match: re.Match[str], part: str, marks: Marks
) -> Decimal:
    """The number of ``match``'s ``part`` (value or uln), with one mark at most, . or , as
    its decimal mark; a mark that may be a thousands separator (_THOUSANDS) is read as
    ``marks`` says, or raises _MaybeThousands."""
    number = match[part]
    digits = number.lstrip("+-").rstrip(".,")  # "1." is 1; the sign is checked before
    marks_typed = re.findall("[.,]", digits)
    if len(marks_typed) > 1:
        groups = re.split("[.,]", digits)
        if len(set(marks_typed)) == 1 and all(len(g) == 3 for g in groups[1:]):  # 1,200,000
            start, end = match.span(part)
            whole = text[:start] + number.replace(digits, str(int("".join(groups))), 1) + text[end:]
            raise AnswerError(f"Please type it without the thousands separators: {whole}")
        raise AnswerError(
            f"Please type one number, with one decimal mark at most{_range(question)}."
        )
    if _THOUSANDS.fullmatch(digits):
        if part not in marks:
            small = format(Decimal(digits.replace(",", ".")).normalize(), "f")
            large = str(int(digits.replace(",", "").replace(".", "")))
            raise _MaybeThousands(part, digits, small, large)
        if marks[part] is not None:
            digits = digits.replace(",", "").replace(".", "")
    value = Decimal(digits.replace(",", "."))
    if _significant_digits(value) > MAX_DIGITS and not _written_from_a_double(value):
        raise AnswerError(
            f"Too many digits in {number}: please type {MAX_DIGITS} significant digits "
            f"at most{_range(question)}."
        )
    return -value if number.startswith("-") else value


def _written_from_a_double(value: Decimal) -> bool:
    """Whether ``value`` is a double as a program writes it, to be read back as that double:
    its shortest decimal (Python's repr, 0.30000000000000004) or its 17 significant digits
    (C's %.17g, PostgreSQL's extra_float_digits=3, MATLAB's num2str(x, 17):
    0.10000000000000001)."""
    double = float(value)
    return value in (Decimal(repr(double)), Decimal(format(double, ".17g")))


def _significant_digits(value: Decimal) -> int:
    """The digits of ``value`` between its first and last that are not 0 (0.0500: 1)."""
    return len("".join(map(str, value.as_tuple().digits)).strip("0"))


def _convert(question: Question, value: Decimal, unit: str) -> Decimal:
    if question.unit and unit == spoken_unit_key(question.unit):
        return value
    for alt in question.also_accepts:
        if unit == spoken_unit_key(alt.unit):
            return value / Decimal(repr(alt.divide_by))  # the factor as the file writes it
    accepted = [u for u in [question.unit, *(a.unit for a in question.also_accepts)] if u]
    if accepted:
        raise AnswerError(f"Unit not recognised; use {' or '.join(accepted)}.")
    raise AnswerError(f"Please type just the number{_range(question)}.")


def _in_range(question: Question, value: int | float, hint: bool = True) -> int | float:
    """``value`` checked against the question's type and range; ``hint``: a value that was
    a bare number (no unit, no ULN) may be told the other unit it would fit."""
    if isinstance(value, int) and abs(value) > _LIMIT:  # (formatting it could overflow)
        raise AnswerError(f"the number is out of range{_range(question)}.")
    if not math.isfinite(value):
        raise AnswerError(f"expected a finite number{_range(question)}")
    if question.type == "int":
        if value != int(value):
            raise AnswerError(f"Please type a whole number{_range(question)}.")
        value = int(value)
    low, high = question.min, question.max
    if low is not None and high is not None and not low <= value <= high:
        why = _unit_hint(question, value) if hint else ""
        raise AnswerError(
            f"{shown_outside(value, low, high)} is out of range{_range(question)}.{why}"
        )
    return value


def _unit_hint(question: Question, value: float) -> str:
    """For a bare number out of range: the other unit it would fit ("did you mean 106 µmol/L?")."""
    low, high = question.min, question.max
    for alt in question.also_accepts:
        if low is not None and high is not None and low <= value / alt.divide_by <= high:
            return f" Did you mean {_fmt(value)} {alt.unit}?"
    return ""


def _fmt(number: float) -> str:
    return f"{number:g}"


def shown_outside(value: float, low: float, high: float) -> str:
    """``value`` with digits enough to stay out of low–high as shown: 800.0001, not 800."""
    for digits in range(6, 18):
        shown = f"{value:.{digits}g}"
        if not low <= float(shown) <= high:
            return shown
    return repr(value)


def _range(question: Question) -> str:
    if question.min is None or question.max is None:
        return ""
    unit = f" {question.unit}" if question.unit else ""
    return f" ({_fmt(question.min)}–{_fmt(question.max)}{unit})"
