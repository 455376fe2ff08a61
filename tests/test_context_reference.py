"""The context (which questions are asked, the env the rules read, the estimates) equals the
plain reference below, on every shipped protocol and on a synthetic one with nested
conditions and conditions reading tables (rows reading questions only, a derived value,
the screening date), for answer sets with unknown and unanswered questions; and so does
the part of it a dialog step evaluates (rules/demand.py); and both, made by the engine
from a session's stored answers in one pass (``stored_context``), equal those made from
the typed answers (``typed_values``, then ``context`` or ``part_context``).

The reference is the evaluation as first written: each condition on a fresh env of the
asked questions it reads, the screening date and its tables, each table looked up on the
asked questions its rows read; then the context's env of the asked questions' answers,
the derived values (the measured answer, else the first calculator whose ``when`` holds,
none when an earlier ``when`` is unknown, computed by the formulas written out below
from the published equations) and the tables. Only the rules' conditions are evaluated
by the code under test; the choice of calculator, the formulas and the table look-up are
the reference's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHIPPED
from format2 import a_date, build, choice, dialog, inclusion, integer, number, yes_no
from screen_bot.engine import Engine, stored, stored_context, typed_values
from screen_bot.protocol import Protocol, load
from screen_bot.protocol.schema import Derived
from screen_bot.rules.demand import part_context, whole
from screen_bot.rules.evaluation import (
    Context,
    Used,
    _Condition,
    _plan,
    applicable_questions,
    context,
)
from screen_bot.rules.expressions import SCREENING_DATE
from screen_bot.session import Answer, Session
from test_engine_targeted import mostly_known

PROTOCOLS = {path.stem: load(path) for path in sorted(SHIPPED.glob("*.yaml"))}

GFR = {  # shared with test_stored_checks and test_whole_row
    "name": "gfr",
    "label": "glomerular filtration rate",
    "unit": "mL/min/1.73 m²",
    "measured": "measured_gfr",
    "calculators": [
        {
            "calculator": "ckd_epi_2021",
            "inputs": {"age": "age", "sex": "sex", "serum_creatinine_mg_dl": "creatinine"},
        }
    ],
}
# and, for this file's synthetic protocol, first a calculator chosen by a question the
# next one does not read
GFR_CHOSEN = {
    **GFR,
    "calculators": [
        {
            "when": "pediatric",
            "calculator": "schwartz_bedside",
            "inputs": {"height_cm": "height", "serum_creatinine_mg_dl": "creatinine"},
        },
        *GFR["calculators"],
    ],
}
TABLES = [
    {  # rows reading questions only
        "name": "creatinine_limit",
        "label": "creatinine limit",
        "unit": "mg/dL",
        "rows": [
            {"when": "age < 16 and sex == 'male'", "value": 1.5},
            {"when": "age < 16", "value": 1.4},
            {"when": "age >= 16", "value": 1.2},
        ],
    },
    {  # rows reading a derived value: unknown inside a condition
        "name": "dose_band",
        "label": "dose band",
        "unit": "mg",
        "rows": [{"when": "gfr < 30", "value": 1}, {"when": "age < 40", "value": 2}],
    },
    {  # rows reading the screening date: unknown inside a condition
        "name": "recency",
        "label": "months since diagnosis",
        "unit": "months",
        "rows": [
            {"when": "sex == 'female'", "value": 0},
            {"when": "screening_date < diagnosed + months(6)", "value": 6},
            {"when": "age > 0", "value": 12},
        ],
    },
]
NESTED_QUESTIONS = [
    integer("age", unit="years"),
    choice("sex", ["female", "male"]),
    yes_no("pediatric"),
    number("height", 30, 250, unit="cm"),
    yes_no("pregnant_possible", when="sex == 'female' or age < 16"),
    yes_no("contraception", when="pregnant_possible"),
    yes_no("barrier", when="contraception == False and sex == 'female'"),
    number("creatinine", 0.1, 20, unit="mg/dL"),
    number("measured_gfr", 0, 200, unit="mL/min/1.73 m²", when="creatinine > creatinine_limit"),
    a_date("diagnosed"),
    yes_no("dose_ok", when="dose_band == 2 or barrier"),
    yes_no("recent", when="recency == 6 or (recency == 12 and not barrier)"),
    number("weight", 1, 300, unit="kg", when="not recent and (dose_ok or unknown(dose_ok))"),
]
NESTED_CRITERIA = [
    inclusion("I1", "gfr >= 60 and creatinine <= creatinine_limit"),
    inclusion("I2", "dose_band >= 1 or weight >= 40"),
    inclusion("I3", "recency <= 6 and not barrier"),
]


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory) -> Protocol:
    data = dialog(NESTED_QUESTIONS, NESTED_CRITERIA, derived=[GFR_CHOSEN], tables=TABLES)
    return build(tmp_path_factory.mktemp("nested"), data)


# The calculators, written from the published equations (not taken from calculators.py):
# Cockcroft DW, Gault MH, Nephron 1976;16:31-41; Inker LA et al., N Engl J Med
# 2021;385:1737-49 (CKD-EPI 2021); Schwartz GJ et al., J Am Soc Nephrol 2009;20:629-37.
FORMULAS: dict[str, Callable[..., float]] = {
    "cockcroft_gault": lambda age, sex, weight_kg, serum_creatinine_mg_dl: (
        (140 - age) * weight_kg / (72 * serum_creatinine_mg_dl) * (0.85 if sex == "female" else 1)
    ),
    "ckd_epi_2021": lambda age, sex, serum_creatinine_mg_dl: (
        142
        * min(serum_creatinine_mg_dl / (0.7 if sex == "female" else 0.9), 1)
        ** (-0.241 if sex == "female" else -0.302)
        * max(serum_creatinine_mg_dl / (0.7 if sex == "female" else 0.9), 1) ** -1.200
        * 0.9938**age
        * (1.012 if sex == "female" else 1)
    ),
    "schwartz_bedside": lambda height_cm, serum_creatinine_mg_dl: (
        0.413 * height_cm / serum_creatinine_mg_dl
    ),
}


def _look_up_reference(rows: Any, env: dict[str, Any]) -> float | None:
    """The first row that holds; none when a row before it is unknown."""
    for condition, value in rows:
        holds = condition.evaluate(env)
        if holds is None:
            return None
        if holds:
            return value
    return None


def _derive_reference(
    protocol: Protocol, env: dict[str, Any], derived: Iterable[Derived], tables: Iterable[str]
) -> dict[str, Used]:
    estimated = {}
    for d in derived:
        env[d.name] = env.get(d.measured) if d.measured else None
        if env[d.name] is not None:
            continue
        for estimate in protocol.estimates[d.name]:
            holds = True if estimate.when is None else estimate.when.evaluate(env)
            if holds is False:
                continue
            inputs = {p: env.get(n) for p, n in estimate.use.inputs.items()}
            if holds is True and None not in inputs.values():  # None: no knowing which
                env[d.name] = FORMULAS[estimate.use.calculator](**inputs)
                shown = {n: env[n] for n in estimate.use.inputs.values()}
                estimated[d.name] = Used(estimate.use.calculator, shown)
            break
    for name in tables:
        env[name] = _look_up_reference(protocol.tables[name], env)
    return estimated


def _same_env(found: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal, an estimate to the ninth decimal (the calculators round it there)."""
    assert found.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, float):
            assert found[name] == pytest.approx(value, rel=1e-12, abs=1e-9), name
        else:
            assert found[name] == value, name


