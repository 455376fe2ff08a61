"""`learn` teaches a limit that depends on a multi-select answer, or that a lookup table sets,
per answer (README, Training and review), and what it teaches is where the engine's verdict
changes.

A multi-select is a set: a patient may pick none of its choices, which is the case that
decides ``bmi >= 30 or (bmi >= 27 and any_of(comorbidities, …))`` (≥ 30 with none, ≥ 27 with
any). A bound read from a table (``7.0 <= hba1c_percent <= hba1c_upper``) is given per row.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from format2 import build
from screen_bot.protocol import Protocol
from screen_bot.rules.evaluation import evaluate
from screen_bot.rules.expressions import parse
from screen_bot.training import thresholds as thresholds_module
from screen_bot.training.thresholds import Threshold, thresholds
from screen_bot.training.walkthrough import walkthrough_text

DAY = date(2026, 3, 31)
CHOICES = ("hypertension", "dyslipidaemia", "sleep_apnoea", "cardiovascular_disease")
PICKS = CHOICES[:3]

GLP = """
id: glp-mini
title: GLP mini
version: "1"
questions:
  - {variable: age, type: int, min: 18, max: 100, unit: years, text: Age?}
  - {variable: hba1c_percent, type: number, min: 3, max: 20, unit: "%", text: HbA1c?}
  - {variable: weight_kg, type: number, min: 20, max: 300, unit: kg, text: Weight?}
  - {variable: height_cm, type: number, min: 40, max: 250, unit: cm, text: Height?}
  - variable: comorbidities
    type: choice
    multiple: true
    choices: [hypertension, dyslipidaemia, sleep_apnoea, cardiovascular_disease]
    text: Weight-related comorbidities (all that apply)?
  - {variable: waist_cm, type: number, min: 40, max: 200, unit: cm, text: Waist?}
  - {variable: ldl_mmol_l, type: number, min: 0.5, max: 15, unit: mmol/L, text: LDL?}
derived:
  - name: bmi
    label: body-mass index
    unit: kg/m²
    calculator: bmi
    inputs: {weight_kg: weight_kg, height_cm: height_cm}
tables:
  - name: hba1c_upper
    label: upper HbA1c limit for age
    unit: "%"
    rows:
      - {when: "age < 65", value: 10.5}
      - {when: "age >= 65", value: 9.0}
  - name: ldl_limit
    label: LDL limit for age
    unit: mmol/L
    rows:
      - {when: "age < 65", value: 5.0}
      - {when: "age >= 65", value: 4.0}
criteria:
  - id: I1
    kind: inclusion
    label: HbA1c 7 to the limit for age
    source: HbA1c 7.0 % to 10.5 % (9.0 % from 65).
    met_when: 7.0 <= hba1c_percent <= hba1c_upper
  - id: I2
    kind: inclusion
    label: BMI 30+, or 27+ with a comorbidity
    source: BMI 30 or more, or 27 or more with a weight-related comorbidity.
    met_when: >-
      bmi >= 30 or (bmi >= 27 and any_of(comorbidities, 'hypertension', 'dyslipidaemia',
      'sleep_apnoea', 'cardiovascular_disease'))
  - id: E1
    kind: exclusion
    label: waist 120+ with hypertension
    source: Waist 120 cm or more with hypertension.
    applies_when: waist_cm >= 120 and 'hypertension' in comorbidities
  - id: I3
    kind: inclusion
    label: LDL within the limit for age
    source: LDL at most 5.0 (4.0 from 65, or 4.5 from 65 on a statin review).
    met_when: ldl_mmol_l <= ldl_limit or (age >= 65 and ldl_mmol_l <= 4.5)
"""


# the table's rows read a name the rule also limits: at 70 an HbA1c of 10 fails, at 50 it
# passes, so no single age limit decides (not "age ≤ 80")
KEYED = """
id: keyed
title: Keyed on age
version: "1"
questions:
  - {variable: age, type: int, min: 18, max: 100, unit: years, text: Age?}
  - {variable: hba1c_percent, type: number, min: 3, max: 20, unit: "%", text: HbA1c?}
tables:
  - name: hba1c_upper
    label: upper HbA1c limit for age
    unit: "%"
    rows:
      - {when: "age < 65", value: 10.5}
      - {when: "age >= 65", value: 9.0}
