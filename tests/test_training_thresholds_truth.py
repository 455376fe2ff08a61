"""Every threshold the walk-through teaches agrees with the rule it was derived from.

The printed text (``< 2 mg/dL if gilbert_syndrome = no; …``) is parsed back, and the rules are
evaluated on a grid of their own: values just below, at and just above each constant, for
every combination of the other answers the rules read. Wherever some value of the measure
passes, exactly the values the text allows must pass; a threshold that lets a failing
patient pass, or says "any value" of a measure that can make the rule fail, is caught.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from conftest import DIALOG, SHIPPED
from screen_bot.protocol import Protocol, load
from screen_bot.rules.dates import NEVER
from screen_bot.rules.expressions import SCREENING_DATE
from screen_bot.training.thresholds import Threshold, thresholds
from screen_bot.training.walkthrough import walkthrough_text

DAY = date(2026, 3, 1)
MAX_ROWS = 4000

Bound = Callable[[float], bool]


def _bound(op: str, limit: float) -> Bound:
    return {
        "≥": lambda v: v >= limit,
        "≤": lambda v: v <= limit,
        ">": lambda v: v > limit,
        "<": lambda v: v < limit,
        "=": lambda v: v == limit,
    }[op]


def parse_values(text: str) -> Bound:
    """``≥ 60 %``, ``14–65 years``, ``≥ 3 and < 5``, ``a or b``, ``any value`` as a test."""
    parts: list[Bound] = []
    for alternative in text.split(" or "):
        if alternative == "any value":
            parts.append(lambda v: True)
            continue
        span = re.match(r"^(-?[\d.]+)–(-?[\d.]+)", alternative)
        if span:
            low, high = float(span[1]), float(span[2])
            parts.append(lambda v, lo=low, hi=high: lo <= v <= hi)
            continue
        sides = re.findall(r"(≥|≤|<|>|=) (-?[\d.]+)", alternative)
        assert sides, f"cannot read {alternative!r}"
        tests = [_bound(op, float(n)) for op, n in sides]
        parts.append(lambda v, ts=tests: all(t(v) for t in ts))
    return lambda v: any(p(v) for p in parts)


def parse_case(key: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for part in key.split(", ") if key else []:
        name, value = part.split(" = ")
        found[name] = {"yes": True, "no": False}.get(value, value)
    return found


def numbers(protocol: Protocol, name: str) -> list[float]:
    """Just below, at and just above every constant a rule compares the name with."""
    question = protocol.questions.get(name)
    step = 1.0 if question is not None and question.type == "int" else 0.01
    found: set[float] = set()
    for expr in protocol.rules.values():
        for comparison in expr.comparisons:
            constant = comparison.constant
            if comparison.variable == name and isinstance(constant, int | float):
                found |= {constant - step, float(constant), constant + step}
    if question is not None:
        found |= {float(b) for b in (question.min, question.max) if b is not None}
        found = {
            v
            for v in found
            if (question.min is None or v >= question.min)
            and (question.max is None or v <= question.max)
        }
    return sorted(found) or [0.0]


def domain(protocol: Protocol, name: str) -> list[Any]:
    if name == SCREENING_DATE:
        return [DAY]
    if name in protocol.tables:
        return sorted({value for _, value in protocol.tables[name]})
    kind = protocol.kinds[name]
    if kind.base == "yes_no":
        return [True, False]
    if kind.base == "choice":
        return list(kind.choices)
    if kind.base == "set":
        return [(), tuple(kind.choices)]
    if kind.base == "date":
        days = [DAY - timedelta(days=d) for d in (-200, -40, 0, 20, 45, 100, 200, 400, 4000)]
        return days + ([NEVER] if kind.never else [])
    return numbers(protocol, name)


def assignments(protocol: Protocol, names: list[str]) -> list[dict[str, Any]]:
    domains = [domain(protocol, n) for n in names]
    rows = list(itertools.product(*domains))
    if len(rows) > MAX_ROWS:
        rows = random.Random(0).sample(rows, MAX_ROWS)
    return [dict(zip(names, row, strict=True)) for row in rows]


def check(protocol: Protocol, threshold: Threshold, criteria: list[str], text: dict[str, str]):
    """Wherever the criteria can pass, they pass for exactly the values the text allows."""
    name = threshold.name
    names = sorted(set().union(*(protocol.rules[c].names for c in criteria)) - {name})
    cases = [(parse_case(key), parse_values(values)) for key, values in text.items()]
    grid = numbers(protocol, name)
    checked = 0
    for env in assignments(protocol, names):
        row = [
            all(
                protocol.rules[c].evaluate({**env, name: v})
                is (protocol.criteria[c].kind == "inclusion")
                for c in criteria
            )
            for v in grid
        ]
        if not any(row):
            continue  # the other answers fail it whatever the measure is
        matching = [
            allowed for case, allowed in cases if all(env.get(k, v) == v for k, v in case.items())
        ]
        assert matching, f"{criteria} can pass with {env} but no case of {text} says so"
        expected = [matching[0](v) for v in grid]
        wrong = [v for v, got, want in zip(grid, row, expected, strict=True) if got != want]
        assert not wrong, (
            f"{criteria}: {name} {text} is wrong at {wrong} with {env} "
            f"(passes at {[v for v, ok in zip(grid, row, strict=True) if ok]})"
        )
        checked += 1
    assert checked, f"{criteria}: no combination of answers lets {name} pass"


PROTOCOLS = {"ctl019-rr-ball": SHIPPED / "ctl019-rr-ball.yaml", "blina-dli": DIALOG}
LOADED = {pid: load(path) for pid, path in PROTOCOLS.items()}
CASES = [
    (pid, t.name)
    for pid, protocol in LOADED.items()
    for t in thresholds(protocol).values()
    if t.criteria
]


@pytest.mark.parametrize(("protocol_id", "name"), CASES)
def test_each_threshold_taught_matches_the_rules(protocol_id: str, name: str) -> None:
    protocol = LOADED[protocol_id]
    threshold = thresholds(protocol)[name]
    for criterion in threshold.criteria:
        check(protocol, threshold, [criterion], threshold.own[criterion])
    check(protocol, threshold, list(threshold.criteria), threshold.passing)


@pytest.mark.parametrize("protocol_id", PROTOCOLS)
def test_no_measure_that_can_fail_a_rule_is_taught_as_any_value(protocol_id: str) -> None:
    protocol = LOADED[protocol_id]
    for t in thresholds(protocol).values():
        for criterion, cases in t.own.items():
            if "any value" in cases.values():  # then the measure never decides it in that case
                check(protocol, t, [criterion], cases)


def test_ctl019_lines() -> None:
    text = walkthrough_text(LOADED["ctl019-rr-ball"])
    assert (
        "What decides: total_bilirubin_mg_dl < 2 mg/dL if gilbert_syndrome = no; "
        "< 3 mg/dL if gilbert_syndrome = yes"
    ) in text
    for names in (
        "lansky and karnofsky",  # age only says which score is asked
        "gfr and serum_creatinine_mg_dl",
        "shortening_fraction_percent and ejection_fraction_percent",
        "marrow_relapse_count and tki_lines_failed_or_not_tolerated",
    ):
        assert f"What decides: no single threshold of {names}: the rule's own condition" in text
    for wrong in ("lansky any value", "gfr any value", "percent any value", "< 3 mg/dL  ("):
        assert wrong not in text


def test_ctl019_consent_sets_no_age_limit() -> None:
    # C-I8 compares age only to say whose consent is asked (the patient's from 18, a
    # guardian's below): its answers are no cases of an age limit ("3–17 years if
    # consent_willing = no, guardian_consent_and_assent = yes" is no screening's answers)
    protocol = LOADED["ctl019-rr-ball"]
    age = thresholds(protocol)["age"]
    assert age.passing == {"": "≥ 3 years"}
    assert age.criteria == age.deciding == ("C-I4a",)
    assert age.conditional == ()  # nor C-I5, whose age only says which score is asked
    text = walkthrough_text(protocol)
    assert "3–17" not in text and "consent_willing = " not in text
    assert "  age ≥ 3 years  (C-I4a)" in text.splitlines()
    c_i8 = walkthrough_text(protocol, "C-I8")
    assert "What decides" not in c_i8
