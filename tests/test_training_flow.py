"""The flow diagram is drawn from the engine's own transitions."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import DIALOG, SHIPPED
from format2 import SCREENED_ON, build, choice, criterion, dialog, integer, yes_no
from screen_bot.engine import END_STATES, Engine
from screen_bot.protocol import DialogFileError, Protocol, load
from screen_bot.rules.dates import NEVER
from screen_bot.training import flow
from screen_bot.training.cases import generate_cases
from screen_bot.training.flow import GraphUnavailable, image, mermaid, missing_for_images, png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load(DIALOG))


@pytest.fixture(scope="module")
def text(engine: Engine) -> str:
    return mermaid(engine)


def test_every_question_and_end_state_is_drawn(engine: Engine, text: str) -> None:
    assert "stateDiagram-v2" in text
    for number, variable in enumerate(engine.protocol.order, start=1):
        assert f'state "{number}. {variable}" as {variable}' in text
    for end in END_STATES:
        assert re.search(rf"^\s*state \"{end.upper()}\" as {end}$", text, re.M), end
    assert f"[*] --> {engine.protocol.order[0]}" in text


def edges(text: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\s*(\w+) --> (\w+):", text, re.M))


def test_edges_are_the_engines_transitions(engine: Engine, text: str) -> None:
    expected = {(t["source"], t["dest"]) for t in engine.transitions if t["trigger"] == "next"}
    assert edges(text) <= expected
    dropped = expected - edges(text)
    # only steps no session takes: from a question to a later one, or the early exit
    assert dropped and all(dest in [*engine.protocol.order, "not_eligible"] for _, dest in dropped)


# Skipping a question whose condition a taken edge needs (the same condition, or a part of an
# 'and') is impossible: weight_kg and serum_creatinine_mg_dl are both asked when
# unknown(crcl_ml_min), both pregnancy questions when sex == 'female'.
NEVER_TAKEN = [
    ("weight_kg", "qtc_ms"),
    ("crcl_ml_min", "serum_creatinine_mg_dl"),
    ("sex", "pregnant_or_lactating"),
    ("childbearing_potential", "ast_x_uln"),
    ("childbearing_potential", "contraception_agreed"),
]


def test_edges_no_session_can_take_are_not_drawn(engine: Engine, text: str) -> None:
    for source, dest in NEVER_TAKEN:
        assert (source, dest) in {(t["source"], t["dest"]) for t in engine.transitions}
        assert (source, dest) not in edges(text)


CTL019 = SHIPPED / "ctl019-rr-ball.yaml"
# Steps the graph drew that no session can take (the outside audit's F3 and F4): a "next"
# edge past a question the destination's condition needs (contraception_agreed is asked
# when childbearing_potential; transplant_date when marrow_relapse_after_allo_hsct;
# cd19_flow_positive reads cd19_flow_date; tki_lines_failed_or_not_tolerated is asked on
# a part of tki_contraindicated's condition), and an early exit after a question at which
# no criterion can fail yet.
NEVER_DRAWN = {
    DIALOG: [
        ("sex", "contraception_agreed"),
        *((v, "not_eligible") for v in ("sex", "childbearing_potential", "weight_kg")),
        ("serum_creatinine_mg_dl", "not_eligible"),
    ],
    CTL019: [
        ("sex", "contraception_agreed"),
        ("prior_allo_hsct", "transplant_date"),
        ("ph_negative", "tki_contraindicated"),
        ("ph_negative", "cd19_flow_positive"),
        ("not_eligible_for_allo_hsct", "cd19_flow_positive"),
        *(
            (v, "not_eligible")
            for v in (
                "marrow_relapse_count",
                "primary_refractory",
                "prior_allo_hsct",
                "transplant_date",
                "sex",
                "childbearing_potential",
                "male_reproductive_potential",
                "shortening_fraction_percent",
            )
        ),
    ],
}
# Early exits drawn though no session takes them: the search cannot tell. Each follows a
# question of C-I1b, whose rule compares two answers' dates (planned_infusion_date and
# transplant_date + months(6), not searched exactly), or of C-I6a, which compares
# serum_creatinine_mg_dl with a table's value (a number compared with another).
DRAWN_UNTAKEN_EXITS = {
    DIALOG: set(),
    CTL019: {
        "planned_infusion_date",
        "ph_negative",
        "tki_lines_failed_or_not_tolerated",
        "tki_contraindicated",
        "serum_creatinine_mg_dl",
        "height_cm",
    },
}


def _pools(protocol: Protocol, rng: random.Random) -> dict[str, list[Any]]:
    """Answers to try at each question, from the dialog file (not from the graph's search):
    each constant a question is compared with and a step either side, every table value,
    its limits and random values between, dates around the usual windows and random ones,
    every choice; and unknown."""
    expressions = [*protocol.when.values(), *protocol.rules.values()]
    expressions += [row for rows in protocol.tables.values() for row, _ in rows]
    constants: dict[str, set[Any]] = {}
    for expression in expressions:
        for name, constant in expression.constants:
            constants.setdefault(name, set()).add(constant)
    table_values = {value for rows in protocol.tables.values() for _, value in rows}
    pools: dict[str, list[Any]] = {}
    for q in protocol.spec.questions:
        values: list[Any]
        if q.type == "yes_no":
            values = [True, False]
        elif q.type == "choice" and q.multiple:
            choices = q.choices or []
            values = [[], choices, *([c] for c in choices)]
        elif q.type == "choice":
            values = list(q.choices or [])
        elif q.type in ("date", "date_or_none"):
            sign = 1 if q.future else -1
            days = [0, 1, 29, 30, 31, 41, 42, 43, 89, 90, 91, 92, 181, 182, 183, 184, 365, 366]
            days += [400, 4000, *(rng.randint(0, 800) for _ in range(8))]
            values = [SCREENED_ON + timedelta(days=sign * d) for d in days]
            values += [NEVER] if q.type == "date_or_none" else []
        elif q.type == "text":
            values = ["noted"]
        else:
            low, high = q.min if q.min is not None else 0, q.max if q.max is not None else 1000
            marks = {c for c in constants.get(q.variable, ()) if isinstance(c, int | float)}
            step = 1 if q.type == "int" else 0.01
            numbers = {m + d for m in marks | table_values for d in (-step, 0, step)}
            numbers |= {low, high, *(rng.uniform(low, high) for _ in range(8))}
            cast = int if q.type == "int" else float
            values = sorted({cast(n) for n in numbers if low <= n <= high})
        pools[q.variable] = [*values, None]
    return pools


def _walk(
    engine: Engine, pools: dict[str, list[Any]], rng: random.Random, stay: int
) -> list[tuple[str, str]]:
    """The steps of one session: for its first ``stay`` answers, an answer that keeps the
    dialog going where there is one; then any."""
    session = engine.start(screened_on=SCREENED_ON)
    steps = []
    while not engine.finished(session):
        before = session.state
        options = list(pools[before])
        rng.shuffle(options)
        if len(session.history) >= stay:
            options = options[:1]
        for value in options:
            trial = session.model_copy(deep=True)
            engine.answer(trial, value, confirmed=True)
            if trial.state != "not_eligible":
                break
        session = trial
        steps.append((before, session.state))
    return steps


@pytest.fixture(scope="module", params=[DIALOG, CTL019], ids=["blina-dli", "ctl019"])
def walked(request: pytest.FixtureRequest) -> tuple[Path, str, set[tuple[str, str]]]:
    """A protocol, its graph, and every step sessions took: the quiz's generated cases and
    seeded random sessions, answered through the engine."""
    dialog: Path = request.param
    protocol = load(dialog)
    engine = Engine(protocol)
    taken = set()
    for case in generate_cases(protocol, 400, seed=7):
        session = engine.start(screened_on=case.verdict.screened_on)
        while not engine.finished(session):
            before = session.state
            value = case.answers.get(before)
            engine.answer(
                session, list(value) if isinstance(value, tuple) else value, confirmed=True
            )
            taken.add((before, session.state))
    rng = random.Random(11)
    pools = _pools(protocol, rng)
    for _ in range(400):
        taken.update(_walk(engine, pools, rng, stay=rng.randint(0, len(protocol.order))))
    return dialog, mermaid(engine), taken


def test_every_step_a_screening_takes_is_drawn(
    walked: tuple[Path, str, set[tuple[str, str]]],
) -> None:
    _, text, taken = walked
    assert taken <= edges(text), sorted(taken - edges(text))
    assert len(taken) > 40


def test_steps_no_screening_takes_are_not_drawn(
    walked: tuple[Path, str, set[tuple[str, str]]],
) -> None:
    dialog, text, taken = walked
    for step in NEVER_DRAWN[dialog]:
        assert step not in taken and step not in edges(text), step


def test_every_early_exit_drawn_is_taken(
    walked: tuple[Path, str, set[tuple[str, str]]],
) -> None:
    """An exit to not_eligible means "a screening can end here"; the few the search cannot
    rule out are drawn still, and named."""
    dialog, text, taken = walked
    drawn = {source for source, dest in edges(text) if dest == "not_eligible"}
    ended = {source for source, dest in taken if dest == "not_eligible"}
    assert drawn - ended == DRAWN_UNTAKEN_EXITS[dialog]


def test_conditions_and_early_exits_are_labelled(engine: Engine, text: str) -> None:
    assert "sex --> childbearing_potential: next [asked when sex == 'female']" in text
    assert "crcl_ml_min --> weight_kg: next [asked when unknown(crcl_ml_min)]" in text
    for variable in ("age", "creatinine_x_uln", "crcl_ml_min", "qtc_ms"):
        assert f"{variable} --> not_eligible: next [a criterion failed]" in text
    assert "sex --> not_eligible" not in text  # no criterion can fail at sex yet
    last = engine.protocol.order[-1]
    assert f"{last} --> unresolved: next [an answer is unknown]" in text
    assert f"{last} --> eligible: next" in text
    assert "restart" not in text


@pytest.mark.skipif(
    missing_for_images() is not None, reason=f"no Graphviz here: {missing_for_images()}"
)
def test_png_and_svg(engine: Engine) -> None:
    data = png(engine)
    assert data.startswith(PNG_SIGNATURE)
    svg = image(engine, "svg").decode("utf-8")
    assert "<svg" in svg and "childbearing_potential" in svg


def test_missing_dot_is_reported_not_raised_as_a_traceback(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow.shutil, "which", lambda _name: None)
    with pytest.raises(GraphUnavailable, match="apt-get install graphviz"):
        png(engine)
    assert "--format mermaid needs neither" in (missing_for_images() or "")


# Small generated dialogs: a condition for each question (or none) over earlier ones, and
# a criterion reading each question (and maybe a), both from these lists. A rule reading
# a question asked on a condition decides without it when it is not asked (the validator
# wants that): an inclusion is met, an exclusion does not apply.
WHEN = {
    "n": ["a", "not a", "unknown(a)"],
    "b": ["n >= 3", "a or n < 3", "known(n)"],
    "c": ["b", "not a and b", "n == 3"],
    "d": ["c == 'x'", "b or c == 'y'", "unknown(c)"],
    "e": ["d", "a and d", "n > 3 or unknown(d)"],
}
RULES = {
    "a": ["a", "not a"],
    "n": ["n >= 3", "n < 3 or a"],
    "b": ["not b", "b or a"],
    "c": ["c != 'x'", "c == 'y' or a"],
    "d": ["d", "not d or a"],
    "e": ["not e", "e or not a"],
}
# every answer that changes what the expressions above read: each side of 3, each choice
TRIED = {"a": [True, False], "n": [2, 3, 4], "b": [True, False], "c": ["x", "y", "z"]}
TRIED |= {"d": [True, False], "e": [True, False]}


@st.composite
def small_dialogs(draw: st.DrawFn) -> dict[str, Any]:
    questions = [
        yes_no("a"),
        integer("n", 0, 10),
        yes_no("b"),
        choice("c", ["x", "y", "z"]),
        yes_no("d"),
        yes_no("e"),
    ]
    for q in questions[1:]:
        when = draw(st.sampled_from([None, *WHEN[q["variable"]]]))
        if when is not None:
            q["when"] = when
    criteria = []
    for q in questions:
        variable, kind = q["variable"], draw(st.sampled_from(["inclusion", "exclusion"]))
        rule = draw(st.sampled_from(RULES[variable]))
        if "when" in q and kind == "inclusion":
            rule = f"unknown({variable}) or ({rule})"
        elif "when" in q:
            rule = f"known({variable}) and ({rule})"
        criteria.append(criterion(f"C-{variable}", kind, rule))
    return dialog(questions, criteria)


def _every_step(engine: Engine) -> set[tuple[str, str]]:
    """Every step of every session on the answers of TRIED (each also unknown)."""
    taken = set()
    todo = [engine.start(screened_on=SCREENED_ON)]
    while todo:
        session = todo.pop()
        for value in [*TRIED[session.state], None]:
            trial = session.model_copy(deep=True)
            engine.answer(trial, value, confirmed=True)
            taken.add((session.state, trial.state))
            if not engine.finished(trial):
                todo.append(trial)
    return taken


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=small_dialogs())
def test_every_step_of_a_generated_dialog_is_drawn(tmp_path: Path, data: dict[str, Any]) -> None:
    """Whatever the conditions and rules, no step a session takes is left out of the graph
    (every session of the dialog is walked); and a "next" edge is drawn exactly when the
    conditions let a session take it (walked again with criteria that never fail)."""
    try:
        protocol = build(tmp_path, data)
    except DialogFileError:
        assume(False)
    engine = Engine(protocol)
    taken = _every_step(engine)
    drawn = edges(mermaid(engine))
    assert taken <= drawn, sorted(taken - drawn)
    never_fail = [criterion(f"C-{v}", "inclusion", f"known({v}) or unknown({v})") for v in TRIED]
    free = Engine(build(tmp_path, {**data, "criteria": never_fail}, "never-fail.yaml"))
    moves = {step for step in _every_step(free) if step[1] in protocol.order}
    assert {step for step in drawn if step[1] in protocol.order} == moves