criteria:
  - id: I1
    kind: inclusion
    label: HbA1c within the limit for age, aged 80 or less
    source: HbA1c at most 10.5 % (9.0 % from 65); aged 80 or less.
    met_when: hba1c_percent <= hba1c_upper and age <= 80
"""


# needs a pair of choices: "hypertension and dyslipidaemia without sleep apnoea" is no single
# choice, none or all of them
PAIRS = """
id: pairs
title: Pairs
version: "1"
questions:
  - {variable: tg_mmol_l, type: number, min: 0.1, max: 50, unit: mmol/L, text: Triglycerides?}
  - variable: findings
    type: choice
    multiple: true
    choices: [hypertension, dyslipidaemia, sleep_apnoea]
    text: Findings (all that apply)?
criteria:
  - id: E1
    kind: exclusion
    label: triglycerides
    source: Triglycerides above 10, or above 5 with hypertension and dyslipidaemia alone.
    applies_when: >-
      tg_mmol_l > 10 or (tg_mmol_l > 5 and 'hypertension' in findings
      and 'dyslipidaemia' in findings and 'sleep_apnoea' not in findings)
"""


# a multi-select with a choice no rule names (diabetes), four named ones and a pair that
# decides: only which named choices are picked changes a verdict (audit 9, learn 1a/1b)
MANY = """
id: many
title: Many picks
version: "1"
questions:
  - {variable: waist_cm, type: number, min: 40, max: 200, unit: cm, text: Waist?}
  - {variable: tg_mmol_l, type: number, min: 0.1, max: 50, unit: mmol/L, text: Triglycerides?}
  - variable: comorbidities
    type: choice
    multiple: true
    choices: [hypertension, dyslipidaemia, sleep_apnoea, cardiovascular_disease, diabetes]
    text: Comorbidities (all that apply)?
  - {variable: flag, type: yes_no, text: Flag?}
criteria:
  - id: E1
    kind: exclusion
    label: waist 120+ with hypertension and dyslipidaemia
    source: Waist 120 cm or more with both hypertension and dyslipidaemia.
    applies_when: >-
      waist_cm >= 120 and 'hypertension' in comorbidities and 'dyslipidaemia' in comorbidities
  - id: E2
    kind: exclusion
    label: waist 150+ with apnoea or CVD
    source: Waist 150 cm or more with sleep apnoea or cardiovascular disease.
    applies_when: >-
      waist_cm >= 150 and any_of(comorbidities, 'sleep_apnoea', 'cardiovascular_disease')
  - id: I1
    kind: inclusion
    label: triglycerides
    source: Triglycerides 30 or more, 20 or more with hypertension and dyslipidaemia.
    met_when: >-
      tg_mmol_l >= 30 or (tg_mmol_l >= 20 and 'hypertension' in comorbidities
      and 'dyslipidaemia' in comorbidities) or (flag and tg_mmol_l >= 10)
"""
MANY_CHOICES = (*CHOICES, "diabetes")


# three multi-selects in one rule, two groups of choices each ('a1' in a or 'a3' in a is one,
# 'a2' not in a another): 4 x 4 x 4 combinations of their named choices, too many
HEAVY = """
id: heavy
title: Heavy
version: "1"
questions:
  - {variable: waist_cm, type: number, min: 40, max: 200, unit: cm, text: Waist?}
  - {variable: a, type: choice, multiple: true, choices: [a1, a2, a3, a4], text: A?}
  - {variable: b, type: choice, multiple: true, choices: [b1, b2, b3, b4], text: B?}
  - {variable: c, type: choice, multiple: true, choices: [c1, c2, c3, c4], text: C?}
  - {variable: sex, type: choice, choices: [female, male], text: Sex?}
criteria:
  - id: E1
    kind: exclusion
    label: waist
    source: Waist.
    applies_when: >-
      (waist_cm >= 120 and ('a1' in a or 'a2' not in a or 'a3' in a)
      and ('b1' in b or 'b2' not in b or 'b3' in b) and ('c1' in c or 'c2' not in c or 'c3' in c))
      or (waist_cm >= 150 and sex == 'male')
