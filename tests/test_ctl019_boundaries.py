"""The ctl019-rr-ball rules at every boundary of dialogs/ctl019-rr-ball.cases.md.

Every case of that table is written out below as Python data (the Markdown is for people;
`test_the_table_equals_the_markdowns` keeps the two from drifting apart). Each case starts
from base answer set A or B, changes what it names, and states what the real engine must
give: the verdict, the exact failed criterion ids with their "met from" dates, or the exact
open items. The expectations come from the computable reading (dialogs/ctl019-rr-ball.md),
not from the implementation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from screen_bot.adapters import duckdb_batch
from screen_bot.answers import AnswerError, check_value
from screen_bot.engine import Engine
from screen_bot.protocol import Protocol, load
from screen_bot.protocol.schema import Question
from screen_bot.render import reason_text
from screen_bot.rules.dates import clamped_shift
from screen_bot.rules.evaluation import applicable_questions, evaluate
from screen_bot.session import Session
from screen_bot.verdict import Verdict, build, row_fields

DIALOGS = Path(__file__).resolve().parents[1] / "dialogs"
CASES_MD = DIALOGS / "ctl019-rr-ball.cases.md"


def dialog_path() -> Path:
    """The dialog file."""
    return DIALOGS / "ctl019-rr-ball.yaml"


PROTOCOL: Protocol = load(dialog_path())
ENGINE = Engine(PROTOCOL)
D = date(2026, 1, 15)  # the screening date of every case unless it says otherwise
P = "planned_infusion_date"  # the anchor of C-I1b route (b) and C-E11
NO = "none"  # a date_or_none answered "never happened"

# -- base answer sets (cases.md, "Base answer sets"); None = unknown ------------------------------

# A: girl of 10, first marrow relapse after an allogeneic transplant (route (b) only).
A: dict[str, Any] = {
    "marrow_relapse_count": 1,
    "primary_refractory": False,
    "chemorefractory_relapse": False,
    "prior_therapies": (),
    "cns_status": "CNS1",
    "marrow_blasts_percent": 40,
    "age": 10,
    "age_at_diagnosis": 6,
    "b_all_cd19_positive": True,
    "burkitt": False,
    "isolated_extramedullary_relapse": False,
    "prior_allo_hsct": True,
    "marrow_relapse_after_allo_hsct": True,
    "transplant_date": date(2025, 3, 10),
    "planned_infusion_date": date(2026, 2, 20),
    "ph_negative": True,
    "tki_lines_failed_or_not_tolerated": None,  # not asked
    "tki_contraindicated": None,  # not asked
    "not_eligible_for_allo_hsct": False,
    "cd19_flow_date": date(2025, 12, 1),
    "cd19_flow_positive": True,
    "last_dli_date": NO,
    "acute_gvhd_grade": "0",
    "chronic_gvhd_extensive": False,
    "last_imp_date": NO,
    "bone_marrow_failure_syndrome": False,
    "prior_malignancy": "none",
    "hepatitis_b_active_or_latent": False,
    "hepatitis_c_active": False,
    "hiv_infection": False,
    "uncontrolled_life_threatening_infection": False,
    "lansky": 80,
    "karnofsky": None,  # not asked
    "sex": "female",
    "childbearing_potential": False,
    "male_reproductive_potential": None,  # not asked
    "pregnant_or_lactating": False,
    "contraception_agreed": None,  # not asked
    "alt_x_uln": 1.2,
    "total_bilirubin_mg_dl": 0.6,
    "gilbert_syndrome": None,  # not asked
    "serum_creatinine_mg_dl": 0.5,
    "measured_gfr_ml_min_173": None,  # not asked
    "height_cm": 140,  # not asked
    "spo2_room_air_percent": 98,
    "shortening_fraction_percent": 34,
    "ejection_fraction_percent": None,  # not asked
    "life_expectancy_over_12_weeks": True,
    "consent_willing": None,  # not asked
    "guardian_consent_and_assent": True,
}

# B: young man of 19, second marrow relapse (route (a)), Ph-positive, never transplanted.
# The transplant answers A gives stay in B but are not asked (prior_allo_hsct is no).
B: dict[str, Any] = {
    **A,
    "marrow_relapse_count": 2,
    "primary_refractory": None,  # not asked
    "chemorefractory_relapse": None,  # not asked
    "not_eligible_for_allo_hsct": None,  # not asked
    "cns_status": "CNS2",
    "marrow_blasts_percent": 12,
    "age": 19,
    "age_at_diagnosis": 15,
    "prior_allo_hsct": False,
    "ph_negative": False,
    "cd19_flow_date": date(2026, 1, 5),
    "lansky": None,  # not asked
    "karnofsky": 70,
    "sex": "male",
    "childbearing_potential": None,  # not asked
    "pregnant_or_lactating": None,  # not asked
    "male_reproductive_potential": True,
    "contraception_agreed": True,
    "alt_x_uln": 2.0,
    "total_bilirubin_mg_dl": 1.1,
    "serum_creatinine_mg_dl": 0.9,
    "spo2_room_air_percent": 96,
    "shortening_fraction_percent": 30,
    "consent_willing": True,
    "guardian_consent_and_assent": None,  # not asked
}
BASES = {"A": A, "B": B}

# The reading's "May pass later" table: what a failure of a criterion says (C-I1b: "wait" only
# when route (b) fails on its date alone; any other failure of it: no, written in its case).
RECOVERABLE: dict[str, str | None] = {
    "C-I1b": "wait",
    "C-E11": "wait",
    "C-E12": "wait",
    "C-I4a": "wait",
    "C-E7": "wait",
    "C-E8a": "wait",
    "C-E8b": "wait",
    "C-E9": "wait",
    "C-I2": "retest",
    "C-I6a": "retest",
    "C-I6b1": "retest",
    "C-I6b2": "retest",
    "C-I6c": "retest",
}


# -- the case table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fail:
    """A failed criterion and when it no longer fails: from a date (counted on the screening
    date, or on an anchor), never by waiting (``closed``), or no date follows (the defaults);
    from that date it is met, or open on the answers ``open_on`` names."""

    criterion: str
    on: date | None = None
    anchor: str | None = None
    closed: bool = False
    open_on: tuple[str, ...] = ()
    later: str | None = "as the table"  # may pass later: RECOVERABLE's, or this case's


@dataclass(frozen=True)
class Case:
    number: int
    base: str
    changes: dict[str, Any]
    verdict: str  # eligible, not_eligible, unresolved, or refused
    fails: tuple[Fail, ...] = ()
    items: frozenset[tuple[str, str, str]] = frozenset()  # (criterion, variable, kind)
    screened_on: date = D
    estimate: float | None = None  # the GFR estimate shown, when the case names it
    refused: str | None = None  # the variable whose answer is refused

    def answers(self) -> dict[str, Any]:
        return {**BASES[self.base], **self.changes}


def eligible(number: int, base: str, changes: dict[str, Any], id: str, **kw: Any) -> Any:
    return pytest.param(Case(number, base, changes, "eligible", **kw), id=f"{number:03}-{id}")


def fails(
    number: int, base: str, changes: dict[str, Any], *failed: Fail | str, id: str, **kw: Any
) -> Any:
    spec = tuple(f if isinstance(f, Fail) else Fail(f) for f in failed)
    case = Case(number, base, changes, "not_eligible", fails=spec, **kw)
    return pytest.param(case, id=f"{number:03}-{id}")


def opens(
    number: int,
    base: str,
    changes: dict[str, Any],
    *items: tuple[str, str, str],
    id: str,
    **kw: Any,
) -> Any:
    case = Case(number, base, changes, "unresolved", items=frozenset(items), **kw)
    return pytest.param(case, id=f"{number:03}-{id}")


def refused(number: int, base: str, changes: dict[str, Any], variable: str, id: str) -> Any:
    case = Case(number, base, changes, "refused", refused=variable)
    return pytest.param(case, id=f"{number:03}-{id}")


def missing(criterion: str, variable: str) -> tuple[str, str, str]:
    return (criterion, variable, "missing")


def judgment(criterion: str, variable: str) -> tuple[str, str, str]:
    return (criterion, variable, "judgment")


def confirm(criterion: str, variable: str) -> tuple[str, str, str]:
    return (criterion, variable, "confirm")


MALE_13 = {"sex": "male", "male_reproductive_potential": False, "age": 13}  # cases 46-50

# fmt: off
CASES = [
    eligible(1, "A", {}, id="A-route-b"),
    eligible(2, "B", {}, id="B-route-a"),
    # C-I1a
    fails(3, "A", {"b_all_cd19_positive": False}, "C-I1a", id="C-I1a-cd19-no"),
    opens(4, "A", {"b_all_cd19_positive": None},
          missing("C-I1a", "b_all_cd19_positive"), id="C-I1a-cd19-unknown"),
    # C-I1b route (b): P >= transplant_date + 6 months
    eligible(5, "A", {"transplant_date": date(2025, 7, 20), P: date(2026, 1, 20)},
             id="C-I1b-P-T+6mo-exactly"),
    fails(6, "A", {"transplant_date": date(2025, 7, 20), P: date(2026, 1, 19)},
          Fail("C-I1b", on=date(2026, 1, 20), anchor=P), id="C-I1b-P-one-day-short"),
    eligible(7, "A", {"transplant_date": date(2025, 8, 31), P: date(2026, 2, 28)},
             id="C-I1b-end-of-month"),
    fails(8, "A", {"transplant_date": date(2025, 8, 31), P: date(2026, 2, 27)},
          Fail("C-I1b", on=date(2026, 2, 28), anchor=P), id="C-I1b-end-of-month-short"),
    eligible(9, "A", {"transplant_date": date(2025, 7, 20), P: date(2026, 1, 19),
                      "not_eligible_for_allo_hsct": True}, id="C-I1b-route-e-holds"),
    eligible(10, "A", {P: None}, id="C-I1b-P-unknown-screened-6-months-after-transplant"),
    fails(11, "A", {"prior_allo_hsct": False}, Fail("C-I1b", anchor=P, later=None),
          id="C-I1b-one-relapse-no-route"),
    eligible(12, "B", {"prior_allo_hsct": True, "transplant_date": date(2025, 12, 1),
                       P: date(2026, 2, 1), "last_dli_date": NO, "acute_gvhd_grade": "0",
                       "chronic_gvhd_extensive": False}, id="C-I1b-route-a-6mo-not-needed"),
    eligible(13, "B", {"marrow_relapse_count": 1, "tki_lines_failed_or_not_tolerated": 2,
                       "not_eligible_for_allo_hsct": False, "primary_refractory": False,
                       "chemorefractory_relapse": False}, id="C-I1b-route-d-2-lines"),
    fails(14, "B", {"marrow_relapse_count": 1, "tki_lines_failed_or_not_tolerated": 1,
                    "tki_contraindicated": False, "not_eligible_for_allo_hsct": False,
                    "primary_refractory": False, "chemorefractory_relapse": False},
          Fail("C-I1b", anchor=P, later=None), id="C-I1b-route-d-1-line"),
    eligible(15, "B", {"marrow_relapse_count": 1, "tki_lines_failed_or_not_tolerated": 1,
                       "tki_contraindicated": True, "not_eligible_for_allo_hsct": False,
                       "primary_refractory": False, "chemorefractory_relapse": False},
             id="C-I1b-route-d-contraindicated"),
    eligible(16, "B", {"marrow_relapse_count": 1, "ph_negative": True,
                       "not_eligible_for_allo_hsct": True, "primary_refractory": False,
                       "chemorefractory_relapse": False}, id="C-I1b-route-e"),
    eligible(17, "B", {"marrow_relapse_count": 0, "primary_refractory": True,
                       "chemorefractory_relapse": False, "cd19_flow_date": NO},
             id="C-I1b-route-c-primary-refractory"),
    eligible(18, "B", {"marrow_relapse_count": 0, "primary_refractory": False,
                       "chemorefractory_relapse": True}, id="C-I1b-route-c-chemorefractory"),
    fails(19, "B", {"marrow_relapse_count": 0, "primary_refractory": False,
                    "chemorefractory_relapse": False, "not_eligible_for_allo_hsct": True,
                    "tki_contraindicated": True},
          Fail("C-I1b", anchor=P, later=None), id="C-I1b-newly-diagnosed-stem-fails"),
    opens(20, "B", {"marrow_relapse_count": None, "primary_refractory": False,
                    "chemorefractory_relapse": False, "ph_negative": True,
                    "not_eligible_for_allo_hsct": False},
          missing("C-I1b", "marrow_relapse_count"), id="C-I1b-relapse-count-unknown"),
    # C-I2: D < cd19_flow_date + 3 months, and positive
    fails(21, "A", {"cd19_flow_date": date(2025, 10, 15)}, Fail("C-I2", closed=True),
          id="C-I2-sample-3mo-old"),
    eligible(22, "A", {"cd19_flow_date": date(2025, 10, 16)}, id="C-I2-last-day-inside"),
    fails(23, "A", {"cd19_flow_positive": False}, "C-I2", id="C-I2-negative"),
    fails(24, "A", {"cd19_flow_date": NO}, "C-I2", id="C-I2-no-sample"),
    opens(25, "A", {"cd19_flow_date": None}, missing("C-I2", "cd19_flow_date"),
          id="C-I2-date-unknown"),
    fails(26, "A", {"cd19_flow_date": None, "cd19_flow_positive": False}, "C-I2",
          id="C-I2-date-unknown-negative"),
    fails(27, "A", {"cd19_flow_date": date(2025, 11, 30), P: date(2026, 3, 20)},
          Fail("C-I2", closed=True), screened_on=date(2026, 2, 28), id="C-I2-end-of-month"),
    eligible(28, "A", {"cd19_flow_date": date(2025, 11, 30), P: date(2026, 3, 20)},
             screened_on=date(2026, 2, 27), id="C-I2-end-of-month-inside"),
    # C-I3: blasts >= 5 %
    fails(29, "A", {"marrow_blasts_percent": 4.9}, "C-I3", id="C-I3-4.9"),
    eligible(30, "A", {"marrow_blasts_percent": 5}, id="C-I3-5"),
    opens(31, "A", {"marrow_blasts_percent": None}, missing("C-I3", "marrow_blasts_percent"),
          id="C-I3-unknown"),
    fails(32, "A", {"marrow_blasts_percent": 4.9, "life_expectancy_over_12_weeks": None},
          "C-I3", id="C-I3-failure-outranks-unknown"),
    # C-I4a, C-I4b: age
    fails(33, "A", {"age": 2, "age_at_diagnosis": 1}, "C-I4a", id="C-I4a-age-2"),
    eligible(34, "A", {"age": 3, "age_at_diagnosis": 2}, id="C-I4a-age-3"),
    eligible(35, "B", {"age": 30, "age_at_diagnosis": 21}, id="C-I4b-21"),
    fails(36, "B", {"age": 30, "age_at_diagnosis": 22}, "C-I4b", id="C-I4b-22"),
    opens(37, "B", {"age_at_diagnosis": None}, missing("C-I4b", "age_at_diagnosis"),
          id="C-I4b-unknown"),
    # C-I5: Lansky below 16, Karnofsky from 16
    eligible(38, "A", {"age": 15, "lansky": 50}, id="C-I5-lansky-50"),
    fails(39, "A", {"age": 15, "lansky": 40}, "C-I5", id="C-I5-lansky-40"),
    eligible(40, "A", {"age": 16, "lansky": 40, "karnofsky": 50}, id="C-I5-karnofsky-from-16"),
    fails(41, "A", {"age": 16, "karnofsky": 40}, "C-I5", id="C-I5-karnofsky-40"),
    opens(42, "A", {"age": 15, "lansky": None}, missing("C-I5", "lansky"),
          id="C-I5-lansky-unknown"),
    # C-I6a: creatinine limit for age and sex, or GFR >= 60
    eligible(43, "A", {"age": 13, "serum_creatinine_mg_dl": 1.4}, id="C-I6a-age13-female-1.4"),
    fails(44, "A", {"age": 13, "serum_creatinine_mg_dl": 1.41, "measured_gfr_ml_min_173": 59.9},
          "C-I6a", id="C-I6a-age13-female-1.41-gfr59.9"),
    eligible(45, "A", {"age": 13, "serum_creatinine_mg_dl": 1.41, "measured_gfr_ml_min_173": 60},
             id="C-I6a-age13-female-1.41-gfr60"),
    eligible(46, "A", {**MALE_13, "serum_creatinine_mg_dl": 1.5}, id="C-I6a-age13-male-1.5"),
    fails(47, "A", {**MALE_13, "serum_creatinine_mg_dl": 1.51, "measured_gfr_ml_min_173": 59.9},
          "C-I6a", id="C-I6a-age13-male-1.51"),
    fails(48, "A", {**MALE_13, "age": 15, "serum_creatinine_mg_dl": 1.51,
                    "measured_gfr_ml_min_173": 59.9}, "C-I6a", id="C-I6a-age15-male-1.51"),
    eligible(49, "A", {**MALE_13, "age": 16, "karnofsky": 80, "serum_creatinine_mg_dl": 1.7},
             id="C-I6a-age16-male-1.7"),
    fails(50, "A", {**MALE_13, "age": 16, "karnofsky": 80, "serum_creatinine_mg_dl": 1.71,
                    "measured_gfr_ml_min_173": 59.9}, "C-I6a", id="C-I6a-age16-male-1.71"),
    eligible(51, "A", {"age": 16, "karnofsky": 80, "serum_creatinine_mg_dl": 1.4},
             id="C-I6a-age16-female-1.4"),
    fails(52, "A", {"age": 16, "karnofsky": 80, "serum_creatinine_mg_dl": 1.41,
                    "measured_gfr_ml_min_173": 59.9}, "C-I6a", id="C-I6a-age16-female-1.41"),
    eligible(53, "A", {"age": 12, "serum_creatinine_mg_dl": 1.2}, id="C-I6a-age12-1.2"),
    fails(54, "A", {"age": 12, "serum_creatinine_mg_dl": 1.21, "measured_gfr_ml_min_173": 59.9},
          "C-I6a", id="C-I6a-age12-1.21"),
    eligible(55, "A", {**MALE_13, "serum_creatinine_mg_dl": 1.21}, id="C-I6a-age13-male-1.21"),
    eligible(56, "A", {"age": 9, "serum_creatinine_mg_dl": 1.0}, id="C-I6a-age9-1.0"),
    fails(57, "A", {"age": 9, "serum_creatinine_mg_dl": 1.01, "measured_gfr_ml_min_173": 59.9},
          "C-I6a", id="C-I6a-age9-1.01"),
    eligible(58, "A", {"age": 10, "serum_creatinine_mg_dl": 1.01}, id="C-I6a-age10-1.01"),
    eligible(59, "A", {"age": 5, "serum_creatinine_mg_dl": 0.8}, id="C-I6a-age5-0.8"),
    fails(60, "A", {"age": 5, "serum_creatinine_mg_dl": 0.81, "measured_gfr_ml_min_173": 59.9},
          "C-I6a", id="C-I6a-age5-0.81"),
    eligible(61, "A", {"age": 6, "serum_creatinine_mg_dl": 0.81}, id="C-I6a-age6-0.81"),
    fails(62, "A", {"age": 2, "age_at_diagnosis": 1, "serum_creatinine_mg_dl": 0.81,
                    "measured_gfr_ml_min_173": 59.9}, "C-I4a", "C-I6a", id="C-I6a-age2-0.81"),
    fails(63, "A", {"age": 1, "age_at_diagnosis": 1, "serum_creatinine_mg_dl": 0.6},
          "C-I4a", id="C-I6a-age1-0.6"),
    fails(64, "A", {"age": 1, "age_at_diagnosis": 1, "serum_creatinine_mg_dl": 0.61,
                    "measured_gfr_ml_min_173": 59.9}, "C-I4a", "C-I6a", id="C-I6a-age1-0.61"),
    eligible(65, "A", {"age": 4, "age_at_diagnosis": 2, "serum_creatinine_mg_dl": 0.826,
                       "height_cm": 120}, estimate=60.0, id="C-I6a-schwartz-60.0"),
    opens(66, "A", {"age": 4, "age_at_diagnosis": 2, "serum_creatinine_mg_dl": 0.826,
                    "height_cm": 119.8}, confirm("C-I6a", "measured_gfr_ml_min_173"),
          estimate=59.9, id="C-I6a-schwartz-59.9"),
    eligible(67, "A", {"age": 8, "serum_creatinine_mg_dl": 1.05, "height_cm": 155},
             estimate=61.0, id="C-I6a-schwartz-rescues"),
    opens(68, "A", {"age": 8, "serum_creatinine_mg_dl": 1.05, "height_cm": None},
          missing("C-I6a", "measured_gfr_ml_min_173"), missing("C-I6a", "height_cm"),
          id="C-I6a-no-estimate"),
    opens(69, "B", {"serum_creatinine_mg_dl": 1.71},
          confirm("C-I6a", "measured_gfr_ml_min_173"), estimate=58.4,
          id="C-I6a-ckd-epi-male-19"),
    eligible(70, "B", {"serum_creatinine_mg_dl": 1.71, "measured_gfr_ml_min_173": 60},
             id="C-I6a-measured-60"),
    fails(71, "B", {"serum_creatinine_mg_dl": 1.71, "measured_gfr_ml_min_173": 59.9},
          "C-I6a", id="C-I6a-measured-59.9"),
    opens(72, "A", {"age": 17, "serum_creatinine_mg_dl": 1.41, "height_cm": 165,
                    "karnofsky": 80}, confirm("C-I6a", "measured_gfr_ml_min_173"),
          estimate=48.3, id="C-I6a-schwartz-age17"),
    opens(73, "A", {"age": 18, "serum_creatinine_mg_dl": 1.41, "karnofsky": 80,
                    "consent_willing": True}, confirm("C-I6a", "measured_gfr_ml_min_173"),
          estimate=55.5, id="C-I6a-ckd-epi-female-18"),
    eligible(74, "A", {"serum_creatinine_mg_dl": None, "measured_gfr_ml_min_173": 60},
             id="C-I6a-creatinine-unknown-gfr60"),
    opens(75, "A", {"serum_creatinine_mg_dl": None, "measured_gfr_ml_min_173": None},
          missing("C-I6a", "serum_creatinine_mg_dl"),
          missing("C-I6a", "measured_gfr_ml_min_173"), id="C-I6a-both-unknown"),
    eligible(76, "A", {"sex": None, "male_reproductive_potential": False, "age": 10},
             id="C-I6a-sex-unknown-age10"),
    opens(77, "A", {"sex": None, "male_reproductive_potential": False, "age": 14,
                    "serum_creatinine_mg_dl": 1.45, "height_cm": None},
          missing("C-I6a", "sex"), missing("C-I6a", "measured_gfr_ml_min_173"),
          missing("C-I6a", "height_cm"), id="C-I6a-sex-unknown-age14"),
    # C-I6b1 ALT, C-I6b2 bilirubin
    eligible(78, "A", {"alt_x_uln": 5}, id="C-I6b1-5"),
    fails(79, "A", {"alt_x_uln": 5.01}, "C-I6b1", id="C-I6b1-5.01"),
    opens(80, "A", {"alt_x_uln": None}, missing("C-I6b1", "alt_x_uln"), id="C-I6b1-unknown"),
    eligible(81, "A", {"total_bilirubin_mg_dl": 1.99}, id="C-I6b2-1.99"),
    fails(82, "A", {"total_bilirubin_mg_dl": 2.0, "gilbert_syndrome": False}, "C-I6b2",
          id="C-I6b2-2.0"),
    eligible(83, "A", {"total_bilirubin_mg_dl": 2.0, "gilbert_syndrome": True},
             id="C-I6b2-2.0-gilbert"),
    eligible(84, "A", {"total_bilirubin_mg_dl": 2.99, "gilbert_syndrome": True},
             id="C-I6b2-2.99-gilbert"),
    fails(85, "A", {"total_bilirubin_mg_dl": 3.0, "gilbert_syndrome": True}, "C-I6b2",
          id="C-I6b2-3.0-gilbert"),
    opens(86, "A", {"total_bilirubin_mg_dl": 2.5, "gilbert_syndrome": None},
          missing("C-I6b2", "gilbert_syndrome"), id="C-I6b2-gilbert-unknown"),
    # C-I6c SpO2, C-I6d heart
    fails(87, "A", {"spo2_room_air_percent": 91}, "C-I6c", id="C-I6c-91"),
    eligible(88, "A", {"spo2_room_air_percent": 91.5}, id="C-I6c-91.5"),
    opens(89, "A", {"spo2_room_air_percent": None}, missing("C-I6c", "spo2_room_air_percent"),
          id="C-I6c-unknown"),
    eligible(90, "A", {"shortening_fraction_percent": 28}, id="C-I6d-sf-28"),
    eligible(91, "A", {"shortening_fraction_percent": 27.9, "ejection_fraction_percent": 45},
             id="C-I6d-sf-27.9-ef-45"),
    fails(92, "A", {"shortening_fraction_percent": 27.9, "ejection_fraction_percent": 44.9},
          "C-I6d", id="C-I6d-sf-27.9-ef-44.9"),
    eligible(93, "A", {"shortening_fraction_percent": None, "ejection_fraction_percent": 45},
             id="C-I6d-sf-unknown-ef-45"),
    opens(94, "A", {"shortening_fraction_percent": 27.9, "ejection_fraction_percent": None},
          missing("C-I6d", "ejection_fraction_percent"), id="C-I6d-ef-unknown"),
    # C-I7 life expectancy, C-I8 consent, C-I9 contraception
    fails(95, "A", {"life_expectancy_over_12_weeks": False}, "C-I7", id="C-I7-no"),
    opens(96, "A", {"life_expectancy_over_12_weeks": None},
          judgment("C-I7", "life_expectancy_over_12_weeks"), id="C-I7-unknown"),
    fails(97, "A", {"guardian_consent_and_assent": False}, "C-I8", id="C-I8-guardian-no"),
    eligible(98, "A", {"age": 18, "karnofsky": 80, "consent_willing": True,
                       "guardian_consent_and_assent": False}, id="C-I8-adult"),
    fails(99, "B", {"consent_willing": False}, "C-I8", id="C-I8-consent-no"),
    fails(100, "A", {"childbearing_potential": True, "contraception_agreed": False}, "C-I9",
          id="C-I9-woman-no"),
    opens(101, "A", {"childbearing_potential": True, "contraception_agreed": None},
          missing("C-I9", "contraception_agreed"), id="C-I9-unknown"),
    fails(102, "B", {"contraception_agreed": False}, "C-I9", id="C-I9-man-no"),
    eligible(103, "B", {"male_reproductive_potential": False, "contraception_agreed": False},
             id="C-I9-man-no-potential"),
    eligible(104, "A", {"male_reproductive_potential": True, "contraception_agreed": False},
             id="C-I9-girl-male-question-not-asked"),
    # exclusions
    fails(105, "A", {"isolated_extramedullary_relapse": True}, "C-E1", id="C-E1"),
    fails(106, "A", {"bone_marrow_failure_syndrome": True}, "C-E2", id="C-E2"),
    fails(107, "A", {"burkitt": True}, "C-E3", id="C-E3"),
    fails(108, "A", {"prior_malignancy": "other"}, "C-E4", id="C-E4-other"),
    eligible(109, "A", {"prior_malignancy": "cis_skin_cervix"}, id="C-E4-cis-exception"),
    opens(110, "A", {"prior_malignancy": None}, missing("C-E4", "prior_malignancy"),
          id="C-E4-unknown"),
    fails(111, "A", {"prior_therapies": ("blinatumomab",)}, "C-E5b", id="C-E5b-blinatumomab"),
    fails(112, "A", {"prior_therapies": ("gene_therapy",)}, "C-E5a", id="C-E5a-gene-therapy"),
    fails(113, "A", {"prior_therapies": ("cd19_car_t",)}, "C-E5a", "C-E5b", id="C-E5-cd19-car-t"),
    fails(114, "A", {"prior_therapies": ("other_cd19_antibody",)}, "C-E5b",
          id="C-E5b-cd19-antibody"),
    fails(115, "A", {"prior_therapies": ("other_cd19_therapy",)}, "C-E5b",
          id="C-E5b-cd19-other"),
    opens(116, "A", {"prior_therapies": None}, missing("C-E5a", "prior_therapies"),
          missing("C-E5b", "prior_therapies"), id="C-E5-unknown"),
    fails(117, "A", {"hepatitis_b_active_or_latent": True}, "C-E6a", id="C-E6a"),
    fails(118, "A", {"hepatitis_c_active": True}, "C-E6b", id="C-E6b"),
    fails(119, "A", {"hiv_infection": True}, "C-E6c", id="C-E6c"),
    opens(120, "A", {"hepatitis_b_active_or_latent": None},
          missing("C-E6a", "hepatitis_b_active_or_latent"), id="C-E6a-unknown"),
    fails(121, "A", {"uncontrolled_life_threatening_infection": True}, "C-E7", id="C-E7"),
    opens(122, "A", {"uncontrolled_life_threatening_infection": None},
          judgment("C-E7", "uncontrolled_life_threatening_infection"), id="C-E7-unknown"),
    eligible(123, "A", {"acute_gvhd_grade": "1"}, id="C-E8a-grade-1"),
    fails(124, "A", {"acute_gvhd_grade": "2"}, "C-E8a", id="C-E8a-grade-2"),
    fails(125, "A", {"acute_gvhd_grade": "4"}, "C-E8a", id="C-E8a-grade-4"),
    fails(126, "A", {"chronic_gvhd_extensive": True}, "C-E8b", id="C-E8b"),
    opens(127, "A", {"chronic_gvhd_extensive": None},
          judgment("C-E8b", "chronic_gvhd_extensive"), id="C-E8b-unknown"),
    eligible(128, "B", {"acute_gvhd_grade": "3", "chronic_gvhd_extensive": True},
             id="C-E8-never-transplanted"),
    eligible(129, "A", {"cns_status": "CNS2"}, id="C-E9-CNS2"),
    fails(130, "A", {"cns_status": "CNS3"}, "C-E9", id="C-E9-CNS3"),
    opens(131, "A", {"cns_status": None}, missing("C-E9", "cns_status"), id="C-E9-unknown"),
    fails(132, "A", {"pregnant_or_lactating": True}, "C-E10", id="C-E10"),
    eligible(133, "B", {"pregnant_or_lactating": True}, id="C-E10-man-not-asked"),
    # C-E11: P < last_dli_date + 42 days; C-E12: D < last_imp_date + 30 days
    eligible(134, "A", {"last_dli_date": date(2026, 1, 9)}, id="C-E11-42-days"),
    fails(135, "A", {"last_dli_date": date(2026, 1, 10)},
          Fail("C-E11", on=date(2026, 2, 21), anchor=P), id="C-E11-41-days"),
    opens(136, "A", {"last_dli_date": date(2026, 1, 10), P: None},
          missing("C-E11", P), id="C-E11-P-unknown"),
    eligible(137, "A", {"last_imp_date": date(2025, 12, 16)}, id="C-E12-30-days"),
    fails(138, "A", {"last_imp_date": date(2025, 12, 17)}, Fail("C-E12", on=date(2026, 1, 16)),
          id="C-E12-29-days"),
    opens(139, "A", {"last_imp_date": None}, missing("C-E12", "last_imp_date"),
          id="C-E12-unknown"),
    # input errors: not a verdict
    refused(140, "A", {P: date(2026, 1, 14)}, P, id="refused-planned-date-before-D"),
    refused(141, "A", {"transplant_date": date(2026, 1, 16)}, "transplant_date",
            id="refused-date-after-D"),
    # route (b) failing on its date alone while another of its answers is unknown
    fails(142, "A", {"marrow_relapse_after_allo_hsct": None,
                     "transplant_date": date(2025, 7, 20), P: date(2026, 1, 19)},
          Fail("C-I1b", on=date(2026, 1, 20), anchor=P,
               open_on=("marrow_relapse_after_allo_hsct",)),
          id="C-I1b-P-short-relapse-unknown"),
    fails(143, "A", {"prior_allo_hsct": None, "transplant_date": date(2025, 7, 20),
                     P: date(2026, 1, 19)},
          Fail("C-I1b", on=date(2026, 1, 20), anchor=P, open_on=("prior_allo_hsct",)),
          id="C-I1b-P-short-transplant-unknown"),
    fails(144, "A", {"marrow_relapse_after_allo_hsct": False},
          Fail("C-I1b", anchor=P, later=None), id="C-I1b-relapse-before-transplant"),
    # C-E8b: only the classification of chronic GVHD is the investigator's judgment
    opens(145, "A", {"prior_allo_hsct": None, "chronic_gvhd_extensive": None},
          missing("C-I1b", "prior_allo_hsct"), missing("C-E8b", "prior_allo_hsct"),
          judgment("C-E8b", "chronic_gvhd_extensive"), id="C-E8b-transplant-unknown"),
    opens(146, "A", {"marrow_relapse_count": 2, "prior_allo_hsct": None,
                     "chronic_gvhd_extensive": True},
          missing("C-E8b", "prior_allo_hsct"), id="C-E8b-transplant-unknown-extensive"),
    # C-I6a open on the limit (sex unknown) with a low estimate: the measured GFR decides too
    opens(147, "A", {"sex": None, "male_reproductive_potential": False, "age": 16,
                     "karnofsky": 80, "serum_creatinine_mg_dl": 1.41, "height_cm": 170},
          missing("C-I6a", "sex"), missing("C-I6a", "measured_gfr_ml_min_173"),
          id="C-I6a-sex-unknown-low-estimate"),
    # P not set yet (it may not lie before D): decided where every P >= D decides alike
    eligible(148, "A", {"transplant_date": date(2025, 7, 15), P: None},
             id="C-I1b-P-unknown-D-is-T+6mo"),
    opens(149, "A", {"transplant_date": date(2025, 7, 16), P: None}, missing("C-I1b", P),
          id="C-I1b-P-unknown-D-one-day-short"),
    eligible(150, "A", {"marrow_relapse_count": 2, "last_dli_date": date(2025, 12, 4), P: None},
             id="C-E11-P-unknown-DLI-42-days-before-D"),
    opens(151, "A", {"marrow_relapse_count": 2, "last_dli_date": date(2025, 12, 5), P: None},
          missing("C-E11", P), id="C-E11-P-unknown-DLI-41-days-before-D"),
    eligible(152, "A", {"marrow_relapse_count": 2, "last_dli_date": date(2025, 1, 10), P: None},
             id="C-E11-P-unknown-DLI-a-year-before-D"),
    # C-I4b reads the age at diagnosis alone (no answer bounds another)
    opens(153, "B", {"age": 21, "age_at_diagnosis": None},
          missing("C-I4b", "age_at_diagnosis"), id="C-I4b-unknown-at-21-stays-open"),
    fails(154, "B", {"age": None, "age_at_diagnosis": 22}, "C-I4b",
          id="C-I4b-22-at-diagnosis-age-unknown"),
    fails(155, "B", {"age": 19, "age_at_diagnosis": 22}, "C-I4b", id="C-I4b-impossible-pair"),
]
# fmt: on


def params(*verdicts: str) -> list[Any]:
    """The table's cases with these verdicts."""
    return [p for p in CASES if p.values[0].verdict in verdicts]


