"""Screening against a set of protocols (``--protocol all``): the merged question order, the
set's dialog, and the rule that matters most: each protocol's verdict in the set is the
verdict of screening it alone (hypothesis, over both shipped protocols)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import SHIPPED
from format2 import build, dialog, integer, yes_no
from format2 import inclusion as include
from patients import ELIGIBLE, SCREENED_ON
from screen_bot.engine import BaseEngine, Engine, typed_values
from screen_bot.protocol import Protocol, load
from screen_bot.protocol.sets import ProtocolSet, ProtocolSetError, can_end, merged_order
from screen_bot.rules.evaluation import applicable_questions, context, statuses
from screen_bot.session import Session
from screen_bot.set_engine import SCREENED, SetEngine
from screen_bot.verdict import Verdict, ranked
from screen_bot.verdict import build as build_verdict
from test_ctl019_boundaries import A, B, D
from test_dialog_properties import LATER_KNOWN_TABLE
from test_format2_differential import thresholds, value_of

BLINA = load(SHIPPED / "blina-dli.yaml")
CTL019 = load(SHIPPED / "ctl019-rr-ball.yaml")
BOTH = ProtocolSet((BLINA, CTL019))
SET_ENGINE = SetEngine(BOTH)
ALONE = {p.id: Engine(p) for p in BOTH.members}

# A patient eligible for blina-dli (post-transplant, in remission), with the answers
# ctl019-rr-ball asks besides: never relapsed, 1 % marrow blasts.
BLINA_PATIENT: dict[str, Any] = {
    **ELIGIBLE,
    "marrow_relapse_count": 0,
    "primary_refractory": False,
    "chemorefractory_relapse": False,
    "prior_therapies": (),
    "cns_status": "CNS1",
    "marrow_blasts_percent": 1,
    "age_at_diagnosis": 38,
    "burkitt": False,
    "isolated_extramedullary_relapse": False,
    "prior_allo_hsct": True,
}
# ctl019-rr-ball's base answer sets (cases.md); blina-dli's other answers as ELIGIBLE's.
CART_A: dict[str, Any] = {**ELIGIBLE, **A}
CART_B: dict[str, Any] = {**ELIGIBLE, **B}


def drive(engine: BaseEngine[Any], answers: dict[str, Any], on: date) -> Session:
    """Answer what the engine asks from ``answers`` (absent: unknown) to the end."""
    session = engine.start(None, screened_on=on)
    while not engine.finished(session):
        question = engine.question(session)
        assert question is not None
        engine.answer(session, answers.get(question.variable), confirmed=True)
        assert len(session.history) <= len(engine.protocol.order)
    return session


def alone(protocol: Protocol, answers: dict[str, Any], on: date) -> tuple[Verdict, int]:
    """The verdict of screening one protocol by itself, and how many questions it took."""
    engine = ALONE.get(protocol.id) or ALONE.setdefault(protocol.id, Engine(protocol))
    session = drive(engine, answers, on)
    verdict = engine.findings(session)[0].verdict
    return verdict, len(session.history)


# -- the merged order ------------------------------------------------------------------------


def test_every_question_comes_after_what_its_conditions_read() -> None:
    order = BOTH.order
    assert sorted(order) == sorted(BOTH.questions)
    for member in BOTH.members:
        for variable, condition in member.when.items():
            for name in condition.names:
                for read in member.inputs_of(name):
                    if read != variable:
                        assert order.index(read) < order.index(variable), (variable, read)


def test_questions_ending_more_protocols_come_first() -> None:
    """Among the questions no condition holds back, the number of protocols a question can
    end never rises along the order; and a protocol's own questions keep its order there."""
    ends = {v: sum(can_end(m, v) for m in BOTH.owners[v]) for v in BOTH.order}
    free = [v for v in BOTH.order if not any(v in m.when for m in BOTH.owners[v])]
    assert [ends[v] for v in free] == sorted((ends[v] for v in free), reverse=True)
    assert max(ends.values()) == 2 and ends[BOTH.order[0]] == 2
    for member in BOTH.members:
        own = [v for v in free if BOTH.owners[v] == (member,)]
        for group in set(ends[v] for v in own):
            same = [v for v in own if ends[v] == group]
            assert same == sorted(same, key=member.order.index)