"""


def written(tmp_path_factory: pytest.TempPathFactory, name: str, text: str) -> Protocol:
    return build(tmp_path_factory.mktemp("dialogs"), text, f"{name}.yaml")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return written(tmp_path_factory, "keyed", KEYED)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return written(tmp_path_factory, "pairs", PAIRS)


@pytest.fixture(scope="module")
def glp(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return written(tmp_path_factory, "glp-mini", GLP)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    return written(tmp_path_factory, "many", MANY)


def test_a_threshold_combined_with_a_multi_select_is_given_per_answer(glp: Protocol) -> None:
    none, some = "comorbidities = none", f"comorbidities includes {', '.join(CHOICES[:3])} or "
    assert thresholds(glp)["bmi"].passing == {
        none: "≥ 30 kg/m²",
        some + CHOICES[3]: "≥ 27 kg/m²",
    }
    text = walkthrough_text(glp, "I2")
    assert f"What decides: bmi ≥ 30 kg/m² if {none}; ≥ 27 kg/m² if {some}" in text


def test_one_named_choice_of_a_multi_select(glp: Protocol) -> None:
    assert thresholds(glp)["waist_cm"].passing == {
        "comorbidities does not include hypertension": "any value",
        "comorbidities includes hypertension": "< 120 cm",
    }


def test_a_rule_on_a_pair_of_choices_is_tried_with_the_pair(pairs: Protocol) -> None:
    passing = thresholds(pairs)["tg_mmol_l"].passing
    assert passing["findings = hypertension + dyslipidaemia"] == "≤ 5 mmol/L"
    assert passing["findings ≠ hypertension + dyslipidaemia"] == "≤ 10 mmol/L"
    assert len(passing) == 2


def test_a_choice_no_rule_names_may_be_picked_too(many: Protocol) -> None:
    assert thresholds(many)["waist_cm"].own["E1"] == {
        "comorbidities does not include both hypertension and dyslipidaemia": "any value",
        "comorbidities includes hypertension and dyslipidaemia": "< 120 cm",
    }
    answers = {"waist_cm": 130.0, "comorbidities": ("hypertension", "dyslipidaemia", "diabetes")}
    assert {o.criterion: o.status for o in evaluate(many, answers, DAY)}["E1"] == "failed"


def test_choices_read_only_in_one_list_are_one_case(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    five = GLP.replace("'cardiovascular_disease'))", "'cardiovascular_disease', 'diabetes'))")
    five = five.replace("cardiovascular_disease]", "cardiovascular_disease, diabetes, other]")
    listed = "hypertension, dyslipidaemia, sleep_apnoea, cardiovascular_disease"
    assert thresholds(written(tmp_path_factory, "five", five))["bmi"].passing == {
        f"comorbidities includes none of {listed}, diabetes": "≥ 30 kg/m²",
        f"comorbidities includes {listed} or diabetes": "≥ 27 kg/m²",
    }


FIVE = (*CHOICES, "diabetes")
FIVE_IN_ONE_LIST = GLP.replace(
    "'cardiovascular_disease'))", "'cardiovascular_disease', 'diabetes'))"
).replace("cardiovascular_disease]", "cardiovascular_disease, diabetes, other]")
ANY_OF = re.compile(r"any_of\(comorbidities,[^)]*\)")


@pytest.mark.parametrize(
    "spelling",
    [
        # README's first multi-select form: the same rule as any_of(comorbidities, …)
        "(" + " or ".join(f"'{c}' in comorbidities" for c in FIVE) + ")",
        "not (" + " and ".join(f"'{c}' not in comorbidities" for c in FIVE) + ")",
    ],
)
def test_choices_read_only_as_the_ins_of_one_or_are_one_case(
    tmp_path_factory: pytest.TempPathFactory, spelling: str
) -> None:
    listed = written(tmp_path_factory, "listed", FIVE_IN_ONE_LIST)
    spelt = written(tmp_path_factory, "spelt", ANY_OF.sub(spelling, FIVE_IN_ONE_LIST))
    found = thresholds(spelt)["bmi"]
    assert not found.conditional  # 2^5 subsets of the five are 2 cases, not too many
    assert found.passing == thresholds(listed)["bmi"].passing
    for size in range(3):  # each choice alone or with another, with 'other' or not
        for picked in itertools.combinations((*FIVE, "other"), size):
            for quarter_kg in (400, 432, 460, 480, 500):  # BMI 25, 27, 28.75, 30, 31.25
                answers = {"weight_kg": quarter_kg / 4, "height_cm": 200.0}
                answers |= {"comorbidities": picked}
                assert_taught(spelt, answers, {"bmi": ("I2", quarter_kg / 16)}, {"bmi": found})


def test_ins_of_one_and_are_not_one_case(pairs: Protocol) -> None:
    # 'hypertension' in findings and 'dyslipidaemia' in findings needs both: not grouped
    assert "findings = hypertension + dyslipidaemia" in thresholds(pairs)["tg_mmol_l"].passing


# a table's rows read a choice no rule names (sa) of the multi-select the rule reads (sb)
TABLE_ON_CHOICE = """
id: tabms
title: Table on a multi-select
version: "1"
questions:
  - {variable: x, type: int, min: 0, max: 40, unit: u, text: X?}
  - {variable: s, type: choice, multiple: true, choices: [sa, sb, sc], text: S?}
