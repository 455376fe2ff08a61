"""The walk-through states the thresholds that decide, derived from the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import DIALOG, SHIPPED
from format2 import (
    a_date,
    build,
    choice,
    cockcroft_gault,
    dialog,
    exclusion,
    inclusion,
    integer,
    number,
    yes_no,
)
from screen_bot.protocol import Protocol, load
from screen_bot.training.thresholds import Threshold, thresholds
from screen_bot.training.walkthrough import step_text, walkthrough, walkthrough_text

TOY = """
id: toy
title: Toy protocol
version: "1"
questions:
  - {variable: dose, type: number, min: 0, max: 100, unit: mg, text: Dose?}
  - {variable: grade, type: int, min: 0, max: 5, text: Grade?}
  - {variable: sex, type: choice, choices: [female, male], text: Sex?}
  - {variable: hb, type: number, min: 0, max: 25, unit: g/dL, text: Haemoglobin?}
  - {variable: smoker, type: yes_no, text: Smoker?}
criteria:
  - {id: I1, kind: inclusion, label: dose at least 10, source: Dose 10 mg+., met_when: dose >= 10}
  - {id: E1, kind: exclusion, label: dose above 20, source: Dose > 20 mg., applies_when: dose > 20}
  - {id: I2, kind: inclusion, label: grade below 3, source: Grade below 3., met_when: grade < 3}
  - id: I3
    kind: inclusion
    label: haemoglobin
    source: Hb at least 12 (women) or 13 (men).
    met_when: hb >= 13 or (sex == 'female' and hb >= 12)
  - {id: E2, kind: exclusion, label: smoker, source: Current smoker., applies_when: smoker}
