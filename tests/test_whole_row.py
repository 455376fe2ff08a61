"""The batch's whole-row checks (rules/whole_row.py, put together by ``verdict.row_fields``)
give what the reference gives: ``verdict.fields_of`` (and ``build`` + ``model_dump_json``,
byte for byte), the outcomes of the criteria not met, and the context, on generated answer
sets. For every shipped protocol; the synthetic one of the stored checks (conditions
reading conditional questions and the screening date, a derived value measured by a
conditional question or estimated, dates and "none" dates, a multi-select, a criterion
whose failure may rest on an estimate); one with plausibility limits and two estimated
values read together; and generated protocols of the benchmarks.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHIPPED
from format2 import (
    a_date,
    build,
    choice,
    dialog,
    exclusion,
    inclusion,
    integer,
    number,
    yes_no,
)
from population import Population
from screen_bot.protocol import Protocol, load
from screen_bot.rules.evaluation import context, outcome, status_of_each
from screen_bot.rules.whole_row import row_checks
from screen_bot.verdict import build as build_verdict
from screen_bot.verdict import fields_of, row_fields, verdict_json
from test_context_reference import GFR
from test_engine_targeted import mostly_known
from test_format2_differential import cases
from test_stored_checks import CRITERIA, QUESTIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.generated import protocol as generated  # noqa: E402

PROTOCOLS = {path.stem: load(path) for path in sorted(SHIPPED.glob("*.yaml"))}

CRCL = {
    "name": "crcl",
    "label": "creatinine clearance",
    "unit": "mL/min",
    "measured": "measured_crcl",
    "calculators": [
        {
            "calculator": "cockcroft_gault",
            "inputs": {
                "age": "age",
                "sex": "sex",
                "weight_kg": "weight",
                "serum_creatinine_mg_dl": "creatinine",
            },
        }
    ],
}
LIMITED = [
    integer("age", unit="years", confirm_below=18, confirm_above=90),
    choice("sex", ["female", "male"]),
    number("creatinine", 0.1, 20, unit="mg/dL", confirm_above=4),
    number("weight", 1, 300, unit="kg", confirm_below=30, confirm_above=200, when="age >= 18"),
    number("measured_gfr", 0, 200, unit="mL/min/1.73 m²", when="creatinine > 1.2"),
    number("measured_crcl", 0, 300, unit="mL/min", confirm_below=5),
    yes_no("consent"),
]
TWO_ESTIMATES = [
    inclusion("I1", "gfr >= 60", confirm_estimate="measure the GFR"),
    inclusion("I2", "crcl >= 50 or consent"),
    exclusion("E1", "crcl < 30 and gfr < 30"),  # two estimates, not open to the confirm fix
    inclusion("I3", "age >= 18 and weight >= 40"),
]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Protocol]:
    made = tmp_path_factory.mktemp("whole-row")
    return {
        "stored": build(made, dialog(QUESTIONS, CRITERIA, derived=[GFR]), "stored.yaml"),
        "limits": build(made, dialog(LIMITED, TWO_ESTIMATES, derived=[GFR, CRCL]), "limits.yaml"),
        "generated": build(made, generated(0, 40), "generated.yaml"),
        "generated-large": build(made, generated(1, 120, seed=3), "generated-large.yaml"),
    }


def check(protocol: Protocol, answers: dict[str, Any], screened: date) -> bool:
    """The fast fields equal the reference's; True when the whole-row checks gave them."""
    expected = fields_of(protocol, answers, referral="R-1", screened_on=screened)
    found = row_fields(protocol, answers, referral="R-1", screened_on=screened)
    assert found == expected
    written = verdict_json(found)
    assert written == verdict_json(expected)
    assert written.decode() == (
        build_verdict(protocol, answers, referral="R-1", screened_on=screened).model_dump_json()
    )
    checks = row_checks(protocol)
    parts = None if checks is None else checks(answers, screened)
    if checks is None or parts is None:
        return False
    ctx = context(protocol, answers, screened)
    statuses = status_of_each(protocol, ctx)
    assert parts[0] == tuple(statuses.values())
    reference = [outcome(protocol, cid, ctx) for cid, s in statuses.items() if s != "met"]
    assert parts[6] == reference
    made = checks.context(parts)  # a name not asked or not answered holds None
    assert {n: v for n, v in made.env.items() if v is not None} == {
        n: v for n, v in ctx.env.items() if v is not None
    }
    assert made.applicable == ctx.applicable
    assert made.estimated == ctx.estimated
    return True