tables:
  - name: upper
    label: upper x
    unit: u
    rows:
      - {when: "'sa' in s", value: 20}
      - {when: "'sa' not in s", value: 30}
criteria:
  - id: I1
    kind: inclusion
    label: x
    source: x.
    met_when: "x <= upper and ('sb' in s or x >= 10)"
"""


def test_a_choice_a_table_row_names_is_a_case(tmp_path_factory: pytest.TempPathFactory) -> None:
    protocol = written(tmp_path_factory, "tabms", TABLE_ON_CHOICE)
    found = thresholds(protocol)
    assert found["x"].passing == {
        "s includes none of sa, sb": "10–30 u",
        "s includes sa and none of sb": "10–20 u",  # not taught at all before
        "s includes sb and none of sa": "≤ 30 u",
        "s includes sa and sb": "≤ 20 u",
    }
    for size in range(4):
        for picked in itertools.combinations(("sa", "sb", "sc"), size):
            for x in range(0, 41, 5):
                assert_taught(protocol, {"x": x, "s": picked}, {"x": ("I1", float(x))}, found)


def test_a_pair_of_four_named_choices_is_tried(many: Protocol) -> None:
    passing = thresholds(many)["waist_cm"].passing
    assert passing["comorbidities includes hypertension and dyslipidaemia"] == "< 120 cm"


def test_a_case_any_picks_allow_is_not_an_empty_text(many: Protocol) -> None:
    pair = "hypertension and dyslipidaemia, flag = no"
    assert thresholds(many)["tg_mmol_l"].passing == {
        f"comorbidities does not include both {pair}": "≥ 30 mmol/L",
        f"comorbidities includes {pair}": "≥ 20 mmol/L",
        "flag = yes": "≥ 10 mmol/L",  # whatever the picks: not ", flag = yes"
    }


def test_too_many_combinations_of_multi_selects_are_no_single_threshold(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    heavy = written(tmp_path_factory, "heavy", HEAVY)
    tried: list[dict[str, Any]] = []
    passing = thresholds_module._passing

    def counted(*args: Any) -> Any:
        tried.append(args[-1])
        return passing(*args)

    monkeypatch.setattr(thresholds_module, "_passing", counted)
    found = thresholds(heavy)["waist_cm"]
    assert found.conditional == ("E1",)  # not a limit guessed from some of the cases
    assert len(tried) <= thresholds_module.MAX_CASES


def test_a_bound_from_a_table_is_given_per_row(glp: Protocol) -> None:
    assert thresholds(glp)["hba1c_percent"].passing == {
        "age < 65": "7–10.5 %",
        "age >= 65": "7–9 %",
    }
    text = walkthrough_text(glp)
    assert "What decides: hba1c_percent 7–10.5 % if age < 65; 7–9 % if age >= 65" in text
    assert "  hba1c_percent 7–10.5 % if age < 65; 7–9 % if age >= 65  (I1)" in text  # summary
    assert "= 7 %" not in text


def test_a_table_row_is_tried_only_with_the_answers_that_pick_it(glp: Protocol) -> None:
    # age 19 with the 65-and-over row (4.0) is no patient: it must not make LDL "no single
    # threshold"; from 65 the rule's own 4.5 is looser than the table's 4.0
    assert thresholds(glp)["ldl_mmol_l"].passing == {
        "age < 65": "≤ 5 mmol/L",
        "age >= 65": "≤ 4.5 mmol/L",
    }


def test_a_table_keyed_on_the_name_itself_is_looked_up_at_each_value(keyed: Protocol) -> None:
    found = thresholds(keyed)
    assert found["hba1c_percent"].passing == {"age < 65": "≤ 10.5 %", "age >= 65": "≤ 9 %"}
    assert found["age"].criteria == () and found["age"].conditional == ("I1",)
    text = walkthrough_text(keyed)
    assert "no single threshold of age: the rule's own condition decides" in text
    assert "age ≤ 80" not in text


def test_learn_on_the_command_line(
    glp: Protocol, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(glp.path.parent))
    ran = cli("learn", "-p", "glp-mini", "--criterion", "I2")
    assert ran.returncode == 0, ran.stderr
    assert "What decides: bmi ≥ 30 kg/m² if comorbidities = none;" in ran.stdout


# -- what is taught is where the engine's verdict changes -------------------------------------


def allowed(text: str) -> Callable[[float], bool]:
    """``≥ 30 kg/m²``, ``7–10.5 %``, ``< 120 cm``, ``any value``, ``≤ 4 u or ≥ 26 u`` as a
    test of a value."""
    if " or " in text:
        either = [allowed(part) for part in text.split(" or ")]
        return lambda v: any(test(v) for test in either)
    if text == "any value":
        return lambda v: True
    span = re.match(r"^([\d.]+)–([\d.]+) ", text)
    if span:
        return lambda v: float(span[1]) <= v <= float(span[2])
    op, limit = re.match(r"^(≥|≤|<|>) ([\d.]+)", text).groups()  # type: ignore[union-attr]
    tests = {"≥": float.__ge__, "≤": float.__le__, "<": float.__lt__, ">": float.__gt__}
    return lambda v: tests[op](float(v), float(limit))


def holds(case: str, answers: dict[str, Any]) -> bool:
    """Whether a case as taught (``comorbidities = none``, ``age < 65``, ``s includes a and
    b, flag = no``, "": anyone) is this patient's."""
    if not case:
        return True
    parts = re.split(r", (?=\w+ (?:=|≠|includes|does not) )", case)
    return all(holds_part(part, answers) for part in parts)