"""


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return load(DIALOG)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    path = tmp_path_factory.mktemp("dialogs") / "toy.yaml"
    path.write_text(TOY, encoding="utf-8")
    return load(path)


# E6b's confirm_estimate: an estimate below 50 is an item to confirm, not a failure
CRCL = (
    "measured crcl ≥ 50 mL/min (an estimate ≥ 50 mL/min clears it; "
    "one < 50 mL/min is to confirm by measurement)"
)
EXPECTED = {
    "age": "14–65 years",
    "ecog": "≤ 2",  # ECOG < 3 on an int
    "karnofsky": "≥ 70 %",
    "ast_x_uln": "≤ 3 × ULN",
    "alt_x_uln": "≤ 3 × ULN",
    "bilirubin_x_uln": "≤ 2 × ULN",  # I8c ≤ 2 is stricter than E5 > 3
    "creatinine_x_uln": "≤ 2 × ULN",  # E6a is stricter than I8d's "or"
    "crcl": "≥ 50 mL/min",  # E6b
    "lvef_percent": "≥ 60 %",  # E3a < 60 is stricter than I8e ≥ 50
}


@pytest.mark.parametrize(("name", "passing"), EXPECTED.items())
def test_deciding_threshold_of_every_numeric_measure(
    protocol: Protocol, name: str, passing: str
) -> None:
    assert thresholds(protocol)[name].passing == {"": passing}


def test_qtc_depends_on_sex(protocol: Protocol) -> None:
    qtc = thresholds(protocol)["qtc_ms"]
    assert qtc.passing == {"sex = female": "≤ 470 ms", "sex = male": "≤ 450 ms"}
    assert qtc.deciding == ("E3c",)


def test_no_other_numeric_measure_is_compared(protocol: Protocol) -> None:
    assert set(thresholds(protocol)) == {*EXPECTED, "qtc_ms"}


@pytest.mark.parametrize(
    ("name", "deciding", "looser", "looser_allows"),
    [
        ("lvef_percent", ("E3a",), "I8e", "≥ 50 %"),
        ("bilirubin_x_uln", ("I8c",), "E5", "≤ 3 × ULN"),
        # I8d's "creatinine ≤ 2 × ULN or CrCl ≥ 50" alone sets no single threshold of either
        ("creatinine_x_uln", ("E6a",), "I8d", None),
        ("crcl", ("E6b",), "I8d", None),
    ],
)
def test_the_stricter_criterion_decides(
    protocol: Protocol,
    name: str,
    deciding: tuple[str, ...],
    looser: str,
    looser_allows: str | None,
) -> None:
    threshold = thresholds(protocol)[name]
    assert threshold.deciding == deciding
    if looser_allows is None:
        assert looser in threshold.conditional and looser not in threshold.own
    else:
        assert threshold.own[looser] == {"": looser_allows}


def test_crcl_is_decided_by_a_measured_clearance(protocol: Protocol) -> None:
    # DATA-DICTIONARY, "what decides": a measured CrCl ≥ 50; an estimate ≥ 50 clears E6b, an
    # estimate < 50 is an open item to confirm, never an exclusion
    crcl = thresholds(protocol)["crcl"]
    assert crcl.to_confirm == {"": "< 50 mL/min"}
    assert crcl.text() == CRCL
    (e6b,) = walkthrough(protocol, "E6b")
    assert e6b.together == CRCL
    assert f"  {CRCL}  (E6b)" in walkthrough_text(protocol).splitlines()
    # a measure no criterion confirms by measurement is taught as before
    assert "measured" not in thresholds(protocol)["creatinine_x_uln"].text()


def test_an_estimate_to_confirm_follows_the_dialog_file(tmp_path: Path) -> None:
    questions = [
        integer("age", unit="years"),
        choice("sex", ["female", "male"]),
        number("weight_kg", 1, 300, unit="kg"),
        number("serum_creatinine_mg_dl", 0.1, 20, unit="mg/dL"),
        number("clearance_ml_min", 0, 300, unit="mL/min"),
    ]
    derived = [cockcroft_gault("cl", "mL/min", measured="clearance_ml_min")]

    def cl(*rules: dict[str, Any]) -> Threshold:
        data = dialog(questions, list(rules), derived=derived)
        return thresholds(build(tmp_path, data))["cl"]

    firm = inclusion("I1", "cl >= 30")
    plain = cl(firm, exclusion("E1", "cl < 60"))
    assert plain.to_confirm == {} and plain.text() == "cl ≥ 60 mL/min"
    confirming = cl(firm, exclusion("E1", "cl < 60", confirm_estimate="measure it"))
    assert confirming.passing == {"": "≥ 60 mL/min"}
    assert confirming.to_confirm == {"": "≥ 30 and < 60 mL/min"}  # below 30 fails I1 anyway
    assert confirming.text() == (
        "measured cl ≥ 60 mL/min (an estimate ≥ 60 mL/min clears it; "
        "one ≥ 30 and < 60 mL/min is to confirm by measurement)"
    )


def test_alt_is_set_by_inclusion_and_exclusion_alike(protocol: Protocol) -> None:
    assert thresholds(protocol)["alt_x_uln"].deciding == ("I8b", "E5")


def test_creatinine_criterion_is_decided_by_both_exclusions(protocol: Protocol) -> None:
    (step,) = walkthrough(protocol, "I8d")
    assert step.together == f"creatinine_x_uln ≤ 2 × ULN and {CRCL}"
    assert step.implied_by == ("E6a", "E6b")


def test_lvef_inclusion_is_implied_by_the_exclusion(protocol: Protocol) -> None:
    (step,) = walkthrough(protocol, "I8e")
    assert step.together == "lvef_percent ≥ 60 %"
    assert step.implied_by == ("E3a",)
    (e3a,) = walkthrough(protocol, "E3a")
    assert e3a.implied_by == ()


def test_every_numeric_criterion_says_what_decides(protocol: Protocol) -> None:
    text = walkthrough_text(protocol)
    for step in walkthrough(protocol):
        numeric = any(
            c.variable in thresholds(protocol) for c in protocol.rules[step.criterion].comparisons
        )
        assert bool(step.decides) == numeric, step.criterion
    for line in [
        "What decides: age 14–65 years",
        "Time window: transplant_date at least 2 months before the screening date",
        "Time window: last_mi_date less than 12 months before the screening date",
        "Time window: last_major_surgery_date less than 42 days before the screening date",
        "What decides: ecog ≤ 2",
        "What decides: karnofsky ≥ 70 %",
        "What decides: ast_x_uln ≤ 3 × ULN",
        "What decides: alt_x_uln ≤ 3 × ULN",
        "What decides: bilirubin_x_uln ≤ 2 × ULN",
        f"What decides: creatinine_x_uln ≤ 2 × ULN and {CRCL}",
        "What decides: lvef_percent ≥ 60 %",
        "What decides: qtc_ms ≤ 470 ms if sex = female; ≤ 450 ms if sex = male",
        "What decides: alt_x_uln ≤ 3 × ULN and bilirubin_x_uln ≤ 2 × ULN",
    ]:
        assert line in text


def test_each_step_quotes_the_protocol_and_the_questions(protocol: Protocol) -> None:
    steps = walkthrough(protocol)
    assert [s.criterion for s in steps] == list(protocol.criteria)
    text = walkthrough_text(protocol)
    for step in steps:
        criterion = protocol.criteria[step.criterion]
        assert step.source == criterion.source
        assert f"“{criterion.source}”" in text
        read = {v for n in protocol.rules[step.criterion].names for v in protocol.inputs_of(n)}
        assert {a.variable for a in step.asked} == read
        for asked in step.asked:
            assert asked.text == protocol.questions[asked.variable].text


def test_criterion_filter_matches_parts_not_longer_numbers(protocol: Protocol) -> None:
    assert [s.criterion for s in walkthrough(protocol, "I1")] == ["I1"]
    assert [s.criterion for s in walkthrough(protocol, "e3")] == ["E3a", "E3b", "E3c", "E3d", "E3e"]
    assert "No criterion of blina-dli starts with 'X9'" in walkthrough_text(protocol, "X9")


def test_any_protocol_gets_its_thresholds_from_its_rules(toy: Protocol) -> None:
    found = thresholds(toy)
    assert found["dose"].passing == {"": "10–20 mg"}
    assert found["dose"].deciding == ("I1", "E1")  # each sets one side
    assert found["grade"].passing == {"": "≤ 2"}
    assert found["hb"].passing == {"sex = female": "≥ 12 g/dL", "sex = male": "≥ 13 g/dL"}


def test_every_criterion_says_whether_it_may_pass_later(protocol: Protocol) -> None:
    # as the verdict does: a criterion with no recovery "will not pass later"
    for cid in ("I8e", "E3a"):
        assert protocol.criteria[cid].recoverable is None
        assert "Note: will not pass later" in walkthrough_text(protocol, cid)
    assert "Note: may pass on a retest" in walkthrough_text(protocol, "E3c")
    for step in walkthrough(protocol):
        text = walkthrough_text(protocol, step.criterion)
        said = [
            w
            for w in ("may pass on a retest", "may pass later", "will not pass later")
            if w in text
        ]
        assert len(said) == 1, (step.criterion, said)


@pytest.mark.parametrize(
    ("adult_from", "adult_rule", "expected"),
    [
        # the band of the consent questions only: no age limit of the consent criterion
        ("age >= 18", "age >= 18", {"": "≥ 3 years"}),
        ("age >= 18", "18 <= age", {"": "≥ 3 years"}),
        ("18 <= age", "age > 17", {"": "≥ 3 years"}),
        # a comparison that is not the question's condition limits age: 18–20 fail
        ("age >= 18", "age >= 21", None),
    ],
)
def test_a_rule_naming_whose_answer_is_asked_sets_no_limit(
    tmp_path: Path, adult_from: str, adult_rule: str, expected: dict[str, str] | None
) -> None:
    data = dialog(
        [
            integer("age", unit="years"),
            yes_no("patient_consents", when=adult_from),
            yes_no("guardian_consents", when="age < 18"),
        ],
        [
            inclusion("I1", "age >= 3"),
            inclusion(
                "I2", f"({adult_rule} and patient_consents) or (age < 18 and guardian_consents)"
            ),
        ],
    )
    age = thresholds(build(tmp_path, data))["age"]
    if expected is None:
        assert "I2" in age.criteria + age.conditional
    else:
        assert age.passing == expected and age.criteria == ("I1",)


def test_c_i1b_may_pass_later_only_by_its_time_window() -> None:
    # the reading's "May pass later": only when route (b) fails on its date alone and no
    # other route holds; any other failure of C-I1b will not pass later. Route (b) reads the
    # screening date too, but only a later planned date ends a failure (a planned date may not
    # lie before the screening date): the note names that date and its window alone.
    text = walkthrough_text(load(SHIPPED / "ctl019-rr-ball.yaml"), "C-I1b")
    assert (
        "  Note: may pass later, with a later planned_infusion_date, only when its time window "
        "alone keeps it from being met (transplant_date at least 6 months before "
        "planned_infusion_date); any other failure will not pass later"
    ) in text.splitlines()
    # the rule's time windows are still listed, both of them
    assert "  Time window: transplant_date at least 6 months before the screening date" in (
        text.splitlines()
    )


@pytest.mark.parametrize(
    ("kind", "rule", "every_failure_passes_later"),
    [
        ("inclusion", "relapsed or screening_date >= transplant_date + months(6)", True),
        ("exclusion", "relapsed and screening_date < transplant_date + months(6)", True),
        ("inclusion", "relapsed and screening_date >= transplant_date + months(6)", False),
        ("exclusion", "relapsed or screening_date < transplant_date + months(6)", False),
    ],
)
def test_may_pass_later_says_which_failures_when_not_all(
    tmp_path: Path, kind: str, rule: str, every_failure_passes_later: bool
) -> None:
    make = inclusion if kind == "inclusion" else exclusion
    data = dialog(
        [a_date("transplant_date"), yes_no("relapsed")],
        [make("T1", rule, recoverable="wait")],
    )
    (step,) = walkthrough(build(tmp_path, data))
    note = next(
        line for line in step_text(build(tmp_path, data), step).splitlines() if "Note" in line
    )
    if every_failure_passes_later:
        assert note == "  Note: may pass later"
    else:
        failing = "keeps it from being met" if kind == "inclusion" else "makes it apply"
        assert note.startswith(
            f"  Note: may pass later, with a later screening date, only when its time window "
            f"alone {failing} (transplant_date "
        )
        assert note.endswith("; any other failure will not pass later")