# -- helpers --------------------------------------------------------------------------------------


def failed(verdict: Verdict) -> set[str]:
    return {r.criterion for r in verdict.reasons}


def opened(verdict: Verdict) -> set[tuple[str, str, str]]:
    return {(c, o.variable, o.kind) for o in verdict.open_items for c in o.criteria}


def timing(verdict: Verdict) -> dict[str, tuple[date | None, str | None, bool, tuple[str, ...]]]:
    return {
        r.criterion: (
            r.meets_from,
            r.meets_from_anchor,
            r.window_closed,
            tuple(r.meets_from_open_on),
        )
        for r in verdict.reasons
    }


# -- the cases ------------------------------------------------------------------------------------


def test_the_table_equals_the_markdowns() -> None:
    """Same case numbers, bases and verdicts as the Markdown table, row for row."""
    text = CASES_MD.read_text(encoding="utf-8")
    cases_section = text.split("## Cases", 1)[1]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in cases_section.splitlines()
        if re.match(r"^\|\s*\d+\s*\|", line)
    ]
    markdown = [(int(r[0]), r[1], r[3].strip("()")) for r in rows]
    python = [(c.values[0].number, c.values[0].base, c.values[0].verdict) for c in CASES]
    assert len(python) == len(markdown)
    assert python == markdown