def holds_part(case: str, answers: dict[str, Any]) -> bool:
    if match := re.fullmatch(r"(\w+) = (yes|no)", case):
        return answers[match[1]] is (match[2] == "yes")
    exactly = re.split(r" or (?=\w+ includes )", case)  # these named choices and none else
    if not re.match(r"\w+ (=|≠) ", case) and (
        len(exactly) > 1 or " + " in case or " and none of " in case
    ):
        return any(holds_exactly(e, answers) for e in exactly)
    if match := re.fullmatch(r"(\w+) (=|≠) (.+)", case):  # the picks exactly, or none
        picked = set(answers[match[1]])
        exactly = [p.split(f" {match[2]} ")[1] for p in re.split(" or | and ", case)]
        same = [picked == (set(e.split(" + ")) if e != "none" else set()) for e in exactly]
        return any(same) if match[2] == "=" else not any(same)
    if match := re.fullmatch(r"(\w+) does not include (both |all of )?(.+)", case):
        return not all(has(answers[match[1]], a) for a in re.split(", | and ", match[3]))
    if match := re.fullmatch(rf"(\w+) includes ({ATOM}(?:, {ATOM})* and {ATOM})", case):
        return all(has(answers[match[1]], a) for a in re.split(", | and ", match[2]))
    if match := re.fullmatch(r"(\w+) includes none of (.+)", case):
        return not any(c in answers[match[1]] for c in match[2].split(", "))
    if match := re.fullmatch(r"(\w+) includes (.+)", case):
        return any(c in answers[match[1]] for c in re.split(r", | or ", match[2]))
    return parse(case).evaluate(answers) is True


ATOM = r"(?:\w+|\(\w+(?: or \w+)+\))"  # a choice, or "(a or b)": choices no rule tells apart


