"""Derived values (issue #11, "Format" 6 and 9): calculators chosen by ``when``, the measured
value first, estimates shown with their inputs, ``confirm_estimate`` open items, and the
validator's unit checks.

Expected values are worked by hand from the published formulas:
bedside Schwartz (Schwartz GJ et al., J Am Soc Nephrol 2009;20:629-37): 0.413 × height cm /
SCr mg/dL; CKD-EPI 2021 (Inker LA et al., N Engl J Med 2021;385:1737-49).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from format2 import (
    SCREENED_ON,
    build,
    choice,
    cockcroft_gault,
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
from screen_bot.verdict import Verdict

QUESTIONS = [
    integer("age", unit="years"),
    choice("sex", ["female", "male"]),
    number("height_cm", 30, 250, unit="cm"),
    number("weight_kg", 1, 300, unit="kg"),
    number("serum_creatinine_mg_dl", 0.1, 20, unit="mg/dL"),
    number("measured_gfr_ml_min_173", 0, 200, unit="mL/min/1.73 m²"),
]
GFR = {
    "name": "gfr",
    "label": "glomerular filtration rate",
    "unit": "mL/min/1.73 m²",
    "measured": "measured_gfr_ml_min_173",
    "calculators": [
        {
            "when": "age < 18",
            "calculator": "schwartz_bedside",
            "inputs": {
                "height_cm": "height_cm",
                "serum_creatinine_mg_dl": "serum_creatinine_mg_dl",
            },
        },
        {
            "calculator": "ckd_epi_2021",
            "inputs": {
                "age": "age",
                "sex": "sex",
                "serum_creatinine_mg_dl": "serum_creatinine_mg_dl",
            },
        },
    ],
}
CHILD = {"age": 10, "sex": "male", "height_cm": 140, "weight_kg": 30, "serum_creatinine_mg_dl": 0.5}
ADULT = {
    "age": 40,
    "sex": "female",
    "height_cm": 160,
    "weight_kg": 60,
    "serum_creatinine_mg_dl": 1.5,
}


@pytest.fixture(scope="module")
def protocol(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return build(
        tmp_path_factory.mktemp("derived"),
        dialog(
            QUESTIONS,
            [
                inclusion(
                    "I1", "gfr >= 60", confirm_estimate="measure the GFR (iohexol clearance)"
                ),
                inclusion("I2", "gfr >= 30 and weight_kg >= 20", confirm_estimate="measure it"),
                exclusion("E1", "height_cm < 100"),
            ],
            derived=[GFR],
        ),
    )


def screen(protocol: Protocol, answers: dict[str, Any]) -> Verdict:
    return verdict.build(protocol, answers, screened_on=SCREENED_ON)


def test_a_child_is_estimated_by_bedside_schwartz(protocol: Protocol) -> None:
    found = screen(protocol, CHILD)
    assert found.verdict == "eligible"
    (estimate,) = found.estimates
    assert estimate.calculator == "schwartz_bedside"
    assert estimate.value == 115.6  # 0.413 × 140 / 0.5 = 115.64, shown to one decimal
    assert estimate.unit == "mL/min/1.73 m²"
    assert estimate.inputs == {"height_cm": 140, "serum_creatinine_mg_dl": 0.5}
    assert estimate.label == "glomerular filtration rate"
    assert "0.413" in estimate.formula
    assert found.estimated == ["gfr"]


def test_an_adult_is_estimated_by_ckd_epi_2021(protocol: Protocol) -> None:
    found = screen(protocol, {**ADULT, "serum_creatinine_mg_dl": 0.6})
    (estimate,) = found.estimates
    assert estimate.calculator == "ckd_epi_2021"
    # woman, 40, SCr 0.6: 142 × (0.6/0.7)^-0.241 × 0.9938^40 × 1.012 = 116.3
    assert estimate.value == 116.3
    assert estimate.inputs == {"age": 40, "sex": "female", "serum_creatinine_mg_dl": 0.6}


def test_the_measured_value_takes_precedence(protocol: Protocol) -> None:
    measured = screen(protocol, {**CHILD, "measured_gfr_ml_min_173": 50})
    assert measured.estimates == [] and measured.estimated == []
    assert [r.criterion for r in measured.reasons] == ["I1"]  # 50 < 60, measured: a failure
    assert measured.reasons[0].answers == {"gfr": 50}
    assert screen(protocol, {**ADULT, "measured_gfr_ml_min_173": 70}).verdict == "eligible"


def test_a_failure_resting_only_on_an_estimate_is_a_confirm_item(protocol: Protocol) -> None:
    # woman, 40, SCr 1.5: 142 × (1.5/0.7)^-1.200 × 0.9938^40 × 1.012 = 44.9, below 60
    found = screen(protocol, ADULT)
    assert found.verdict == "unresolved"
    assert found.reasons == []
    (item,) = found.open_items
    assert item.kind == "confirm"
    assert item.variable == "measured_gfr_ml_min_173"
    assert item.advice == "measure the GFR (iohexol clearance)"
    assert item.criteria == ["I1"]
    assert [(e.calculator, e.value) for e in found.estimates] == [("ckd_epi_2021", 44.9)]


def test_a_failure_that_holds_without_the_estimate_is_still_a_failure(protocol: Protocol) -> None:
    # SCr 3.0 gives an estimate below 30, and the weight fails I2 on its own.
    found = screen(protocol, {**ADULT, "serum_creatinine_mg_dl": 3.0, "weight_kg": 15})
    assert found.verdict == "not_eligible"
    assert [r.criterion for r in found.reasons] == ["I2"]
    assert found.reasons[0].estimated == ["gfr"]
    assert found.open_items == []  # a definite failure: the confirm item of I1 is not shown


def test_an_estimate_that_passes_needs_no_confirmation(protocol: Protocol) -> None:
    found = screen(protocol, {**ADULT, "serum_creatinine_mg_dl": 0.9})
    assert found.verdict == "eligible" and found.open_items == []


def test_an_unknown_input_leaves_the_estimate_open(protocol: Protocol) -> None:
    found = screen(protocol, {**ADULT, "serum_creatinine_mg_dl": None})
    assert found.verdict == "unresolved"
    variables = {item.variable for item in found.open_items}
    assert "serum_creatinine_mg_dl" in variables
    assert all(item.kind == "missing" for item in found.open_items)


# The child's calculator is chosen by a question the adult's calculator does not read, so an
# unknown answer to it must stop the search rather than fall through to CKD-EPI (whose
# estimate for ADULT_PASSING, 78.4, would make the patient eligible).
GFR_BY_QUESTION = {
    **GFR,
    "calculators": [{**GFR["calculators"][0], "when": "pediatric"}, GFR["calculators"][1]],
}
ADULT_PASSING = {**ADULT, "serum_creatinine_mg_dl": 0.9}


@pytest.fixture(scope="module")
def by_question(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return build(
        tmp_path_factory.mktemp("by-question"),
        dialog(
            [yes_no("pediatric"), *(q for q in QUESTIONS if q["variable"] != "weight_kg")],
            [inclusion("I1", "gfr >= 60", confirm_estimate="measure the GFR (iohexol clearance)")],
            derived=[GFR_BY_QUESTION],
        ),
    )


def test_an_unknown_condition_leaves_the_choice_of_calculator_open(by_question: Protocol) -> None:
    """Not known whether the patient is a child: which formula applies is not known, so
    there is no estimate and the question stays open (not CKD-EPI's 78.4: eligible)."""
    assert screen(by_question, {**ADULT_PASSING, "pediatric": False}).verdict == "eligible"
    found = screen(by_question, {**ADULT_PASSING, "pediatric": None})
    assert found.verdict == "unresolved"
    assert found.estimates == []
    assert "pediatric" in {item.variable for item in found.open_items}


@pytest.mark.parametrize("targeted", [True, False], ids=["targeted", "whole-context"])
def test_the_dialog_leaves_the_choice_of_calculator_open_too(
    by_question: Protocol, targeted: bool
) -> None:
    """The same answers typed one by one end the dialog unresolved, on the engine's
    per-question part of the answers and on the whole context."""
    engine = Engine(by_question, targeted=targeted)
    session = engine.start(screened_on=SCREENED_ON)
    answers = {**ADULT_PASSING, "pediatric": None}
    while (question := engine.question(session)) is not None:
        assert engine.answer(session, answers.get(question.variable)) == ""
    assert session.state == "unresolved"
    found = engine.verdict(session)
    assert found.verdict == "unresolved" and found.estimates == []


def test_an_unknown_age_leaves_the_estimate_open(protocol: Protocol) -> None:
    """Age chooses the calculator and CKD-EPI reads it too: no estimate, age asked for."""
    found = screen(protocol, {**ADULT, "age": None})
    assert found.verdict == "unresolved"
    assert found.estimates == []
    assert "age" in {item.variable for item in found.open_items}


def test_confirm_estimate_needs_a_derived_value(tmp_path: Path) -> None:
    data = dialog(QUESTIONS, [inclusion("I1", "age >= 18", confirm_estimate="measure it")])
    found = problems(tmp_path, data)
    assert any("confirm_estimate" in p.message and "derived" in p.message for p in found)


# -- unit checks -------------------------------------------------------------------------------


READ_ALL = inclusion(
    "I9", "age > 0 and sex == 'male' and height_cm > 0 and measured_gfr_ml_min_173 > 0"
)


def test_a_per_173_value_fed_by_cockcroft_gault_is_refused_with_fitting_calculators(
    tmp_path: Path,
) -> None:
    data = dialog(
        QUESTIONS,
        [inclusion("I1", "egfr_ml_min_173 >= 30"), READ_ALL],
        derived=[cockcroft_gault("egfr_ml_min_173", "mL/min/1.73 m²")],
    )
    (problem,) = problems(tmp_path, data)
    assert "'cockcroft_gault' gives mL/min" in problem.message
    assert "mL/min/1.73 m²" in problem.message
    assert "ckd_epi_2021" in problem.fix and "schwartz_bedside" in problem.fix
    assert problem.line == line_of(dump(data), "calculator: cockcroft_gault")


def test_a_measured_question_in_another_unit_is_refused(tmp_path: Path) -> None:
    data = dialog(
        QUESTIONS,
        [inclusion("I1", "crcl >= 30"), READ_ALL],
        derived=[cockcroft_gault("crcl", "mL/min", measured="measured_gfr_ml_min_173")],
    )
    (problem,) = problems(tmp_path, data)
    assert "'measured_gfr_ml_min_173' is mL/min/1.73 m² but 'crcl' is in mL/min" in problem.message
    assert problem.line == line_of(dump(data), "measured: measured_gfr_ml_min_173")


@pytest.mark.parametrize(
    "rule",
    [
        "measured_gfr_ml_min_173 >= serum_creatinine_mg_dl",
        "gfr > weight_kg",
        "height_cm < weight_kg",
    ],
)
def test_two_quantities_in_different_units_cannot_be_compared(tmp_path: Path, rule: str) -> None:
    data = dialog(QUESTIONS, [inclusion("I1", rule), READ_ALL], derived=[GFR])
    found = problems(tmp_path, data)
    assert any("compares" in p.message and "same unit" in p.fix for p in found), found


def test_two_quantities_in_one_unit_may_be_compared(tmp_path: Path) -> None:
    protocol = build(
        tmp_path,
        dialog(
            [
                number("alt", 0, 5000, unit="U/L"),
                number("alt_uln", 1, 500, unit="u/l"),  # another spelling of the same unit
                number("measured_gfr_ml_min_173", 0, 200, unit="ml/min/1.73m2"),
                number("gfr_floor", 0, 200, unit="mL/min/1.73 m²"),
            ],
            [
                inclusion("I1", "alt <= alt_uln"),
                inclusion("I2", "measured_gfr_ml_min_173 >= gfr_floor"),
            ],
        ),
    )
    answers = {"alt": 50, "alt_uln": 40, "measured_gfr_ml_min_173": 80, "gfr_floor": 60}
    assert [r.criterion for r in screen(protocol, answers).reasons] == ["I1"]


def test_a_calculator_input_in_a_wrong_unit_is_refused(tmp_path: Path) -> None:
    questions = [dict(q) for q in QUESTIONS]
    questions[4] = number("serum_creatinine_mg_dl", 1, 2000, unit="µmol/L")
    data = dialog(questions, [inclusion("I1", "gfr >= 30"), READ_ALL], derived=[GFR])
    found = problems(tmp_path, data)
    assert len(found) == 2  # once for each calculator that reads it
    for problem in found:
        assert "takes serum_creatinine_mg_dl in mg/dL" in problem.message
        assert "'serum_creatinine_mg_dl' is in µmol/L" in problem.message
        assert "unit: mg/dL" in problem.fix and "also_accepts" in problem.fix


@pytest.mark.parametrize(
    ("height", "fix"),
    [
        # outside audit 17: "give 'age' unit: cm" for an age mapped as the height
        ("age", "map height_cm to a question in cm, e.g. height_cm: height_cm"),
        ("weight_kg", "map height_cm to a question in cm, e.g. height_cm: height_cm"),
        (  # the height itself, in another unit: a unit to give, or the question in cm
            "height_m",
            "give 'height_m' unit: cm (also_accepts converts other units), or map height_cm "
            "to 'height_cm'",
        ),
    ],
)
def test_a_calculator_input_mapped_to_the_wrong_question_is_told_to_map_it(
    tmp_path: Path, height: str, fix: str
) -> None:
    bmi = {
        "name": "bmi",
        "label": "body-mass index",
        "unit": "kg/m²",
        "calculator": "bmi",
        "inputs": {"weight_kg": "weight_kg", "height_cm": height},
    }
    questions = [*QUESTIONS, number("height_m", 0.3, 2.5, unit="m")]
    read_all = inclusion("I9", f"{READ_ALL['met_when']} and height_m > 1")
    data = dialog(questions, [inclusion("I1", "bmi < 30"), read_all], derived=[bmi])
    (problem,) = problems(tmp_path, data)
    assert problem.message.startswith("'bmi' takes height_cm in cm, but ")
    assert problem.fix == fix
    assert problem.line == line_of(dump(data), f"height_cm: {height}")


@pytest.mark.parametrize(
    ("asked", "sources"),
    [
        # outside audit 17: the measured question itself was among the questions to read,
        # and a formula cannot be rewritten from its inputs (rules have no arithmetic)
        ("measured_gfr_ml_min_173", "height_cm, serum_creatinine_mg_dl, age, sex"),
        ("serum_creatinine_mg_dl", "height_cm, age, sex"),  # the questions asked before it
    ],
)
def test_a_condition_reading_a_derived_value_gets_a_fix_it_can_follow(
    tmp_path: Path, asked: str, sources: str
) -> None:
    questions = [
        {**q, "when": "not (25 <= gfr < 75)"} if q["variable"] == asked else q for q in QUESTIONS
    ]
    rules = [inclusion("I1", "gfr >= 30"), inclusion("I9", "weight_kg > 40")]
    data = dialog(questions, rules, derived=[GFR])
    (problem,) = problems(tmp_path, data)
    assert problem.message == (
        f"condition of '{asked}' reads the derived value 'gfr': a condition cannot read a "
        "derived value"
    )
    assert problem.fix == (
        f"write the condition on what 'gfr' is computed from ({sources}) where that needs no "
        f"arithmetic, or ask '{asked}' of everyone (remove its when)"
    )
    assert problem.line == line_of(dump(data), "when: not (25 <= gfr < 75)")


def test_a_condition_reading_a_derived_value_of_later_questions_is_told_to_ask_everyone(
    tmp_path: Path,
) -> None:
    questions = [{**QUESTIONS[0], "when": "gfr < 30"}, *QUESTIONS[1:]]
    rules = [inclusion("I1", "gfr >= 30"), inclusion("I9", "weight_kg > 40")]
    (problem,) = problems(tmp_path, dialog(questions, rules, derived=[GFR]))
    assert problem.fix == "ask 'age' of everyone (remove its when)"


def test_calculator_inputs_must_be_exactly_its_parameters(tmp_path: Path) -> None:
    derived = cockcroft_gault("crcl", "mL/min")
    del derived["inputs"]["sex"]
    data = dialog(QUESTIONS, [inclusion("I1", "crcl >= 30"), READ_ALL], derived=[derived])
    found = problems(tmp_path, data)
    assert any(
        "takes ['age', 'sex', 'weight_kg', 'serum_creatinine_mg_dl']" in p.message for p in found
    )


def test_an_unknown_calculator_lists_the_known_ones(tmp_path: Path) -> None:
    derived = {**cockcroft_gault("crcl", "mL/min"), "calculator": "cockroft_gault"}
    data = dialog(QUESTIONS, [inclusion("I1", "crcl >= 30"), READ_ALL], derived=[derived])
    found = problems(tmp_path, data)
    assert any("unknown calculator 'cockroft_gault'" in p.message for p in found)
    assert any("cockcroft_gault" in p.fix for p in found)


def test_a_derived_value_given_as_a_calculator_input_is_said_to_be_one(tmp_path: Path) -> None:
    """'input 'crcl2' is not a question / fix: did you mean 'crcl2'?' named the name written."""
    derived = cockcroft_gault("crcl", "mL/min")
    derived["inputs"]["weight_kg"] = "crcl2"
    other = {**cockcroft_gault("crcl2", "mL/min"), "label": "another kidney function"}
    data = dialog(
        QUESTIONS,
        [inclusion("I1", "crcl >= 30 and crcl2 >= 30"), READ_ALL],
        derived=[derived, other],
    )
    (problem,) = problems(tmp_path, data)
    assert problem.message == "input 'crcl2' is a derived value, not a question"
    assert problem.fix == (
        "name a question instead: 'crcl2' is computed from age, sex, weight_kg, "
        "serum_creatinine_mg_dl"
    )
    assert problem.line == line_of(dump(data), "weight_kg: crcl2")


def test_a_derived_value_measured_by_itself_is_told_to_name_a_question(tmp_path: Path) -> None:
    data = dialog(
        QUESTIONS,
        [inclusion("I1", "crcl >= 30"), READ_ALL],
        derived=[cockcroft_gault("crcl", "mL/min", measured="crcl")],
    )
    (problem,) = problems(tmp_path, data)
    assert problem.message == "'crcl' is measured by itself"
    assert "name the question that measures it (a number question in mL/min)" in problem.fix
    assert "did you mean" not in problem.fix
    assert problem.line == line_of(dump(data), "measured: crcl")
