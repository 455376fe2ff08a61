"""The blina-dli rules at every boundary, written from DATA-DICTIONARY.md version 1.1.

The expected verdicts and criterion ids below come from the data dictionary (its
variable table, rule table, windows, "may pass later" table and verdict rule), not from
the implementation: each case starts from a fully eligible answer set, changes what the
case names, and states the verdict and the exact set of failed criterion ids the
dictionary gives.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import DIALOG
from patients import ELIGIBLE, SCREENED_ON
from screen_bot.protocol import Protocol, load
from screen_bot.render import format_value, reason_text, verdict_text
from screen_bot.rules.calculators import cockcroft_gault
from screen_bot.verdict import Verdict, build

TODAY = SCREENED_ON  # 2026-01-15


MALE = {**ELIGIBLE, "sex": "male"}

# fmt: off
ALL_CRITERIA = {
    "I1", "I2", "I3a", "I3b", "I4a", "I4b", "I5a", "I5b", "I6a", "I6b", "I7a", "I7b",
    "I8a", "I8b", "I8c", "I8d", "I8e", "I9", "I10",
    "E1", "E2a", "E2b", "E3a", "E3b", "E3c", "E3d", "E3e", "E4", "E5", "E6a", "E6b",
    "E7", "E8", "E9", "E10", "E11", "E12", "E13",
}
# fmt: on
JUDGMENT = {"I3b", "I9", "E1", "E3b", "E4", "E7", "E9", "E11", "E13"}


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return load(DIALOG)


def screen(protocol: Protocol, base: dict[str, Any], **changes: Any) -> Verdict:
    return build(protocol, {**base, **changes}, screened_on=TODAY)


def failed(verdict: Verdict) -> set[str]:
    return {r.criterion for r in verdict.reasons}


def opened(verdict: Verdict) -> set[tuple[str, str, str]]:
    return {(c, o.variable, o.kind) for o in verdict.open_items for c in o.criteria}


def test_base_answer_sets_cover_every_variable(protocol: Protocol) -> None:
    assert set(ELIGIBLE) == set(protocol.order)


@pytest.mark.parametrize("base", [ELIGIBLE, MALE], ids=["female", "male"])
def test_fully_eligible_answer_set(protocol: Protocol, base: dict[str, Any]) -> None:
    verdict = screen(protocol, base)
    assert verdict.verdict == "eligible"
    assert verdict.reasons == []
    assert verdict.open_items == []


def case(changes: dict[str, Any], *fails: str, base: dict[str, Any] = ELIGIBLE) -> Any:
    label = ",".join(f"{k}={v}" for k, v in changes.items()) + (" (male)" if base is MALE else "")
    return pytest.param(base, changes, set(fails), id=label)


BOUNDARIES = [
    # I1: 14 <= age <= 65
    case({"age": 13}, "I1"),
    case({"age": 14}),
    case({"age": 65}),
    case({"age": 66}, "I1"),
    case({"age": 0}, "I1"),
    case({"age": 120}, "I1"),
    # I4a: D >= transplant_date + 2 months (D = 2026-01-15)
    case({"transplant_date": date(2025, 11, 16)}, "I4a"),
    case({"transplant_date": date(2025, 11, 15)}),
    case({"transplant_date": date(2025, 11, 14)}),
    case({"transplant_date": TODAY}, "I4a"),
    # I6a: ecog < 3
    case({"ecog": 0}),
    case({"ecog": 2}),
    case({"ecog": 3}, "I6a"),
    case({"ecog": 5}, "I6a"),
    # I6b: karnofsky >= 70
    case({"karnofsky": 69}, "I6b"),
    case({"karnofsky": 70}),
    case({"karnofsky": 71}),
    case({"karnofsky": 100}),
    # I8a: AST <= 3
    case({"ast_x_uln": 2.99}),
    case({"ast_x_uln": 3}),
    case({"ast_x_uln": 3.01}, "I8a"),
    # I8b: ALT <= 3; E5: ALT > 3 excludes too
    case({"alt_x_uln": 2.99}),
    case({"alt_x_uln": 3}),
    case({"alt_x_uln": 3.01}, "I8b", "E5"),
    # I8c: bilirubin <= 2; E5: bilirubin > 3
    case({"bilirubin_x_uln": 1.99}),
    case({"bilirubin_x_uln": 2}),
    case({"bilirubin_x_uln": 2.01}, "I8c"),
    case({"bilirubin_x_uln": 2.99}, "I8c"),
    case({"bilirubin_x_uln": 3}, "I8c"),
    case({"bilirubin_x_uln": 3.01}, "I8c", "E5"),
    case({"alt_x_uln": 3.01, "bilirubin_x_uln": 3.01}, "I8b", "I8c", "E5"),
    # I8d: creatinine <= 2 or CrCl >= 50; E6a: creatinine > 2; E6b: measured CrCl < 50
    case({"creatinine_x_uln": 1.99}),
    case({"creatinine_x_uln": 2}),
    case({"creatinine_x_uln": 2.01}, "E6a"),  # I8d still met: CrCl 90
    case({"creatinine_x_uln": 2.01, "crcl_ml_min": 50}, "E6a"),
    case({"creatinine_x_uln": 2.01, "crcl_ml_min": 49.9}, "I8d", "E6a", "E6b"),
    case({"creatinine_x_uln": 2, "crcl_ml_min": 49.9}, "E6b"),  # I8d met: creatinine
    case({"creatinine_x_uln": 2, "crcl_ml_min": 50}),
    case({"crcl_ml_min": 50.01}),
    case({"crcl_ml_min": 49.99}, "E6b"),
    case({"crcl_ml_min": 0}, "E6b"),
    # I8e: LVEF >= 50; E3a: LVEF < 60 excludes, so LVEF >= 60 decides
    case({"lvef_percent": 49.9}, "I8e", "E3a"),
    case({"lvef_percent": 50}, "E3a"),
    case({"lvef_percent": 50.1}, "E3a"),
    case({"lvef_percent": 59.9}, "E3a"),
    case({"lvef_percent": 60}),
    case({"lvef_percent": 60.1}),
    # E3c: QTc > 450 (male) or > 470 (female)
    case({"qtc_ms": 450}, base=MALE),
    case({"qtc_ms": 450.1}, "E3c", base=MALE),
    case({"qtc_ms": 451}, "E3c", base=MALE),
    case({"qtc_ms": 471}, "E3c", base=MALE),
    case({"qtc_ms": 450}),
    case({"qtc_ms": 451}),
    case({"qtc_ms": 470}),
    case({"qtc_ms": 470.1}, "E3c"),
    case({"qtc_ms": 471}, "E3c"),
    case({"qtc_ms": 200}),
    case({"qtc_ms": 800}, "E3c"),
]


@pytest.mark.parametrize(("base", "changes", "fails"), BOUNDARIES)
def test_boundary(
    protocol: Protocol, base: dict[str, Any], changes: dict[str, Any], fails: set[str]
) -> None:
    verdict = screen(protocol, base, **changes)
    assert verdict.verdict == ("not_eligible" if fails else "eligible")
    assert failed(verdict) == fails
    assert verdict.open_items == []


INCLUSION_YES_NO = {
    "b_all_cd19_positive": "I2",
    "ph_negative": "I3a",
    "high_risk_features": "I3b",
    "hematopoietic_reconstitution": "I4b",
    "marrow_remission": "I5a",
    "mrd_negative": "I5b",
    "expected_survival_over_3_months": "I9",
    "consent_willing": "I10",
}
# met when the answer is "no"
INCLUSION_NOT = {"gvhd_grade_3_4_history": "I7a", "active_gvhd": "I7b"}
EXCLUSION_YES_NO = {
    "hypersensitivity_to_study_drugs": "E1",
    "arrhythmia": "E3b",
    "symptomatic_cad_on_medication": "E3e",
    "severe_pulmonary_dysfunction": "E4",
    "active_infection_or_bleeding": "E7",
    "psychiatric_condition_impairing_consent": "E9",
    "substance_abuse": "E11",
    "prior_solid_organ_transplant": "E12",
    "other_investigator_concern": "E13",
}
YES_NO_CASES = [
    *((v, False, c) for v, c in INCLUSION_YES_NO.items()),
    *((v, True, None) for v in INCLUSION_YES_NO),
    *((v, True, c) for v, c in INCLUSION_NOT.items()),
    *((v, False, None) for v in INCLUSION_NOT),
    *((v, True, c) for v, c in EXCLUSION_YES_NO.items()),
    *((v, False, None) for v in EXCLUSION_YES_NO),
]


@pytest.mark.parametrize("base", [ELIGIBLE, MALE], ids=["female", "male"])
@pytest.mark.parametrize(
    ("variable", "value", "criterion"), YES_NO_CASES, ids=[f"{v}={x}" for v, x, _ in YES_NO_CASES]
)
def test_yes_no_criteria_each_way(
    protocol: Protocol, base: dict[str, Any], variable: str, value: bool, criterion: str | None
) -> None:
    verdict = screen(protocol, base, **{variable: value})
    if criterion is None:
        assert verdict.verdict == "eligible"
        assert failed(verdict) == set()
    else:
        assert verdict.verdict == "not_eligible"
        assert failed(verdict) == {criterion}
        (reason,) = verdict.reasons
        assert reason.kind == ("inclusion" if criterion.startswith("I") else "exclusion")
        assert reason.answers == {variable: value}


# -- sex-specific rules (E2a, E2b) -----------------------------------------------------------

SEX_CASES = [
    case({"pregnant_or_lactating": True}, "E2a"),
    case({"pregnant_or_lactating": True}, base=MALE),  # asked only of women: plays no part
    case({"contraception_agreed": False}, "E2b"),
    case({"childbearing_potential": False, "contraception_agreed": False}),  # E2b not asked
    case({"childbearing_potential": False, "contraception_agreed": None}),
    case({"childbearing_potential": True, "contraception_agreed": False}, base=MALE),
    case({"pregnant_or_lactating": True, "contraception_agreed": False}, "E2a", "E2b"),
    case(
        {
            "pregnant_or_lactating": True,
            "childbearing_potential": True,
            "contraception_agreed": False,
        },
        base=MALE,
    ),
    case({"childbearing_potential": None, "pregnant_or_lactating": None}, base=MALE),
]


@pytest.mark.parametrize(("base", "changes", "fails"), SEX_CASES)
def test_sex_specific_rules(
    protocol: Protocol, base: dict[str, Any], changes: dict[str, Any], fails: set[str]
) -> None:
    verdict = screen(protocol, base, **changes)
    assert verdict.verdict == ("not_eligible" if fails else "eligible")
    assert failed(verdict) == fails


def test_e2b_reason_names_the_answers(protocol: Protocol) -> None:
    verdict = screen(protocol, ELIGIBLE, contraception_agreed=False)
    (reason,) = verdict.reasons
    assert reason.criterion == "E2b"
    assert reason.kind == "exclusion"
    assert reason.answers == {
        "sex": "female",
        "childbearing_potential": True,
        "contraception_agreed": False,
    }


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("bilirubin_x_uln", 42.1 / 21, "bilirubin_x_uln = 2.005"),  # fails "<= 2"
        ("ast_x_uln", 120.1 / 40, "ast_x_uln = 3.0025"),  # fails "<= 3"
        ("alt_x_uln", 3.0001, "alt_x_uln = 3.0001"),
    ],
)
def test_a_reason_never_shows_a_value_that_meets_its_rule(
    protocol: Protocol, variable: str, value: float, line: str
) -> None:
    """Shown with two decimals, 2.0048 × ULN read "= 2" under "bilirubin ≤ 2 × ULN"."""
    verdict = screen(protocol, ELIGIBLE, **{variable: value})
    assert verdict.reasons and all(line in reason_text(r) for r in verdict.reasons)


@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.integers(min_value=-(10**8), max_value=10**8),
)
def test_a_shown_number_stays_on_its_side_of_any_two_decimal_threshold(
    value: float, hundredths: int
) -> None:
    threshold = hundredths / 100
    shown = float(format_value(value))
    assert (shown > threshold) == (value > threshold)
    assert (shown < threshold) == (value < threshold)


# -- Cockcroft-Gault ---------------------------------------------------------------------------


def by_hand(age: int, sex: str, weight: float, scr: float) -> float:
    value = (140 - age) * weight / (72 * scr)
    return value * 0.85 if sex == "female" else value


@pytest.mark.parametrize(
    ("age", "sex", "weight", "scr", "expected"),
    [
        (40, "male", 72, 2.0, 50.0),
        (40, "female", 72, 1.7, 50.0),
        (40, "female", 72, 2.0, 42.5),
        (60, "male", 80, 1.0, 6400 / 72),
        (60, "female", 80, 1.0, 6400 / 72 * 0.85),
        (14, "male", 45, 0.6, 126 * 45 / 43.2),
        (65, "female", 55.5, 1.3, 75 * 55.5 / 93.6 * 0.85),
        (120, "male", 300, 0.05, 20 * 300 / 3.6),
    ],
)
def test_cockcroft_gault_values(
    age: int, sex: str, weight: float, scr: float, expected: float
) -> None:
    assert cockcroft_gault(age, sex, weight, scr) == pytest.approx(expected, abs=5e-10)
    assert cockcroft_gault(age, sex, weight, scr) == pytest.approx(by_hand(age, sex, weight, scr))


def test_cockcroft_gault_female_is_085_of_male() -> None:
    assert cockcroft_gault(50, "female", 70, 1.1) == pytest.approx(
        0.85 * cockcroft_gault(50, "male", 70, 1.1)
    )


# E6b with no measured clearance (dictionary 1.1): an estimate >= 50 clears it; a lower
# estimate is an open item of kind confirm on crcl_ml_min, never a failure. I8d accepts the
# estimate as it is, so a low estimate with creatinine > 2 x ULN fails I8d.
CG_CASES = [
    # (sex, weight, scr, creatinine_x_uln, failed, confirm)
    pytest.param("male", 72, 2.0, 1.0, set(), False, id="male-exactly-50"),
    pytest.param("male", 71.9, 2.0, 1.0, set(), True, id="male-49.93"),
    pytest.param("male", 72.1, 2.0, 1.0, set(), False, id="male-50.07"),
    pytest.param("female", 72, 1.7, 1.0, set(), False, id="female-exactly-50"),
    pytest.param("female", 71.9, 1.7, 1.0, set(), True, id="female-49.93"),
    pytest.param("female", 72, 2.0, 1.0, set(), True, id="female-42.5"),
    pytest.param("male", 71.9, 2.0, 2.01, {"I8d", "E6a"}, True, id="male-49.93-cr-2.01"),
    pytest.param("male", 72, 2.0, 2.01, {"E6a"}, False, id="male-50-cr-2.01"),
]


@pytest.mark.parametrize(("sex", "weight", "scr", "creatinine", "fails", "confirm"), CG_CASES)
def test_cockcroft_gault_estimate_at_50(
    protocol: Protocol,
    sex: str,
    weight: float,
    scr: float,
    creatinine: float,
    fails: set[str],
    confirm: bool,
) -> None:
    verdict = screen(
        protocol,
        ELIGIBLE,
        sex=sex,
        age=40,
        crcl_ml_min=None,
        weight_kg=weight,
        serum_creatinine_mg_dl=scr,
        creatinine_x_uln=creatinine,
    )
    expected = "not_eligible" if fails else ("unresolved" if confirm else "eligible")
    assert verdict.verdict == expected
    assert failed(verdict) == fails
    if expected == "unresolved":
        (item,) = verdict.open_items
        assert (item.criterion, item.variable, item.kind) == ("E6b", "crcl_ml_min", "confirm")
        assert "24-hour" in item.advice
    estimate = cockcroft_gault(40, sex, weight, scr)
    for reason in verdict.reasons:
        if reason.criterion == "I8d":
            assert reason.estimated == ["crcl"]
            assert estimate in reason.answers.values()
        else:
            assert reason.estimated == []
    # the verdict says that it used the estimate, with its inputs, whatever the verdict
    (shown,) = verdict.estimates
    assert shown.name == "crcl" and shown.value == round(estimate, 1)
    assert shown.inputs == {
        "age": 40,
        "sex": sex,
        "weight_kg": weight,
        "serum_creatinine_mg_dl": scr,
    }


@pytest.mark.parametrize(
    ("age", "sex", "weight", "scr"),
    [(20, "male", 63, 2.1), (14, "male", 30, 1.05), (44, "female", 60, 1.36)],
)
def test_an_estimate_of_exactly_50_is_not_below_50(
    protocol: Protocol, age: int, sex: str, weight: float, scr: float
) -> None:
    # (140 - 20) x 63 / (72 x 2.1) is 50; in binary floating point 49.99999999999999.
    answers = {"sex": sex, "age": age, "crcl_ml_min": None, "weight_kg": weight}
    verdict = screen(protocol, ELIGIBLE, **answers, serum_creatinine_mg_dl=scr)
    assert (verdict.verdict, verdict.open_items) == ("eligible", [])
    over_2_uln = screen(
        protocol, ELIGIBLE, **answers, serum_creatinine_mg_dl=scr, creatinine_x_uln=3
    )
    assert failed(over_2_uln) == {"E6a"}  # I8d is met by the estimate


def test_measured_crcl_takes_precedence_over_estimate(protocol: Protocol) -> None:
    # The estimate from these inputs would be (140-40)*20/(72*30)*0.85 = 0.8 mL/min.
    low_estimate = {"weight_kg": 20, "serum_creatinine_mg_dl": 30}
    verdict = screen(protocol, ELIGIBLE, crcl_ml_min=90, **low_estimate)
    assert verdict.verdict == "eligible"
    # The estimate from these inputs would be 100*120/(72*0.5)*0.85 = 283 mL/min.
    high_estimate = {"weight_kg": 120, "serum_creatinine_mg_dl": 0.5}
    verdict = screen(protocol, ELIGIBLE, crcl_ml_min=49, **high_estimate)
    assert failed(verdict) == {"E6b"}
    (reason,) = verdict.reasons
    assert reason.estimated == []
    assert 49 in reason.answers.values()


def test_estimate_needs_every_input(protocol: Protocol) -> None:
    for missing in ("age", "sex", "weight_kg", "serum_creatinine_mg_dl"):
        answers = {**ELIGIBLE, "crcl_ml_min": None, "weight_kg": 60, missing: None}
        verdict = build(protocol, answers, screened_on=TODAY)
        assert verdict.verdict == "unresolved", missing
        assert ("E6b", missing, "missing") in opened(verdict), missing
        assert "I8d" not in {o.criterion for o in verdict.open_items}  # creatinine ≤ 2 decides


# -- unknown answers ---------------------------------------------------------------------------

# For the eligible woman above, the open items one unknown answer leaves, per the dictionary.
SINGLE_UNKNOWN: dict[str, set[tuple[str, str]]] = {
    "age": {("I1", "age")},
    "sex": set(),  # E2a, E2b and E3c are decided by their other parts; CrCl is measured
    "b_all_cd19_positive": {("I2", "b_all_cd19_positive")},
    "ph_negative": {("I3a", "ph_negative")},
    "high_risk_features": {("I3b", "high_risk_features")},
    "transplant_date": {("I4a", "transplant_date")},
    "hematopoietic_reconstitution": {("I4b", "hematopoietic_reconstitution")},
    "marrow_remission": {("I5a", "marrow_remission")},
    "mrd_negative": {("I5b", "mrd_negative")},
    "ecog": {("I6a", "ecog")},
    "karnofsky": {("I6b", "karnofsky")},
    "gvhd_grade_3_4_history": {("I7a", "gvhd_grade_3_4_history")},
    "active_gvhd": {("I7b", "active_gvhd")},
    "ast_x_uln": {("I8a", "ast_x_uln")},
    "alt_x_uln": {("I8b", "alt_x_uln"), ("E5", "alt_x_uln")},
    "bilirubin_x_uln": {("I8c", "bilirubin_x_uln"), ("E5", "bilirubin_x_uln")},
    "creatinine_x_uln": {("E6a", "creatinine_x_uln")},  # I8d met: CrCl 90 ≥ 50
    "crcl_ml_min": set(),  # Cockcroft-Gault estimates 78.7
    "weight_kg": set(),  # not asked: CrCl measured
    "serum_creatinine_mg_dl": set(),  # not asked: CrCl measured
    "lvef_percent": {("I8e", "lvef_percent"), ("E3a", "lvef_percent")},
    "qtc_ms": {("E3c", "qtc_ms")},
    "arrhythmia": {("E3b", "arrhythmia")},
    "last_mi_date": {("E3d", "last_mi_date")},
    "symptomatic_cad_on_medication": {("E3e", "symptomatic_cad_on_medication")},
    "severe_pulmonary_dysfunction": {("E4", "severe_pulmonary_dysfunction")},
    "childbearing_potential": set(),  # contraception agreed: E2b cannot apply
    "pregnant_or_lactating": {("E2a", "pregnant_or_lactating")},
    "contraception_agreed": {("E2b", "contraception_agreed")},
    "hypersensitivity_to_study_drugs": {("E1", "hypersensitivity_to_study_drugs")},
    "active_infection_or_bleeding": {("E7", "active_infection_or_bleeding")},
    "last_vascular_event_date": {("E8", "last_vascular_event_date")},
    "psychiatric_condition_impairing_consent": {("E9", "psychiatric_condition_impairing_consent")},
    "last_major_surgery_date": {("E10", "last_major_surgery_date")},
    "substance_abuse": {("E11", "substance_abuse")},
    "prior_solid_organ_transplant": {("E12", "prior_solid_organ_transplant")},
    "expected_survival_over_3_months": {("I9", "expected_survival_over_3_months")},
    "other_investigator_concern": {("E13", "other_investigator_concern")},
    "consent_willing": {("I10", "consent_willing")},
}


def test_single_unknown_table_covers_every_variable() -> None:
    assert set(SINGLE_UNKNOWN) == set(ELIGIBLE)


@pytest.mark.parametrize("absent", [False, True], ids=["null", "absent"])
@pytest.mark.parametrize("variable", sorted(SINGLE_UNKNOWN))
def test_single_unknown(protocol: Protocol, variable: str, absent: bool) -> None:
    answers = dict(ELIGIBLE)
    if absent:
        del answers[variable]
    else:
        answers[variable] = None
    verdict = build(protocol, answers, screened_on=TODAY)
    expected = {
        (cid, var, "judgment" if cid in JUDGMENT else "missing")
        for cid, var in SINGLE_UNKNOWN[variable]
    }
    assert verdict.verdict == ("unresolved" if expected else "eligible")
    assert verdict.reasons == []
    assert opened(verdict) == expected


@pytest.mark.parametrize("variable", sorted(SINGLE_UNKNOWN))
def test_unknown_never_outranks_a_definite_failure(protocol: Protocol, variable: str) -> None:
    failing = ("karnofsky", 60, "I6b") if variable == "ecog" else ("ecog", 3, "I6a")
    verdict = screen(protocol, ELIGIBLE, **{variable: None, failing[0]: failing[1]})
    assert verdict.verdict == "not_eligible"
    assert failed(verdict) == {failing[2]}
    assert verdict.open_items == []  # open items are listed only for an unresolved verdict


def test_everything_unknown_opens_every_criterion(protocol: Protocol) -> None:
    verdict = build(protocol, {}, screened_on=TODAY)
    assert verdict.verdict == "unresolved"
    assert {c for o in verdict.open_items for c in o.criteria} == ALL_CRITERIA
    kinds = {c: o.kind for o in verdict.open_items for c in o.criteria}
    assert {c for c, k in kinds.items() if k == "judgment"} == JUDGMENT
    # each missing variable is listed once, with every criterion it keeps open
    variables = [o.variable for o in verdict.open_items]
    assert len(variables) == len(set(variables))
    by_variable = {o.variable: o.criteria for o in verdict.open_items}
    assert by_variable["lvef_percent"] == ["I8e", "E3a"]
    assert set(by_variable["crcl_ml_min"]) == {"I8d", "E6b"}


def test_every_criterion_id_is_the_dictionarys(protocol: Protocol) -> None:
    assert set(protocol.criteria) == ALL_CRITERIA


# -- short-circuit of "or" / "and" -----------------------------------------------------------

SHORT_CIRCUIT = [
    # I8d: creatinine ≤ 2 or CrCl ≥ 50, one true part meets it
    pytest.param(
        ELIGIBLE,
        {"creatinine_x_uln": None, "crcl_ml_min": 50},
        "unresolved",
        set(),
        {("E6a", "creatinine_x_uln", "missing")},
        id="I8d-met-creatinine-unknown-crcl-50",
    ),
    pytest.param(
        ELIGIBLE,
        {"creatinine_x_uln": 2, "crcl_ml_min": None, "weight_kg": None},
        "unresolved",
        set(),
        {("E6b", "crcl_ml_min", "missing"), ("E6b", "weight_kg", "missing")},
        id="I8d-met-creatinine-2-crcl-unknown",
    ),
    pytest.param(
        ELIGIBLE,
        {"creatinine_x_uln": None, "crcl_ml_min": 49},
        "not_eligible",
        {"E6b"},
        set(),
        id="E6b-fails-creatinine-unknown",
    ),
    # E5: ALT > 3 or bilirubin > 3, one true part makes it apply
    pytest.param(
        ELIGIBLE,
        {"alt_x_uln": None, "bilirubin_x_uln": 3.5},
        "not_eligible",
        {"I8c", "E5"},
        set(),
        id="E5-applies-alt-unknown",
    ),
    pytest.param(
        ELIGIBLE,
        {"alt_x_uln": 3.5, "bilirubin_x_uln": None},
        "not_eligible",
        {"I8b", "E5"},
        set(),
        id="E5-applies-bilirubin-unknown",
    ),
    pytest.param(
        ELIGIBLE,
        {"alt_x_uln": None, "bilirubin_x_uln": 2.5},
        "not_eligible",
        {"I8c"},
        set(),
        id="I8c-fails-alt-unknown",
    ),
    # E3c with sex unknown: above both limits excludes, below both does not
    pytest.param(
        ELIGIBLE, {"sex": None, "qtc_ms": 471}, "not_eligible", {"E3c"}, set(), id="E3c-471-sex?"
    ),
    pytest.param(
        ELIGIBLE, {"sex": None, "qtc_ms": 450}, "eligible", set(), set(), id="E3c-450-sex?"
    ),
    pytest.param(
        ELIGIBLE,
        {"sex": None, "qtc_ms": 451},
        "unresolved",
        set(),
        {("E3c", "sex", "missing")},
        id="E3c-451-sex?",
    ),
    pytest.param(
        ELIGIBLE,
        {"sex": None, "qtc_ms": 470},
        "unresolved",
        set(),
        {("E3c", "sex", "missing")},
        id="E3c-470-sex?",
    ),
    # E2a / E2b: an "and" with one false part does not apply
    pytest.param(
        ELIGIBLE,
        {"sex": None, "pregnant_or_lactating": True},
        "unresolved",
        set(),
        {("E2a", "sex", "missing")},
        id="E2a-pregnant-sex?",
    ),
    pytest.param(
        ELIGIBLE,
        {"childbearing_potential": None, "contraception_agreed": False},
        "unresolved",
        set(),
        {("E2b", "childbearing_potential", "missing")},
        id="E2b-childbearing?-no-contraception",
    ),
    pytest.param(
        ELIGIBLE,
        {"childbearing_potential": False, "contraception_agreed": None},
        "eligible",
        set(),
        set(),
        id="E2b-not-childbearing",
    ),
    pytest.param(
        MALE,
        {"pregnant_or_lactating": None, "childbearing_potential": None},
        "eligible",
        set(),
        set(),
        id="E2-male-unknowns-play-no-part",
    ),
]


@pytest.mark.parametrize(("base", "changes", "value", "fails", "open_items"), SHORT_CIRCUIT)
def test_short_circuit(
    protocol: Protocol,
    base: dict[str, Any],
    changes: dict[str, Any],
    value: str,
    fails: set[str],
    open_items: set[tuple[str, str, str]],
) -> None:
    verdict = screen(protocol, base, **changes)
    assert verdict.verdict == value
    assert failed(verdict) == fails
    assert opened(verdict) == open_items


def test_reasons_carry_the_deciding_answers_and_source(protocol: Protocol) -> None:
    verdict = screen(protocol, MALE, qtc_ms=451, ecog=3)
    reasons = {r.criterion: r for r in verdict.reasons}
    assert set(reasons) == {"I6a", "E3c"}
    assert reasons["I6a"].answers == {"ecog": 3}
    assert reasons["I6a"].kind == "inclusion"
    assert reasons["E3c"].answers == {"qtc_ms": 451, "sex": "male"}
    assert reasons["E3c"].kind == "exclusion"
    assert "QTc" in reasons["E3c"].source


# -- windows (dictionary 1.1): dates, "met from", month ends, leap days ------------------------

WINDOWS = [
    # (variable, event date, screening date, applies/fails, met from)
    # I4a: met when D >= transplant_date + 2 months
    pytest.param("transplant_date", date(2025, 11, 15), TODAY, None, id="I4a-exactly-2-months"),
    pytest.param(
        "transplant_date", date(2025, 11, 16), TODAY, date(2026, 1, 16), id="I4a-a-day-short"
    ),
    pytest.param(  # Dec 31 + 2 months = Feb 28 (shorter month: its last day)
        "transplant_date", date(2025, 12, 31), date(2026, 2, 27), date(2026, 2, 28), id="I4a-eom"
    ),
    pytest.param("transplant_date", date(2025, 12, 31), date(2026, 2, 28), None, id="I4a-eom-met"),
    pytest.param(  # 2024 is a leap year: Dec 31 + 2 months = Feb 29
        "transplant_date", date(2023, 12, 31), date(2024, 2, 28), date(2024, 2, 29), id="I4a-leap"
    ),
    # E3d: applies while D < last_mi_date + 12 months; the dictionary's own example
    pytest.param(
        "last_mi_date", date(2026, 3, 10), date(2027, 3, 9), date(2027, 3, 10), id="E3d-example"
    ),
    pytest.param("last_mi_date", date(2026, 3, 10), date(2027, 3, 10), None, id="E3d-example-met"),
    pytest.param(  # Feb 29 + 12 months = Feb 28 of the next year
        "last_mi_date", date(2024, 2, 29), date(2025, 2, 27), date(2025, 2, 28), id="E3d-leap"
    ),
    pytest.param("last_mi_date", date(2024, 2, 29), date(2025, 2, 28), None, id="E3d-leap-met"),
    pytest.param("last_mi_date", TODAY, TODAY, date(2027, 1, 15), id="E3d-today"),
    # E8: same window as E3d
    pytest.param(
        "last_vascular_event_date", date(2025, 1, 16), TODAY, date(2026, 1, 16), id="E8-a-day"
    ),
    pytest.param("last_vascular_event_date", date(2025, 1, 15), TODAY, None, id="E8-a-year"),
    # E10: applies while D < last_major_surgery_date + 42 days
    pytest.param(
        "last_major_surgery_date", date(2025, 12, 5), TODAY, date(2026, 1, 16), id="E10-41-days"
    ),
    pytest.param("last_major_surgery_date", date(2025, 12, 4), TODAY, None, id="E10-42-days"),
]
WINDOW_CRITERION = {
    "transplant_date": "I4a",
    "last_mi_date": "E3d",
    "last_vascular_event_date": "E8",
    "last_major_surgery_date": "E10",
}


@pytest.mark.parametrize(("variable", "event", "screened_on", "meets_from"), WINDOWS)
def test_window_boundaries_and_met_from(
    protocol: Protocol, variable: str, event: date, screened_on: date, meets_from: date | None
) -> None:
    answers = {**ELIGIBLE, "transplant_date": min(ELIGIBLE["transplant_date"], event)}
    answers[variable] = event
    verdict = build(protocol, answers, screened_on=screened_on)
    if meets_from is None:
        assert verdict.verdict == "eligible", verdict.reasons
        return
    assert verdict.verdict == "not_eligible"
    (reason,) = verdict.reasons
    assert reason.criterion == WINDOW_CRITERION[variable]
    assert reason.recoverable == "wait"
    assert reason.meets_from == meets_from
    assert reason.meets_from_anchor is None and not reason.window_closed
    # met from that day (the dictionary's "From"), said so, and the JSON as it always was
    assert reason.meets_from_open_on == []
    assert "meets_from_open_on" not in reason.model_dump_json()
    last = reason_text(reason).splitlines()[-1].strip()
    assert last == f"may pass later (met from {meets_from.isoformat()})"
    # and on that day it is indeed met
    later = build(protocol, answers, screened_on=meets_from)
    assert later.verdict == "eligible"


@pytest.mark.parametrize(
    "variable", ["last_mi_date", "last_vascular_event_date", "last_major_surgery_date"]
)
def test_none_date_never_applies_and_unknown_stays_open(protocol: Protocol, variable: str) -> None:
    assert screen(protocol, ELIGIBLE, **{variable: "none"}).verdict == "eligible"
    verdict = screen(protocol, ELIGIBLE, **{variable: None})
    assert verdict.verdict == "unresolved"
    assert opened(verdict) == {(WINDOW_CRITERION[variable], variable, "missing")}


# -- "may pass later" (dictionary 1.1) ----------------------------------------------------------

RECOVERY = {
    **dict.fromkeys(["I4a", "E3d", "E8", "E10", "I4b", "I7b", "E7"], "wait"),
    **dict.fromkeys(["I8a", "I8b", "I8c", "I8d", "E3c", "E5", "E6a", "E6b"], "retest"),
}


def test_may_pass_later_is_the_dictionarys(protocol: Protocol) -> None:
    declared = {cid: c.recoverable for cid, c in protocol.criteria.items()}
    assert declared == {cid: RECOVERY.get(cid) for cid in ALL_CRITERIA}


def test_lvef_failure_is_not_a_retest(protocol: Protocol) -> None:
    verdict = screen(protocol, ELIGIBLE, lvef_percent=55)
    (reason,) = verdict.reasons
    assert (reason.criterion, reason.recoverable, reason.meets_from) == ("E3a", None, None)


def test_each_reason_says_whether_it_may_pass_later(protocol: Protocol) -> None:
    # "A failure's reason says whether a later screening could pass": "no" is said too.
    verdict = screen(protocol, ELIGIBLE, lvef_percent=45, ast_x_uln=3.5)
    said = {r.criterion: reason_text(r).splitlines()[-1].strip() for r in verdict.reasons}
    assert said == {
        "I8a": "may pass on a retest",
        "I8e": "will not pass later",
        "E3a": "will not pass later",
    }


def test_judgment_items_are_the_dictionarys(protocol: Protocol) -> None:
    assert {cid for cid, c in protocol.criteria.items() if c.judgment} == JUDGMENT


# -- E6b with a measured clearance, and open items listing a variable once ---------------------


def test_measured_clearance_below_50_excludes(protocol: Protocol) -> None:
    verdict = screen(protocol, ELIGIBLE, crcl_ml_min=49.9)
    assert failed(verdict) == {"E6b"} and verdict.estimates == []


def test_no_estimate_possible_leaves_e6b_missing_once(protocol: Protocol) -> None:
    verdict = screen(
        protocol,
        ELIGIBLE,
        crcl_ml_min=None,
        weight_kg=None,
        serum_creatinine_mg_dl=None,
        creatinine_x_uln=None,
    )
    assert verdict.verdict == "unresolved"
    items = {o.variable: o for o in verdict.open_items}
    assert set(items) == {"creatinine_x_uln", "crcl_ml_min", "weight_kg", "serum_creatinine_mg_dl"}
    assert items["crcl_ml_min"].criteria == ["I8d", "E6b"]
    assert items["creatinine_x_uln"].criteria == ["I8d", "E6a"]
    assert {o.kind for o in verdict.open_items} == {"missing"}


def test_an_open_item_line_gives_a_label_only_to_its_one_criterion(protocol: Protocol) -> None:
    """An item keeping several criteria open carries the first one's label only: after
    the last id it would read as that criterion's label, so the line names the ids alone."""
    lines = verdict_text(screen(protocol, ELIGIBLE, lvef_percent=None, karnofsky=None))
    assert "• lvef_percent (missing data) for I8e, E3a\n" in lines
    assert f"• karnofsky (missing data) for I6b {protocol.criteria['I6b'].label}\n" in lines


