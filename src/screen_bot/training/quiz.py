"""The quiz: show a case, read the trainee's verdict, grade it against :func:`verdict.build`.

Everything here returns text or data; the terminal and Telegram only carry it.
"""

from __future__ import annotations

import difflib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..protocol import Protocol
from ..render import estimate_text, format_value, values_text
from ..rules.evaluation import Context, Outcome, Status, context, outcomes
from ..verdict import VerdictValue, estimates_in, open_items
from ..words import OPEN_KIND, VERDICT_NAME
from .cases import Case, generate_cases
from .ids import id_matches
from .scores import ScoreBook

VERDICT_WORDS: dict[str, VerdictValue] = {
    "eligible": "eligible",
    "elig": "eligible",
    "el": "eligible",
    "e": "eligible",
    "1": "eligible",
    "not eligible": "not_eligible",
    "ineligible": "not_eligible",
    "not": "not_eligible",
    "ne": "not_eligible",
    "no": "not_eligible",
    "n": "not_eligible",
    "2": "not_eligible",
    "unresolved": "unresolved",
    "unres": "unresolved",
    "un": "unresolved",
    "u": "unresolved",
    "open": "unresolved",
    "?": "unresolved",
    "3": "unresolved",
}
SHOWN = VERDICT_NAME
# What became of a criterion, by its kind and its status in rules.evaluation: an exclusion
# is "met" when it does not apply, and fails when it applies. An unknown one also says what
# keeps it open (see _named).
NAMED_STATUS: dict[tuple[str, Status], str] = {
    ("inclusion", "met"): "met",
    ("exclusion", "met"): "does not apply",
    ("inclusion", "failed"): "failed: it is not met",
    ("exclusion", "failed"): "failed: it applies",
    ("inclusion", "unknown"): "open",
    ("exclusion", "unknown"): "open",
    ("inclusion", "confirm"): "open to confirm by measurement (it fails only on an estimate), "
    "not failed",
    ("exclusion", "confirm"): "open to confirm by measurement (it applies only on an "
    "estimate), not failed",
}
PROMPT = "eligible (e) / not eligible (n) <criterion> / unresolved (u)"
_CRITERION = re.compile(r"^[a-z][a-z0-9_.-]*\d[a-z0-9_.-]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Answer:
    verdict: VerdictValue
    criterion: str | None = None


@dataclass(frozen=True)
class Grade:
    correct: bool
    feedback: str


def parse_answer(text: str) -> Answer | None:
    """``eligible``, ``not eligible E3``, ``ne i8e``, ``unresolved``, or a bare ``E3a``."""
    words = text.strip().lower().replace("_", " ").replace(",", " ").split()
    for size in (2, 1):
        phrase = " ".join(words[:size])
        if len(words) >= size and phrase in VERDICT_WORDS:
            rest = words[size:]
            return Answer(VERDICT_WORDS[phrase], rest[0].strip(".:;") if rest else None)
    if len(words) == 1 and _CRITERION.match(words[0]):
        return Answer("not_eligible", words[0])
    return None


def not_a_criterion(protocol: Protocol, given: str | None) -> str | None:
    """Why ``given`` names none of the protocol's criteria, with the closest ids (else all
    of them); None when it names one or there is none. The typed text is not repeated."""
    ids = list(protocol.criteria)
    if given is None or any(id_matches(given, cid) for cid in ids):
        return None
    lower = [cid.lower() for cid in ids]
    close = set(difflib.get_close_matches(given.strip().lower(), lower, n=3, cutoff=0.5))
    if close:
        nearest = [cid for cid in ids if cid.lower() in close]  # in the protocol's order
        return f"not a criterion of {protocol.id}: closest {', '.join(nearest)}"
    return f"not a criterion of {protocol.id}: its criteria are {', '.join(ids)}"


def case_text(protocol: Protocol, case: Case, number: int | None = None, total: int = 0) -> str:
    head = f"Case {number}/{total}" if number is not None else "Case"
    lines = [head]
    if any(protocol.questions[v].type in ("date", "date_or_none") for v in case.answers):
        lines.append(f"  screening date: {case.verdict.screened_on.isoformat()}")
    for variable, value in case.answers.items():
        unit = protocol.questions[variable].unit
        shown = format_value(value)
        lines.append(f"  {variable}: {shown}{f' {unit}' if unit and value is not None else ''}")
    return "\n".join(lines)


def grade(protocol: Protocol, case: Case, answer: Answer) -> Grade:
    expected = case.expected
    verdict_ok = answer.verdict == expected
    criterion_ok: bool | None = None
    if expected == "not_eligible" and verdict_ok:
        criterion_ok = answer.criterion is not None and any(
            id_matches(answer.criterion, f) for f in case.failed
        )
    correct = verdict_ok and criterion_ok is not False
    if correct:
        head = f"✓ Correct: {SHOWN[expected]}."
    elif verdict_ok and answer.criterion is None:
        head = f"✗ {SHOWN[expected]} is right, but name the criterion that failed."
    elif verdict_ok:
        head = f"✗ {SHOWN[expected]} is right, but {answer.criterion} is not what failed."
    else:
        head = f"✗ The answer is {SHOWN[expected]} (you said {SHOWN[answer.verdict]})."
    ctx = context(protocol, case.answers, case.verdict.screened_on)
    found = {o.criterion: o for o in outcomes(protocol, ctx)}
    explained, shown = _explain(protocol, case, found)
    lines = [head, *explained]
    if answer.criterion and not (verdict_ok and criterion_ok):
        named = [cid for cid in protocol.criteria if id_matches(answer.criterion, cid)]
        lines += _named(protocol, found, answer.criterion, named)
        shown += named
    lines += _estimated(protocol, case, ctx, [found[cid] for cid in shown])
    return Grade(correct, "\n".join(lines))


def _read(outcome: Outcome) -> str:
    """`` (crcl (estimated) = 41.0, creatinine_x_uln = 1.2)``: the values the rule read, as
    a verdict shows them; '' when it read none."""
    values = values_text(outcome.values, outcome.estimated)
    return f" ({values})" if values else ""


def _explain(
    protocol: Protocol, case: Case, found: Mapping[str, Outcome]
) -> tuple[list[str], list[str]]:
    """Why the case has its verdict, and the criteria whose values that shows."""
    verdict = case.verdict
    if verdict.verdict == "not_eligible":
        lines = ["Failed:"]
        for r in verdict.reasons:
            lines.append(f"  {r.criterion} {r.label}{_read(found[r.criterion])}: “{r.source}”")
        return lines, [r.criterion for r in verdict.reasons]
    if verdict.verdict == "unresolved":
        lines = ["Nothing failed, but these stay open:"]
        shown = []
        for item in verdict.open_items:
            kind = OPEN_KIND[item.kind]
            for cid in item.criteria:
                c = protocol.criteria[cid]
                why = f"{item.variable} unknown ({kind})"
                lines.append(f"  {cid} {c.label}{_read(found[cid])}: {why}: “{c.source}”")
                shown.append(cid)
            if item.advice:
                lines.append(f"    To settle it: {item.advice}.")
        return lines, shown
    lines = ["Every criterion is met."]
    for cid in case.focus:
        c = protocol.criteria[cid]
        state = NAMED_STATUS[(c.kind, "met")]
        lines.append(f"  {cid} {c.label}: {state}{_read(found[cid])}: “{c.source}”")
    return lines, list(case.focus)


def _named(
    protocol: Protocol, found: Mapping[str, Outcome], given: str, named: list[str]
) -> list[str]:
    """What became of the criteria ``named`` by what the trainee typed (``given``)."""
    if not named:
        return [f"  ({given} is not a criterion of {protocol.id})"]
    lines = []
    for cid in named:
        o = found[cid]
        c = protocol.criteria[cid]
        state = NAMED_STATUS[(c.kind, o.status)]
        if o.status == "unknown":
            items = open_items(protocol, [o])
            state += ": " + "; ".join(f"{i.variable} unknown ({OPEN_KIND[i.kind]})" for i in items)
        lines.append(f"  You named {cid} {c.label}: {state}{_read(o)}")
    return lines


def _estimated(protocol: Protocol, case: Case, ctx: Context, shown: list[Outcome]) -> list[str]:
    """The estimates the verdict used or the feedback shows, with their inputs, as a verdict
    lists them: the dictionary wants one shown whatever the verdict."""
    names = set(case.verdict.estimated).union(*(o.estimated for o in shown))
    return [f"Estimated: {estimate_text(e)}" for e in estimates_in(protocol, ctx, sorted(names))]


def missed(protocol: Protocol, case: Case, answer: Answer) -> list[str]:
    """The criteria a wrong answer missed: those that failed, or stayed open, or (for an
    eligible case) the one the trainee wrongly named, else those the case was aimed at."""
    if case.expected == "not_eligible":
        return case.failed
    if case.expected == "unresolved":
        return list(dict.fromkeys(c for i in case.verdict.open_items for c in i.criteria))
    named = [c for c in protocol.criteria if answer.criterion and id_matches(answer.criterion, c)]
    return named or list(case.focus)


@dataclass
class Quiz:
    """One trainee's run through a list of cases; ``submit`` grades and records each answer."""

    protocol: Protocol
    cases: list[Case]
    trainee: str
    seed: int
    book: ScoreBook | None = None
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    position: int = 0
    correct: int = 0

    @classmethod
    def start(
        cls,
        protocol: Protocol,
        trainee: str,
        count: int = 20,
        seed: int | None = None,
        book: ScoreBook | None = None,
        weak: Mapping[str, int] | None = None,
    ) -> Quiz:
        """A new quiz. A ``seed`` names a class's shared list: the same cases for every
        trainee, whatever their history. Without one, past mistakes (``weak``, else read
        from ``book``) come up more often."""
        if seed is not None:
            weak = {}
        elif weak is None:
            weak = book.misses(trainee, protocol.id) if book else {}
        seed = secrets.randbelow(10**6) if seed is None else seed
        return cls(protocol, generate_cases(protocol, count, seed, weak), trainee, seed, book)

    @property
    def finished(self) -> bool:
        return self.position >= len(self.cases)

    @property
    def current(self) -> Case | None:
        return None if self.finished else self.cases[self.position]

    def question(self) -> str:
        case = self.current
        if case is None:
            return self.summary()
        return case_text(self.protocol, case, self.position + 1, len(self.cases))

    def submit(self, answer: Answer) -> Grade:
        case = self.current
        if case is None:
            raise RuntimeError("the quiz is over")
        result = grade(self.protocol, case, answer)
        if self.book is not None:
            given = answer.verdict + (f" {answer.criterion}" if answer.criterion else "")
            self.book.record(
                trainee=self.trainee,
                protocol_id=self.protocol.id,
                quiz_id=self.id,
                expected=case.expected,
                given=given,
                criteria=case.criteria if result.correct else missed(self.protocol, case, answer),
                correct=result.correct,
            )
        self.position += 1
        self.correct += result.correct
        return result

    def summary(self) -> str:
        answered = self.position
        if not answered:
            return "No case answered."
        percent = round(100 * self.correct / answered)
        return f"Score: {self.correct}/{answered} ({percent} %) — seed {self.seed}."
