"""The compiled SQL against the Python engine on generated patients, row by row.

Per protocol (blina-dli and the ctl019-rr-ball draft) 100,000 patients from
``population.py`` are screened by ``verdict.build`` and by the query, on DuckDB and on a
real PostgreSQL (a throwaway cluster; skipped with the reason when no server binaries can
be had). Every row must give the same verdict, failed ids, open items (variable, kind and
the criteria each keeps open, in order) and "met from" of each failed time-based criterion.
The ANSI text runs on both engines too, on the first 10,000 patients.

A generated protocol of every window shape (the window on the clock's side or on the
event's, in days, weeks and months, counted from the screening date and from an anchor)
is held equal the same way on both engines, and so are drawn rules of that kind (DuckDB).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from patients import ELIGIBLE, SCREENED_ON
from population import Patient, Population
from screen_bot.batch import record_row
from screen_bot.protocol import DialogFileError, Protocol, load
from screen_bot.rules.sql import Query, compile_protocol, input_columns
from screen_bot.rules.sql_expressions import Dialect
from screen_bot.verdict import build
from stores import new_database
from test_ctl019_boundaries import A as CTL019_A
from test_ctl019_boundaries import D as CTL019_DAY

DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"
PROTOCOLS = {
    "blina-dli": DIALOGS / "blina-dli.yaml",
    "ctl019-rr-ball": DIALOGS / "ctl019-rr-ball.yaml",
}
SIZE = int(os.environ.get("SCREEN_BOT_SQL_AGREEMENT_SIZE", "100000"))
ANSI_SIZE = min(SIZE, 10_000)

# verdict, failed ids, open items (variable, kind, criteria), met-from per failed criterion,
# the failures that may pass later (criterion, how), the warnings' variables, and the
# estimates used (name: value as shown)
Expected = tuple[
    str,
    tuple[str, ...],
    tuple[tuple[str, str, tuple[str, ...]], ...],
    dict,
    tuple[tuple[str, str], ...],
    tuple[str, ...],
    dict[str, float],
]


@dataclass(frozen=True)
class Sample:
    protocol: Protocol
    patients: list[Patient]
    expected: list[Expected]


def _expected(protocol: Protocol, patient: Patient) -> Expected:
    v = build(protocol, patient.answers, referral=patient.referral, screened_on=patient.screened_on)
    items = tuple((i.variable, i.kind, tuple(i.criteria)) for i in v.open_items)
    waits = {
        r.criterion: (r.meets_from, r.meets_from_anchor, r.window_closed)
        for r in v.reasons
        if r.meets_from or r.meets_from_anchor or r.window_closed
    }
    recoverable = tuple((r.criterion, r.recoverable) for r in v.reasons if r.recoverable)
    warnings = tuple(w.variable for w in v.warnings)
    estimates = {e.name: e.value for e in v.estimates}
    return (
        v.verdict,
        tuple(r.criterion for r in v.reasons),
        items,
        waits,
        recoverable,
        warnings,
        estimates,
    )


def _chunk(path: Path, seed: int, count: int) -> tuple[list[Patient], list[Expected]]:
    protocol = load(path)
    patients = list(Population(protocol, seed).patients(count, first=seed * 1_000_000))
    return patients, [_expected(protocol, p) for p in patients]


@pytest.fixture(scope="module", params=list(PROTOCOLS))
def sample(request: pytest.FixtureRequest) -> Sample:
    """The patients and the Python engine's results, made on two processes (two cores)."""
    path = PROTOCOLS[request.param]
    halves = [SIZE // 2, SIZE - SIZE // 2]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(_chunk, [path, path], [15, 16], halves))
    patients = [p for part in parts for p in part[0]]
    expected = [e for part in parts for e in part[1]]
    return Sample(load(path), patients, expected)


@pytest.fixture(scope="module")
def postgres(postgres_server: str) -> str:
    """A database of its own on the test worker's PostgreSQL cluster (conftest.py)."""
    return new_database(postgres_server)


# -- loading the patients ----------------------------------------------------------------------


def _cell(protocol: Protocol, key: str, value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    question = protocol.questions.get(key)
    if question is not None and question.type == "date_or_none" and isinstance(value, date):
        return value.isoformat()
    return value


def _rows(sample: Sample, columns: Sequence[str], count: int) -> Iterator[list[Any]]:
    for patient in sample.patients[:count]:
        fixed = {"referral": patient.referral, "screened_on": patient.screened_on}
        yield [
            _cell(sample.protocol, k, fixed[k] if k in fixed else patient.answers.get(k))
            for k in columns
        ]


def _duckdb(sample: Sample, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    columns = input_columns(sample.protocol, "duckdb")
    path = tmp_path / "patients.jsonl"
    with path.open("w") as out:
        for row in _rows(sample, list(columns), SIZE):
            record = {k: v for k, v in zip(columns, row, strict=True) if v is not None}
            out.write(json.dumps(record, default=str) + "\n")
    connection = duckdb.connect()
    spec = "{" + ", ".join(f"'{k}': '{t}'" for k, t in columns.items()) + "}"
    connection.execute(
        "CREATE TABLE answers AS SELECT * FROM "
        f"read_json('{path}', format = 'newline_delimited', columns = {spec})"
    )
    return connection


def _postgres(sample: Sample, dsn: str, count: int) -> Any:
    import psycopg

    columns = input_columns(sample.protocol, "postgres")
    connection = psycopg.connect(dsn, autocommit=True)
    connection.execute("DROP TABLE IF EXISTS answers")
    connection.execute(
        "CREATE TABLE answers (" + ", ".join(f'"{k}" {t}' for k, t in columns.items()) + ")"
    )
    names = ", ".join(f'"{k}"' for k in columns)
    with connection.cursor().copy(f"COPY answers ({names}) FROM STDIN") as copy:
        for row in _rows(sample, list(columns), count):
            copy.write_row(row)
    return connection


# -- comparing ---------------------------------------------------------------------------------


def _from_sql(query: Query, names: list[str], values: tuple[Any, ...]) -> Expected:
    row = dict(zip(names, values, strict=True))
    items: dict[tuple[str, str], list[str]] = {}
    for token in row["open"].split():
        criterion, variable, kind = token.split(":")
        items.setdefault((variable, kind), []).append(criterion)
    failed = tuple(row["failed"].split())
    waits = {}
    for t in query.timed:
        meets, closed = row[t.meets_from], row[t.window_closed]
        anchor = row[t.anchor] if t.anchor else None
        if t.criterion in failed and (meets or anchor or closed):
            waits[t.criterion] = (meets, anchor, closed)
        assert t.criterion in failed or (meets, anchor, closed) in ((None, None, False),)
    open_items = tuple((v, k, tuple(c)) for (v, k), c in items.items())
    recoverable = tuple(tuple(token.split(":")) for token in row["recoverable"].split())
    estimates = {
        name: row[column] for name, column in query.estimates.items() if row[column] is not None
    }
    return (
        row["verdict"],
        failed,
        open_items,
        waits,
        recoverable,  # type: ignore[return-value]
        tuple(row["warnings"].split()),
        estimates,
    )


def _agree(sample: Sample, query: Query, names: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Each result row (found by its referral: SQL keeps no order) equals Python's."""
    assert rows
    referral = names.index("referral")
    by_referral = {values[referral]: values for values in rows}
    assert len(by_referral) == len(rows)
    wrong = []
    for patient, expected in zip(sample.patients[: len(rows)], sample.expected, strict=False):
        got = _from_sql(query, names, by_referral[patient.referral])
        if got != expected:
            wrong.append(f"{patient}\n  python: {expected}\n  sql:    {got}")
    assert not wrong, f"{len(wrong)} of {len(rows)} rows differ; the first:\n" + "\n".join(
        wrong[:3]
    )


def _covered(sample: Sample) -> None:
    """The sample reaches every verdict, open-item kind and met-from outcome."""
    verdicts = {e[0] for e in sample.expected}
    kinds = {item[1] for e in sample.expected for item in e[2]}
    waits = [w for e in sample.expected for w in e[3].values()]
    assert verdicts == {"eligible", "not_eligible", "unresolved"}
    assert {"missing", "confirm"} <= kinds
    assert any(w[0] is not None for w in waits)
    # blina-dli's windows all open by waiting; ctl019's CD19 sample window closes
    assert any(w[2] for w in waits) == (sample.protocol.id == "ctl019-rr-ball")
    assert any(w[1] for w in waits) == bool(sample.protocol.spec.anchors)
    # what a verdict says beside its ids: may pass later (both ways), warnings, estimates
    assert {how for e in sample.expected for _, how in e[4]} == {"retest", "wait"}
    assert any(e[5] for e in sample.expected)
    assert any(e[6] for e in sample.expected)


def _run(connection: Any, query: Query) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = connection.execute(query.text)
    names = [d[0] for d in cursor.description]
    return names, cursor.fetchall()


def test_duckdb_agrees_with_the_python_engine(sample: Sample, tmp_path: Path) -> None:
    assert len(sample.patients) == SIZE
    _covered(sample)
    connection = _duckdb(sample, tmp_path)
    query = compile_protocol(sample.protocol, "duckdb")
    names, rows = _run(connection, query)
    assert len(rows) == SIZE
    _agree(sample, query, names, rows)


def test_postgres_agrees_with_the_python_engine(sample: Sample, postgres: str) -> None:
    with _postgres(sample, postgres, SIZE) as connection:
        query = compile_protocol(sample.protocol, "postgres")
        names, rows = _run(connection, query)
    assert len(rows) == SIZE
    _agree(sample, query, names, rows)


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_the_ansi_text_agrees_on_both_engines(
    sample: Sample, engine: Dialect, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    query = compile_protocol(sample.protocol, "ansi")
    if engine == "duckdb":
        connection = _duckdb(sample, tmp_path)
        connection.execute(f"DELETE FROM answers WHERE rowid >= {ANSI_SIZE}")
        names, rows = _run(connection, query)
    else:
        with _postgres(sample, request.getfixturevalue("postgres"), ANSI_SIZE) as connection:
            names, rows = _run(connection, query)
    assert len(rows) == ANSI_SIZE
    _agree(sample, query, names, rows)


# -- values the Python engine refuses ----------------------------------------------------------


def _dirty_values(protocol: Protocol, day: date) -> list[tuple[str, Any]]:
    """Per answer column, values at the edges of what ``answers.check_value`` accepts and
    past them, as a typed table holds them: out of range, NaN and infinities, a choice in
    another case or with a space, a date after the screening date or before 1900, and the
    texts of a ``date_or_none`` (Python strips them and reads 'None' as none)."""
    found: list[tuple[str, Any]] = []
    for q in protocol.spec.questions:
        v = q.variable
        if q.type in ("int", "number"):
            assert q.min is not None and q.max is not None
            if q.type == "int":
                low, high = int(q.min), int(q.max)
                found += [(v, x) for x in (low, high, low - 1, high + 1)]
            else:
                found += [(v, x) for x in (q.min, q.max, q.min - 0.5, q.max + 0.5)]
                found += [(v, x) for x in (math.nan, math.inf, -math.inf)]
        elif q.type == "choice":
            first = (q.choices or [])[0]
            odd = [first.upper(), first + " ", " " + first, "not one of them"]
            odd = [o for o in odd if o not in (q.choices or [])]
            if q.multiple:
                found += [(v, [first]), (v, []), (v, [first, None])] + [(v, [o]) for o in odd]
            else:
                found += [(v, first)] + [(v, o) for o in odd]
        elif q.type == "date":
            edges = (day, day + timedelta(1), day - timedelta(1), date(1899, 12, 31))
            found += [(v, x) for x in (*edges, date(1900, 1, 1))]
        elif q.type == "date_or_none":
            texts = ["none", "None", " NONE ", "never", "", "garbage", "2026-1-05", "0000-01-01"]
            texts += ["2025-02-29", "2024-02-29", "2025-13-01", "1899-12-31", "1900-01-01"]
            texts += ["2025/12/01", "20251201", "2025-12-01 (BC)", "10000-01-01"]
            texts += [day.isoformat(), f" {day.isoformat()} ", (day + timedelta(1)).isoformat()]
            found += [(v, t) for t in texts]
    return found


def _dirty_patients(protocol: Protocol) -> list[dict[str, Any]]:
    """The protocol's eligible answer set with one value changed each, as table rows."""
    if protocol.id == "blina-dli":
        base, day = dict(ELIGIBLE), SCREENED_ON
    else:
        base, day = {k: v for k, v in CTL019_A.items() if v is not None}, CTL019_DAY
    assert build(protocol, base, screened_on=day).verdict == "eligible"
    rows = []
    for n, (variable, value) in enumerate(_dirty_values(protocol, day), start=1):
        row = {k: _cell(protocol, k, v) for k, v in base.items()}
        rows.append({**row, variable: value, "referral": f"R-{n}", "screened_on": day})
    return rows


def _by_python(protocol: Protocol, row: dict[str, Any]) -> tuple[str | None, Expected | None]:
    """The variables a JSON batch row of these values is refused for (batch.record_row),
    or the verdict the Python engine gives it."""
    as_json = {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
    typed = record_row(1, as_json, protocol, row["screened_on"])
    if typed.errors:
        return " ".join(sorted({e.split(":")[0] for e in typed.errors})), None
    patient = Patient(typed.screened_on, typed.answers, typed.referral or "")
    return None, _expected(protocol, patient)


def _dirty_agree(protocol: Protocol, query: Query, rows: list[dict[str, Any]], got: Any) -> None:
    names, results = got
    by_referral = {r[names.index("referral")]: dict(zip(names, r, strict=True)) for r in results}
    assert len(by_referral) == len(rows)
    wrong, refused = [], 0
    for row in rows:
        out = by_referral[row["referral"]]
        invalid, expected = _by_python(protocol, row)
        if invalid is not None:
            refused += 1
            given = {k: out[k] for k in names if k not in ("referral", "screened_on", "invalid")}
            if out["invalid"] != invalid or any(v is not None for v in given.values()):
                wrong.append(f"{row['referral']} refused for {invalid}: {out}")
        elif out["invalid"] is not None or _from_sql(query, names, tuple(out.values())) != expected:
            wrong.append(f"{row['referral']} accepted, {expected}: {out}")
    assert refused and refused < len(rows)
    assert not wrong, f"{len(wrong)} of {len(rows)} rows differ:\n" + "\n".join(wrong[:5])


def _insert(
    connection: Any, columns: dict[str, str], rows: list[dict[str, Any]], mark: str
) -> None:
    connection.execute(
        "CREATE TABLE answers (" + ", ".join(f'"{k}" {t}' for k, t in columns.items()) + ")"
    )
    marks = ", ".join([mark] * len(columns))
    connection.cursor().executemany(
        f"INSERT INTO answers VALUES ({marks})", [[r.get(k) for k in columns] for r in rows]
    )


def _agree_on_duckdb_and_postgres(
    protocol: Protocol, rows: list[dict[str, Any]], expected: dict[str, Any], postgres: str
) -> None:
    """The query gives ``expected`` (by referral, as :func:`_from_sql` reads a row) for
    ``rows`` on DuckDB (its dialect and ANSI) and on the PostgreSQL database ``postgres``
    (its dialect and ANSI)."""
    import psycopg

    def agree(connection: Any, dialect: Dialect) -> None:
        query = compile_protocol(protocol, dialect)
        names, results = _run(connection, query)
        got = {r[names.index("referral")]: _from_sql(query, names, r) for r in results}
        assert got == expected, dialect

    connection = duckdb.connect()
    _insert(connection, input_columns(protocol, "duckdb"), rows, "?")
    for dialect in ("duckdb", "ansi"):
        agree(connection, dialect)
    with psycopg.connect(postgres, autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS answers")
        _insert(pg, input_columns(protocol, "postgres"), rows, "%s")
        for dialect in ("postgres", "ansi"):
            agree(pg, dialect)


@pytest.mark.parametrize("path", list(PROTOCOLS.values()), ids=list(PROTOCOLS))
def test_duckdb_gives_no_verdict_where_the_python_engine_refuses_a_value(path: Path) -> None:
    """README: "The query gives, per row, what the Python engine gives". A value Python
    refuses ('Female', NaN, 200 years, a future date) gets no verdict and is named in
    ``invalid``; the accepted edges ('None', 1900-01-01, min and max) keep their verdict;
    no cell stops the query (a CAST of 'None' to DATE did)."""
    protocol = load(path)
    rows = _dirty_patients(protocol)
    connection = duckdb.connect()
    _insert(connection, input_columns(protocol, "duckdb"), rows, "?")
    for dialect in ("duckdb", "ansi"):
        query = compile_protocol(protocol, dialect)  # type: ignore[arg-type]
        _dirty_agree(protocol, query, rows, _run(connection, query))


def test_a_fraction_in_a_whole_number_column_gets_no_verdict() -> None:
    """README: an int question's column is 'BIGINT (any integer type)'; given a DOUBLE
    column, an age of 17.5 or 18.5 (Python: 'Please type a whole number') is refused."""
    protocol = load(PROTOCOLS["blina-dli"])
    base = {k: _cell(protocol, k, v) for k, v in ELIGIBLE.items()}
    rows = [
        {**base, "age": age, "referral": f"R-{n}", "screened_on": SCREENED_ON}
        for n, age in enumerate((17.5, 18.5, 40.0), start=1)
    ]
    assert [_by_python(protocol, r)[0] for r in rows] == ["age", "age", None]
    connection = duckdb.connect()
    _insert(connection, {**input_columns(protocol, "duckdb"), "age": "DOUBLE"}, rows, "?")
    for dialect in ("duckdb", "ansi"):
        query = compile_protocol(protocol, dialect)  # type: ignore[arg-type]
        _dirty_agree(protocol, query, rows, _run(connection, query))


@pytest.mark.parametrize("path", list(PROTOCOLS.values()), ids=list(PROTOCOLS))
def test_postgres_gives_no_verdict_where_the_python_engine_refuses_a_value(
    path: Path, postgres: str
) -> None:
    import psycopg

    protocol = load(path)
    rows = _dirty_patients(protocol)
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS answers")
        _insert(connection, input_columns(protocol, "postgres"), rows, "%s")
        for dialect in ("postgres", "ansi"):
            query = compile_protocol(protocol, dialect)  # type: ignore[arg-type]
            _dirty_agree(protocol, query, rows, _run(connection, query))


MULTI_SELECT_EVERYWHERE = """\
id: multi-select-everywhere
title: A multi-select read by a condition and by each membership test
version: "1"
questions:
  - {variable: drugs, type: choice, multiple: true, choices: [metformin, insulin, sglt2i],
     text: Diabetes drugs now?}
  - {variable: hba1c, type: number, min: 3, max: 20, unit: "%", when: "'insulin' not in drugs",
     text: HbA1c?}
criteria:
  - {id: I1, kind: inclusion, label: on metformin, source: On metformin.,
     met_when: "'metformin' in drugs"}
  - {id: I2, kind: inclusion, label: treated or controlled, source: "Insulin or an SGLT2i, or
     HbA1c below 9.", met_when: "any_of(drugs, 'insulin', 'sglt2i') or hba1c < 9"}
  - {id: E1, kind: exclusion, label: metformin alone, source: "Metformin without insulin or
     an SGLT2i.", applies_when: "'metformin' in drugs and none_of(drugs, 'insulin', 'sglt2i')"}
  - {id: E2, kind: exclusion, label: uncontrolled, source: HbA1c over 10 without insulin or
     an SGLT2i., applies_when: "'insulin' not in drugs and 'sglt2i' not in drugs and hba1c > 10"}
"""


def _multi_select_rows(protocol: Protocol, base: dict[str, Any], day: date) -> list[dict[str, Any]]:
    """``base`` with each multi-select answered each set of its choices (none of them
    included), unknown, and not as Python takes it (a NULL item, a choice in another case)."""
    rows = []
    for q in protocol.spec.questions:
        if not (q.type == "choice" and q.multiple):
            continue
        choices = q.choices or []
        sets = [
            [c for n, c in enumerate(choices) if mask >> n & 1] for mask in range(1 << len(choices))
        ]
        for value in [*sets, None, [choices[0], None], [choices[0].upper()]]:
            rows.append({**base, q.variable: value})
    return [
        {**row, "referral": f"R-{n}", "screened_on": day} for n, row in enumerate(rows, start=1)
    ]


def _agree_on_postgres_with_array_type(
    protocol: Protocol, rows: list[dict[str, Any]], array_type: str, postgres: str
) -> None:
    """The query (postgres dialect and ANSI) on a table whose multi-select columns are of
    ``array_type`` gives each row what the Python engine gives it."""
    import psycopg

    columns = input_columns(protocol, "postgres")
    for q in protocol.spec.questions:
        if q.type == "choice" and q.multiple:
            columns[q.variable] = array_type
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS answers")
        _insert(connection, columns, rows, "%s")
        for dialect in ("postgres", "ansi"):
            query = compile_protocol(protocol, dialect)  # type: ignore[arg-type]
            _dirty_agree(protocol, query, rows, _run(connection, query))


@pytest.mark.parametrize("array_type", ["VARCHAR[]", "text[]"])
def test_ctl019_on_postgres_reads_a_multi_select_column_of_either_array_type(
    array_type: str, postgres: str
) -> None:
    """README: a multi-select's PostgreSQL column is "VARCHAR[] / text[]". With text[] the
    postgres-dialect query of ctl019-rr-ball stopped: "operator does not exist: text[] <@
    character varying[]" (the check that every item is a choice)."""
    protocol = load(PROTOCOLS["ctl019-rr-ball"])
    base = {k: _cell(protocol, k, v) for k, v in CTL019_A.items() if v is not None}
    rows = _multi_select_rows(protocol, base, CTL019_DAY)
    rows += [{**r, "referral": f"D-{r['referral']}"} for r in _dirty_patients(protocol)]
    _agree_on_postgres_with_array_type(protocol, rows, array_type, postgres)


@pytest.mark.parametrize("array_type", ["VARCHAR[]", "text[]"])
def test_a_multi_select_read_by_a_condition_and_each_membership_test_agrees_on_postgres(
    array_type: str, postgres: str, tmp_path: Path
) -> None:
    """Every array operation the query does on a multi-select (``in``, ``not in``,
    ``any_of``, ``none_of``, in a rule and in a question's condition, on an empty list and
    an unknown one) runs on either column type and agrees with the Python engine."""
    path = tmp_path / "multi-select-everywhere.yaml"
    path.write_text(MULTI_SELECT_EVERYWHERE)
    protocol = load(path)
    rows = [
        {**row, "hba1c": hba1c, "referral": f"{row['referral']}-{hba1c}"}
        for row in _multi_select_rows(protocol, {}, SCREENED_ON)
        for hba1c in (None, 8.0, 9.5, 11.0)
    ]
    verdicts = {e[0] for r in rows if (e := _by_python(protocol, r)[1])}
    assert verdicts == {"eligible", "not_eligible", "unresolved"}
    _agree_on_postgres_with_array_type(protocol, rows, array_type, postgres)


LAST_DECEMBER = date(9999, 12, 1)
# (protocol, changes to its eligible answers with the screening date LAST_DECEMBER): the
# first passing day of each is the calendar's last day, the day before it, or after it
CALENDAR_END = [
    ("blina-dli", {"transplant_date": date(9999, 10, 31)}),  # I4a from 9999-12-31
    ("blina-dli", {"transplant_date": date(9999, 10, 30)}),  # I4a from 9999-12-30
    ("blina-dli", {"transplant_date": date(9999, 11, 15)}),  # I4a from 10000-01-15: none
    ("blina-dli", {"last_major_surgery_date": "9999-11-19"}),  # E10 from 9999-12-31
    ("blina-dli", {"last_mi_date": "9998-12-31"}),  # E3d from 9999-12-31
    ("blina-dli", {"last_mi_date": "9999-06-01"}),  # E3d from 10000-06-01: none
    ("ctl019-rr-ball", {"transplant_date": date(9999, 6, 30)}),  # C-I1b from 9999-12-30
    ("ctl019-rr-ball", {"last_dli_date": "9999-11-19"}),  # C-E11 from 9999-12-31
    ("ctl019-rr-ball", {"last_imp_date": "9999-12-01"}),  # C-E12 from 9999-12-31
]


def _calendar_end_rows(protocol: Protocol) -> list[dict[str, Any]]:
    if protocol.id == "blina-dli":
        base = dict(ELIGIBLE)
    else:
        base = {k: v for k, v in CTL019_A.items() if v is not None}
        base |= {"transplant_date": date(9999, 1, 1), "planned_infusion_date": LAST_DECEMBER}
        base |= {"cd19_flow_date": date(9999, 11, 21)}
    return [
        {k: _cell(protocol, k, v) for k, v in {**base, **changes}.items()}
        | {"referral": f"R-{n}", "screened_on": LAST_DECEMBER}
        for n, (protocol_id, changes) in enumerate(CALENDAR_END, start=1)
        if protocol_id == protocol.id
    ]


@pytest.mark.parametrize("path", list(PROTOCOLS.values()), ids=list(PROTOCOLS))
def test_a_first_passing_day_on_the_calendars_last_day_is_found_on_every_engine(
    path: Path, postgres: str
) -> None:
    """The query took 9999-12-31 for "no day found" and dropped it as such: a failed
    window that opens on that day was "will not pass later" on every SQL path."""
    protocol = load(path)
    rows = _calendar_end_rows(protocol)
    expected = {r["referral"]: _by_python(protocol, r)[1] for r in rows}
    days = {day for e in expected.values() if e for day, *_ in e[3].values()}
    assert date(9999, 12, 31) in days  # the edge is reached
    _agree_on_duckdb_and_postgres(protocol, rows, expected, postgres)


ESTIMATED_ONLY = """\
id: estimated-only
title: Derived values with no measured question
version: "1"
questions:
  - {variable: age, type: int, min: 0, max: 120, unit: years, text: Age?}
  - {variable: sex, type: choice, choices: [female, male], text: Sex?}
  - {variable: weight_kg, type: number, min: 20, max: 300, unit: kg, text: Weight?}
  - {variable: height_cm, type: number, min: 40, max: 250, unit: cm, text: Height?}
  - {variable: serum_creatinine_mg_dl, type: number, min: 0.05, max: 30, unit: mg/dL,
     text: Serum creatinine?}
derived:
  - {name: bmi, label: body-mass index, unit: kg/m², calculator: bmi,
     inputs: {weight_kg: weight_kg, height_cm: height_cm}}
  - name: gfr
    label: glomerular filtration rate
    unit: mL/min/1.73 m²
    calculators:
      - when: age < 18
        calculator: schwartz_bedside
        inputs: {height_cm: height_cm, serum_creatinine_mg_dl: serum_creatinine_mg_dl}
      - calculator: ckd_epi_2021
        inputs: {age: age, sex: sex, serum_creatinine_mg_dl: serum_creatinine_mg_dl}
criteria:
  - {id: I1, kind: inclusion, label: BMI 30+, source: BMI 30 or more., met_when: bmi >= 30}
  - {id: E1, kind: exclusion, label: GFR < 60, source: GFR below 60., applies_when: gfr < 60,
     confirm_estimate: measure the GFR}
"""


def test_a_derived_value_without_a_measured_question_compiles_to_sql_that_agrees(
    tmp_path: Path, postgres_server: str
) -> None:
    """README: `measured` is optional. A derived value with none, a single calculator or an
    unconditional last one, was written `(CASE ELSE <formula> END)`, which no engine parses."""

    path = tmp_path / "estimated-only.yaml"
    path.write_text(ESTIMATED_ONLY)
    protocol = load(path)
    rows = [
        {"referral": f"R-{n}", "screened_on": SCREENED_ON, "age": age, "sex": sex,
         "weight_kg": weight, "height_cm": height, "serum_creatinine_mg_dl": creatinine}
        for n, (age, sex, weight, height, creatinine) in enumerate(
            (age, sex, weight, height, creatinine)
            for age in (None, 12, 40)
            for sex in ("female", "male")
            for weight in (None, 119.6, 120.0)  # BMI 29.9 and exactly 30 at 200 cm
            for height in (None, 200.0)
            for creatinine in (None, 0.6, 2.5)
        )
    ]  # fmt: skip
    expected = {}
    for row in rows:
        answers = {
            k: v for k, v in row.items() if k not in ("referral", "screened_on") and v is not None
        }
        patient = Patient(SCREENED_ON, answers, row["referral"])
        expected[row["referral"]] = _expected(protocol, patient)
    assert {e[0] for e in expected.values()} == {"eligible", "not_eligible", "unresolved"}
    assert any(item[1] == "confirm" for e in expected.values() for item in e[2])
    # an estimate the verdict used, in some rows (bmi and gfr have no measured question)
    assert {e[6].get("gfr") is not None for e in expected.values()} == {True, False}

    for dialect in ("duckdb", "postgres", "ansi"):
        assert "CASE ELSE" not in compile_protocol(protocol, dialect).text
    _agree_on_duckdb_and_postgres(protocol, rows, expected, new_database(postgres_server))


# -- windows on either side of a comparison ----------------------------------------------------

WINDOW_AMOUNTS = {"days": 42, "weeks": 8, "months": 6, "years": 2}
WINDOW_RULES = [
    "planned < screening_date + weeks(8)",  # a window on one clock's side, the other clock
    "planned - weeks(8) < screening_date",
    "screening_date + days(3) <= planned - weeks(1)",  # windows on both sides, both clocks
    "planned - months(1) - days(3) >= transplant_date",  # two windows on the clock's side
    "transplant_date + months(2) <= planned - days(10) < transplant_date + months(12)",
    "in_remission or screening_date - days(30) >= sample_date",  # one route of an or
    "not (screening_date - weeks(2) < surgery_date)",
    "screening_date - days(0) >= sample_date + days(1)",
]


def _window_rules() -> list[str]:
    """Every comparison of a clock (the screening date; the anchor ``planned``) with an
    event, the window on the clock's side and on the event's, in days, weeks, months and
    years (months and years from the screening date are refused: README), with each
    operator."""
    rules = []
    for clock, event in (("screening_date", "surgery_date"), ("planned", "transplant_date")):
        for unit, amount in WINDOW_AMOUNTS.items():
            for op in ("<", "<=", ">", ">="):
                if not (clock == "screening_date" and unit in ("months", "years")):
                    rules.append(f"{clock} - {unit}({amount}) {op} {event}")
                rules.append(f"{clock} {op} {event} + {unit}({amount})")
    return rules + WINDOW_RULES


def _window_protocol(directory: Path, rules: Sequence[str] | None = None) -> Protocol:
    """A protocol of ``rules`` (every window shape when None), inclusions and exclusions in
    turn, with the date questions they read and the anchor ``planned``."""
    questions: list[dict[str, Any]] = [
        {"variable": "surgery_date", "type": "date_or_none"},
        {"variable": "transplant_date", "type": "date"},
        {"variable": "sample_date", "type": "date"},
        {"variable": "planned", "type": "date", "future": True},
        {"variable": "in_remission", "type": "yes_no"},
    ]
    criteria = [
        {
            "id": f"C{n}",
            "kind": "exclusion" if n % 2 else "inclusion",
            "label": f"window {n}",
            "source": rule,
            "applies_when" if n % 2 else "met_when": rule,
        }
        for n, rule in enumerate(_window_rules() if rules is None else rules)
    ]
    read = set(re.findall(r"\w+", " ".join(c["source"] for c in criteria)))
    text = {
        "id": "windows",
        "title": "Windows on either side",
        "version": "1",
        "anchors": ["planned"] if "planned" in read else [],
        "questions": [
            {**q, "text": f"{q['variable']}?"} for q in questions if q["variable"] in read
        ],
        "criteria": criteria,
    }
    path = directory / "windows.yaml"
    path.write_text(json.dumps(text))  # JSON is YAML
    return load(path)


@pytest.fixture(scope="module")
def window_sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    protocol = _window_protocol(tmp_path_factory.mktemp("windows"))
    patients = list(Population(protocol, seed=11).patients(min(SIZE, 6_000)))
    return Sample(protocol, patients, [_expected(protocol, p) for p in patients])


def test_the_window_sample_reaches_every_window(window_sample: Sample) -> None:
    """Each rule fails with a "met from" day or a closed window, and a window on the clock's
    side is met from a day, counted from the screening date and from the anchor, in each
    unit."""
    waits: dict[str, list[tuple[Any, ...]]] = {}
    for expected in window_sample.expected:
        for criterion, wait in expected[3].items():
            waits.setdefault(criterion, []).append(wait)
    met_from = set()
    for n, rule in enumerate(_window_rules()):
        found = waits.get(f"C{n}", [])
        assert any(w[0] is not None or w[2] for w in found), rule
        clock_side = re.match(r"(\w+) - (\w+)\(", rule)  # 'planned - weeks(8) < …'
        if clock_side and any(w[0] is not None for w in found):
            met_from.add(clock_side.groups())
    clocks = [(c, u) for c in ("screening_date", "planned") for u in ("days", "weeks")]
    assert met_from >= {*clocks, ("planned", "months"), ("planned", "years")}


@pytest.mark.parametrize("dialect", ["duckdb", "ansi"])
def test_windows_on_either_side_agree_on_duckdb(
    window_sample: Sample, dialect: Dialect, tmp_path: Path
) -> None:
    """README: days and weeks "may stand on either side (they meet the same days)", and
    the query "gives, per row, what the Python engine gives". The query tried only the
    dates on the other side as the clock: ``screening_date - days(42) < surgery_date``
    had no "met from" and ``planned < screening_date + weeks(8)`` the wrong one."""
    connection = _duckdb(window_sample, tmp_path)
    query = compile_protocol(window_sample.protocol, dialect)
    names, rows = _run(connection, query)
    assert len(rows) == len(window_sample.patients)
    _agree(window_sample, query, names, rows)


@pytest.mark.parametrize("dialect", ["postgres", "ansi"])
def test_windows_on_either_side_agree_on_postgres(
    window_sample: Sample, dialect: Dialect, postgres: str
) -> None:
    with _postgres(window_sample, postgres, len(window_sample.patients)) as connection:
        query = compile_protocol(window_sample.protocol, dialect)
        names, rows = _run(connection, query)
    assert len(rows) == len(window_sample.patients)
    _agree(window_sample, query, names, rows)


_UNITS = {"days": 400, "weeks": 60, "months": 24, "years": 3}


@st.composite
def _window_rule(draw: st.DrawFn) -> str:
    """A comparison of a clock with a date, each side with up to two windows (none in
    months or years on the screening date's side: README refuses them), in either order,
    alone, inside an ``or`` or negated."""
    clock = draw(st.sampled_from(["screening_date", "planned"]))
    other = draw(st.sampled_from(["surgery_date", "transplant_date", "screening_date"]))
    if other == clock:
        other = "transplant_date"

    def windowed(name: str) -> str:
        units = ["days", "weeks"] if name == "screening_date" else list(_UNITS)
        text = name
        for _ in range(draw(st.integers(0, 2))):
            unit = draw(st.sampled_from(units))
            sign = draw(st.sampled_from("+-"))
            text += f" {sign} {unit}({draw(st.integers(1, _UNITS[unit]))})"
        return text

    sides = [windowed(clock), windowed(other)]
    if draw(st.booleans()):
        sides.reverse()
    rule = f"{sides[0]} {draw(st.sampled_from(['<', '<=', '>', '>=', '==', '!=']))} {sides[1]}"
    return draw(st.sampled_from([rule, f"in_remission or {rule}", f"not ({rule})"]))


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.lists(_window_rule(), min_size=1, max_size=4), seed=st.integers(0, 1000))
def test_any_window_rule_agrees_on_duckdb(rules: list[str], seed: int) -> None:
    """Drawn rules on generated patients: the query (DuckDB and ANSI) gives each row's
    verdict, failed ids, open items and "met from" as the Python engine does."""
    with tempfile.TemporaryDirectory() as directory:
        try:
            protocol = _window_protocol(Path(directory), rules)
        except DialogFileError:  # a rule that is always or never true, say
            reject()
    patients = list(Population(protocol, seed).patients(150, seeds=20))
    sample = Sample(protocol, patients, [_expected(protocol, p) for p in patients])
    columns = input_columns(protocol, "duckdb")
    rows = [
        dict(zip(columns, row, strict=True)) for row in _rows(sample, list(columns), len(patients))
    ]
    connection = duckdb.connect()
    _insert(connection, columns, rows, "?")
    for dialect in ("duckdb", "ansi"):
        query = compile_protocol(protocol, dialect)  # type: ignore[arg-type]
        _agree(sample, query, *_run(connection, query))
