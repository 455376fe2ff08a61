"""The targeted engine (an answer's checks evaluate only what they read, rules/demand.py)
equals the plain one (every check on the whole context), on every shipped protocol:

- for any answers, the part of the context a question's checks need gives the statuses of
  the criteria reading it, and the applicability of the questions after it, that the whole
  context gives;
- random dialogs (answers incl. unknown and unusual values, checklists, skip, back,
  confirm, restart, pre-filled answers) leave both engines in equal sessions (the stored
  JSON), with equal questions, replies, errors and verdicts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHIPPED
from format2 import SCREENED_ON, build, dialog, inclusion, integer, yes_no
from screen_bot.engine import Engine, typed_values
from screen_bot.protocol import Protocol, load
from screen_bot.rules.demand import demand, part_context
from screen_bot.rules.evaluation import context, statuses
from screen_bot.session import Session
from steps import skip_step
from test_format2_differential import SCREENED, thresholds, value_of

PROTOCOLS = {path.stem: load(path) for path in sorted(SHIPPED.glob("*.yaml"))}
ENGINES = {name: (Engine(p), Engine(p, targeted=False)) for name, p in PROTOCOLS.items()}
NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


def test_every_shipped_protocol_is_compared() -> None:
    assert {"blina-dli", "ctl019-rr-ball"} <= set(PROTOCOLS)
    assert any(p.spec.checklists for p in PROTOCOLS.values())  # the checklist path is run
    assert any(p.spec.derived for p in PROTOCOLS.values())
    assert any(p.tables for p in PROTOCOLS.values())


@st.composite
def mostly_known(draw: st.DrawFn, protocol: Protocol) -> tuple[dict[str, Any], Any]:
    """Answers, most of them known (estimates and tables then have their inputs)."""
    screened = draw(SCREENED)
    marks = thresholds(protocol)
    answers: dict[str, Any] = {}
    for q in protocol.spec.questions:
        how = draw(st.sampled_from(["known"] * 6 + ["unknown", "not answered"]))
        if how != "not answered":
            known = value_of(q, marks.get(q.variable, set()), screened)
            answers[q.variable] = draw(known) if how == "known" else None
    return answers, screened


def answer_of(protocol: Protocol, variable: str, screened: Any) -> st.SearchStrategy[Any]:
    """A value, sometimes unknown (None)."""
    marks = thresholds(protocol).get(variable, set())
    known = value_of(protocol.questions[variable], marks, screened)
    return st.one_of(st.none(), known, known, known)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_part_a_question_needs_equals_the_whole_context(name: str, data: st.DataObject) -> None:
    protocol = PROTOCOLS[name]
    answers, screened = data.draw(mostly_known(protocol))
    whole = context(protocol, answers, screened)
    engine = ENGINES[name][0]
    for variable in protocol.order:
        need = engine._need(variable)
        part = part_context(
            protocol, need, {v: x for v, x in answers.items() if v in need.questions}, screened
        )
        reading = protocol.criteria_reading[variable]
        assert statuses(protocol, part, reading) == statuses(protocol, whole, reading)
        for later in protocol.order[protocol.order.index(variable) + 1 :]:
            if later not in protocol.when:
                break
            assert (later in part.applicable) == (later in whole.applicable), later
        for name_ in part.env:  # what the part holds, it holds as the whole does
            assert part.env[name_] == whole.env.get(name_), name_
        assert part.estimated == {n: u for n, u in whole.estimated.items() if n in part.estimated}
    # each name alone: a question's answer and whether it is asked, a derived value, a table
    for name_ in [*protocol.order, *protocol.derived, *protocol.tables]:
        part = part_context(protocol, demand(protocol, [name_]), answers, screened)
        assert part.env.get(name_) == whole.env.get(name_), name_
        assert (name_ in part.applicable) == (name_ in whole.applicable), name_
        assert part.estimated.get(name_) == whole.estimated.get(name_), name_


@st.composite
def scripts(draw: st.DrawFn, protocol: Protocol) -> tuple[Any, dict[str, Any], list[str]]:
    """(screening date, pre-filled answers, actions); an answer's value is drawn when the
    dialog gets there."""
    screened = draw(SCREENED)
    prefilled_vars = draw(st.sets(st.sampled_from(protocol.order), max_size=4))
    prefilled = {v: draw(answer_of(protocol, v, screened)) for v in sorted(prefilled_vars)}
    kinds = st.sampled_from(["answer"] * 8 + ["unknown", "skip", "back", "confirm", "restart"])
    actions = draw(st.lists(kinds, max_size=60))
    return screened, prefilled, actions


def act(engine: Engine, session: Session, kind: str, value: Any, now: datetime) -> Any:
    """Run one action; its result, or the type of the error it raised."""
    try:
        if kind == "answer":
            if engine.checklist(session) is not None:
                engine.answer_items(session, value, now)
                return None
            return engine.answer(session, value, now)
        if kind == "skip":
            return skip_step(engine, session, now)
        if kind == "back":
            return engine.back(session, now)
        if kind == "confirm":
            return engine.confirm(session, now)
        if kind == "restart":
            return engine.restart(session, now)
        return engine.answer(session, None, now)
    except Exception as error:  # noqa: BLE001 - both engines must fail alike (e.g. when finished)
        return type(error)


def draw_value(
    engine: Engine, session: Session, data: st.DataObject, screened: Any
) -> dict[str, Any] | Any:
    """What to answer at the current step: each checklist item, or one value."""
    protocol = engine.protocol
    if engine.checklist(session) is not None:
        items = engine.step_items(session)
        return {v: data.draw(st.sampled_from([True, False, None])) for v in items}
    question = engine.question(session)
    if question is None:
        return None
    return data.draw(answer_of(protocol, question.variable, screened))


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_dialogs_equal_the_plain_engine(name: str, data: st.DataObject) -> None:
    targeted, plain = ENGINES[name]
    protocol = targeted.protocol
    screened, prefilled, actions = data.draw(scripts(protocol))
    fast = targeted.start("R-1", screened_on=screened, prefilled=prefilled)
    slow = plain.start("R-1", screened_on=screened, prefilled=prefilled)
    slow.id, slow.created_at, slow.updated_at = fast.id, fast.created_at, fast.updated_at
    targeted.fill(fast, NOW)
    plain.fill(slow, NOW)
    assert fast.model_dump_json() == slow.model_dump_json()
    for tick, kind in enumerate(actions):
        now = NOW + timedelta(seconds=tick)
        value = draw_value(targeted, fast, data, screened) if kind == "answer" else None
        assert act(targeted, fast, kind, value, now) == act(plain, slow, kind, value, now)
        assert fast.model_dump_json() == slow.model_dump_json()
        assert targeted.question(fast) == plain.question(slow)
        assert targeted.progress(fast) == plain.progress(slow)
    assert typed_values(protocol, fast) == typed_values(protocol, slow)
    if targeted.finished(fast):
        assert targeted.verdict(fast) == plain.verdict(slow)


@pytest.mark.parametrize("targeted", [True, False], ids=["targeted", "plain"])
@pytest.mark.parametrize(
    ("value", "state"), [(25, "not_eligible"), (5, "not_eligible"), (15, "eligible")]
)
def test_the_last_question_read_by_two_criteria_ends_in_the_verdict(
    tmp_path: Path, targeted: bool, value: int, state: str
) -> None:
    """The shipped protocols' last questions are each read by one criterion. Here both I2
    and I3 read it: 25 fails I3 only, 5 fails I2 only, and either ends the screening
    not eligible (a session must not end "eligible" because one of them is met)."""
    protocol = build(
        tmp_path,
        dialog(
            [yes_no("consented"), integer("score", 0, 100)],
            [
                inclusion("I1", "consented"),
                inclusion("I2", "score >= 10"),
                inclusion("I3", "score <= 20"),
            ],
        ),
    )
    engine = Engine(protocol, targeted=targeted)
    session = engine.start(screened_on=SCREENED_ON)
    assert engine.answer(session, True, NOW) == ""
    assert engine.answer(session, value, NOW) == ""
    assert session.state == state == engine.verdict(session).verdict