# -- plausibility (dictionary 1.1): valid, but listed as warnings ------------------------------

PLAUSIBILITY = [
    ("ast_x_uln", 20, 20.1),
    ("alt_x_uln", 20, 20.1),
    ("bilirubin_x_uln", 20, 20.1),
    ("creatinine_x_uln", 20, 20.1),
    ("lvef_percent", 15, 14.9),
    ("qtc_ms", 300, 299),
    ("qtc_ms", 600, 601),
    ("crcl_ml_min", 200, 200.1),
]


@pytest.mark.parametrize(("variable", "usual", "unusual"), PLAUSIBILITY)
def test_plausibility_limits(
    protocol: Protocol, variable: str, usual: float, unusual: float
) -> None:
    assert screen(protocol, ELIGIBLE, **{variable: usual}).warnings == []
    (warning,) = screen(protocol, ELIGIBLE, **{variable: unusual}).warnings
    assert warning.variable == variable and warning.value == unusual


@pytest.mark.parametrize(
    ("variable", "usual", "unusual"),
    [("serum_creatinine_mg_dl", 10, 10.1), ("weight_kg", 30, 29.9), ("weight_kg", 200, 200.1)],
)
def test_plausibility_of_estimate_inputs(
    protocol: Protocol, variable: str, usual: float, unusual: float
) -> None:
    base = {**ELIGIBLE, "crcl_ml_min": None}  # weight and creatinine are asked only then
    assert screen(protocol, base, **{variable: usual}).warnings == []
    (warning,) = screen(protocol, base, **{variable: unusual}).warnings
    assert warning.variable == variable
