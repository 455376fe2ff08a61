"""Rules no patient can pass, and windows written on the clock's side (outside audit 8, "a
new protocol is a new file"): the validator refuses them at their line, with the fix, and
says nothing where its search cannot be sure."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from format2 import (
    a_date,
    build,
    date_or_none,
    dialog,
    dump,
    exclusion,
    inclusion,
    integer,
    line_of,
    number,
    problems,
    validate,
    yes_no,
)
from screen_bot import verdict

AGE = integer("age", 0, 120, unit="years")
HBA1C = number("hba1c_percent", 3, 20, unit="%")
HAEMOGLOBIN = number("haemoglobin_g_dl", 2, 25, unit="g/dL")
POTASSIUM = number("potassium_mmol_l", 1, 10, unit="mmol/L")


# -- an inclusion no answer meets, an exclusion every answer meets ---------------------------


@pytest.mark.parametrize(
    ("question", "criterion", "said"),
    [
        (  # bounds crossed
            AGE,
            inclusion("I1", "age >= 76 and age <= 17"),
            "I1 can never be met: no answers within the questions' limits (age 0–120 years) "
            "meet 'age >= 76 and age <= 17'",
        ),
        (  # the limits in mmol/mol, the question in %
            HBA1C,
            inclusion("I1", "53 <= hba1c_percent <= 91"),
            "I1 can never be met: no answers within the questions' limits (hba1c_percent "
            "3–20 %) meet '53 <= hba1c_percent <= 91'",
        ),
        (  # the window's sign slipped: a sample dated 30 days after the screening
            a_date("hba1c_date"),
            inclusion("I1", "screening_date <= hba1c_date - days(30)"),
            "I1 can never be met: no answers within the questions' limits (hba1c_date not "
            "after the screening date) meet 'screening_date <= hba1c_date - days(30)'",
        ),
        (  # the same slip with calendar months
            a_date("hba1c_date"),
            inclusion("I1", "screening_date < hba1c_date - months(1)"),
            "I1 can never be met",
        ),
        (  # a limit in g/L against a question in g/dL: every patient excluded
            HAEMOGLOBIN,
            exclusion("E1", "haemoglobin_g_dl < 100"),
            "E1 excludes every patient: every known answer within the questions' limits "
            "(haemoglobin_g_dl 2–25 g/dL) meets 'haemoglobin_g_dl < 100'",
        ),
        (  # the other way round: no patient excluded
            HAEMOGLOBIN,
            exclusion("E1", "haemoglobin_g_dl > 100"),
            "E1 can never apply",
        ),
        (  # a whole number strictly between two neighbours
            AGE,
            inclusion("I1", "age > 17 and age < 18"),
            "I1 can never be met",
        ),
    ],
)
def test_a_rule_no_answer_can_decide_otherwise_is_refused_at_its_line(
    tmp_path: Path, question: dict[str, Any], criterion: dict[str, Any], said: str
) -> None:
    data = dialog([question], [criterion])
    (problem,) = problems(tmp_path, data)
    assert said in problem.message
    field = "met_when:" if criterion["kind"] == "inclusion" else "applies_when:"
    assert problem.line == line_of(dump(data), field)
    assert "units" in problem.fix
    windowed = "screening_date" in criterion[field[:-1]]
    assert ("sign of each window" in problem.fix) == windowed


@pytest.mark.parametrize(
    ("criterion", "decided"),
    [
        # 'met_when: True' unquoted was told to write "True", which then passed: a rule
        # every patient meets checks nothing, as one no patient meets excludes everyone
        (inclusion("I1", "True"), "every patient meets it ('True')"),
        (inclusion("I1", "not False"), "every patient meets it ('not False')"),
        (inclusion("I1", "1 > 2"), "no patient meets it ('1 > 2')"),
        (exclusion("E1", "True"), "it excludes every patient ('True')"),
        (exclusion("E1", "False"), "it excludes no one ('False')"),
    ],
)
def test_a_rule_reading_no_answer_is_refused_whichever_way_it_decides(
    tmp_path: Path, criterion: dict[str, Any], decided: str
) -> None:
    data = dialog([AGE], [inclusion("I9", "age >= 18"), criterion])
    (problem,) = problems(tmp_path, data)
    assert problem.message == f"the rule of {criterion['id']} reads no answer: {decided}"
    field = "met_when" if criterion["kind"] == "inclusion" else "applies_when"
    assert problem.fix.startswith(
        f"write the condition the protocol states as a rule on the answers it reads, e.g. {field}: "
    )
    after_i9 = 1 if field == "met_when" else 0
    assert problem.line == line_of(dump(data), f"{field}:", after_i9)


def test_validate_names_the_file_and_line_of_a_rule_no_patient_meets(tmp_path: Path) -> None:
    """As a user meets it: exit 2, `file:line: what`, and the fix."""
    data = dialog([AGE, yes_no("consent")], [inclusion("I1", "18 <= age <= 75")])
    data["criteria"].append(inclusion("I2", "consent and not consent"))
    path = tmp_path / "dialog.yaml"
    path.write_text(dump(data), encoding="utf-8")
    run = validate(path)
    assert run.returncode == 2, run.stdout
    line = line_of(dump(data), "consent and not consent")
    assert f"{path}:{line}: I2 can never be met: no answers meet 'consent and not consent'" in (
        run.stdout + run.stderr
    )
    assert f"{path}:{line_of(dump(data), '18 <= age')}:" not in run.stdout + run.stderr


@pytest.mark.parametrize(("compared", "refused"), [(16, True), (17, False)])
def test_a_rule_comparing_many_values_is_not_searched(
    tmp_path: Path, compared: int, refused: bool
) -> None:
    """The search's candidate answers are made before its budget is paid, at a cost of names
    x nodes: past 16 comparisons a rule is not searched for deciding alike for everyone (a
    file of 500 rules comparing 75 values each took 16 s to validate instead of 2.7)."""
    rule = " or ".join(f"age > {200 + n}" for n in range(compared))
    data = dialog([AGE], [inclusion("I1", rule)])
    if refused:
        (problem,) = problems(tmp_path, data)
        assert "I1 can never be met" in problem.message
    else:
        assert "I1" in build(tmp_path, data).rules


@pytest.mark.parametrize(
    ("questions", "criterion"),
    [
        ([AGE], inclusion("I1", "18 <= age <= 75")),
        ([a_date("hba1c_date")], inclusion("I1", "screening_date <= hba1c_date + days(30)")),
        ([HAEMOGLOBIN], exclusion("E1", "haemoglobin_g_dl < 10")),
        ([POTASSIUM], inclusion("I6", "potassium_mmol_l <= 9.9")),  # just inside max
        ([POTASSIUM], inclusion("I6", "potassium_mmol_l > 1")),  # min itself fails it
        ([AGE], inclusion("I1", "age <= 119")),
        (  # a date part that some answers fail, beside a threshold inside the limits
            [POTASSIUM, a_date("potassium_date")],
            inclusion(
                "I6", "potassium_mmol_l <= 4.8 and screening_date <= potassium_date + weeks(4)"
            ),
        ),
        ([HAEMOGLOBIN], exclusion("E1", "unknown(haemoglobin_g_dl) or haemoglobin_g_dl < 10")),
        (
            [date_or_none("last_mi_date")],
            exclusion("E1", "screening_date < last_mi_date + years(1)"),
        ),
        (  # one day only
            [a_date("event_date")],
            inclusion("I1", "event_date == screening_date - weeks(7)"),
        ),
        (  # a derived value: its thresholds alone are read, never its calculator's range
            [
                number("weight_kg", 20, 300, unit="kg"),
                number("height_cm", 40, 250, unit="cm"),
            ],
            inclusion("I1", "bmi >= 30"),
        ),
    ],
)
def test_a_rule_some_answers_pass_and_others_fail_is_accepted(
    tmp_path: Path, questions: list[dict[str, Any]], criterion: dict[str, Any]
) -> None:
    data = dialog(questions, [criterion])
    if "bmi" in str(criterion):
        data["derived"] = [
            {
                "name": "bmi",
                "label": "body-mass index",
                "unit": "kg/m²",
                "calculator": "bmi",
                "inputs": {"weight_kg": "weight_kg", "height_cm": "height_cm"},
            }
        ]
    assert criterion["id"] in build(tmp_path, data).rules


def test_a_window_met_on_some_screening_dates_only_is_not_called_never_met(
    tmp_path: Path,
) -> None:
    """Two months after 15 January are 59 days, after 15 July 62: on the search's screening
    date no event meets this rule, on others one does. Days mixed with months are not
    searched exactly, so the validator says nothing."""
    rule = "screening_date + days(60) < event_date + months(2)"
    protocol = build(tmp_path, dialog([a_date("event_date")], [inclusion("I1", rule)]))
    july = date(2026, 7, 15)
    assert verdict.build(protocol, {"event_date": july}, screened_on=july).verdict == "eligible"


# -- a calendar window written on the screening date's side -----------------------------------


@pytest.mark.parametrize(
    ("rule", "rewritten"),
    [
        (
            "screening_date - months(6) < last_cv_event_date",
            "screening_date < last_cv_event_date + months(6)",
        ),
        (
            "last_cv_event_date > screening_date - months(1)",
            "screening_date < last_cv_event_date + months(1)",
        ),
        (
            "screening_date - months(1) >= last_cv_event_date",
            "screening_date >= last_cv_event_date + months(1)",
        ),
        (
            "screening_date - years(2) - days(3) <= last_cv_event_date + days(1)",
            "screening_date <= last_cv_event_date + days(1) + days(3) + years(2)",
        ),
    ],
)
def test_a_calendar_window_on_the_screening_date_side_is_refused_with_the_rewrite(
    tmp_path: Path, rule: str, rewritten: str
) -> None:
    """MI on 2025-08-31, screened on 2026-02-28: 'screening_date - months(6)' is 2025-08-28,
    before the MI (excluded), while counted from the MI, 2025-08-31 + 6 months is
    2026-02-28, the screening date (not excluded). README: write the window on the event's
    side."""
    data = dialog([date_or_none("last_cv_event_date")], [exclusion("E5", rule)])
    (problem,) = problems(tmp_path, data)
    assert "counts a calendar window from the screening date" in problem.message
    assert problem.fix == f"write the window on the event's side: '{rewritten}'"
    assert problem.line == line_of(dump(data), "applies_when:")
    fixed = dialog([date_or_none("last_cv_event_date")], [exclusion("E5", rewritten)])
    assert "E5" in build(tmp_path, fixed, "fixed.yaml").rules


def test_a_calendar_window_on_the_screening_date_side_of_a_condition_is_refused(
    tmp_path: Path,
) -> None:
    questions = [
        a_date("cd19_flow_date"),
        yes_no("cd19_positive", when="cd19_flow_date >= screening_date - months(3)"),
    ]
    data = dialog(questions, [inclusion("I1", "cd19_positive")])
    (problem,) = problems(tmp_path, data)
    assert problem.fix == (
        "write the window on the event's side: 'screening_date <= cd19_flow_date + months(3)'"
    )
    assert problem.line == line_of(dump(data), "when:")


@pytest.mark.parametrize("window", ["days(30)", "weeks(4)"])
def test_days_and_weeks_on_the_screening_date_side_are_accepted_and_exact(
    tmp_path: Path, window: str
) -> None:
    """A window of days moves every date by the same number of days: written on either side
    it meets the same days, month ends and leap days included."""
    clock = build(
        tmp_path,
        dialog(
            [a_date("hba1c_date")], [inclusion("I1", f"screening_date - {window} <= hba1c_date")]
        ),
        "clock.yaml",
    )
    event = build(
        tmp_path,
        dialog(
            [a_date("hba1c_date")], [inclusion("I1", f"screening_date <= hba1c_date + {window}")]
        ),
        "event.yaml",
    )
    for screened in (date(2024, 2, 29), date(2024, 3, 31), date(2026, 2, 28), date(2026, 12, 31)):
        for back in range(0, 40):
            answers = {"hba1c_date": screened - timedelta(days=back)}
            assert (
                verdict.build(clock, answers, screened_on=screened).verdict
                == verdict.build(event, answers, screened_on=screened).verdict
            ), (screened, back)


def test_calendar_windows_on_the_screening_date_on_both_sides_are_one_problem(
    tmp_path: Path,
) -> None:
    rule = "screening_date - months(1) < screening_date - days(20)"
    data = dialog([a_date("event_date")], [inclusion("I1", f"{rule} and known(event_date)")])
    (problem,) = problems(tmp_path, data)
    assert problem.message.startswith(f"'{rule}' counts a calendar window")
    assert problem.fix.startswith("count the window from the event's date")