def test_base_answer_sets_name_every_question() -> None:
    assert set(A) == set(PROTOCOL.order)
    assert set(B) == set(PROTOCOL.order)


@pytest.mark.parametrize("case", params("eligible", "not_eligible", "unresolved"))
def test_case(case: Case) -> None:
    verdict = build(PROTOCOL, case.answers(), screened_on=case.screened_on)
    assert verdict.verdict == case.verdict
    assert failed(verdict) == {f.criterion for f in case.fails}
    assert opened(verdict) == set(case.items)
    variables = [o.variable for o in verdict.open_items]
    assert len(variables) == len(set(variables))  # one open item per variable
    if case.estimate is not None:
        assert [(e.name, e.value) for e in verdict.estimates] == [("gfr", case.estimate)]


@pytest.mark.parametrize("case", params("not_eligible"))
def test_case_met_from(case: Case) -> None:
    """Each failure says whether it may pass later, and from which date (or never)."""
    verdict = build(PROTOCOL, case.answers(), screened_on=case.screened_on)
    assert timing(verdict) == {
        f.criterion: (f.on, f.anchor, f.closed, f.open_on) for f in case.fails
    }
    later = {f.criterion: f.later for f in case.fails}
    for reason in verdict.reasons:
        expected = later[reason.criterion]
        if expected == "as the table":
            expected = RECOVERABLE.get(reason.criterion)
        assert reason.recoverable == expected, reason.criterion
        if reason.meets_from is not None:  # from that day on it no longer fails
            answers, on = case.answers(), case.screened_on
            if reason.meets_from_anchor is None:
                on = reason.meets_from
            else:
                answers[reason.meets_from_anchor] = reason.meets_from
            later = build(PROTOCOL, answers, screened_on=on)
            assert reason.criterion not in failed(later)
            # met then, or open on the answers the reason names: never called met when open
            then = {o.criterion: o.status for o in evaluate(PROTOCOL, answers, on)}
            assert (then[reason.criterion] == "met") == (not reason.meets_from_open_on)
            if later.verdict == "unresolved":
                assert {v for c, v, _ in opened(later) if c == reason.criterion} == set(
                    reason.meets_from_open_on
                )