def test_can_end_is_what_one_answer_can_fail() -> None:
    assert can_end(BLINA, "age") and can_end(CTL019, "age")  # 14–65 / at least 3
    assert can_end(CTL019, "prior_therapies")  # blinatumomab: C-E5b
    assert not can_end(BLINA, "sex") and not can_end(CTL019, "sex")
    assert not can_end(CTL019, "marrow_relapse_count")  # route (c) may still hold


def protocol(directory: Path, name: str, questions: list[Any], rules: list[Any]) -> Protocol:
    return build(directory, dialog(questions, rules, id=name), f"{name}.yaml")


def test_a_shared_knock_out_goes_before_each_protocols_own_first(tmp_path: Path) -> None:
    first = [yes_no("first_of_one"), integer("age")]
    one = protocol(
        tmp_path, "one", first, [include("X1", "first_of_one"), include("X2", "age >= 18")]
    )
    second = [yes_no("first_of_two"), integer("age")]
    two = protocol(
        tmp_path, "two", second, [include("Y1", "first_of_two"), include("Y2", "age <= 65")]
    )
    assert merged_order([one, two]) == ["age", "first_of_one", "first_of_two"]


def test_conditions_needing_opposite_orders_are_refused(tmp_path: Path) -> None:
    one = protocol(
        tmp_path, "one", [yes_no("a"), yes_no("b", when="a")], [include("X1", "not (a) or b")]
    )
    two = protocol(
        tmp_path, "two", [yes_no("b"), yes_no("a", when="b")], [include("Y1", "not (b) or a")]
    )
    with pytest.raises(ProtocolSetError) as refused:
        merged_order([one, two])
    assert "a (reads b)" in refused.value.message and "b (reads a)" in refused.value.message


# -- the set's dialog ------------------------------------------------------------------------


@st.composite
def patients(draw: st.DrawFn, protocols: ProtocolSet = BOTH) -> tuple[dict[str, Any], date]:
    """Answers to every question of the shipped protocols (and of the others in
    ``protocols``): a known patient with a few answers changed, or any answers at all
    (None: unknown)."""
    screened = draw(st.sampled_from([D, SCREENED_ON, D + timedelta(days=45)]))
    marks: dict[str, set[float]] = {}
    for member in protocols.members:
        for variable, found in thresholds(member).items():
            marks.setdefault(variable, set()).update(found)

    def answer(variable: str) -> st.SearchStrategy[Any]:
        question = protocols.questions[variable]
        return st.one_of(st.none(), value_of(question, marks.get(variable, set()), screened))

    if draw(st.booleans()):
        base = dict(draw(st.sampled_from([BLINA_PATIENT, CART_A, CART_B])))
        for variable in draw(st.sets(st.sampled_from(BOTH.order), max_size=4)):
            base[variable] = draw(answer(variable))
        if screened != D:  # dates relative to the base's own screening day
            base = {v: x for v, x in base.items() if not isinstance(x, date)}
        for variable in protocols.order:  # the other protocols' own questions
            if variable not in BOTH.questions:
                base[variable] = draw(answer(variable))
        return base, screened
    return {v: draw(answer(v)) for v in protocols.order}, screened


def failed(member: Protocol, answers: dict[str, Any], on: date) -> bool:
    return "failed" in statuses(member, context(member, answers, on))


@pytest.fixture(scope="module")
def set_engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SetEngine]:
    """The shipped protocols' set, and the same with a protocol whose rules read known() of
    questions still to come (a protocol must not leave the running on such a failure)."""
    later = build(tmp_path_factory.mktemp("sets"), LATER_KNOWN_TABLE, "later-known-table.yaml")
    return {
        "shipped": SET_ENGINE,
        "with-later-known": SetEngine(ProtocolSet((*BOTH.members, later))),
    }