def test_which_protocols_are_compiled(synthetic: dict[str, Protocol], tmp_path: Path) -> None:
    assert row_checks(PROTOCOLS["blina-dli"]) is not None
    assert row_checks(PROTOCOLS["ctl019-rr-ball"]) is None  # tables: the general path
    assert all(row_checks(p) is not None for p in synthetic.values())
    # a criterion open to the confirm fix reading two estimates: not compiled
    both = inclusion("I1", "gfr >= 60 and crcl >= 50", confirm_estimate="measure them")
    data = dialog(LIMITED, [both, *TWO_ESTIMATES[1:]], derived=[GFR, CRCL])
    assert row_checks(build(tmp_path, data)) is None


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_shipped_protocols_equal_the_reference(name: str, data: st.DataObject) -> None:
    protocol = PROTOCOLS[name]
    strategy = st.one_of(mostly_known(protocol), cases(protocol))
    check(protocol, *data.draw(strategy))


@pytest.mark.parametrize("name", ["stored", "limits", "generated", "generated-large"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_synthetic_protocols_equal_the_reference(
    synthetic: dict[str, Protocol], name: str, data: st.DataObject
) -> None:
    protocol = synthetic[name]
    check(protocol, *data.draw(st.one_of(mostly_known(protocol), cases(protocol))))


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_a_seeded_population_takes_the_fast_path(name: str) -> None:
    protocol = PROTOCOLS[name]
    verdicts, fast = set(), 0
    patients = list(Population(protocol, seed=14).patients(1_000))
    for patient in patients:
        fast += check(protocol, patient.answers, patient.screened_on)
        fields = fields_of(protocol, patient.answers, screened_on=patient.screened_on)
        verdicts.add(fields["verdict"])
    assert verdicts == {"eligible", "not_eligible", "unresolved"}
    if row_checks(protocol) is not None:
        assert fast > 0.8 * len(patients)  # the general path only for the confirm fix


def test_warnings_and_estimates_come_from_the_whole_row(synthetic: dict[str, Protocol]) -> None:
    protocol = synthetic["limits"]
    answers = {"age": 95, "sex": "male", "creatinine": 0.9, "weight": 250.0, "consent": False}
    screened = date(2026, 1, 15)
    assert check(protocol, answers, screened)
    fields = row_fields(protocol, answers, screened_on=screened)
    assert fields["verdict"] == "eligible"
    assert [w["variable"] for w in fields["warnings"]] == ["age", "weight"]
    assert fields["estimated"] == ["crcl", "gfr"]  # without either, a criterion is open
    assert [e["inputs"] for e in fields["estimates"]][0] == {
        "age": 95,
        "sex": "male",
        "weight": 250.0,
        "creatinine": 0.9,
    }


def test_a_time_windows_first_day_is_remembered_by_what_decides_it() -> None:
    protocol = PROTOCOLS["blina-dli"]
    checks = row_checks(protocol)
    assert checks is not None
    base = next(
        p.answers
        for p in Population(protocol, seed=14).patients(1_000)
        if fields_of(protocol, p.answers, screened_on=date(2026, 11, 25))["verdict"] == "eligible"
    )
    transplants = [date(2026, 10, 1), date(2026, 10, 20), date(2026, 10, 1), date(2026, 11, 2)]
    days = [date(2026, 11, 25), date(2026, 11, 25), date(2026, 11, 20), date(2026, 11, 25)]
    firsts = []
    for transplant, screened in zip(transplants, days, strict=True):
        answers = {**base, "transplant_date": transplant}  # within two months: I4a fails
        assert check(protocol, answers, screened)
        reason = row_fields(protocol, answers, screened_on=screened)["reasons"][0]
        assert reason["criterion"] == "I4a"
        firsts.append(reason["meets_from"])
    assert firsts == [date(2026, 12, 1), date(2026, 12, 20), date(2026, 12, 1), date(2027, 1, 2)]
    assert checks._waits  # remembered


def test_remembered_windows_give_each_row_the_reference_in_either_order() -> None:
    """Whether a failed window is met on its first day is remembered with the day: the rows
    screened again in the other order (every day remembered then) still give the reference."""
    protocol = PROTOCOLS["blina-dli"]
    patients = list(Population(protocol, seed=21).patients(600))
    windows = 0
    for patient in [*patients, *reversed(patients)]:
        reference = fields_of(protocol, patient.answers, screened_on=patient.screened_on)
        found = row_fields(protocol, patient.answers, screened_on=patient.screened_on)
        assert found == reference
        windows += any(r["meets_from"] for r in found["reasons"])
    assert windows > 20


def test_a_rule_wanting_the_measurement_names_it_beside_the_estimate(tmp_path: Path) -> None:
    """Open on another part while its estimate fails: the measured value, asked and unknown,
    would decide the rule too, so it is named (as C-I6a of ctl019 names its measured GFR)."""
    questions = [
        integer("age", unit="years"),
        choice("sex", ["female", "male"]),
        number("creatinine", 0.1, 20, unit="mg/dL"),
        number("weight", 1, 300, unit="kg"),
        number("measured_crcl", 0, 300, unit="mL/min"),
        number("creatinine_x_uln", 0, 100),
    ]
    rule = inclusion("I1", "crcl >= 50 or creatinine_x_uln <= 2", confirm_estimate="measure it")
    protocol = build(tmp_path, dialog(questions, [rule], derived=[CRCL]))
    answers = {"age": 70, "sex": "male", "creatinine": 2.0, "weight": 60}  # estimate 29.2
    screened = date(2026, 1, 15)
    assert check(protocol, answers, screened)  # the whole-row checks gave it
    fields = row_fields(protocol, answers, screened_on=screened)
    assert fields["verdict"] == "unresolved"
    assert [i["variable"] for i in fields["open_items"]] == ["measured_crcl", "creatinine_x_uln"]


def test_what_keeps_a_window_open_on_its_first_day_is_each_rows_own(tmp_path: Path) -> None:
    """The first day a failed window no longer fails is remembered by the values the rule
    read; what keeps it open on that day is not: two rows with the same event date, one
    without its age, one without its creatinine, are each open on their own missing answer
    from that day (never called met), as the reference says."""
    questions = [
        a_date("event"),
        integer("age", unit="years"),
        choice("sex", ["female", "male"]),
        number("creatinine", 0.1, 20, unit="mg/dL"),
        number("measured_gfr", 0, 200, unit="mL/min/1.73 m²"),
    ]
    rule = inclusion("I1", "screening_date >= event + days(10) and gfr >= 60", recoverable="wait")
    protocol = build(tmp_path, dialog(questions, [rule], derived=[GFR]))
    screened = date(2026, 1, 15)
    base = {"event": date(2026, 1, 10), "sex": "male"}
    rows = [
        {**base, "creatinine": 0.9},
        {**base, "age": 40},
        {**base, "age": 40, "creatinine": 0.9},
    ]
    opens = []
    for answers in rows:
        assert check(protocol, answers, screened)  # the whole-row checks gave it
        (reason,) = row_fields(protocol, answers, screened_on=screened)["reasons"]
        assert reason["meets_from"] == date(2026, 1, 20)
        opens.append(reason.get("meets_from_open_on", []))
    assert opens == [["measured_gfr", "age"], ["measured_gfr", "creatinine"], []]