def test_a_date_from_which_c_i1b_is_only_open_is_not_called_met() -> None:
    """Case 142: route (b) fails on its date alone while marrow_relapse_after_allo_hsct is
    unknown. From 2026-01-20 C-I1b no longer fails but is open on that answer (the reading's
    "May pass later"): the verdict must not promise it is met from then. With the answer
    given, it is met from the same date, said as before."""
    (case,) = [p.values[0] for p in CASES if p.values[0].number == 142]
    (reason,) = build(PROTOCOL, case.answers(), screened_on=case.screened_on).reasons
    assert reason_text(reason).splitlines()[-1].strip() == (
        "may pass later (no longer fails when planned_infusion_date is on or after 2026-01-20,"
        " then open until marrow_relapse_after_allo_hsct is known)"
    )
    assert '"meets_from_open_on":["marrow_relapse_after_allo_hsct"]' in reason.model_dump_json()
    answered = {**case.answers(), "marrow_relapse_after_allo_hsct": True}
    (reason,) = build(PROTOCOL, answered, screened_on=case.screened_on).reasons
    assert reason_text(reason).splitlines()[-1].strip() == (
        "may pass later (met when planned_infusion_date is on or after 2026-01-20)"
    )
    assert reason.meets_from_open_on == []
    assert reason.model_dump_json().endswith('"window_closed":false}')  # written as before


