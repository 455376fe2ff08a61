"""Windows on dates (issue #11, "Format" 2): calendar months with the month-end rule, leap
days, anchors, the exact "met from" date (also inside an ``or``), windows that can never
pass, and ``none`` dates.

Expected dates are worked out by hand from a calendar and the dictionary's rule ("a date
+ n months is the same day number n months later, or that month's last day when it is
shorter"), not computed with the module under test.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from format2 import (
    SCREENED_ON,
    a_date,
    build,
    date_or_none,
    dialog,
    dump,
    exclusion,
    inclusion,
    line_of,
    problems,
    yes_no,
)
from screen_bot import verdict
from screen_bot.engine import Engine
from screen_bot.protocol import Protocol
from screen_bot.verdict import Reason


def one_rule(directory: Path, rule: str, *questions: dict[str, Any], **top: Any) -> Protocol:
    return build(directory, dialog(list(questions), [inclusion("I1", rule)], **top))


def reason(protocol: Protocol, answers: dict[str, Any], on: date) -> Reason | None:
    found = verdict.build(protocol, answers, screened_on=on)
    assert found.verdict in ("eligible", "not_eligible"), found
    return found.reasons[0] if found.reasons else None


# -- month ends and leap days ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "window", "boundary"),
    [
        # Jan 31 + 1 month: February has no 31st, so its last day
        (date(2026, 1, 31), "months(1)", date(2026, 2, 28)),
        (date(2024, 1, 31), "months(1)", date(2024, 2, 29)),
        # Feb 29 + 12 months (or 1 year): 2025 has no 29 February
        (date(2024, 2, 29), "months(12)", date(2025, 2, 28)),
        (date(2024, 2, 29), "years(1)", date(2025, 2, 28)),
        (date(2024, 2, 29), "years(4)", date(2028, 2, 29)),
        (date(2025, 12, 31), "months(2)", date(2026, 2, 28)),
        (date(2026, 1, 1), "weeks(6)", date(2026, 2, 12)),
        (date(2026, 2, 27), "days(2)", date(2026, 3, 1)),
        (date(2024, 2, 27), "days(2)", date(2024, 2, 29)),
    ],
)
def test_at_least_a_window_after_an_event(
    tmp_path: Path, event: date, window: str, boundary: date
) -> None:
    """``screening_date >= event + window``: failed the day before, met on the boundary."""
    protocol = one_rule(tmp_path, f"screening_date >= event + {window}", a_date("event"))
    day_before = date.fromordinal(boundary.toordinal() - 1)
    failed = reason(protocol, {"event": event}, day_before)
    assert failed is not None and failed.meets_from == boundary
    assert not failed.window_closed and failed.meets_from_anchor is None
    assert reason(protocol, {"event": event}, boundary) is None


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (inclusion, "screening_date > transplant_date + months(2)"),
        (exclusion, "screening_date <= transplant_date + months(2)"),
    ],
    ids=["more-than", "at-most"],
)
def test_a_strict_window_is_met_from_the_day_after_it_ends(
    tmp_path: Path, make: Any, rule: str
) -> None:
    """More than 2 months after a transplant on 1 December 2025: 1 February 2026 is the
    window's last day, so 2 February is the first that passes, for an inclusion written
    with ``>`` and an exclusion with ``<=``; a criterion marked ``recoverable: wait`` keeps
    that mark (it is dropped only when no day ahead passes)."""
    criterion = make("C1", rule, recoverable="wait")
    protocol = build(tmp_path, dialog([a_date("transplant_date")], [criterion]))
    answers = {"transplant_date": date(2025, 12, 1)}
    for on in (SCREENED_ON, date(2026, 2, 1)):
        failed = reason(protocol, answers, on)
        assert failed is not None and failed.meets_from == date(2026, 2, 2), on
        assert failed.recoverable == "wait" and not failed.window_closed
    assert reason(protocol, answers, date(2026, 2, 2)) is None


def test_within_the_past_month_on_march_31(tmp_path: Path) -> None:
    """Within the past month, counted from the event: 28 February + 1 month is 28 March,
    1 March + 1 month is 1 April. (Counted back from the screening date, ``event >
    screening_date - months(1)``, the validator refuses: see test_format2_impossible_rules.)"""
    protocol = one_rule(tmp_path, "screening_date < event + months(1)", a_date("event"))
    on = date(2026, 3, 31)
    assert reason(protocol, {"event": date(2026, 3, 1)}, on) is None
    assert reason(protocol, {"event": date(2026, 2, 28)}, on) is not None  # ended on 28 March
    leap = date(2024, 3, 31)
    assert reason(protocol, {"event": date(2024, 3, 1)}, leap) is None
    assert reason(protocol, {"event": date(2024, 2, 29)}, leap) is not None


def test_within_the_past_year_excludes_until_the_window_ends(tmp_path: Path) -> None:
    protocol = build(
        tmp_path,
        dialog(
            [date_or_none("last_mi_date")],
            [exclusion("E1", "screening_date < last_mi_date + months(12)")],
        ),
    )
    found = reason(protocol, {"last_mi_date": date(2025, 2, 28)}, SCREENED_ON)
    assert found is not None and found.meets_from == date(2026, 2, 28)
    assert reason(protocol, {"last_mi_date": date(2025, 1, 15)}, SCREENED_ON) is None


def test_a_none_date_compares_false(tmp_path: Path) -> None:
    """An event that never happened lies in no window: ``<`` and ``>=`` are both false."""
    protocol = build(
        tmp_path,
        dialog(
            [date_or_none("last_mi_date"), date_or_none("last_dli_date")],
            [
                exclusion("E1", "screening_date < last_mi_date + months(12)"),
                inclusion("I1", "screening_date >= last_dli_date + weeks(6)"),
                exclusion("E2", "last_mi_date == screening_date"),
                exclusion("E3", "last_mi_date != screening_date"),
            ],
        ),
    )
    answers = {"last_mi_date": "none", "last_dli_date": "none"}
    found = verdict.build(protocol, answers, screened_on=SCREENED_ON)
    assert [r.criterion for r in found.reasons] == ["I1"]  # I1 needs a DLI at least 6 weeks ago
    # no date to wait for, and no window that has passed: no day would ever meet it
    assert found.reasons[0].meets_from is None and not found.reasons[0].window_closed


# -- anchors -----------------------------------------------------------------------------------


@pytest.fixture
def anchored(tmp_path: Path) -> Protocol:
    return build(
        tmp_path,
        dialog(
            [a_date("transplant_date"), a_date("planned_infusion_date", future=True)],
            [
                inclusion("I1", "planned_infusion_date >= transplant_date + months(6)"),
                inclusion("I2", "screening_date >= transplant_date + months(2)"),
            ],
            anchors=["planned_infusion_date"],
        ),
    )


def test_a_window_counted_from_an_anchor_is_met_from_an_anchor_date(anchored: Protocol) -> None:
    answers = {"transplant_date": date(2025, 8, 31), "planned_infusion_date": date(2026, 2, 1)}
    found = verdict.build(anchored, answers, screened_on=SCREENED_ON)
    (failed,) = found.reasons
    assert failed.criterion == "I1"
    assert failed.meets_from == date(2026, 2, 28)  # 31 Aug + 6 months: end of February
    assert failed.meets_from_anchor == "planned_infusion_date"
    assert not failed.window_closed
    later = {**answers, "planned_infusion_date": date(2026, 2, 28)}
    assert verdict.build(anchored, later, screened_on=SCREENED_ON).verdict == "eligible"


def test_a_screening_date_window_names_no_anchor(anchored: Protocol) -> None:
    answers = {"transplant_date": date(2025, 12, 1), "planned_infusion_date": date(2026, 7, 1)}
    (failed,) = verdict.build(anchored, answers, screened_on=SCREENED_ON).reasons
    assert failed.criterion == "I2"
    assert failed.meets_from == date(2026, 2, 1)
    assert failed.meets_from_anchor is None


@pytest.mark.parametrize(
    ("anchor", "fix"),
    [
        (a_date("planned_infusion_date"), "future: true"),
        (yes_no("planned_infusion_date"), "future: true"),
    ],
)
def test_an_anchor_must_be_a_planned_date(tmp_path: Path, anchor: dict[str, Any], fix: str) -> None:
    data = dialog(
        [anchor, a_date("transplant_date")],
        [inclusion("I1", "screening_date >= transplant_date + months(2)")],
        anchors=["planned_infusion_date"],
    )
    found = problems(tmp_path, data)
    assert any("anchor 'planned_infusion_date'" in p.message and fix in p.fix for p in found)


def test_an_anchor_that_is_no_question_gets_a_suggestion(tmp_path: Path) -> None:
    data = dialog(
        [a_date("planned_infusion_date", future=True), a_date("transplant_date")],
        [inclusion("I1", "planned_infusion_date >= transplant_date + months(2)")],
        anchors=["planned_infusion_dat"],
    )
    (problem,) = problems(tmp_path, data)
    assert "did you mean 'planned_infusion_date'" in problem.fix


LAST_IMP = a_date("last_imp_date")
PLANNED_SURGERY = a_date("planned_surgery_date", future=True)


@pytest.mark.parametrize(
    ("other", "rule"),
    [
        (LAST_IMP, "planned_randomisation_date < last_imp_date + days(30)"),  # as K-E7
        (LAST_IMP, "planned_randomisation_date - days(30) < last_imp_date"),
        (PLANNED_SURGERY, "planned_randomisation_date <= planned_surgery_date"),  # no window
    ],
)
def test_a_planned_date_compared_with_another_answers_date_must_be_an_anchor(
    tmp_path: Path, other: dict[str, Any], rule: str
) -> None:
    """Outside audit 17: without 'anchors:', a failed rule counted from a planned date lost
    its "met when planned_randomisation_date is on or after …" (meets_from null) and the
    validator said nothing; README has windows compared with screening_date or an anchor."""
    questions = [other, a_date("planned_randomisation_date", future=True)]
    data = dialog(questions, [exclusion("E7", rule)])
    (problem,) = problems(tmp_path, data)
    assert "the planned date 'planned_randomisation_date'" in problem.message
    assert "is not in anchors" in problem.message
    assert problem.fix.startswith("add planned_randomisation_date to anchors:")
    assert problem.line == line_of(dump(data), "applies_when:")
    anchored = build(tmp_path, {**data, "anchors": ["planned_randomisation_date"]}, "fixed.yaml")
    answers = {
        "last_imp_date": date(2026, 1, 10),
        "planned_surgery_date": date(2026, 3, 1),
        "planned_randomisation_date": date(2026, 1, 20),
    }
    answers = {k: v for k, v in answers.items() if k in anchored.questions}
    (failed,) = verdict.build(anchored, answers, screened_on=SCREENED_ON).reasons
    assert failed.meets_from is not None
    assert failed.meets_from_anchor == "planned_randomisation_date"


@pytest.mark.parametrize(
    ("questions", "rule", "anchors"),
    [
        (  # a planned date counted from the screening date: the screening date is the clock
            [a_date("planned_surgery_date", future=True)],
            "planned_surgery_date < screening_date + weeks(4)",
            [],
        ),
        (  # a planned date counted from an anchor: the anchor is the clock
            [
                a_date("planned_surgery_date", future=True),
                a_date("planned_infusion_date", future=True),
            ],
            "planned_surgery_date < planned_infusion_date + weeks(4)",
            ["planned_infusion_date"],
        ),
        (
            [a_date("transplant_date"), a_date("diagnosis_date")],
            "transplant_date < diagnosis_date + years(1)",
            [],
        ),
    ],
)
def test_a_date_compared_with_a_clock_or_two_past_dates_need_no_anchor(
    tmp_path: Path, questions: list[dict[str, Any]], rule: str, anchors: list[str]
) -> None:
    assert (
        "E1" in build(tmp_path, dialog(questions, [exclusion("E1", rule)], anchors=anchors)).rules
    )


# -- met from, inside an or; windows that never open -------------------------------------------


def test_a_window_inside_an_or_still_gets_its_exact_met_from(tmp_path: Path) -> None:
    protocol = one_rule(
        tmp_path,
        "in_remission or screening_date >= transplant_date + months(3)",
        yes_no("in_remission"),
        a_date("transplant_date"),
    )
    answers = {"in_remission": False, "transplant_date": date(2025, 11, 30)}
    failed = reason(protocol, answers, SCREENED_ON)
    assert failed is not None
    assert failed.meets_from == date(2026, 2, 28)  # 30 Nov + 3 months: end of February
    assert reason(protocol, {**answers, "in_remission": True}, SCREENED_ON) is None


def test_the_first_of_several_routes_to_open_is_the_met_from(tmp_path: Path) -> None:
    protocol = one_rule(
        tmp_path,
        "screening_date >= transplant_date + months(6)"
        " or screening_date >= last_dli_date + weeks(2)",
        a_date("transplant_date"),
        a_date("last_dli_date"),
    )
    answers = {"transplant_date": date(2025, 10, 1), "last_dli_date": date(2026, 1, 10)}
    failed = reason(protocol, answers, SCREENED_ON)
    assert failed is not None and failed.meets_from == date(2026, 1, 24)


def test_a_window_that_can_never_pass_says_so(tmp_path: Path) -> None:
    protocol = one_rule(
        tmp_path, "screening_date < cd19_sample_date + months(3)", a_date("cd19_sample_date")
    )
    failed = reason(protocol, {"cd19_sample_date": date(2025, 10, 15)}, SCREENED_ON)
    assert failed is not None
    assert failed.window_closed and failed.meets_from is None
    assert reason(protocol, {"cd19_sample_date": date(2025, 10, 16)}, SCREENED_ON) is None


def test_a_window_between_two_bounds_that_has_passed_is_closed(tmp_path: Path) -> None:
    protocol = one_rule(
        tmp_path,
        "transplant_date + months(2) <= screening_date < transplant_date + months(12)",
        a_date("transplant_date"),
    )
    early = reason(protocol, {"transplant_date": date(2025, 12, 1)}, SCREENED_ON)
    assert early is not None and early.meets_from == date(2026, 2, 1)
    late = reason(protocol, {"transplant_date": date(2024, 12, 1)}, SCREENED_ON)
    assert late is not None and late.window_closed


def test_an_anchor_within_weeks_of_the_screening_date_is_met_from_the_exact_day(
    tmp_path: Path,
) -> None:
    """ "Infusion within 4 weeks of screening": a screening on 4 May 2026 (1 June − 28 days)
    is the first that meets it, not one on the planned date itself."""
    protocol = one_rule(
        tmp_path,
        "planned_infusion_date <= screening_date + weeks(4)",
        a_date("planned_infusion_date", future=True),
        anchors=["planned_infusion_date"],
    )
    failed = reason(protocol, {"planned_infusion_date": date(2026, 6, 1)}, SCREENED_ON)
    assert failed is not None and failed.meets_from == date(2026, 5, 4)
    assert reason(protocol, {"planned_infusion_date": date(2026, 6, 1)}, date(2026, 5, 4)) is None


def test_a_window_beyond_the_calendar_does_not_crash(tmp_path: Path) -> None:
    """A planned date typed far in the future, a window of years: no OverflowError."""
    protocol = build(
        tmp_path,
        dialog(
            [a_date("planned_infusion_date", future=True), a_date("transplant_date")],
            [
                inclusion("I1", "transplant_date < planned_infusion_date + years(1200)"),
                inclusion("I2", "planned_infusion_date >= transplant_date + months(6)"),
            ],
            anchors=["planned_infusion_date"],
        ),
    )
    answers = {"planned_infusion_date": date(9990, 1, 1), "transplant_date": date(2025, 1, 1)}
    assert verdict.build(protocol, answers, screened_on=SCREENED_ON).verdict == "eligible"
    engine = Engine(protocol)
    session = engine.start(screened_on=SCREENED_ON)
    assert engine.answer_text(session, "01.01.9990") == ""
    assert engine.answer_text(session, "01.01.2025") == ""
    assert engine.verdict(session).verdict == "eligible"


def test_the_end_of_the_calendar_does_not_crash(tmp_path: Path) -> None:
    """Near 9999-12-31 a window stops at the calendar's last day instead of overflowing."""
    protocol = one_rule(tmp_path, "screening_date >= event + days(10)", a_date("event"))
    found = verdict.build(protocol, {"event": date(9999, 12, 25)}, screened_on=date(9999, 12, 26))
    assert found.verdict == "not_eligible"
    # On 9999-12-31 itself the clamped window reads as met: the one day it is inexact.
    last = verdict.build(protocol, {"event": date(9999, 12, 31)}, screened_on=date(9999, 12, 31))
    assert last.verdict in ("eligible", "not_eligible")