def _applicable_reference(
    always: frozenset[str],
    conditional: tuple[_Condition, ...],
    answers: dict[str, Any],
    screened_on: date | None,
    protocol: Protocol,
) -> set[str]:
    applicable = set(always)
    for condition in conditional:
        names = [n for n in condition.names if n in applicable]
        env = {n: answers.get(n) for n in names}
        env[SCREENING_DATE] = screened_on
        for table, rows, _ in condition.tables:
            read = protocol.inputs_of(table)
            env[table] = _look_up_reference(
                rows, {n: answers.get(n) for n in read if n in applicable}
            )
        value = condition.evaluate(env)
        if value is True or (
            value is None
            and any(n in applicable and answers.get(n) is None for n in condition.inputs)
        ):
            applicable.add(condition.variable)
    return applicable


def context_reference(protocol: Protocol, answers: dict[str, Any], screened: date) -> Context:
    plan = _plan(protocol)
    applicable = _applicable_reference(plan.always, plan.conditional, answers, screened, protocol)
    env = {v: x for v, x in answers.items() if v in applicable}
    env[SCREENING_DATE] = screened
    estimated = _derive_reference(protocol, env, protocol.spec.derived, protocol.tables)
    return Context(env, frozenset(applicable), estimated)


_ENGINES: dict[int, Engine] = {}