@pytest.mark.parametrize("case", params("eligible", "not_eligible", "unresolved"))
def test_case_whole_row(case: Case) -> None:
    """The batch's whole-row checks give build()'s verdict."""
    expected = build(PROTOCOL, case.answers(), screened_on=case.screened_on)
    assert Verdict(**row_fields(PROTOCOL, case.answers(), screened_on=case.screened_on)) == expected


def test_duckdb_gives_the_cases_reasons_and_open_items(tmp_path: Path) -> None:
    """The SQL engine (DuckDB) gives each case's reasons, "from" dates, closed windows and
    open items as build() does."""
    cases = [p.values[0] for p in params("eligible", "not_eligible", "unresolved")]
    rows = tmp_path / "cases.jsonl"

    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, date) else value

    with rows.open("w", encoding="utf-8") as out:
        for case in cases:
            row = {
                k: list(v) if isinstance(v, tuple) else plain(v) for k, v in case.answers().items()
            }
            out.write(json.dumps({**row, "screened_on": case.screened_on.isoformat()}) + "\n")
    found = list(duckdb_batch.screen_file(PROTOCOL, rows, "jsonl", D))
    assert len(found) == len(cases)
    for case, screened in zip(cases, found, strict=True):
        assert screened.verdict is not None, screened.errors
        expected = build(PROTOCOL, case.answers(), screened_on=case.screened_on)
        assert screened.verdict.reasons == expected.reasons, case.number
        assert screened.verdict.open_items == expected.open_items, case.number


