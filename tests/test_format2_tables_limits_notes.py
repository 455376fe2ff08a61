"""Lookup tables, plausibility limits and notes (issue #11, "Format" 7, 8 and 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from format2 import (
    SCREENED_ON,
    a_date,
    build,
    choice,
    dialog,
    dump,
    exclusion,
    inclusion,
    integer,
    line_of,
    number,
    problems,
    yes_no,
)
from screen_bot import verdict
from screen_bot.engine import Engine
from screen_bot.protocol import Protocol
from screen_bot.training.walkthrough import walkthrough_text

# -- lookup tables -----------------------------------------------------------------------------

LIMIT = {
    "name": "creatinine_limit_mg_dl",
    "label": "upper limit of serum creatinine for age and sex",
    "unit": "mg/dL",
    "rows": [
        {"when": "1 <= age < 2", "value": 0.6},
        {"when": "13 <= age < 16 and sex == 'male'", "value": 1.5},
        {"when": "13 <= age < 16", "value": 1.4},
    ],
}


@pytest.fixture(scope="module")
def tabled(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return build(
        tmp_path_factory.mktemp("tabled"),
        dialog(
            [
                integer("age", unit="years"),
                choice("sex", ["female", "male"]),
                number("serum_creatinine_mg_dl", 0.1, 20, unit="mg/dL"),
            ],
            [inclusion("I1", "serum_creatinine_mg_dl <= creatinine_limit_mg_dl")],
            tables=[LIMIT],
        ),
    )


def screen(protocol: Protocol, answers: dict[str, Any]) -> verdict.Verdict:
    return verdict.build(protocol, answers, screened_on=SCREENED_ON)


@pytest.mark.parametrize(
    ("age", "sex", "creatinine", "expected"),
    [
        (1, "female", 0.6, "eligible"),
        (1, "female", 0.7, "not_eligible"),
        (14, "male", 1.5, "eligible"),  # the first matching row: 1.5 for a boy
        (14, "female", 1.5, "not_eligible"),  # the next row: 1.4 for a girl
        (14, "female", 1.4, "eligible"),
        (1, None, 0.5, "eligible"),  # decided by the first row; sex is not needed
    ],
)
def test_the_first_matching_row_gives_the_value(
    tabled: Protocol, age: int, sex: str | None, creatinine: float, expected: str
) -> None:
    answers = {"age": age, "sex": sex, "serum_creatinine_mg_dl": creatinine}
    assert screen(tabled, answers).verdict == expected


def test_an_unknown_earlier_row_gives_unknown(tabled: Protocol) -> None:
    """With sex unknown, row 2 might hold (1.5) or not (then row 3: 1.4): undecided."""
    found = screen(tabled, {"age": 14, "sex": None, "serum_creatinine_mg_dl": 1.45})
    assert found.verdict == "unresolved"
    assert [item.variable for item in found.open_items] == ["sex"]


def test_no_matching_row_is_unknown_with_an_open_item(tabled: Protocol) -> None:
    found = screen(tabled, {"age": 40, "sex": "male", "serum_creatinine_mg_dl": 0.5})
    assert found.verdict == "unresolved"
    assert len(found.open_items) >= 1
    assert found.open_items[0].criteria == ["I1"]


def test_learn_shows_the_table_rows(tabled: Protocol) -> None:
    shown = walkthrough_text(tabled)
    table_lines = [line for line in shown.splitlines() if "Table:" in line]
    assert len(table_lines) == 1
    (line,) = table_lines
    assert "upper limit of serum creatinine for age and sex" in line
    assert "1 <= age < 2: 0.6 mg/dL" in line
    assert "13 <= age < 16 and sex == 'male': 1.5 mg/dL" in line
    assert line.index("0.6 mg/dL") < line.index("1.5 mg/dL") < line.index("1.4 mg/dL")


def test_learn_shows_no_time_window_for_a_table_comparison(tabled: Protocol) -> None:
    assert "Time window" not in walkthrough_text(tabled)


@pytest.mark.parametrize(
    ("rule", "extra"),
    [
        ("x >= 1 or screening_date >= d + months(1)", {}),
        (
            "x >= 1 or x <= limit",
            {"tables": [{**LIMIT, "name": "limit", "unit": ""}]},
        ),
    ],
    ids=["threshold-and-window", "threshold-and-table"],
)
def test_learn_shows_a_rule_mixing_a_threshold_with_a_window_or_a_table(
    tmp_path: Path, rule: str, extra: dict[str, Any]
) -> None:
    questions = [number("x"), integer("age"), choice("sex", ["female", "male"]), a_date("d")]
    reads_all = inclusion("I9", "age >= 18 and sex == 'male' and screening_date >= d + days(1)")
    protocol = build(tmp_path, dialog(questions, [inclusion("I1", rule), reads_all], **extra))
    assert rule in walkthrough_text(protocol, "I1")
    assert walkthrough_text(protocol)  # the whole walk-through, thresholds included


def test_a_table_row_with_an_unknown_name_is_reported_at_its_line(tmp_path: Path) -> None:
    rows = [{"when": "1 <= agee < 2", "value": 0.6}]
    data = dialog(
        [integer("age"), number("serum_creatinine_mg_dl", 0.1, 20, unit="mg/dL")],
        [inclusion("I1", "serum_creatinine_mg_dl <= creatinine_limit_mg_dl")],
        tables=[{**LIMIT, "rows": rows}],
    )
    (problem,) = problems(tmp_path, data)
    assert "agee" in problem.message and "did you mean 'age'" in problem.fix
    assert problem.line == line_of(dump(data), "1 <= agee < 2")


def test_a_table_compared_with_a_value_in_another_unit_is_refused(tmp_path: Path) -> None:
    data = dialog(
        [integer("age"), number("serum_creatinine_umol_l", 1, 2000, unit="µmol/L")],
        [inclusion("I1", "serum_creatinine_umol_l <= creatinine_limit_mg_dl")],
        tables=[{**LIMIT, "rows": [{"when": "age < 2", "value": 0.6}]}],
    )
    (problem,) = problems(tmp_path, data)
    assert "compares µmol/L with mg/dL" in problem.message


# -- plausibility limits -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return build(
        tmp_path_factory.mktemp("limited"),
        dialog(
            [
                number(
                    "ast_x_uln",
                    0,
                    1000,
                    unit="× ULN",
                    confirm_above=20,
                    confirm_hint="did you mean 106 µmol/L?",
                ),
                number("lvef_percent", 0, 100, unit="%", confirm_below=15),
                yes_no("consent"),
            ],
            [
                inclusion("I1", "ast_x_uln <= 3"),
                inclusion("I2", "lvef_percent >= 10"),
                inclusion("I3", "consent"),
            ],
        ),
    )


def test_batch_warns_about_unusual_values(limited: Protocol) -> None:
    found = screen(limited, {"ast_x_uln": 106, "lvef_percent": 12, "consent": True})
    assert [(w.variable, w.value) for w in found.warnings] == [
        ("ast_x_uln", 106),
        ("lvef_percent", 12),
    ]
    assert "did you mean 106 µmol/L?" in found.warnings[0].message
    assert "above 20 × ULN" in found.warnings[0].message
    assert "below 15 %" in found.warnings[1].message
    usual = screen(limited, {"ast_x_uln": 20, "lvef_percent": 15, "consent": True})
    assert usual.warnings == []  # the limits themselves are usual


def test_the_dialog_asks_to_confirm_then_records_the_same_value(limited: Protocol) -> None:
    engine = Engine(limited)
    session = engine.start(screened_on=SCREENED_ON)
    message = engine.answer_text(session, "106")
    assert "did you mean 106 µmol/L?" in message
    assert session.pending is not None and session.pending.value == 106
    assert "ast_x_uln" not in session.answers and session.state == "ast_x_uln"
    assert engine.answer_text(session, "106") == ""  # the same value again: recorded
    assert session.answers["ast_x_uln"].value == 106
    assert session.pending is None


def test_confirm_records_the_waiting_value(limited: Protocol) -> None:
    engine = Engine(limited)
    session = engine.start(screened_on=SCREENED_ON)
    assert not engine.confirm(session)  # nothing waits
    engine.answer_text(session, "2")
    assert engine.answer_text(session, "12")
    assert engine.confirm(session)
    assert session.answers["lvef_percent"].value == 12
    assert session.state == "consent"


def test_another_value_replaces_the_waiting_one(limited: Protocol) -> None:
    engine = Engine(limited)
    session = engine.start(screened_on=SCREENED_ON)
    assert engine.answer_text(session, "50")
    assert engine.answer_text(session, "1.5") == ""
    assert session.answers["ast_x_uln"].value == 1.5
    assert session.pending is None and session.state == "lvef_percent"


def test_another_unusual_value_is_asked_about_again(limited: Protocol) -> None:
    engine = Engine(limited)
    session = engine.start(screened_on=SCREENED_ON)
    assert engine.answer_text(session, "50")
    assert engine.answer_text(session, "60")  # unusual too, and not the value shown before
    assert session.pending is not None and session.pending.value == 60
    assert "ast_x_uln" not in session.answers


def test_back_drops_the_waiting_value(limited: Protocol) -> None:
    engine = Engine(limited)
    session = engine.start(screened_on=SCREENED_ON)
    engine.answer_text(session, "2")
    engine.answer_text(session, "12")
    assert engine.back(session)
    assert session.pending is None
    assert session.state == "lvef_percent"  # back from "confirm this" is the question itself
    assert "ast_x_uln" in session.answers
    assert engine.answer_text(session, "12")  # asked again: the dropped value is not remembered
    assert "lvef_percent" not in session.answers


def test_limits_belong_to_numbers(tmp_path: Path) -> None:
    data = dialog([yes_no("consent", confirm_below=1)], [inclusion("I1", "consent")])
    (problem,) = problems(tmp_path, data)
    assert "confirm_below" in problem.message


@pytest.mark.parametrize(
    ("limit", "said"),
    [
        # outside audit 17: confirm_above 25 against max 20 was accepted, and never warned
        (
            {"confirm_above": 25},
            "confirm_above 25 is not inside min 0 – max 20: no answer is "
            "above it, so it never asks to confirm",
        ),
        ({"confirm_above": 20}, "no answer is above it"),  # strict: 20 itself never warns
        (
            {"confirm_below": 0},
            "confirm_below 0 is not inside min 0 – max 20: no answer is below it",
        ),
        (
            {"confirm_below": 25},
            "confirm_below 25 is not inside min 0 – max 20: every answer "
            "is below it, so it asks to confirm them all",
        ),
        ({"confirm_below": 20}, "every answer (but the one at it) is below it"),
        ({"confirm_above": -1}, "every answer is above it"),
    ],
)
def test_a_plausibility_limit_not_inside_min_and_max_is_refused_at_its_line(
    tmp_path: Path, limit: dict[str, float], said: str
) -> None:
    data = dialog([number("x", 0, 20, **limit)], [inclusion("I1", "x < 10")])
    (problem,) = problems(tmp_path, data)
    assert said in problem.message
    (key,) = limit
    assert problem.line == line_of(dump(data), f"{key}:")
    assert problem.fix.startswith("write a limit between min and max (an answer strictly ")
    assert problem.fix.endswith(f"or remove {key}")


@pytest.mark.parametrize("limit", [{"confirm_above": 19.9}, {"confirm_below": 0.1}])
def test_a_plausibility_limit_just_inside_min_and_max_is_accepted(
    tmp_path: Path, limit: dict[str, float]
) -> None:
    protocol = build(tmp_path, dialog([number("x", 0, 20, **limit)], [inclusion("I1", "x < 10")]))
    (key,) = limit
    edge = 20 if key == "confirm_above" else 0
    assert screen(protocol, {"x": edge}).warnings  # the range's end warns
    assert not screen(protocol, {"x": limit[key]}).warnings  # the limit itself does not


# -- notes -------------------------------------------------------------------------------------


def test_a_note_is_shown_at_its_criteria(tmp_path: Path) -> None:
    protocol = build(
        tmp_path,
        dialog(
            [integer("age"), yes_no("consent")],
            [inclusion("I1", "age >= 18"), inclusion("I2", "consent")],
            notes=[
                {"criteria": ["I2"], "text": "Is assent by a guardian enough?"},
                {"text": "A question on the protocol as a whole."},
            ],
        ),
    )
    steps = walkthrough_text(protocol).split("\n\n")
    (first,) = [s for s in steps if s.startswith("I1 ")]
    (second,) = [s for s in steps if s.startswith("I2 ")]
    assert "Is assent by a guardian enough?" not in first
    assert "Question for the sponsor: Is assent by a guardian enough?" in second
    assert "Is assent by a guardian enough?" in walkthrough_text(protocol, "I2")


def test_a_note_naming_an_unknown_criterion_is_a_problem(tmp_path: Path) -> None:
    data = dialog(
        [yes_no("consent")],
        [inclusion("I2a", "consent")],
        notes=[{"criteria": ["I2"], "text": "Which consent?"}],
    )
    (problem,) = problems(tmp_path, data)
    assert "note names criterion 'I2', which does not exist" in problem.message
    assert "did you mean 'I2a'?" in problem.fix
    assert problem.line == line_of(dump(data), "criteria:")


def test_notes_do_not_change_the_verdict(tmp_path: Path) -> None:
    rules = [exclusion("E1", "not consent")]
    plain = build(tmp_path, dialog([yes_no("consent")], rules), "plain.yaml")
    noted = build(
        tmp_path,
        dialog([yes_no("consent")], rules, notes=[{"criteria": ["E1"], "text": "?"}]),
        "noted.yaml",
    )
    for consent in (True, False, None):
        answers = {"consent": consent}
        assert screen(plain, answers).verdict == screen(noted, answers).verdict


def test_learn_walks_through_the_second_protocol() -> None:
    """ctl019 mixes thresholds with windows, tables and estimates in one rule."""
    from conftest import REPO
    from screen_bot.protocol import load

    draft = load(REPO / "dialogs" / "ctl019-rr-ball.yaml")
    text = walkthrough_text(draft)
    assert "Time window: planned_infusion_date at least 6 months after" not in text
    assert "Time window: transplant_date at least 6 months before planned_infusion_date" in text
    assert "Table: creatinine_limit_mg_dl" in text