def _engine(protocol: Protocol) -> Engine:
    if id(protocol) not in _ENGINES:
        _ENGINES[id(protocol)] = Engine(protocol)
    return _ENGINES[id(protocol)]


def check(protocol: Protocol, answers: dict[str, Any], screened: date) -> None:
    expected = context_reference(protocol, answers, screened)
    found = context(protocol, answers, screened)
    assert found.applicable == expected.applicable
    _same_env(found.env, expected.env)
    assert found.estimated == expected.estimated
    assert applicable_questions(protocol, answers, screened) == expected.applicable
    for variable in protocol.order:  # the part a dialog step evaluates
        need = _engine(protocol)._needs[variable]
        given_ = {v: x for v, x in answers.items() if v in need.questions}
        plan = need.always, need.conditions
        applicable = _applicable_reference(*plan, given_, screened, protocol)
        env = {v: x for v, x in given_.items() if v in applicable}
        env[SCREENING_DATE] = screened
        estimated = _derive_reference(protocol, env, need.derived, need.tables)
        part = part_context(protocol, need, given_, screened)
        assert part.applicable == applicable
        _same_env(part.env, env)
        assert part.estimated == estimated
    check_stored(protocol, answers, screened)


def session_of(protocol: Protocol, answers: dict[str, Any], screened: date) -> Session:
    """A session holding ``answers`` as the engine stores them."""
    session = _engine(protocol).start(screened_on=screened)
    at = datetime(2026, 1, 15, tzinfo=UTC)
    session.answers = {v: Answer(value=stored(x), at=at) for v, x in answers.items()}
    return session


def check_stored(protocol: Protocol, answers: dict[str, Any], screened: date) -> None:
    """The contexts the engine makes from stored answers equal the plain ones."""
    session = session_of(protocol, answers, screened)
    values = typed_values(protocol, session)
    assert stored_context(protocol, whole(protocol), session) == context(protocol, values, screened)
    for variable in protocol.order:
        need = _engine(protocol)._needs[variable]
        given_ = {v: x for v, x in values.items() if v in need.questions}
        assert stored_context(protocol, need, session) == part_context(
            protocol, need, given_, screened
        )


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_context_equals_the_reference(name: str, data: st.DataObject) -> None:
    protocol = PROTOCOLS[name]
    check(protocol, *data.draw(mostly_known(protocol)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_nested_conditions_and_tables_equal_the_reference(
    nested: Protocol, data: st.DataObject
) -> None:
    check(nested, *data.draw(mostly_known(nested)))


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_the_whole_demand_is_every_question_derived_value_and_table(name: str) -> None:
    protocol = PROTOCOLS[name]
    everything = whole(protocol)
    plan = _plan(protocol)
    assert everything.always == plan.always
    assert everything.conditions == plan.conditional
    assert everything.questions == set(protocol.order)
    assert everything.derived == tuple(protocol.spec.derived)
    assert everything.tables == tuple(protocol.tables)


def test_stored_answers_typed_as_the_rules_read_them(nested: Protocol) -> None:
    # a date, a date kept as text, an unknown: the stored forms stored_context types
    answers = {"age": 30, "sex": "female", "diagnosed": date(2025, 12, 15), "creatinine": None}
    check_stored(nested, answers, date(2026, 1, 15))


def test_the_synthetic_protocol_covers_every_kind_of_condition(nested: Protocol) -> None:
    conditions = {c.variable: c for c in _plan(nested).conditional}
    read = {t: rows for c in conditions.values() for t, _, rows in c.tables}
    assert read["creatinine_limit"] is None  # looked up on the running env
    assert read["dose_band"] is not None and read["recency"] is not None  # on questions only
    assert "barrier" in conditions and "contraception" in conditions["barrier"].inputs


def test_a_table_reading_the_date_is_unknown_inside_a_condition(nested: Protocol) -> None:
    # a man of 30 diagnosed a month ago: `recency` is 6 for the rules, unknown for `recent`'s
    # condition, which reads no question left unknown: so `recent` is not asked
    screened = date(2026, 1, 15)
    answers = {"age": 30, "sex": "male", "creatinine": 1.0, "diagnosed": date(2025, 12, 15)}
    found = context(nested, answers, screened)
    assert found.env["recency"] == 6
    assert "recent" not in found.applicable
    assert found.applicable == context_reference(nested, answers, screened).applicable