@pytest.mark.parametrize("name", ["shipped", "with-later-known"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_protocols_verdict_is_the_verdict_of_screening_it_alone(
    name: str, set_engines: dict[str, SetEngine], data: st.DataObject
) -> None:
    engine = set_engines[name]
    answers, on = data.draw(patients(engine.protocol), "answers")
    session = drive(engine, answers, on)
    assert session.state == SCREENED
    assert len(session.history) == len(set(session.history))  # each question asked once
    found = {f.verdict.protocol.id: f.verdict for f in engine.findings(session)}
    for member in engine.protocol.members:
        verdict, _ = alone(member, answers, on)
        together = found[member.id]
        event(f"{member.id}: {verdict.verdict}")
        assert together.verdict == verdict.verdict, member.id
        if verdict.verdict == "not_eligible":
            # the set may have stopped this protocol at another question than it stops at
            # alone, so the reasons may differ; each is a failure on the full answers
            full = build_verdict(member, answers, screened_on=on)
            assert together.reasons
            assert {r.criterion for r in together.reasons} <= {r.criterion for r in full.reasons}
        else:  # every question it asks was asked: the same verdict in every detail
            assert together == verdict, member.id


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=patients())
def test_a_question_is_asked_only_for_a_protocol_still_in_the_running(
    case: tuple[dict[str, Any], date],
) -> None:
    """At each step, the question asked is one that a protocol not yet failed asks; when the
    dialog ends, no such protocol has a question left."""
    answers, on = case
    session = drive(SET_ENGINE, answers, on)
    given_so_far: dict[str, Any] = {}
    for variable in session.history:
        live = [m for m in BOTH.members if not failed(m, given_so_far, on)]
        assert any(
            variable in applicable_questions(m, given_so_far, on)
            for m in live
            if variable in m.questions
        ), variable
        given_so_far[variable] = answers.get(variable)
    values = typed_values(BOTH, session)
    last = BOTH.order.index(session.history[-1])
    for member in BOTH.members:
        if not failed(member, values, on):
            later = BOTH.order[last + 1 :]
            asked = applicable_questions(member, values, on)
            assert not [v for v in later if v in member.questions and v in asked], member.id


def test_verdicts_are_ranked_eligible_then_unresolved_by_open_items_then_not() -> None:
    session = drive(SET_ENGINE, CART_B, D)
    found = [f.verdict for f in SET_ENGINE.findings(session)]
    assert [v.verdict for v in found] == ["eligible", "not_eligible"]
    assert found == ranked(found)
    unresolved = {**CART_B, "life_expectancy_over_12_weeks": None}
    session = drive(SET_ENGINE, unresolved, D)
    assert [f.verdict.verdict for f in SET_ENGINE.findings(session)] == [
        "unresolved",
        "not_eligible",
    ]


def test_ranking_puts_fewer_open_items_first() -> None:
    def verdict(value: str, items: int) -> Verdict:
        from screen_bot.verdict import OpenItem, ProtocolRef

        item = OpenItem(criterion="X", variable="x", kind="missing", label="x")
        return Verdict(
            verdict=value,  # type: ignore[arg-type]
            open_items=[item] * items,
            protocol=ProtocolRef(id=f"p{value}{items}", version="1", sha256="0"),
            screened_on=D,
        )

    given_order = [
        verdict("not_eligible", 0),
        verdict("unresolved", 3),
        verdict("eligible", 0),
        verdict("unresolved", 1),
    ]
    assert [(v.verdict, len(v.open_items)) for v in ranked(given_order)] == [
        ("eligible", 0),
        ("unresolved", 1),
        ("unresolved", 3),
        ("not_eligible", 0),
    ]


def test_back_and_restart_in_a_set_session() -> None:
    session = SET_ENGINE.start("R-1", screened_on=D)
    first = SET_ENGINE.question(session)
    assert first is not None and first.variable == BOTH.order[0]
    assert set(SET_ENGINE.criteria_asking(session)) == {
        *BLINA.criteria_reading["age"],
        *CTL019.criteria_reading["age"],
    }
    SET_ENGINE.answer(session, 10)  # age 10: blina-dli is out at once
    assert SET_ENGINE.live(session) == ["ctl019-rr-ball"]
    assert SET_ENGINE.criteria_asking(session) == CTL019.criteria_reading[session.state]
    second = session.state
    SET_ENGINE.answer(session, True)
    assert SET_ENGINE.back(session) and session.state == second
    assert SET_ENGINE.back(session) and session.state == first.variable
    assert SET_ENGINE.live(session) == ["blina-dli", "ctl019-rr-ball"]
    SET_ENGINE.answer(session, 40)
    SET_ENGINE.restart(session)
    assert session.state == first.variable and not session.answers
    assert Session.model_validate_json(session.model_dump_json()) == session


def test_a_question_is_worded_by_a_protocol_that_still_asks_it() -> None:
    # with a measured clearance blina-dli no longer asks serum creatinine; ctl019-rr-ball,
    # for a second relapse with 30 % blasts, diagnosed at 20, does
    relapse = {"marrow_relapse_count": 2, "marrow_blasts_percent": 30, "age_at_diagnosis": 20}
    patient = {**BLINA_PATIENT, **relapse}
    session = SET_ENGINE.start(None, screened_on=D)
    while session.state != "serum_creatinine_mg_dl":
        question = SET_ENGINE.question(session)
        assert question is not None, "serum creatinine was never asked"
        SET_ENGINE.answer(session, patient.get(question.variable), confirmed=True)
    assert patient["crcl_ml_min"] is not None
    assert SET_ENGINE.live(session) == ["blina-dli", "ctl019-rr-ball"]
    assert SET_ENGINE.question(session) is CTL019.questions["serum_creatinine_mg_dl"]
    assert SET_ENGINE.criteria_asking(session) == CTL019.criteria_reading["serum_creatinine_mg_dl"]


def test_progress_counts_what_the_protocols_still_in_the_running_ask() -> None:
    session = SET_ENGINE.start(None, screened_on=D)
    _, total_at_start = SET_ENGINE.progress(session)
    SET_ENGINE.answer(session, 10)  # blina-dli is out: its questions are no longer counted
    position, total = SET_ENGINE.progress(session)
    assert position == 2 and total < total_at_start
    assert total - 1 <= len([v for v in CTL019.order if v != "age"])


# -- how many questions: the figures of the README -------------------------------------------


def counts(answers: dict[str, Any], on: date) -> tuple[int, int]:
    """(questions asked by one screening against both, the sum of screening each alone)."""
    together = len(drive(SET_ENGINE, answers, on).history)
    return together, sum(alone(m, answers, on)[1] for m in BOTH.members)


def test_the_readmes_question_counts_are_measured() -> None:
    readme = (SHIPPED.parent / "README.md").read_text(encoding="utf-8")
    for label, answers, on in [
        ("eligible for blina-dli", BLINA_PATIENT, SCREENED_ON),
        ("relapsed CAR-T candidate A", CART_A, D),
        ("relapsed CAR-T candidate B", CART_B, D),
    ]:
        together, separately = counts(answers, on)
        assert f"| {label} | {separately} | {together} |" in readme, (label, together, separately)


# -- each member's answers ---------------------------------------------------------------------

EVERY_VARIABLE = sorted({v for m in BOTH.members for v in m.questions} | {"not_a_question"})


@given(st.permutations(EVERY_VARIABLE), st.data())
def test_each_member_gets_its_own_answers_in_the_rows_order(
    order: list[str], data: st.DataObject
) -> None:
    kept = data.draw(st.lists(st.sampled_from(order), unique=True))
    values = {v: index for index, v in enumerate(order) if v in kept}
    found = BOTH.answers_of_each(values)
    assert [member for member, _ in found] == list(BOTH.members)
    for member, own in found:
        expected = {v: x for v, x in values.items() if v in member.questions}
        assert list(own.items()) == list(expected.items())