@pytest.mark.parametrize("case", params("eligible", "not_eligible", "unresolved"))
def test_case_dialog(case: Case) -> None:
    """Answered question by question, the dialog reaches build()'s verdict."""
    answers = case.answers()
    session = drive(answers, ENGINE.start(screened_on=case.screened_on))
    dialog = ENGINE.verdict(session)
    batch = build(PROTOCOL, answers, screened_on=case.screened_on)
    assert dialog.verdict == batch.verdict == session.state
    if batch.verdict == "not_eligible":
        assert dialog.reasons and failed(dialog) <= failed(batch)
    else:
        assert dialog == batch


@pytest.mark.parametrize("case", params("refused"))
def test_refused_case(case: Case) -> None:
    assert case.refused is not None
    question = PROTOCOL.questions[case.refused]
    with pytest.raises(AnswerError):
        check_value(question, case.answers()[case.refused], case.screened_on)
    session = ENGINE.start(screened_on=case.screened_on)
    with pytest.raises(AnswerError):
        drive(case.answers(), session)
    assert case.refused not in session.answers


def test_no_dli_ever_leaves_no_window_open_when_the_infusion_date_is_not_set() -> None:
    """Route (a) holds, no DLI was ever given, the infusion date is not set yet; C-E11
    cannot apply, so nothing is open."""
    answers = {**B, "prior_allo_hsct": True, P: None, "last_dli_date": NO}
    verdict = build(PROTOCOL, answers, screened_on=D)
    assert (verdict.verdict, opened(verdict)) == ("eligible", set())