def has(picked: tuple[str, ...], atom: str) -> bool:
    return any(c in picked for c in atom.strip("()").split(" or "))


def holds_exactly(case: str, answers: dict[str, Any]) -> bool:
    """``s includes a + b and none of c, d``, ``s includes none of a, b``, ``s includes a``."""
    match = re.fullmatch(r"(\w+) includes (?:none of (.+)|(.+?)(?: and none of (.+))?)", case)
    assert match, case
    picked = answers[match[1]]
    absent = (match[2] or match[4] or "").split(", ")
    present = match[3].split(" + ") if match[3] else []
    return all(has(picked, a) for a in present) and not any(c in picked for c in absent)


def assert_taught(
    protocol: Protocol,
    answers: dict[str, Any],
    measures: dict[str, tuple[str, float]],
    found: dict[str, Threshold] | None = None,
) -> None:
    """For each measure (its criterion, its value), the criterion is met exactly where the
    values taught for the patient's case allow the measure's value."""
    status = {o.criterion: o.status for o in evaluate(protocol, answers, DAY)}
    found = found or thresholds(protocol)
    for name, (criterion, value) in measures.items():
        taught = found[name].own[criterion]
        cases = [text for case, text in taught.items() if holds(case, answers)]
        assert len(cases) <= 1, (name, taught, answers)
        passes = bool(cases) and allowed(cases[0])(value)
        assert passes is (status[criterion] == "met"), (name, taught, answers, status[criterion])


AGES = st.integers(18, 100)
HBA1C = st.integers(30, 200).map(lambda n: n / 10)  # 7.0, 9.0 and 10.5 exactly


@given(
    age=AGES,
    hba1c=HBA1C,
    quarter_kg=st.integers(320, 720),  # with 200 cm, a BMI of quarter_kg / 16: 27, 30 exactly
    comorbidities=st.sets(st.sampled_from(CHOICES)),
    waist=st.integers(40, 200),
    ldl=st.integers(2, 60).map(lambda n: n / 4),  # 4.0, 4.5 and 5.0 exactly
)
def test_the_taught_threshold_is_where_the_verdict_changes(
    glp: Protocol,
    age: int,
    hba1c: float,
    quarter_kg: int,
    comorbidities: set[str],
    waist: int,
    ldl: float,
) -> None:
    answers = {
        "age": age,
        "hba1c_percent": hba1c,
        "weight_kg": quarter_kg / 4,
        "height_cm": 200.0,
        "comorbidities": tuple(c for c in CHOICES if c in comorbidities),
        "waist_cm": float(waist),
        "ldl_mmol_l": ldl,
    }
    measures = {
        "hba1c_percent": ("I1", hba1c),
        "bmi": ("I2", quarter_kg / 16),
        "waist_cm": ("E1", float(waist)),
        "ldl_mmol_l": ("I3", ldl),
    }
    assert_taught(glp, answers, measures)


@given(age=st.integers(18, 80), hba1c=HBA1C)
def test_the_taught_threshold_of_a_table_keyed_on_age_is_where_the_verdict_changes(
    keyed: Protocol, age: int, hba1c: float
) -> None:
    answers = {"age": age, "hba1c_percent": hba1c}
    assert_taught(keyed, answers, {"hba1c_percent": ("I1", hba1c)})


@given(tg=st.integers(1, 500).map(lambda n: n / 10), findings=st.sets(st.sampled_from(PICKS)))
def test_the_taught_threshold_of_a_pair_is_where_the_verdict_changes(
    pairs: Protocol, tg: float, findings: set[str]
) -> None:
    answers = {"tg_mmol_l": tg, "findings": tuple(c for c in PICKS if c in findings)}
    assert_taught(pairs, answers, {"tg_mmol_l": ("E1", tg)})


