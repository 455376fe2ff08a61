"""Properties of the dialog (hypothesis): early exit, back, JSON round trips, a state machine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from conftest import DIALOG, SHIPPED
from format2 import (
    a_date,
    choice,
    date_or_none,
    dialog,
    exclusion,
    inclusion,
    integer,
    number,
    yes_no,
)
from format2 import build as build_dialog
from patients import ELIGIBLE, SCREENED_ON
from screen_bot.engine import END_STATES, BaseEngine, Engine, stored, typed_values
from screen_bot.protocol import Protocol, load
from screen_bot.protocol.schema import Question
from screen_bot.protocol.sets import ProtocolSet
from screen_bot.rules import evaluation
from screen_bot.rules.evaluation import applicable_questions, evaluate
from screen_bot.session import ProtocolChanged, Session
from screen_bot.set_engine import SetEngine
from screen_bot.verdict import build, decide, row_fields, unusual
from steps import skip_step
from test_format2_differential import SCREENED, cases, thresholds
from test_format2_differential import value_of as any_value_of

PROTOCOL: Protocol = load(DIALOG)
SHIPPED_IDS = frozenset(load(path).id for path in SHIPPED.glob("*.yaml"))
ENGINE = Engine(PROTOCOL)
TODAY = SCREENED_ON  # 2026-01-15
NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


# The dictionary's thresholds, with the values on either side.
BOUNDARIES: dict[str, list[Any]] = {
    "age": [13, 14, 65, 66],
    "transplant_date": [date(2025, 11, 15), date(2025, 11, 16)],
    "last_mi_date": [date(2025, 1, 15), date(2025, 1, 16), "none"],
    "last_vascular_event_date": [date(2025, 1, 15), date(2025, 1, 16), "none"],
    "last_major_surgery_date": [date(2025, 12, 4), date(2025, 12, 5), "none"],
    "ecog": [2, 3],
    "karnofsky": [69, 70],
    "ast_x_uln": [3, 3.01],
    "alt_x_uln": [3, 3.01],
    "bilirubin_x_uln": [2, 2.01, 3, 3.01],
    "creatinine_x_uln": [2, 2.01],
    "crcl_ml_min": [49.9, 50],
    "weight_kg": [71.9, 72],
    "serum_creatinine_mg_dl": [1.7, 2.0],
    "lvef_percent": [49.9, 50, 59.9, 60],
    "qtc_ms": [450, 451, 470, 471],
}


def value_of(question: Question) -> st.SearchStrategy[Any]:
    """Any valid value of a question (not unknown), boundary values included."""
    if question.type == "yes_no":
        return st.booleans()
    if question.type == "choice":
        return st.sampled_from(question.choices or [])
    if question.type in ("date", "date_or_none"):
        days = st.dates(date(2020, 1, 1), TODAY)
        return st.one_of(st.sampled_from(BOUNDARIES.get(question.variable, [TODAY])), days)
    assert question.min is not None and question.max is not None
    extremes = [question.min, question.max]
    if question.type == "int":
        ranged: st.SearchStrategy[Any] = st.integers(int(question.min), int(question.max))
        extremes = [int(x) for x in extremes]
    else:
        ranged = st.floats(question.min, question.max, allow_nan=False, allow_infinity=False)
    return st.one_of(
        st.sampled_from(BOUNDARIES.get(question.variable, []) + extremes),
        ranged,
    )


def answer_of(question: Question) -> st.SearchStrategy[Any]:
    """A value or unknown (None)."""
    return st.one_of(st.none(), value_of(question))


@st.composite
def answer_sets(draw: st.DrawFn) -> dict[str, Any]:
    """Either a near-eligible set with a few answers changed, or any answers at all."""
    if draw(st.booleans()):
        base = dict(ELIGIBLE)
        base["sex"] = draw(st.sampled_from(["female", "male"]))
        changed = draw(st.sets(st.sampled_from(PROTOCOL.order), max_size=5))
        for variable in changed:
            base[variable] = draw(answer_of(PROTOCOL.questions[variable]))
        return base
    return {v: draw(answer_of(PROTOCOL.questions[v])) for v in PROTOCOL.order}


def roundtrip(session: Session) -> None:
    assert Session.model_validate_json(session.model_dump_json()) == session


def put(session: Session, value: Any, now: datetime | None = NOW, engine: Engine = ENGINE) -> None:
    """Answer, confirming an unusual value as the user would."""
    if engine.answer(session, value, now):
        assert session.pending is not None and engine.confirm(session, now)


def start(referral: str | None = None) -> Session:
    return ENGINE.start(referral, screened_on=TODAY)


def drive(
    answers: dict[str, Any],
    check_each_step: bool = True,
    engine: Engine = ENGINE,
    on: date = TODAY,
) -> Session:
    session = engine.start(None, screened_on=on)
    tick = 0
    while not engine.finished(session):
        question = engine.question(session)
        assert question is not None
        tick += 1
        now = NOW + timedelta(seconds=tick)
        put(session, answers.get(question.variable), now=now, engine=engine)
        if check_each_step:
            roundtrip(session)
        assert tick <= len(engine.protocol.order)
    return session


# -- (a) early exit equals full evaluation -----------------------------------------------------

# Rules may read known() and unknown() of a question still to come (README: rules take
# known(x)): until it is answered, or known not to be asked, such a rule is open. Here
# directly (I1, E1), of a conditional question (E3) and of one asked when another is
# known (I2: decided by c's answer, which I2 does not read), of a derived value (I4), and
# a derived value whose measured question comes after its estimate's inputs (E2); the
# table variant reads known() in a table's row too (I3). Without the table the protocol
# is compiled (rules/stored.py); with it, it takes the general path.
LATER_KNOWN_QUESTIONS = [
    integer("a", 0, 10),
    choice("sex", ["female", "male"]),
    integer("age", 0, 120, unit="years"),  # (as blina-dli asks them: the set shares them)
    number("weight_kg", 20, 300, unit="kg"),
    number("serum_creatinine_mg_dl", 0.05, 30, unit="mg/dL"),
    integer("b", 0, 10),
    yes_no("c", when="a > 2"),
    number("crcl_ml_min", 0, 500, unit="mL/min", when="sex == 'female'"),
    integer("d", 0, 10, when="known(c)"),
    yes_no("e"),
]
LATER_KNOWN_CRITERIA = [
    inclusion("I1", "known(b) or a > 3"),
    exclusion("E1", "unknown(e) and b > 8"),
    inclusion("I2", "known(d) or b > 5"),
    exclusion("E2", "crcl < 30"),
    inclusion("I4", "known(crcl) or e"),
    exclusion("E3", "unknown(c) and a > 8"),
]
CRCL = {
    "name": "crcl",
    "label": "kidney function",
    "unit": "mL/min",
    "measured": "crcl_ml_min",
    "calculator": "cockcroft_gault",
    "inputs": {
        "age": "age",
        "sex": "sex",
        "weight_kg": "weight_kg",
        "serum_creatinine_mg_dl": "serum_creatinine_mg_dl",
    },
}
LATER_KNOWN = dialog(LATER_KNOWN_QUESTIONS, LATER_KNOWN_CRITERIA, id="later-known", derived=[CRCL])
LATER_KNOWN_TABLE = dialog(
    LATER_KNOWN_QUESTIONS,
    [*LATER_KNOWN_CRITERIA, inclusion("I3", "b <= limit")],
    id="later-known-table",
    derived=[CRCL],
    tables=[
        {
            "name": "limit",
            "label": "limit",
            "rows": [
                {"when": "known(d)", "value": 8},
                {"when": "a < 5", "value": 3},
                {"when": "a >= 5", "value": 6},
            ],
        }
    ],
)
# The auditor's case: answering a = 1 ended the dialog not eligible; with b = 5 it is eligible.
KNOWN_LATER = dialog(
    [integer("a", 0, 10), integer("b", 0, 10)],
    [inclusion("I1", "known(b) or a > 3")],
    id="known-later",
)


@pytest.fixture(scope="module")
def exit_engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Engine, Engine]]:
    """The targeted and the plain engine of each shipped protocol and each synthetic one
    whose rules read known() of questions still to come."""
    directory = tmp_path_factory.mktemp("early-exit")
    protocols = [load(path) for path in sorted(SHIPPED.glob("*.yaml"))]
    for data in (LATER_KNOWN, LATER_KNOWN_TABLE):
        protocols.append(build_dialog(directory, data, f"{data['id']}.yaml"))
    return {p.id: (Engine(p), Engine(p, targeted=False)) for p in protocols}


@pytest.mark.parametrize(
    "name", ["blina-dli", "ctl019-rr-ball", "later-known", "later-known-table"]
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_early_exit_verdict_equals_batch(
    name: str, exit_engines: dict[str, tuple[Engine, Engine]], data: st.DataObject
) -> None:
    engine, plain = exit_engines[name]
    protocol = engine.protocol
    if name == PROTOCOL.id:
        answers, on = data.draw(answer_sets(), "answers"), TODAY
    else:
        answers, on = data.draw(cases(protocol), "answers")
    session = drive(answers, engine=engine, on=on)
    dialog = engine.verdict(session)
    batch = build(protocol, answers, screened_on=on)

    event(f"verdict: {dialog.verdict}")
    if batch.verdict == "unresolved":  # the dictionary: always at least one open item
        assert batch.open_items
    assert dialog.verdict == batch.verdict
    assert session.state == dialog.verdict
    assert {r.criterion for r in dialog.reasons} <= {r.criterion for r in batch.reasons}
    # the plain engine (every check on the whole context) ends alike, at the same answer
    slow = drive(answers, check_each_step=False, engine=plain, on=on)
    assert (slow.history, slow.state) == (session.history, session.state)

    applicable = applicable_questions(protocol, answers, on)
    assert set(session.history) <= applicable, "asked a question whose condition is false"
    assert session.history == [v for v in protocol.order if v in session.history]
    if dialog.verdict == "not_eligible":
        assert dialog.reasons
        # it stopped at the first failure: before the last answer, nothing had failed that
        # the answers still to come could not undo
        values = typed_values(protocol, session)
        before = {v: values[v] for v in session.history[:-1]}
        ctx = evaluation.context(protocol, before, on)
        failing = [c for c, s in evaluation.status_of_each(protocol, ctx).items() if s == "failed"]
        to_come = protocol.order[protocol.order.index(session.history[-1]) :]
        assert not evaluation.lasting_failures(protocol, lambda: ctx, before, to_come, failing)
        if name in SHIPPED_IDS:  # no rule reads known() of what is to come: nothing failed
            assert decide(evaluate(protocol, before, on)) != "not_eligible"
    else:
        # no early exit: every applicable question was asked, and the verdicts agree fully
        assert session.history == [v for v in protocol.order if v in applicable]
        assert dialog == batch


@pytest.mark.parametrize("targeted", [True, False], ids=["targeted", "plain"])
def test_a_rule_reading_known_of_an_answer_to_come_waits_for_it(
    tmp_path: Path, targeted: bool
) -> None:
    """The auditor's case: `met_when: known(b) or a > 3` passes validate; a = 1 ended the
    dialog not eligible, where the batch (and answering b) says eligible with b = 5."""
    protocol = build_dialog(tmp_path, KNOWN_LATER)
    engine = Engine(protocol, targeted=targeted)
    answers = {"a": 1, "b": 5}
    session = engine.start(None, screened_on=TODAY)
    assert engine.answer(session, 1, NOW) == ""
    assert session.state == "b"  # open until b is answered: not an early exit
    assert engine.answer(session, 5, NOW) == ""
    assert session.state == "eligible"
    assert engine.verdict(session) == build(protocol, answers, screened_on=TODAY)
    assert row_fields(protocol, answers, screened_on=TODAY)["verdict"] == "eligible"  # batch
    # b unknown: then I1 fails, as the batch says
    session = engine.start(None, screened_on=TODAY)
    engine.answer(session, 1, NOW)
    engine.answer(session, None, NOW)
    assert session.state == "not_eligible"
    assert build(protocol, {"a": 1, "b": None}, screened_on=TODAY).verdict == "not_eligible"


def test_the_set_keeps_a_protocol_whose_failure_an_answer_to_come_may_undo(
    tmp_path: Path,
) -> None:
    """In `--protocol all`, a = 1 dropped the auditor's protocol from the running (its b was
    then never asked, and its verdict said not eligible); screened alone it is eligible."""
    protocol = build_dialog(tmp_path, KNOWN_LATER)
    shipped = [load(path) for path in sorted(SHIPPED.glob("*.yaml"))]
    engine = SetEngine(ProtocolSet((*shipped, protocol)))
    answers = {**ELIGIBLE, "a": 1, "b": 5}
    session = engine.start(None, screened_on=TODAY)
    while not engine.finished(session):
        variable = session.state
        engine.answer(session, answers.get(variable), NOW, confirmed=True)
        if variable == "a":
            assert protocol.id in engine.live(session)
    assert "b" in session.history
    found = {f.verdict.protocol.id: f.verdict for f in engine.findings(session)}
    assert found[protocol.id].verdict == "eligible"


# -- (b) back then answer again equals answering once --------------------------------------------


def comparable(session: Session) -> dict[str, Any]:
    return session.model_dump(exclude={"step", "updated_at"})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers=answer_sets(), data=st.data())
def test_back_then_answer_again_equals_answering_once(
    answers: dict[str, Any], data: st.DataObject
) -> None:
    stop = data.draw(st.integers(0, len(PROTOCOL.order)), label="questions answered first")
    session = start()
    while not ENGINE.finished(session) and len(session.history) < stop:
        question = ENGINE.question(session)
        assert question is not None
        put(session, answers.get(question.variable))
    if ENGINE.finished(session):
        return
    question = ENGINE.question(session)
    assert question is not None
    x = data.draw(answer_of(question), label="answer kept")
    y = data.draw(answer_of(question), label="answer taken back")

    once = session.model_copy(deep=True)
    ENGINE.answer(once, x, now=NOW, confirmed=True)

    twice = session.model_copy(deep=True)
    ENGINE.answer(twice, y, now=NOW, confirmed=True)
    assert ENGINE.back(twice, now=NOW)
    assert comparable(twice) == comparable(session)  # back undoes the answer
    ENGINE.answer(twice, x, now=NOW, confirmed=True)

    assert comparable(twice) == comparable(once)
    assert twice.step == once.step + 2


@settings(max_examples=100, deadline=None)
@given(answers=answer_sets(), data=st.data())
def test_several_backs_then_the_same_answers_again(
    answers: dict[str, Any], data: st.DataObject
) -> None:
    session = start()
    while not ENGINE.finished(session):
        question = ENGINE.question(session)
        assert question is not None
        put(session, answers.get(question.variable))
    original = session.model_copy(deep=True)
    backs = data.draw(st.integers(0, len(session.history)), label="backs")
    undone = [(v, session.answers[v].value) for v in session.history[-backs:]] if backs else []
    for _ in range(backs):
        assert ENGINE.back(session, now=NOW)
    if backs:
        assert session.state == undone[0][0]
    for variable, value in undone:
        assert ENGINE.question(session) is not None
        assert ENGINE.question(session).variable == variable  # type: ignore[union-attr]
        ENGINE.answer(session, value, now=NOW, confirmed=True)
    assert comparable(session) == comparable(original)


def test_back_at_the_first_question_does_nothing() -> None:
    session = start()
    before = session.model_copy(deep=True)
    assert ENGINE.back(session) is False
    assert session == before


# -- (c) JSON round trip at every step -------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    answers=answer_sets(),
    referral=st.one_of(st.none(), st.from_regex(r"R-[0-9]{1,6}", fullmatch=True)),
)
def test_session_json_round_trip_at_every_step(
    answers: dict[str, Any], referral: str | None
) -> None:
    session = start(referral)
    roundtrip(session)
    while not ENGINE.finished(session):
        question = ENGINE.question(session)
        assert question is not None
        ENGINE.answer(session, answers.get(question.variable))  # real clock: microseconds
        roundtrip(session)  # also while an unusual value waits for confirmation
        ENGINE.confirm(session)
        roundtrip(session)
    ENGINE.back(session)
    roundtrip(session)
    ENGINE.restart(session)
    roundtrip(session)


# -- (d) a state machine over answer / skip / back / restart ---------------------------------------


class DialogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.session = start("R-1")

    def _question(self) -> Question:
        question = ENGINE.question(self.session)
        assert question is not None
        return question

    @precondition(lambda self: not ENGINE.finished(self.session))
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        question = self._question()
        value = data.draw(value_of(question), label=question.variable)
        if ENGINE.answer(self.session, value):  # unusual: waits for confirmation
            assert question.variable not in self.session.answers
            assert self.session.pending is not None and self.session.pending.value == value
            assert ENGINE.confirm(self.session)
        assert self.session.pending is None
        assert typed_values(PROTOCOL, self.session)[question.variable] == value

    @precondition(lambda self: not ENGINE.finished(self.session))
    @rule(data=st.data())
    def answer_as_eligible(self, data: st.DataObject) -> None:
        """Mostly-eligible answers take the dialog deep enough to reach eligible/unresolved."""
        question = self._question()
        put(self.session, ELIGIBLE[question.variable])

    @precondition(lambda self: not ENGINE.finished(self.session))
    @rule(data=st.data())
    def answer_the_rest(self, data: st.DataObject) -> None:
        """Answer every remaining question, mostly as an eligible patient would."""
        while not ENGINE.finished(self.session):
            question = self._question()
            value = data.draw(
                st.one_of(st.just(ELIGIBLE[question.variable]), answer_of(question))
                if data.draw(st.integers(0, 9), label="change?") == 0
                else st.just(ELIGIBLE[question.variable]),
                label=question.variable,
            )
            put(self.session, value)
        event(f"finished: {self.session.state}")

    @precondition(lambda self: not ENGINE.finished(self.session))
    @rule()
    def skip(self) -> None:
        variable = self._question().variable
        skip_step(ENGINE, self.session)
        assert self.session.answers[variable].value is None

    @precondition(lambda self: ENGINE.checklist(self.session) is not None)
    @rule(data=st.data())
    def answer_checklist(self, data: st.DataObject) -> None:
        """A checklist step: every item at once (yes, no or unknown)."""
        items = ENGINE.step_items(self.session)
        ticks = {v: data.draw(st.one_of(st.none(), st.booleans()), label=v) for v in items}
        group = ENGINE.checklist(self.session).name  # type: ignore[union-attr]
        ENGINE.answer_items(self.session, ticks)
        for variable, value in ticks.items():
            answer = self.session.answers[variable]
            assert answer.value == value and answer.group == group
        assert self.session.draft is None

    @precondition(lambda self: ENGINE.checklist(self.session) is not None)
    @rule(data=st.data())
    def toggle(self, data: st.DataObject) -> None:
        """Ticks change the draft only: no answer, no step."""
        before = self.session.model_copy(deep=True)
        items = ENGINE.step_items(self.session)
        assert ENGINE.toggle(self.session, data.draw(st.integers(0, len(items) - 1)))
        assert self.session.answers == before.answers and self.session.step == before.step
        assert not ENGINE.toggle(self.session, len(items))

    @rule()
    def back(self) -> None:
        history = list(self.session.history)
        answers = dict(self.session.answers)
        went_back = ENGINE.back(self.session)
        assert went_back == bool(history)
        if history:
            group = answers[history[-1]].group
            run = [history[-1]]
            while group is not None and len(run) < len(history):
                if answers[history[-len(run) - 1]].group != group:
                    break
                run.insert(0, history[-len(run) - 1])
            assert self.session.state == run[0]  # a checklist comes back whole
            assert not set(run) & set(self.session.answers)
            if group is not None:  # … with its ticks as answered
                assert ENGINE.item_values(self.session) == {v: answers[v].value for v in run}

    @rule()
    def restart(self) -> None:
        ENGINE.restart(self.session)
        assert self.session.state == PROTOCOL.order[0]
        assert self.session.answers == {}
        assert self.session.history == []

    @rule()
    def quit_and_resume(self) -> None:
        """A stored session comes back unchanged."""
        stored = self.session.model_dump_json()
        self.session = Session.model_validate_json(stored)
        self.session.check_protocol(PROTOCOL)

    @invariant()
    def state_is_a_question_or_an_end(self) -> None:
        assert self.session.state in PROTOCOL.order or self.session.state in END_STATES

    @invariant()
    def history_matches_answers(self) -> None:
        history = self.session.history
        assert len(history) == len(set(history))
        assert set(history) == set(self.session.answers)
        assert history == [v for v in PROTOCOL.order if v in history]  # asked in order

    @invariant()
    def current_question_is_applicable(self) -> None:
        if not ENGINE.finished(self.session):
            values = typed_values(PROTOCOL, self.session)
            assert self.session.state in applicable_questions(PROTOCOL, values, TODAY)
            assert self.session.state not in self.session.answers

    @invariant()
    def finished_session_verdict_equals_build(self) -> None:
        if ENGINE.finished(self.session):
            values = typed_values(PROTOCOL, self.session)
            verdict = build(PROTOCOL, values, referral=self.session.referral, screened_on=TODAY)
            assert ENGINE.verdict(self.session) == verdict
            assert verdict.verdict == self.session.state
            assert verdict.verdict != "unresolved" or verdict.open_items

    @invariant()
    def survives_json(self) -> None:
        roundtrip(self.session)


DialogMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
TestDialogMachine = DialogMachine.TestCase


# -- checklists and pre-filled answers -------------------------------------------------------------


def drive_steps(
    answers: dict[str, Any], prefilled: dict[str, Any] | None = None
) -> tuple[Session, list[tuple[int, int]]]:
    """A screening answered step by step (a checklist at once), from ``answers``; the
    progress shown at each step."""
    session = ENGINE.start(screened_on=TODAY, prefilled=prefilled)
    ENGINE.fill(session, NOW)
    if session.pending is not None:
        assert ENGINE.confirm(session, NOW)
    shown = []
    while not ENGINE.finished(session):
        shown.append(ENGINE.progress(session))
        if ENGINE.checklist(session) is not None:
            items = ENGINE.step_items(session)
            ENGINE.answer_items(session, {v: answers.get(v) for v in items}, NOW)
        else:
            put(session, answers.get(ENGINE.question(session).variable))  # type: ignore[union-attr]
        if session.pending is not None:  # a pre-filled unusual value waits, as typed ones do
            assert ENGINE.confirm(session, NOW)
        assert len(shown) <= len(PROTOCOL.order)
    return session, shown


@settings(max_examples=200, deadline=None)
@given(answers=answer_sets())
def test_checklist_steps_early_exit_verdict_equals_batch(answers: dict[str, Any]) -> None:
    session, shown = drive_steps(answers)
    dialog = ENGINE.verdict(session)
    batch = build(PROTOCOL, answers, screened_on=TODAY)
    assert dialog.verdict == batch.verdict == session.state
    assert {r.criterion for r in dialog.reasons} <= {r.criterion for r in batch.reasons}
    assert session.history == [v for v in PROTOCOL.order if v in session.history]
    if dialog.verdict != "not_eligible":
        applicable = applicable_questions(PROTOCOL, answers, TODAY)
        assert session.history == [v for v in PROTOCOL.order if v in applicable]
        assert dialog == batch
    # progress: one more step each time, and the total never grows
    assert [p for p, _ in shown] == list(range(1, len(shown) + 1))
    totals = [t for _, t in shown]
    assert totals == sorted(totals, reverse=True) and all(p <= t for p, t in shown)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers=answer_sets(), data=st.data())
def test_prefilled_answers_equal_the_same_answers_typed(
    answers: dict[str, Any], data: st.DataObject
) -> None:
    """A quick check's answers filled in give the screening answering them would give:
    the same answers, history order and verdict; only what is missing is asked."""
    given_ = data.draw(st.sets(st.sampled_from(PROTOCOL.order)), label="pre-filled")
    typed, _ = drive_steps(answers)
    filled, _ = drive_steps(answers, {v: answers.get(v) for v in given_})
    assert filled.state == typed.state
    if typed.state != "not_eligible":  # (an early exit may come at another item of a step)
        assert filled.values() == typed.values()
        assert filled.history == typed.history
        assert ENGINE.verdict(filled) == ENGINE.verdict(typed)
    for variable in filled.history:  # a given value is used without asking, unless unusual
        value = typed_values(PROTOCOL, filled)[variable]
        question = PROTOCOL.questions[variable]
        odd = isinstance(value, int | float) and not isinstance(value, bool)
        confirmed = odd and bool(unusual(question, value))
        if confirmed and variable in given_:  # … where the dialog reached it before it ended
            assert filled.answers[variable].filled == (variable not in typed.history)
        else:
            assert filled.answers[variable].filled == (variable in given_)
    # every given value asked under the answers is recorded, reached or not (an early end)
    asked = applicable_questions(PROTOCOL, typed_values(PROTOCOL, filled), TODAY)
    assert given_ & asked <= filled.answers.keys()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_back_over_prefilled_answers_then_answer_again_equals_answering_once(
    data: st.DataObject,
) -> None:
    """Back returns to the question the user answered last: the pre-filled answers applied
    after it wait again, and answering it again gives what answering it once gives."""
    answers = dict(ELIGIBLE, sex=data.draw(st.sampled_from(["female", "male"]), label="sex"))
    for variable in data.draw(st.sets(st.sampled_from(PROTOCOL.order), max_size=3)):
        answers[variable] = data.draw(answer_of(PROTOCOL.questions[variable]), label=variable)
    given_ = data.draw(st.sets(st.sampled_from(PROTOCOL.order)), label="pre-filled")
    stop = data.draw(st.integers(0, 8), label="steps answered first")
    session = ENGINE.start(screened_on=TODAY, prefilled={v: answers.get(v) for v in given_})
    ENGINE.fill(session, NOW)
    steps = 0
    while steps < stop or ENGINE.checklist(session) is not None:  # then at a question
        if ENGINE.finished(session) or session.pending is not None:
            return
        if ENGINE.checklist(session) is not None:
            items = ENGINE.step_items(session)
            ENGINE.answer_items(session, {v: answers.get(v) for v in items}, NOW)
        else:
            put(session, answers.get(ENGINE.question(session).variable))  # type: ignore[union-attr]
        steps += 1
    question = ENGINE.question(session)
    if question is None or session.pending is not None:
        return
    later = PROTOCOL.order[PROTOCOL.order.index(question.variable) + 1 :]
    for variable in later[: data.draw(st.integers(0, 6), label="the next ones pre-filled")]:
        value = data.draw(answer_of(PROTOCOL.questions[variable]), label=variable)  # unusual too
        session.prefilled.setdefault(variable, stored(value))  # not reached yet
    x = data.draw(answer_of(question), label="answer kept")
    y = data.draw(answer_of(question), label="answer taken back")

    once = session.model_copy(deep=True)
    ENGINE.answer(once, x, now=NOW, confirmed=True)

    twice = session.model_copy(deep=True)
    ENGINE.answer(twice, y, now=NOW, confirmed=True)
    if twice.pending is not None:  # a pre-filled unusual value to confirm: it waits again too
        event("a pre-filled unusual value waits to be confirmed")
    event(f"pre-filled answers applied after it: {len(twice.history) - len(session.history) - 1}")
    assert ENGINE.back(twice, now=NOW)
    assert comparable(twice) == comparable(session)  # back undoes the answer and what it filled
    ENGINE.answer(twice, x, now=NOW, confirmed=True)
    assert comparable(twice) == comparable(once)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers=answer_sets(), data=st.data())
def test_back_into_a_checklist_then_the_same_ticks_equals_once(
    answers: dict[str, Any], data: st.DataObject
) -> None:
    session = start()
    while not ENGINE.finished(session) and ENGINE.checklist(session) is None:
        put(session, answers.get(ENGINE.question(session).variable))  # type: ignore[union-attr]
    if ENGINE.finished(session):
        return
    items = ENGINE.step_items(session)
    ticks = {v: data.draw(st.one_of(st.none(), st.booleans()), label=v) for v in items}
    once = session.model_copy(deep=True)
    ENGINE.answer_items(once, ticks, NOW)
    twice = session.model_copy(deep=True)
    ENGINE.answer_items(twice, {v: not x if x is not None else True for v, x in ticks.items()})
    assert ENGINE.back(twice, NOW)
    assert twice.state == session.state and twice.history == session.history
    assert twice.answers == session.answers
    for index, variable in enumerate(items):  # tick them as they should be
        while ENGINE.item_values(twice)[variable] != ticks[variable]:
            assert ENGINE.toggle(twice, index, NOW)
    ENGINE.answer_items(twice, ENGINE.item_values(twice), NOW)
    assert comparable(twice) == comparable(once)


# -- protocol changes ------------------------------------------------------------------------------


def test_session_under_another_dialog_file_raises_protocol_changed(tmp_path: Path) -> None:
    session = start()
    ENGINE.answer(session, 40)
    session.check_protocol(PROTOCOL)  # same file: fine

    same = tmp_path / "same.yaml"
    same.write_bytes(DIALOG.read_bytes())
    session.check_protocol(load(same))  # same content elsewhere: fine

    changed = tmp_path / "changed.yaml"
    changed.write_bytes(DIALOG.read_bytes() + b"\n# one comment more\n")
    other = load(changed)
    assert other.id == PROTOCOL.id and other.sha256 != PROTOCOL.sha256
    with pytest.raises(ProtocolChanged) as info:
        session.check_protocol(other)
    assert PROTOCOL.sha256[:12] in str(info.value)
    assert other.sha256[:12] in str(info.value)

    restored = Session.model_validate_json(session.model_dump_json())
    with pytest.raises(ProtocolChanged):
        restored.check_protocol(other)


def test_session_of_another_protocol_id_raises(tmp_path: Path) -> None:
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(
        DIALOG.read_text(encoding="utf-8").replace("id: blina-dli", "id: blina-dli-2", 1),
        encoding="utf-8",
    )
    session = start()
    with pytest.raises(ProtocolChanged):
        session.check_protocol(load(renamed))


# -- the progress total ----------------------------------------------------------------------------

# Conditions of every form, known() and unknown() of questions still to come among them,
# on questions, on checklist items and through a table.
KNOWN_CONDITIONS = dialog(
    [
        integer("a", 0, 100),
        yes_no("b"),
        choice("s", ["female", "male"]),
        number("c", 0, 10, when="known(a)"),
        date_or_none("d", when="unknown(b) or a > 50"),
        choice("e", ["x", "y", "z"], multiple=True, when="not known(c) or b"),
        yes_no("f1", when="known(d)"),
        yes_no("f2", when="known(a) and s == 'female'"),
        yes_no("f3"),
        yes_no("g", when="known(d) and ('x' in e or not known(c))"),
        number("h", 0, 10, when="limit > 1.5 or known(g)"),
    ],
    [
        inclusion("I1", "a >= 10"),
        exclusion("E1", "b and a > 90"),
        exclusion("E2", "known(c) and c > 9"),
        exclusion("E3", "known(d) and screening_date < d + days(30)"),
        exclusion("E4", "known(e) and 'z' in e"),
        exclusion("E5", "known(f1) and f1"),
        exclusion("E6", "known(f2) and f2"),
        exclusion("E7", "f3"),
        exclusion("E8", "known(g) and g"),
        exclusion("E9", "known(h) and h > limit"),
        exclusion("E10", "s == 'male' and a > 95"),
    ],
    id="known-conditions",
    checklists=[
        {"name": "history", "mode": "none_apply", "text": "Any?", "items": ["f1", "f2", "f3"]}
    ],
    tables=[
        {
            "name": "limit",
            "label": "limit",
            "rows": [
                {"when": "a < 50", "value": 1},
                {"when": "known(c)", "value": 2},
                {"when": "a >= 50", "value": 3},
            ],
        }
    ],
)

# The audit's case (KIDNEY-T2D-04): a potassium sample's date asked when the potassium is known.
POTASSIUM = dialog(
    [
        number("serum_creatinine_mg_dl", 0.05, 30),
        number("measured_gfr", 0, 300),
        number("potassium", 1, 10),
        a_date("potassium_date", when="known(potassium)"),
        integer("systolic_bp", 40, 300),
    ],
    [
        inclusion("I1", "serum_creatinine_mg_dl < 3 and measured_gfr >= 25"),
        inclusion("I2", "potassium <= 4.8 and screening_date <= potassium_date + weeks(4)"),
        exclusion("E1", "systolic_bp > 160"),
    ],
    id="potassium",
)


@pytest.fixture(scope="module")
def progress_engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BaseEngine[Any]]:
    """An engine per shipped protocol and per synthetic one above, and one of them all."""
    directory = tmp_path_factory.mktemp("progress")
    protocols = [load(path) for path in sorted(SHIPPED.glob("*.yaml"))]
    protocols += [build_dialog(directory, KNOWN_CONDITIONS, "known.yaml")]
    engines: dict[str, BaseEngine[Any]] = {p.id: Engine(p) for p in protocols}
    engines["all"] = SetEngine(ProtocolSet(tuple(protocols)))
    engines["potassium"] = Engine(build_dialog(directory, POTASSIUM, "potassium.yaml"))
    return engines


def progress_shown(
    engine: BaseEngine[Any], answers: dict[str, Any], on: date
) -> list[tuple[int, int]]:
    """The progress shown at each step of a screening answered from ``answers`` (absent:
    unknown; a checklist at once), and at its end."""
    session = engine.start(None, screened_on=on)
    shown = []
    while not engine.finished(session):
        shown.append(engine.progress(session))
        if engine.checklist(session) is not None:
            items = engine.step_items(session)
            engine.answer_items(session, {v: answers.get(v) for v in items}, NOW)
        elif engine.answer(session, answers.get(session.state), NOW):
            assert engine.confirm(session, NOW)  # an unusual value, confirmed
    return [*shown, engine.progress(session)]


@pytest.mark.parametrize("name", ["blina-dli", "ctl019-rr-ball", "known-conditions", "all"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_progress_total_never_goes_up(
    name: str, progress_engines: dict[str, BaseEngine[Any]], data: st.DataObject
) -> None:
    """README (the bot): the total "counts only what can still be asked, … so it never
    goes up". It went up where a later question's condition reads known() of one not
    answered yet (ctl019-rr-ball's height): left out until that answer came."""
    engine = progress_engines[name]
    members = engine.protocol.members if isinstance(engine, SetEngine) else [engine.protocol]
    on = data.draw(SCREENED, "screening date")
    answers: dict[str, Any] = {}
    for member in members:
        marks = thresholds(member)
        for q in member.spec.questions:
            if q.variable not in answers:
                value = st.one_of(st.none(), any_value_of(q, marks.get(q.variable, set()), on))
                answers[q.variable] = data.draw(value, q.variable)
    shown = progress_shown(engine, answers, on)
    steps = [step for step, _ in shown]
    totals = [total for _, total in shown]
    assert steps[:-1] == list(range(1, len(shown)))  # one step more each time
    assert all(a >= b for a, b in zip(totals, totals[1:], strict=False)), shown
    assert all(step <= total for step, total in shown), shown
    event(f"{name}: {len(shown) - 1} steps")


@pytest.mark.parametrize("name", ["blina-dli", "ctl019-rr-ball", "known-conditions"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_with_no_answer_to_come_the_questions_that_may_be_asked_are_those_asked(
    name: str, progress_engines: dict[str, BaseEngine[Any]], data: st.DataObject
) -> None:
    """``may_be_asked`` (the progress total's) is ``applicable_questions`` once every answer
    is in: the count follows the dialog's own conditions."""
    protocol = progress_engines[name].protocol
    answers, on = data.draw(cases(protocol))
    found = evaluation.may_be_asked(protocol, answers, (), on)
    assert found == applicable_questions(protocol, answers, on)


def test_a_question_asked_when_an_earlier_answer_is_known_is_counted_before_it(
    progress_engines: dict[str, BaseEngine[Any]],
) -> None:
    """The audit's case: `[13/20] Measured GFR` → `[14/20] Serum potassium` → `[15/21]
    Date of that potassium sample?`. The date's question is counted from the start; it
    falls out when the potassium is unknown."""
    engine = progress_engines["potassium"]
    known = {
        "serum_creatinine_mg_dl": 1.0,
        "measured_gfr": 50.0,
        "potassium": 4.5,
        "potassium_date": TODAY,
        "systolic_bp": 120,
    }
    assert progress_shown(engine, known, TODAY) == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5), (5, 5)]
    unknown = {**known, "potassium": None}
    assert progress_shown(engine, unknown, TODAY) == [(1, 5), (2, 5), (3, 5), (4, 4), (4, 4)]


def test_a_pre_filled_value_waiting_for_its_confirmation_does_not_raise_the_total() -> None:
    """The regression review's case, /check then Continue: a quick check's crcl of 205
    (above its plausibility limit, 200) waits for a confirmation when its question comes,
    and may be replaced; the questions of the estimate it would spare are counted from the
    start (it went 19 -> 22 -> 20)."""
    answers = {**ELIGIBLE, "crcl_ml_min": 205.0}
    session = ENGINE.start(screened_on=TODAY, prefilled={"crcl_ml_min": 205.0})
    ENGINE.fill(session, NOW)
    totals = []
    while not ENGINE.finished(session):
        totals.append(ENGINE.progress(session)[1])
        if session.pending is not None:  # the pre-filled unusual value, shown to confirm
            assert ENGINE.confirm(session, NOW)
            ENGINE.fill(session, NOW)
        elif ENGINE.checklist(session) is not None:
            items = ENGINE.step_items(session)
            ENGINE.answer_items(session, {v: answers.get(v) for v in items}, NOW)
            ENGINE.fill(session, NOW)
        else:
            put(session, answers.get(ENGINE.question(session).variable))  # type: ignore[union-attr]
            ENGINE.fill(session, NOW)
    assert session.answers["crcl_ml_min"].value == 205.0  # it was asked and confirmed
    assert totals == sorted(totals, reverse=True), totals
    assert totals[-1] < totals[0]  # the estimate's questions fell out once it was confirmed