# -- the dialog reaches build()'s verdict ---------------------------------------------------------


def drive(answers: dict[str, Any], session: Session | None = None) -> Session:
    """Answer the dialog's questions from ``answers`` until it ends."""
    session = session or ENGINE.start(screened_on=D)
    for _ in range(len(PROTOCOL.order) + 1):
        if ENGINE.finished(session):
            return session
        question = ENGINE.question(session)
        assert question is not None
        ENGINE.answer(session, answers.get(question.variable), confirmed=True)
    raise AssertionError("the dialog did not end")


@pytest.mark.parametrize("base", ["A", "B"])
def test_dialog_reaches_builds_verdict_on_the_base_sets(base: str) -> None:
    answers = BASES[base]
    session = drive(answers)
    dialog = ENGINE.verdict(session)
    assert dialog.verdict == "eligible" == session.state
    assert dialog == build(PROTOCOL, answers, screened_on=D)
    applicable = applicable_questions(PROTOCOL, answers, D)
    assert session.history == [v for v in PROTOCOL.order if v in applicable]


# -- property: random answer sets -----------------------------------------------------------------

# Values on both sides of every threshold of the reading.
BOUNDARIES: dict[str, list[Any]] = {
    "marrow_relapse_count": [0, 1, 2, 3],
    "tki_lines_failed_or_not_tolerated": [0, 1, 2, 3],
    "marrow_blasts_percent": [4.9, 5],
    "age": [0, 1, 2, 3, 5, 6, 9, 10, 12, 13, 15, 16, 17, 18, 19, 30],
    "age_at_diagnosis": [21, 22],
    "lansky": [49, 50],
    "karnofsky": [49, 50],
    "alt_x_uln": [5, 5.01],
    "total_bilirubin_mg_dl": [1.99, 2.0, 2.99, 3.0],
    "serum_creatinine_mg_dl": [0.6, 0.61, 0.8, 0.81, 1.0, 1.01, 1.2, 1.21, 1.4, 1.41, 1.5, 1.71],
    "measured_gfr_ml_min_173": [59.9, 60],
    "height_cm": [119.8, 120, 155],
    "spo2_room_air_percent": [91, 91.5],
    "shortening_fraction_percent": [27.9, 28],
    "ejection_fraction_percent": [44.9, 45],
}
# Dates around the windows: transplant + 6 months vs P, sample + 3 months vs D,
# DLI + 42 days vs P, investigational product + 30 days vs D.
DATES: dict[str, st.SearchStrategy[Any]] = {
    "transplant_date": st.dates(date(2025, 5, 1), D),
    "planned_infusion_date": st.dates(D, D + timedelta(days=120)),
    "cd19_flow_date": st.dates(date(2025, 9, 1), D),
    "last_dli_date": st.dates(date(2025, 10, 1), D),
    "last_imp_date": st.dates(date(2025, 11, 15), D),
}


def value_of(question: Question) -> st.SearchStrategy[Any]:
    """Any valid value of the question (not unknown), boundary values included."""
    if question.type == "yes_no":
        return st.booleans()
    if question.type == "choice":
        choices = question.choices or []
        if question.multiple:
            return st.sets(st.sampled_from(choices), max_size=2).map(
                lambda picked: tuple(c for c in choices if c in picked)
            )
        return st.sampled_from(choices)
    if question.type in ("date", "date_or_none"):
        dates = DATES[question.variable]
        return st.one_of(dates, st.just(NO)) if question.type == "date_or_none" else dates
    assert question.min is not None and question.max is not None
    ranged: st.SearchStrategy[Any] = (
        st.integers(int(question.min), int(question.max))
        if question.type == "int"
        else st.floats(question.min, question.max, allow_nan=False, allow_infinity=False)
    )
    return st.one_of(st.sampled_from(BOUNDARIES.get(question.variable, [question.min])), ranged)