@given(
    waist=st.integers(40, 200),
    tg=st.integers(1, 500).map(lambda n: n / 10),
    comorbidities=st.sets(st.sampled_from(MANY_CHOICES)),
    flag=st.booleans(),
)
def test_the_taught_threshold_with_unnamed_and_many_named_choices_is_where_the_verdict_changes(
    many: Protocol, waist: int, tg: float, comorbidities: set[str], flag: bool
) -> None:
    answers = {
        "waist_cm": float(waist),
        "tg_mmol_l": tg,
        "comorbidities": tuple(c for c in MANY_CHOICES if c in comorbidities),
        "flag": flag,
    }
    measures = {"waist_cm": ("E1", float(waist)), "tg_mmol_l": ("I1", tg)}
    assert_taught(many, answers, measures)
    assert_taught(many, answers, {"waist_cm": ("E2", float(waist))})
    status = {o.criterion: o.status for o in evaluate(many, answers, DAY)}
    taught = [t for c, t in thresholds(many)["waist_cm"].passing.items() if holds(c, answers)]
    assert len(taught) == 1, (answers, thresholds(many)["waist_cm"].passing)
    assert allowed(taught[0])(float(waist)) is (status["E1"] == status["E2"] == "met")


SET_CHOICES = ("c0", "c1", "c2", "c3", "c4", "c5")  # c5: no generated rule names it
LITERALS = st.one_of(
    st.sampled_from(SET_CHOICES[:5]).map(lambda c: f"'{c}' in s"),
    st.sampled_from(SET_CHOICES[:5]).map(lambda c: f"'{c}' not in s"),
    st.lists(st.sampled_from(SET_CHOICES[:5]), min_size=2, max_size=4, unique=True).flatmap(
        lambda cs: st.sampled_from(["any_of", "none_of"]).map(
            lambda f: f"{f}(s, {', '.join(repr(c) for c in cs)})"
        )
    ),
)
CONDITIONS = st.lists(LITERALS, min_size=1, max_size=3).flatmap(
    lambda parts: st.sampled_from([" and ", " or "]).map(lambda op: f"({op.join(parts)})")
)


@given(
    kind=st.sampled_from(["met_when", "applies_when"]),
    first=CONDITIONS,
    second=CONDITIONS,
)
def test_a_taught_threshold_on_generated_multi_select_rules_is_where_the_verdict_changes(
    tmp_path_factory: pytest.TempPathFactory, kind: str, first: str, second: str
) -> None:
    rule = f"x >= 30 or (x >= 20 and {first}) or (x >= 10 and {second})"
    assert_taught_everywhere(tmp_path_factory, kind, rule)


@given(
    kind=st.sampled_from(["met_when", "applies_when"]),
    row=LITERALS,
    first=CONDITIONS,
    second=CONDITIONS,
)
def test_a_taught_threshold_with_a_table_on_a_multi_select_is_where_the_verdict_changes(
    tmp_path_factory: pytest.TempPathFactory, kind: str, row: str, first: str, second: str
) -> None:
    row = row.replace("c4", "c5")  # a choice the rows may name and the rule does not
    rule = f"x <= upper and (x >= 15 or (x >= 10 and {first}) or (x >= 5 and {second}))"
    table = f"""
tables:
  - name: upper
    label: upper x
    unit: u
    rows:
      - {{when: "{row}", value: 25}}
      - {{when: "not ({row})", value: 35}}
"""
    assert_taught_everywhere(tmp_path_factory, kind, rule, table)


def assert_taught_everywhere(
    tmp_path_factory: pytest.TempPathFactory, kind: str, rule: str, tables: str = ""
) -> None:
    """What is taught of x in a rule on the multi-select s is the engine's verdict for every
    pick of s at every fifth x."""
    protocol = written(
        tmp_path_factory,
        "generated",
        f"""
id: generated
title: Generated
version: "1"
questions:
  - {{variable: x, type: int, min: 0, max: 40, unit: u, text: X?}}
  - {{variable: s, type: choice, multiple: true, choices: [{", ".join(SET_CHOICES)}], text: S?}}
{tables}
criteria:
  - id: C1
    kind: {"inclusion" if kind == "met_when" else "exclusion"}
    label: x
    source: x.
    {kind}: "{rule}"
""",
    )
    found = thresholds(protocol)
    if found["x"].conditional:
        return  # "no single threshold": nothing taught to check
    for size in range(len(SET_CHOICES) + 1):
        for picked in itertools.combinations(SET_CHOICES, size):
            for x in range(0, 41, 5):
                assert_taught(protocol, {"x": x, "s": picked}, {"x": ("C1", float(x))}, found)
