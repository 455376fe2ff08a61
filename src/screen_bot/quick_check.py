"""The quick check: one free-form message of known values, read and judged at once.

``age 40, male, lvef 55, qtc 430, alt 1.2, crcl 95`` or one ``name value`` /
``name=value`` / ``name: value`` per line. A name is a question's variable or one of its
``aliases`` (case, ``-``/``_`` and spaces aside); a bare word that is a choice (or a
synonym) of exactly one choice question, and answers no other question, answers it
(``male``; a bare ``2`` or ``none`` is listed as not placed); a multi-select's choices
run on over the parts after its name that are choices of it or misspell one
(:func:`_more_choices`); ``ref R-0423`` gives the referral. Values are typed exactly as
the dialog types them (:func:`answers.parse_text` with the screening date). Nothing is
dropped silently: a part that cannot be read, a value given twice with different values,
and a value for a question that is not asked under the other answers are each listed with
the reason.

With a set of protocols (``all``) a name is looked up in each; a name that means two
different variables is fine when they are in one unit and no protocol asks both (``lvef``
is ``lvef_percent`` in one file and ``ejection_fraction_percent`` in the other, both %),
else it is refused as ambiguous (``bilirubin`` is × ULN in one file and mg/dL in the
other: one typed number cannot be both).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .answers import (
    NONE_OF_THESE,
    AnswerError,
    is_unknown_text,
    names_a_choice,
    parse_text,
    typed_form,
)
from .errors import BadReferral
from .protocol.model import Protocol, name_key
from .protocol.schema import Question
from .protocol.sets import ProtocolSet
from .referrals import check_referral
from .render import format_value
from .rules.dates import DATE_WITH_COMMA
from .rules.evaluation import OPEN, applicable_questions, evaluate
from .rules.units import same_unit
from .verdict import OpenItem, Verdict, build, open_items, ranked
from .words import quoted

REFERRAL_NAMES = frozenset({"ref", "referral", "code", "referral_code"})
MAX_PARTS = 200
MAX_SHOWN = 60  # characters of an unreadable part quoted back
# Parts are separated by new lines, semicolons, and commas that are not decimal commas (nor
# a date's: _split).
_PARTS = re.compile(r"\n|;|(?<!\d),|,(?!\d)")
MAX_NAME = 60  # characters of a name as typed
_NAMED = re.compile(rf"^(?P<name>[^:=]{{1,{MAX_NAME}}}?)\s*[:=]\s*(?P<value>.*)$")
# a time of day ending a part: ``10:00``, ``9:30 pm``, ``T10:00:00Z`` after a date
_TIME_OF_DAY = re.compile(
    r"(?:\s+|(?<=\d)T)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[ap]\.?m\.?|z|utc)?$", re.IGNORECASE
)


@dataclass(frozen=True)
class Given:
    """A value read: the words typed, the variable they name and the typed value (in its
    question's unit, shown with it: a bare number is read in that unit)."""

    part: str
    variable: str
    value: Any
    unit: str = ""


@dataclass(frozen=True)
class Unread:
    """A part of the message that is not used, and why."""

    part: str
    why: str


@dataclass
class Reading:
    """What a quick check read: values for the questions they answer, and the rest."""

    given: list[Given] = field(default_factory=list)
    unread: list[Unread] = field(default_factory=list)
    referral: str | None = None
    referral_twice: bool = False  # given twice with two codes: neither is used

    @property
    def values(self) -> dict[str, Any]:
        return {g.variable: g.value for g in self.given}


@dataclass(frozen=True)
class Judged:
    """One protocol's verdict on the values read, and what is still open."""

    verdict: Verdict
    open_items: tuple[OpenItem, ...]


def members(protocol: Protocol | ProtocolSet) -> tuple[Protocol, ...]:
    return protocol.members if isinstance(protocol, ProtocolSet) else (protocol,)


def read(protocol: Protocol | ProtocolSet, text: str, screened_on: date) -> Reading:
    """Read the values of a quick-check message (see the module docstring)."""
    reading = Reading()
    names = _names(members(protocol))
    seen: dict[str, Given] = {}
    twice: set[str] = set()
    parts = _join_choices(protocol, names, _split(text), screened_on)
    for part in parts[:MAX_PARTS]:
        found = _read_part(protocol, names, part, screened_on, reading)
        for given in found:
            earlier = seen.get(given.variable)
            if earlier is None:
                seen[given.variable] = given
            elif earlier.value == given.value:
                reading.unread.append(
                    Unread(_shown(part), f"{given.variable} was given twice; used once")
                )
            else:
                twice.add(given.variable)
                reading.unread.append(
                    Unread(
                        _shown(part),
                        f"{given.variable} was given twice ({_value(earlier.value)} and "
                        f"{_value(given.value)}): neither is used",
                    )
                )
    if len(parts) > MAX_PARTS:
        reading.unread.append(Unread(f"{len(parts) - MAX_PARTS} more parts", "too many parts"))
    reading.given = [g for v, g in seen.items() if v not in twice]
    _drop_unasked(protocol, reading, screened_on)
    return reading


def judge(protocol: Protocol | ProtocolSet, reading: Reading, screened_on: date) -> list[Judged]:
    """Each protocol's verdict on the values read (best first), with its open items
    (listed also when something already failed: what a full screening would still ask)."""
    values = reading.values
    found = []
    for member in members(protocol):
        own = {v: x for v, x in values.items() if v in member.questions}
        verdict = build(member, own, referral=reading.referral, screened_on=screened_on)
        items = verdict.open_items or open_items(
            member, [o for o in evaluate(member, own, screened_on) if o.status in OPEN]
        )
        found.append(Judged(verdict, tuple(items)))
    order = ranked([j.verdict for j in found])
    return sorted(found, key=lambda j: order.index(j.verdict))


def _split(text: str) -> list[str]:
    """The parts (``_PARTS``), a date's own comma aside (``Aug 14, 2026``)."""
    dated = {m.start() + m[0].index(",") for m in DATE_WITH_COMMA.finditer(text)}
    parts, start = [], 0
    for separator in _PARTS.finditer(text):
        if separator.start() not in dated:
            parts.append(text[start : separator.start()])
            start = separator.end()
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


# -- reading one part -----------------------------------------------------------------------

Names = dict[str, dict[str, str]]  # name key -> {protocol id: variable}


def _names(protocols: Sequence[Protocol]) -> Names:
    found: Names = {}
    for member in protocols:
        for name, variable in member.aliases.items():
            found.setdefault(name, {})[member.id] = variable
    return found


def _read_part(
    protocol: Protocol | ProtocolSet, names: Names, part: str, on: date, reading: Reading
) -> list[Given]:
    timed = _timed_date(protocol, names, part)
    if timed:
        reading.unread.append(Unread(_shown(part), timed))
        return []
    named = _NAMED.match(part)
    if named is not None:
        name, value = named["name"], named["value"]
    else:
        words = part.split()
        name, value = _longest_name(names, words)
        if not name:
            choice = _choice_word(protocol, part)
            if isinstance(choice, Given):
                return [choice]
            if choice:
                reading.unread.append(Unread(_shown(part), choice))
                return []
            name, value = words[0], " ".join(words[1:])
    key = name_key(name)
    if key in REFERRAL_NAMES:
        try:
            _give_referral(reading, part, check_referral(value.strip()))
        except BadReferral as err:
            reading.unread.append(Unread(_shown(part), err.message))
        return []
    variables = names.get(key)
    if variables is None:
        reading.unread.append(Unread(_shown(part), _unknown_name(names, name)))
        return []
    if not value.strip():
        reading.unread.append(Unread(_shown(part), f"no value for {name}"))
        return []
    why = _ambiguous(protocol, variables)
    if why:
        reading.unread.append(Unread(_shown(part), why))
        return []
    found = []
    for variable in dict.fromkeys(variables.values()):
        question = _question(protocol, variable)
        try:
            typed = parse_text(question, value, on)
        except AnswerError as err:
            reading.unread.append(Unread(_shown(part), f"{variable}: {str(err).rstrip('.')}"))
            return []
        found.append(Given(part, variable, typed, question.unit or ""))
    return found


def _timed_date(protocol: Protocol | ProtocolSet, names: Names, part: str) -> str:
    """Why a date question's value with a time of day (``mi 14/08/2025 10:00``) is refused;
    "" for any other part. Said first: else the time's colon reads as ``name: value``, and
    ``mi 14/08/2025 10`` is no question's name."""
    time = _TIME_OF_DAY.search(part)
    if time is None:
        return ""
    before = part[: time.start()].strip()
    named = _NAMED.match(before)
    if named is not None:
        name, day = named["name"], named["value"]
    elif name_key(before) in names:
        name, day = before, ""
    else:
        name, day = _longest_name(names, before.split())
    variables = names.get(name_key(name), {}) if name else {}
    dates = [v for v in variables.values() if _question(protocol, v).type in _DATE_TYPES]
    if not dates:
        return ""
    if not day.strip():
        return f"{dates[0]}: a time of day is not a date; type the date"
    return f"{dates[0]}: a date with a time of day; type the date alone ({name} {day.strip()})"


_DATE_TYPES = ("date", "date_or_none")


def _give_referral(reading: Reading, part: str, referral: str) -> None:
    """The referral, as a value given twice is: once if the same, neither if two."""
    earlier = reading.referral
    if earlier is None and not reading.referral_twice:
        reading.referral = referral
    elif earlier == referral:
        reading.unread.append(Unread(_shown(part), "the referral was given twice; used once"))
    else:
        shown = f" ({earlier} and {referral})" if earlier else ""
        reading.unread.append(
            Unread(_shown(part), f"the referral was given twice{shown}: neither is used")
        )
        reading.referral, reading.referral_twice = None, True


def _join_choices(
    protocol: Protocol | ProtocolSet, names: Names, parts: list[str], on: date
) -> list[str]:
    """Join a multi-select's further parts back to the part naming it: the commas that
    separate its choices (``prior_therapies gene_therapy, blina``) split parts too. The
    joined text is read as the dialog reads it: a text it refuses (``none, blina``,
    ``gene_therapy, blinx``) is refused whole. Which parts join: :func:`_more_choices`."""
    joined: list[str] = []
    multi: Question | None = None  # the multi-select the last part names
    for part in parts:
        if multi is not None and _more_choices(protocol, names, multi, part, on):
            joined[-1] += ", " + part
            continue
        joined.append(part)
        multi = _multi_select(protocol, names, part)
    return joined


def _more_choices(
    protocol: Protocol | ProtocolSet, names: Names, multi: Question, part: str, on: date
) -> bool:
    """Whether a part after a multi-select's name is more of its text: one of its choices
    exactly; else, unless it is a value of its own (:func:`_starts_another`), a choice as
    the dialog reads it (a beginning naming one), or a misspelt choice: words each close to
    a choice, its beginning or one of its words, that read as nothing else (no name, no
    none or unknown word, no answer to another question: yes/no, number, date, choice).
    Any other part (``lvf 55``, ``?``, ``none``, ``lansky``, ``R-0423``) is read alone,
    with its own reason, and leaves the multi-select's choices as they are."""
    if names_a_choice(multi, part):
        return True
    if _starts_another(protocol, names, part):
        return False
    return _is_choice(multi, part) or _misspelt_choice(protocol, names, multi, part, on)


def _misspelt_choice(
    protocol: Protocol | ProtocolSet, names: Names, multi: Question, part: str, on: date
) -> bool:
    word = typed_form(part)
    if name_key(word) in names or name_key(word) in REFERRAL_NAMES:
        return False
    if word in NONE_OF_THESE or is_unknown_text(word) or not _like_a_choice(multi, word):
        return False
    return not _other_answer(protocol, multi.variable, part, on)


def _like_a_choice(question: Question, text: str) -> bool:
    """Whether each word of ``text`` is close to a choice (or synonym), a beginning of one
    as long as the word, or one of its words (split at ``_`` and spaces)."""
    known: set[str] = set()
    for choice in [*(question.choices or []), *question.synonyms]:
        lowered = choice.lower()
        known |= {lowered, *re.split(r"[_\s]+", lowered)}
    return all(
        difflib.get_close_matches(word, known | {k[: len(word)] for k in known}, n=1, cutoff=0.6)
        for word in text.split()
    )


def _starts_another(protocol: Protocol | ProtocolSet, names: Names, part: str) -> bool:
    """Whether a part is a value of its own: a name and its value, or a bare word that
    answers one question."""
    if _NAMED.match(part) or _longest_name(names, part.split())[0]:
        return True
    return isinstance(_choice_word(protocol, part), Given)


def _multi_select(protocol: Protocol | ProtocolSet, names: Names, part: str) -> Question | None:
    named = _NAMED.match(part)
    name = named["name"] if named is not None else _longest_name(names, part.split())[0]
    variables = set(names.get(name_key(name), {}).values()) if name else set()
    if len(variables) != 1:
        return None
    question = _question(protocol, variables.pop())
    return question if question.type == "choice" and question.multiple else None


def _is_choice(question: Question, part: str) -> bool:
    """Whether the dialog reads ``part`` as choices of the multi-select ``question``."""
    try:
        return bool(parse_text(question, part))  # not () for none of them, nor unknown
    except AnswerError:
        return False


def _longest_name(names: Names, words: list[str]) -> tuple[str, str]:
    """The longest run of leading words that is a name, and the rest ("", "" if none).
    Runs longer than a name are not tried: a long part costs no more than a short one."""
    runs: list[str] = []
    for word in words[:-1]:
        run = f"{runs[-1]} {word}" if runs else word
        if len(run) > MAX_NAME:
            break
        runs.append(run)
    for length in range(len(runs), 0, -1):
        name = runs[length - 1]
        if name_key(name) in names or name_key(name) in REFERRAL_NAMES:
            return name, " ".join(words[length:])
    return "", ""


def _choice_word(protocol: Protocol | ProtocolSet, part: str) -> Given | str:
    """A bare word naming a choice of exactly one choice question (or why not; "" when it
    names none)."""
    word = typed_form(part)
    hits: dict[str, str] = {}
    multi: list[str] = []  # multi-selects it is a choice of
    for member in members(protocol):
        for q in member.spec.questions:
            if q.type != "choice":
                continue
            if q.multiple:
                multi += [q.variable] if _is_choice(q, word) else []
                continue
            synonyms = {typed_form(k): v for k, v in q.synonyms.items()}
            choice = synonyms.get(word) or next(
                (c for c in q.choices or [] if typed_form(c) == word), None
            )
            if choice is not None:
                hits.setdefault(q.variable, choice)
    if len(hits) == 1:
        ((variable, choice),) = hits.items()
        other = _other_answer(protocol, variable, part)
        if other:  # a number or "none" alone is no choice word: it could answer another
            return f"'{word}' alone could also answer {other}: write which, e.g. {variable} {word}"
        return Given(part, variable, choice)
    if hits:
        return f"'{word}' is a choice of {', '.join(sorted(hits))}: write which, e.g. " + (
            f"{sorted(hits)[0]} {word}"
        )
    if multi:
        return f"'{word}' is a choice of {multi[0]}: write it after the name ({multi[0]} {word})"
    return ""


def _other_answer(
    protocol: Protocol | ProtocolSet, variable: str, word: str, on: date | None = None
) -> str:
    """A question other than ``variable`` that ``word`` alone would also answer ("" if none;
    free-text questions take anything and are left out)."""
    for member in members(protocol):
        for q in member.spec.questions:
            if q.variable == variable or q.type == "text":
                continue
            try:
                parse_text(q, word, on)
            except AnswerError:
                continue
            return q.variable
    return ""


def _unknown_name(names: Names, name: str) -> str:
    close = difflib.get_close_matches(name_key(name), list(names), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return "not a question of this protocol (its variable names and aliases are listed by learn)"


def _ambiguous(protocol: Protocol | ProtocolSet, variables: dict[str, str]) -> str:
    """Why a name meaning different variables in different protocols cannot be used: they
    are in different units (one number would be read in a unit the user did not mean), or
    one protocol asks two of them."""
    distinct = set(variables.values())
    if len(distinct) < 2:
        return ""
    units = [_question(protocol, v).unit for v in distinct]
    one_unit = all(same_unit(unit, units[0]) for unit in units)
    asked_together = any(len(distinct & set(m.questions)) > 1 for m in members(protocol))
    if one_unit and not asked_together:
        return ""
    meanings = ", ".join(f"{v}{_in_unit(protocol, v)} in {p}" for p, v in variables.items())
    return f"this name means {meanings}: write the variable name instead"


def _in_unit(protocol: Protocol | ProtocolSet, variable: str) -> str:
    unit = _question(protocol, variable).unit
    return f" ({unit})" if unit else ""


def _question(protocol: Protocol | ProtocolSet, variable: str) -> Question:
    return protocol.questions[variable]


def _drop_unasked(protocol: Protocol | ProtocolSet, reading: Reading, on: date) -> None:
    """Leave out values of questions the dialog would not ask under the other answers (a
    weight when a measured clearance is given), until none is left."""
    while True:
        values = reading.values
        asked: set[str] = set()
        for member in members(protocol):
            own = {v: x for v, x in values.items() if v in member.questions}
            asked |= applicable_questions(member, own, on)
        dropped = [g for g in reading.given if g.variable not in asked]
        if not dropped:
            return
        for given in dropped:
            reading.unread.append(
                Unread(
                    _shown(given.part),
                    f"{given.variable} is not asked under the other answers "
                    f"({_condition(protocol, given.variable)}): not used",
                )
            )
        reading.given = [g for g in reading.given if g not in dropped]


def _condition(protocol: Protocol | ProtocolSet, variable: str) -> str:
    for member in members(protocol):
        question = member.questions.get(variable)
        if question is not None and question.when:
            return f"asked when {question.when}"
    return "its condition is false"


def _shown(part: str) -> str:
    return quoted(part, MAX_SHOWN)


def _value(value: Any) -> str:
    return format_value(value)