@st.composite
def answer_sets(draw: st.DrawFn) -> dict[str, Any]:
    """A base set with a few answers changed (each a value or unknown), or any answers at all."""
    questions = PROTOCOL.questions
    if draw(st.booleans()):
        answers = dict(BASES[draw(st.sampled_from(["A", "B"]))])
        for variable in draw(st.sets(st.sampled_from(PROTOCOL.order), max_size=4)):
            answers[variable] = draw(st.one_of(st.none(), value_of(questions[variable])))
        return answers
    return {v: draw(st.one_of(st.none(), value_of(questions[v]))) for v in PROTOCOL.order}


@settings(max_examples=150, deadline=None)
@given(answers=answer_sets())
def test_random_answers_unresolved_has_open_items_and_the_dialog_agrees(
    answers: dict[str, Any],
) -> None:
    batch = build(PROTOCOL, answers, screened_on=D)
    event(f"verdict: {batch.verdict}")
    if batch.verdict == "unresolved":
        assert batch.open_items
    session = drive(answers)
    dialog = ENGINE.verdict(session)
    assert dialog.verdict == batch.verdict == session.state
    assert set(session.history) <= applicable_questions(PROTOCOL, answers, D)
    if dialog.verdict == "not_eligible":
        assert dialog.reasons
        assert failed(dialog) <= failed(batch)
        # it stopped at the first failure: nothing had failed before the last answer
        before = {v: answers.get(v) for v in session.history[:-1]}
        assert build(PROTOCOL, before, screened_on=D).verdict != "not_eligible"
    else:
        assert opened(dialog) == opened(batch)
        assert dialog.reasons == batch.reasons


def test_an_estimate_that_decided_nothing_is_not_shown() -> None:
    """B (19) has a CKD-EPI estimate, but creatinine within its limit already meets C-I6a."""
    verdict = build(PROTOCOL, BASES["B"], screened_on=D)
    assert verdict.verdict == "eligible"
    assert verdict.estimates == [] and verdict.estimated == []
    above_limit = build(PROTOCOL, {**B, "serum_creatinine_mg_dl": 1.71}, screened_on=D)
    assert [e.name for e in above_limit.estimates] == ["gfr"]  # now it decides (confirm)


# -- the infusion date not set yet (outside audit 19, F1) ---------------------------------------

# The two rules as they were, reading the planned date alone: the rewritten ones must agree
# with them wherever that date is known.
BEFORE_F1 = {
    """and (planned_infusion_date >= transplant_date + months(6)
               or screening_date >= transplant_date + months(6)))""":
        "and planned_infusion_date >= transplant_date + months(6))",
    """planned_infusion_date < last_dli_date + days(42)
      and screening_date < last_dli_date + days(42)""":
        "planned_infusion_date < last_dli_date + days(42)",
}  # fmt: skip


@pytest.fixture(scope="module")
def before_f1(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    text = dialog_path().read_text(encoding="utf-8")
    for now, then in BEFORE_F1.items():
        assert text.count(now) == 1, now
        text = text.replace(now, then)
    path = tmp_path_factory.mktemp("before-f1") / "ctl019-rr-ball.yaml"
    path.write_text(text, encoding="utf-8")
    return load(path)


def statuses(protocol: Protocol, answers: dict[str, Any], on: date = D) -> dict[str, str]:
    return {o.criterion: o.status for o in evaluate(protocol, answers, on)}


def test_a_transplant_years_ago_needs_no_infusion_date() -> None:
    """Transplant 3 years before screening, infusion not scheduled: every planned date (never
    before the screening date) is 6 months after it, so route (b) is met and A is eligible,
    in the batch and in the dialog (which asks the date and takes "not known")."""
    answers = {**A, "transplant_date": date(2023, 1, 10), P: None}
    verdict = build(PROTOCOL, answers, screened_on=D)
    assert (verdict.verdict, opened(verdict)) == ("eligible", set())
    session = drive(answers)
    assert P in session.history and ENGINE.verdict(session) == verdict


def test_a_dli_long_before_screening_leaves_c_e11_decided_without_the_infusion_date() -> None:
    """A DLI a year before screening is more than 6 weeks before any planned infusion; one
    5 days before still excludes an infusion planned within 37 days of screening."""
    year_ago = {**A, "marrow_relapse_count": 2, "last_dli_date": date(2025, 1, 10), P: None}
    assert statuses(PROTOCOL, year_ago)["C-E11"] == "met"
    assert build(PROTOCOL, year_ago, screened_on=D).verdict == "eligible"
    days_ago = {**year_ago, "last_dli_date": date(2026, 1, 10)}
    assert statuses(PROTOCOL, days_ago)["C-E11"] == "unknown"
    verdict = build(PROTOCOL, days_ago, screened_on=D)
    assert (verdict.verdict, opened(verdict)) == ("unresolved", {("C-E11", P, "missing")})


@settings(max_examples=200, deadline=None)
@given(answers=answer_sets())
def test_with_the_planned_date_known_the_rewritten_rules_decide_as_before(
    before_f1: Protocol, answers: dict[str, Any]
) -> None:
    """Where the planned date is known (never before D), the rules reading D too give the
    old verdict, reasons ("met from" dates and their anchor included) and open items."""
    if answers.get(P) is None:
        answers = {**answers, P: D}
    now, then = build(PROTOCOL, answers, screened_on=D), build(before_f1, answers, screened_on=D)
    event(f"verdict: {now.verdict}")
    assert now.verdict == then.verdict
    assert timing(now) == timing(then)
    assert opened(now) == opened(then)
    for mine, theirs in zip(now.reasons, then.reasons, strict=True):
        assert mine.answers == theirs.answers, mine.criterion


def planned_dates(answers: dict[str, Any]) -> list[date]:
    """Planned dates on and around every day route (b) or C-E11 can change on, none
    before D."""
    days = {D, D + timedelta(days=1), D + timedelta(days=400)}
    if isinstance(answers.get("transplant_date"), date):
        passed = clamped_shift(answers["transplant_date"], 6, "months")
        days |= {passed - timedelta(days=1), passed}
    if isinstance(answers.get("last_dli_date"), date):
        days |= {answers["last_dli_date"] + timedelta(days=n) for n in (41, 42)}
    return sorted(day for day in days if day >= D)


@settings(max_examples=200, deadline=None)
@given(answers=answer_sets())
def test_what_is_decided_without_the_infusion_date_holds_for_every_infusion_date(
    before_f1: Protocol, answers: dict[str, Any]
) -> None:
    """With the planned date unknown, C-I1b and C-E11 are decided (met, failed) only where
    the old rules decide them alike for every planned date from D on: deciding them without
    the date never lets in a patient that some infusion date would keep out."""
    answers = {**answers, P: None}
    now = statuses(PROTOCOL, answers)
    decided = [c for c in ("C-I1b", "C-E11") if now[c] != "unknown"]
    for criterion in ("C-I1b", "C-E11"):
        event(f"{criterion}: {now[criterion]}")
    for day in planned_dates(answers):
        then = statuses(before_f1, {**answers, P: day})
        assert {c: then[c] for c in decided} == {c: now[c] for c in decided}, day
