"""The compiled rules equal the reference interpreter (hypothesis), on blina-dli and on the
ctl019 draft, for generated answers; and an unresolved verdict always has an open item."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screen_bot import verdict
from screen_bot.protocol import Protocol, load
from screen_bot.protocol.schema import Question
from screen_bot.rules.evaluation import context
from screen_bot.rules.expressions import interpret

DIALOGS = Path(__file__).resolve().parents[1] / "dialogs"
PROTOCOLS = {
    "blina-dli": load(DIALOGS / "blina-dli.yaml"),
    "ctl019": load(DIALOGS / "ctl019-rr-ball.yaml"),
}
SCREENED = st.dates(date(2025, 1, 1), date(2028, 12, 31))


def thresholds(protocol: Protocol) -> dict[str, set[float]]:
    """The numbers each variable is compared with, anywhere in the file."""
    found: dict[str, set[float]] = {}
    expressions = [*protocol.rules.values(), *protocol.when.values()]
    expressions += [condition for rows in protocol.tables.values() for condition, _ in rows]
    for expression in expressions:
        for variable, constant in expression.constants:
            if isinstance(constant, int | float) and not isinstance(constant, bool):
                found.setdefault(variable, set()).add(float(constant))
    for rows in protocol.tables.values():
        for _, value in rows:
            for variable in protocol.order:  # a table's value is compared with a question
                found.setdefault(variable, set()).add(value)
    return found


def number_of(question: Question, marks: set[float]) -> st.SearchStrategy[Any]:
    assert question.min is not None and question.max is not None
    low, high = question.min, question.max
    near = {m + d for m in marks for d in (-1, -0.01, 0, 0.01, 1)} | {low, high}
    near = {x for x in near if low <= x <= high}
    if question.type == "int":
        whole = sorted({int(x) for x in near if x == int(x)})
        edges = st.sampled_from(whole) if whole else st.nothing()
        return st.one_of(edges, st.integers(int(low), int(high)))
    return st.one_of(
        st.sampled_from(sorted(near)),
        st.floats(low, high, allow_nan=False, allow_infinity=False),
    )


def value_of(question: Question, marks: set[float], screened: date) -> st.SearchStrategy[Any]:
    if question.type == "yes_no":
        return st.booleans()
    if question.type == "choice" and question.multiple:
        choices = question.choices or []
        return st.sets(st.sampled_from(choices)).map(
            lambda picked: tuple(c for c in choices if c in picked)
        )
    if question.type == "choice":
        return st.sampled_from(question.choices or [])
    if question.type == "text":
        return st.text(max_size=20)
    if question.type == "date" and question.future:
        return st.dates(screened, screened + timedelta(days=800))
    if question.type in ("date", "date_or_none"):
        past = st.one_of(
            st.dates(screened - timedelta(days=800), screened),
            st.sampled_from([screened, screened - timedelta(days=1)]),
        )
        return st.one_of(past, st.just("none")) if question.type == "date_or_none" else past
    return number_of(question, marks)


@st.composite
def cases(draw: st.DrawFn, protocol: Protocol) -> tuple[dict[str, Any], date]:
    screened = draw(SCREENED)
    marks = thresholds(protocol)
    answers = {
        q.variable: draw(st.one_of(st.none(), value_of(q, marks.get(q.variable, set()), screened)))
        for q in protocol.spec.questions
    }
    return answers, screened


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_rules_equal_the_interpreter(name: str, data: st.DataObject) -> None:
    protocol = PROTOCOLS[name]
    answers, screened = data.draw(cases(protocol))
    env = context(protocol, answers, screened).env
    for cid, expression in protocol.rules.items():
        compiled, reference = expression.evaluate(env), interpret(expression.node, env)
        assert same(compiled, reference), (cid, expression.text, compiled, reference)
    for variable, expression in protocol.when.items():  # the conditions too, on the same env
        compiled, reference = expression.evaluate(env), interpret(expression.node, env)
        assert same(compiled, reference), (variable, expression.text, compiled, reference)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_unresolved_verdict_has_an_open_item(name: str, data: st.DataObject) -> None:
    protocol = PROTOCOLS[name]
    answers, screened = data.draw(cases(protocol))
    found = verdict.build(protocol, answers, screened_on=screened)
    if found.verdict == "unresolved":
        assert found.open_items
    else:
        assert found.open_items == []
