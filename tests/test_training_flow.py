"""The flow diagram is drawn from the engine's own transitions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import DIALOG, SHIPPED
from screen_bot.engine import END_STATES, Engine
from screen_bot.protocol import load
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
    assert dropped and all(dest in engine.protocol.order for _, dest in dropped)


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


@pytest.mark.parametrize("dialog", [DIALOG, SHIPPED / "ctl019-rr-ball.yaml"])
def test_every_edge_a_screening_takes_is_drawn(dialog: Path) -> None:
    protocol = load(dialog)
    engine = Engine(protocol)
    drawn = edges(mermaid(engine))
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
    assert taken <= drawn, sorted(taken - drawn)
    assert len(taken) > 40


def test_conditions_and_early_exits_are_labelled(engine: Engine, text: str) -> None:
    assert "sex --> childbearing_potential: next [asked when sex == 'female']" in text
    assert "crcl_ml_min --> weight_kg: next [asked when unknown(crcl_ml_min)]" in text
    for variable in engine.protocol.order:
        assert f"{variable} --> not_eligible: next [a criterion failed]" in text
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
