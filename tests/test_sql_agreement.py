"""The compiled SQL against the Python engine on generated patients, row by row.

Per protocol (blina-dli and the ctl019-rr-ball draft) 100,000 patients from
``population.py`` are screened by ``verdict.build`` and by the query, on DuckDB and on a
real PostgreSQL (a throwaway cluster; skipped with the reason when no server binaries can
be had). Every row must give the same verdict, failed ids, open items (variable, kind and
the criteria each keeps open, in order) and "met from" of each failed time-based criterion.
The ANSI text runs on both engines too, on the first 10,000 patients.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from population import Patient, Population
from screen_bot.protocol import Protocol, load
from screen_bot.rules.sql import Dialect, Query, compile_protocol, input_columns
from screen_bot.verdict import build
from stores import new_database

DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"
PROTOCOLS = {
    "blina-dli": DIALOGS / "blina-dli.yaml",
    "ctl019-rr-ball": DIALOGS / "ctl019-rr-ball.yaml",
}
SIZE = int(os.environ.get("SCREEN_BOT_SQL_AGREEMENT_SIZE", "100000"))
ANSI_SIZE = min(SIZE, 10_000)

# verdict, failed ids, open items (variable, kind, criteria), met-from per failed criterion
Expected = tuple[str, tuple[str, ...], tuple[tuple[str, str, tuple[str, ...]], ...], dict]


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
    return v.verdict, tuple(r.criterion for r in v.reasons), items, waits


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
    return row["verdict"], failed, open_items, waits


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