def test_the_engine_ends_early_on_a_window_and_the_verdict_says_when(anchored: Protocol) -> None:
    engine = Engine(anchored)
    session = engine.start(screened_on=SCREENED_ON)
    assert engine.answer_text(session, "1 month ago") == ""  # I2 fails: no need to ask more
    assert session.state == "not_eligible"
    (failed,) = engine.verdict(session).reasons
    assert (failed.criterion, failed.meets_from) == ("I2", date(2026, 2, 15))

    session = engine.start(screened_on=SCREENED_ON)
    engine.answer_text(session, "5 months ago")
    engine.answer_text(session, "01.02.2026")
    assert session.state == "not_eligible"
    (failed,) = engine.verdict(session).reasons
    assert (failed.criterion, failed.meets_from) == ("I1", date(2026, 2, 15))
    assert failed.meets_from_anchor == "planned_infusion_date"


@pytest.mark.parametrize(
    ("window", "meant"),
    [
        ("mnths(3)", "months(3)"),
        ("month(3)", "months(3)"),
        ("wekks(8)", "weeks(8)"),
        ("Days(30)", "days(30)"),
    ],
)
def test_a_window_units_typo_gets_did_you_mean(tmp_path: Path, window: str, meant: str) -> None:
    """Outside audit 17: 'last_cv_event_date + mnths(3)' got only the generic "write e.g.
    transplant_date + months(2)"."""
    rule = f"screening_date < last_cv_event_date + {window}"
    data = dialog([date_or_none("last_cv_event_date")], [exclusion("E5", rule)])
    (problem,) = problems(tmp_path, data)
    unit = meant.split("(")[0]
    assert problem.fix == f"did you mean {unit}? write last_cv_event_date + {meant}"
    assert problem.line == line_of(dump(data), "applies_when:")


def test_what_is_no_window_unit_keeps_the_general_fix(tmp_path: Path) -> None:
    data = dialog(
        [a_date("event_date")], [inclusion("I1", "screening_date < event_date + hours(3)")]
    )
    (problem,) = problems(tmp_path, data)
    assert problem.fix == "write e.g. transplant_date + months(2); there is no other arithmetic"
