"""The flow diagram is drawn from the engine's own transitions."""

from __future__ import annotations

import re

import pytest

from conftest import DIALOG
from screen_bot.engine import END_STATES, Engine
from screen_bot.protocol import load
from screen_bot.training import flow
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


def test_edges_are_the_engines_transitions(engine: Engine, text: str) -> None:
    edges = set(re.findall(r"^\s*(\w+) --> (\w+):", text, re.M))
    expected = {(t["source"], t["dest"]) for t in engine.transitions if t["trigger"] == "next"}
    assert edges == expected


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
