"""Small exact tests of the SQL compiler: each node type with its NULL cases against
``interpret``, month ends, a hostile choice text, the ``sql`` command and
``screen --engine duckdb`` against the Python engine, bad rows included."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cli_runner import invoke
from patients import ELIGIBLE, ELIGIBLE_JSON
from population import Population
from screen_bot.answers import parse_text
from screen_bot.protocol import load
from screen_bot.rules.dates import NEVER
from screen_bot.rules.expressions import interpret, parse_node
from screen_bot.rules.sql import _Compiler, compile_protocol, input_columns
from screen_bot.rules.sql_expressions import (
    ExpressionWriter,
    Slot,
    SqlError,
    text_literal,
)
from screen_bot.rules.types import Kind, bind
from screen_bot.verdict import build
from test_ctl019_boundaries import A

ROOT = Path(__file__).resolve().parent.parent
BLINA = ROOT / "dialogs" / "blina-dli.yaml"
CTL019 = ROOT / "dialogs" / "ctl019-rr-ball.yaml"
SCREEN_BOT = str(Path(sys.executable).parent / "screen-bot")

KINDS = {
    "n": Kind("number"),
    "m": Kind("number"),
    "b": Kind("yes_no"),
    "c": Kind("yes_no"),
    "d": Kind("date"),
    "e": Kind("date", never=True),
    "screening_date": Kind("date"),
    "g": Kind("choice", choices=("0", "1", "2", "3"), ordered=True),
    "s": Kind("set", choices=("x", "y", "z")),
}


def _slot(name: str, value: Any) -> Slot:
    if value is None:
        sql_type = {"number": "DOUBLE", "yes_no": "BOOLEAN", "date": "DATE", "set": "VARCHAR[]"}
        slot_type = sql_type.get(KINDS[name].base, "VARCHAR")
        never = "CAST(NULL AS BOOLEAN)" if KINDS[name].never else None
        return Slot(f"CAST(NULL AS {slot_type})", never)
    if value == NEVER:
        return Slot("CAST(NULL AS DATE)", "TRUE")
    if isinstance(value, date):
        return Slot(f"DATE '{value.isoformat()}'", "FALSE" if KINDS[name].never else None)
    if isinstance(value, tuple):
        items = ", ".join(text_literal(v, "duckdb") for v in value)
        return Slot(f"CAST([{items}] AS VARCHAR[])")
    if isinstance(value, bool):
        return Slot("TRUE" if value else "FALSE")
    if isinstance(value, str):
        return Slot(text_literal(value, "duckdb"))
    return Slot(f"CAST({value!r} AS DOUBLE)")


ENVS: list[dict[str, Any]] = [
    {"n": 3, "m": 5, "b": True, "c": False, "d": date(2026, 1, 31), "e": date(2025, 2, 28)},
    {"n": None, "m": 5, "b": None, "c": False, "d": None, "e": NEVER},
    {"n": 5, "m": None, "b": False, "c": None, "d": date(2024, 2, 29), "e": None},
    {"n": 3.5, "m": 3.5, "b": None, "c": True, "d": date(2026, 3, 31), "e": date(2026, 2, 28)},
]
for env in ENVS:
    env["screening_date"] = date(2026, 3, 31)
ENVS[0].update(g="2", s=("x",))
ENVS[1].update(g=None, s=())
ENVS[2].update(g="0", s=None)
ENVS[3].update(g="3", s=("y", "z"))

EXPRESSIONS = [
    "n < m",
    "n <= 3",
    "n > 3",
    "n >= 3.5",
    "n == m",
    "n != 5",
    "b and c",
    "b or c",
    "not b",
    "b and not c or n > 4",
    "known(n)",
    "unknown(b)",
    "known(e)",
    "unknown(e)",
    "g >= 2",
    "g < '1'",
    "g == 3",
    "'x' in s",
    "'x' not in s",
    "any_of(s, 'y', 'z')",
    "none_of(s, 'x', 'y')",
    "screening_date >= d + months(2)",
    "screening_date < e + months(12)",
    "screening_date >= e - years(1)",
    "screening_date < e + years(1)",  # years(1) read as a month: False on ENVS[3]
    "e >= d - years(2)",  # years(2) read as two months: False on ENVS[0]
    "d + months(1) == screening_date",
    "screening_date < e + days(42)",
    "screening_date <= d + weeks(8)",
    "e < d",
    "e >= d - months(13) or b",
    "not (screening_date < e + months(1))",
]


@pytest.mark.parametrize("dialect", ["duckdb", "ansi"])
@pytest.mark.parametrize("text", EXPRESSIONS)
def test_each_node_type_means_what_interpret_means(text: str, dialect: str) -> None:
    node = bind(parse_node(text), KINDS)
    connection = duckdb.connect()
    for env in ENVS:
        slots = {name: _slot(name, env.get(name)) for name in KINDS}
        sql = ExpressionWriter(dialect).boolean(node, slots)  # type: ignore[arg-type]
        got = connection.execute(f"SELECT {sql}").fetchone()[0]  # type: ignore[index]
        assert got == interpret(node, env), (text, env, sql)


def test_months_clamp_to_the_month_end_as_python_does() -> None:
    from screen_bot.rules.dates import shift

    connection = duckdb.connect()
    for day, months in [
        (date(2026, 1, 31), 1),
        (date(2024, 1, 31), 1),
        (date(2024, 2, 29), 12),
        (date(2026, 3, 31), -1),
        (date(2026, 5, 31), -3),
        (date(2025, 8, 31), 6),
    ]:
        window = f"+ months({months})" if months > 0 else f"- months({-months})"
        node = bind(parse_node(f"screening_date == d {window}"), KINDS)
        slots = {"screening_date": _slot("d", shift(day, months, "months")), "d": _slot("d", day)}
        sql = ExpressionWriter("duckdb").boolean(node, slots)
        assert connection.execute(f"SELECT {sql}").fetchone() == (True,)


HOSTILE = ["it's", "a\\b", "x'); DROP TABLE answers; --", 'say "hi"']
# A multi-select choice may not hold a comma or semicolon (they separate typed choices).
HOSTILE_SET = ["it's", "a\\b", "x') OR TRUE OR ('", 'say "hi"']


def _hostile_protocol(tmp_path: Path) -> Path:
    choices, set_choices = json.dumps(HOSTILE), json.dumps(HOSTILE_SET)
    text = f"""
id: hostile
title: Choices with quotes and backslashes
version: "1"
questions:
  - variable: pick
    type: choice
    choices: {choices}
    text: Pick one?
  - variable: picks
    type: choice
    multiple: true
    choices: {set_choices}
    text: Pick some?
criteria:
  - id: H1
    kind: inclusion
    label: the quoted one
    source: a rule over a choice with a quote
    met_when: pick == "it's" or pick == "a\\\\b" or pick == "x'); DROP TABLE answers; --"
  - id: H2
    kind: exclusion
    label: the injection text
    source: a rule over a hostile choice
    applies_when: any_of(picks, "x') OR TRUE OR ('", 'say "hi"')
"""
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    return path


def test_a_choice_with_quotes_or_sql_in_it_is_a_literal(tmp_path: Path) -> None:
    protocol = load(_hostile_protocol(tmp_path))
    sets = [(), (HOSTILE_SET[2],), tuple(HOSTILE_SET), None]
    rows = [(p, s) for p in [*HOSTILE, None] for s in sets]
    connection = duckdb.connect()
    columns = input_columns(protocol)
    connection.execute(
        "CREATE TABLE answers (" + ", ".join(f'"{k}" {t}' for k, t in columns.items()) + ")"
    )
    for number, (pick, picks) in enumerate(rows):
        connection.execute(
            "INSERT INTO answers VALUES (?, ?, ?, ?)",
            [f"R-{number}", date(2026, 1, 1), pick, list(picks) if picks is not None else None],
        )
    for dialect in ("duckdb", "ansi"):
        query = compile_protocol(protocol, dialect)  # type: ignore[arg-type]
        assert "DROP TABLE answers; --'" in query.text  # inside a literal, doubled quote
        assert "'x'') OR TRUE OR (''" in query.text
        result = connection.execute(query.text).fetchall()
        for (pick, picks), row in zip(rows, result, strict=True):
            answers = {k: v for k, v in (("pick", pick), ("picks", picks)) if v is not None}
            expected = build(protocol, answers, screened_on=date(2026, 1, 1))
            assert row[2] == expected.verdict
            assert row[3].split() == [r.criterion for r in expected.reasons]
    assert connection.execute("SELECT count(*) FROM answers").fetchone() == (len(rows),)


def test_postgres_literals_keep_a_backslash() -> None:
    assert text_literal("a\\b", "postgres") == "E'a\\\\b'"
    assert text_literal("it's", "postgres") == "'it''s'"
    with pytest.raises(SqlError):
        text_literal("nul\x00", "duckdb")


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(SqlError):
        compile_protocol(load(BLINA), "oracle")  # type: ignore[arg-type]


# -- the commands ------------------------------------------------------------------------------


def test_the_sql_command_prints_a_query_that_runs() -> None:
    result = invoke("sql", "--protocol", "blina-dli")
    assert result.returncode == 0, result.stderr
    connection = duckdb.connect()
    columns = input_columns(load(BLINA))
    connection.execute(
        "CREATE TABLE answers (" + ", ".join(f'"{k}" {t}' for k, t in columns.items()) + ")"
    )
    connection.execute("INSERT INTO answers (referral, age) VALUES ('R-1', 80)")
    rows = connection.execute(result.stdout.rstrip().rstrip(";")).fetchall()
    assert rows[0][2] == "not_eligible" and "I1" in rows[0][3].split()
    other = invoke("sql", "-p", "blina-dli", "--dialect", "postgres", "--table", "ward.answers")
    assert 'FROM "ward"."answers"' in other.stdout
    every = invoke("sql", "--protocol", "all", "--dialect", "ansi")
    assert every.returncode == 0 and every.stdout.count("generated by screen-bot") >= 1


# The audit's patients (DATA-DICTIONARY 1.1: "A verdict that used the estimate says so, with
# its value, whatever the verdict"; "may pass later"; plausibility warnings in batch output)
BESIDE_THE_VERDICT = {
    # no measured CrCl, Cockcroft-Gault exactly 50: eligible only thanks to the estimate
    "R-1": {"crcl_ml_min": None, "sex": "male", "age": 20, "weight_kg": 63.0,
            "serum_creatinine_mg_dl": 2.1},
    "R-2": {"crcl_ml_min": 49.9},  # E6b on a measured clearance: a retest may pass
    "R-3": {"crcl_ml_min": None, "weight_kg": 250.0, "serum_creatinine_mg_dl": 1.0},
    # the same estimate of 50 on a patient failing I6a: still said
    "R-4": {"crcl_ml_min": None, "sex": "male", "age": 20, "weight_kg": 63.0,
            "serum_creatinine_mg_dl": 2.1, "ecog": 3},
    "R-5": {"transplant_date": date(2025, 12, 1), "ecog": 4},  # I4a: wait; I6a: no
    # 100 x 36.036 / 72 = 50.05, shown as Python rounds its double: 50.0
    "R-6": {"crcl_ml_min": None, "sex": "male", "weight_kg": 36.036,
            "serum_creatinine_mg_dl": 1.0},
    "R-7": {"weight_kg": 250.0},  # not asked (CrCl measured): no warning, no estimate
}  # fmt: skip


def test_the_query_says_what_a_verdict_says_beside_its_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README, Population pre-screening: per row, what the Python engine gives. The query
    left out the estimate a verdict used, the failures that may pass later and the
    warnings: a pre-screen pass resting on a Cockcroft-Gault estimate looked like one on a
    measured 24-hour clearance."""
    protocol = load(BLINA)
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(BLINA.parent))  # both protocols
    result = invoke("sql", "--protocol", "all")
    assert result.returncode == 0, result.stderr
    texts = {t.split()[1]: t for t in result.stdout.rstrip().rstrip(";").split(";\n\n")}
    assert 'AS "estimate:gfr"' in texts["ctl019-rr-ball"]
    columns = input_columns(protocol)
    rows = []
    for referral, changes in BESIDE_THE_VERDICT.items():
        answers = {**ELIGIBLE, **changes, "referral": referral, "screened_on": date(2026, 1, 15)}
        rows.append([answers.get(k) for k in columns])
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE answers (" + ", ".join(f'"{k}" {t}' for k, t in columns.items()) + ")"
    )
    connection.executemany(f"INSERT INTO answers VALUES ({', '.join('?' * len(columns))})", rows)
    for text in (texts["blina-dli"], compile_protocol(protocol, "ansi").text):
        cursor = connection.execute(text)
        names = [d[0] for d in cursor.description]
        got = {}
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            got[row["referral"]] = (row["recoverable"], row["warnings"], row["estimate:crcl"])
        expected = {}
        for referral, changes in BESIDE_THE_VERDICT.items():
            answers = {k: v for k, v in {**ELIGIBLE, **changes}.items() if v is not None}
            v = build(protocol, answers, screened_on=date(2026, 1, 15))
            expected[referral] = (
                " ".join(f"{r.criterion}:{r.recoverable}" for r in v.reasons if r.recoverable),
                " ".join(w.variable for w in v.warnings),
                v.estimates[0].value if v.estimates else None,
            )
        assert got == expected
        assert got["R-1"] == got["R-4"] == ("", "", 50.0)
        assert got["R-2"] == ("E6b:retest", "", None)
        assert got["R-3"] == ("", "weight_kg", 295.1)
        assert got["R-5"] == ("I4a:wait", "", None)
        assert got["R-6"][2] == 50.0 and got["R-7"] == ("", "", None)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.floats(0, 1000),
        st.integers(0, 10**12).map(lambda n: round(n / 10**9, 9)),  # as a calculator's
        st.integers(0, 20_000).map(lambda n: (2 * n + 1) / 20),  # the double nearest a tie
    )
)
def test_an_estimate_is_rounded_to_one_decimal_as_python_rounds(x: float) -> None:
    """The shown estimate is Python's ``round(x, 1)``: 50.05 is 50.0 (its double lies below
    50.05), 50.25 is 50.2 (a tie, to even); a decimal ROUND gives 50.1 and 50.3."""
    protocol = load(BLINA)
    for dialect in ("duckdb", "ansi"):
        writer = _Compiler(protocol, dialect)
        got = duckdb.execute(f"SELECT {writer._tenths('x')} FROM (SELECT ? AS x)", [x]).fetchone()
        assert got == (round(x, 1),), dialect


def test_the_readmes_worked_example_prints_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README showed a screened_on column that its query does not select. Its first rows
    are the generator's first rows (seeded), so three are generated here, not 10^5."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.duckdb_screen import generate

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme[readme.index("Worked example") :]
    script = re.search(r"python - <<'PY'\n(.*?\n)PY\n", example, re.S)
    shown = re.search(r"```\n(R-.*?\n)```", example, re.S)
    assert script and shown
    generate(load(BLINA), tmp_path / "population.parquet", 3)
    (tmp_path / "blina.sql").write_text(invoke("sql", "-p", "blina-dli").stdout)
    ran = subprocess.run(
        [sys.executable, "-c", script[1]], cwd=tmp_path, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == shown[1]


def _files(protocol_path: Path, directory: Path, count: int) -> dict[str, Path]:
    """The same generated patients as JSON Lines, CSV and Parquet."""
    protocol = load(protocol_path)
    patients = list(Population(protocol, seed=7).patients(count, seeds=20))
    jsonl, csv_file = directory / "p.jsonl", directory / "p.csv"

    def js(v: Any) -> Any:
        return v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, tuple):
            return ", ".join(v) if v else "none"
        return v.isoformat() if isinstance(v, date) else str(v)

    import csv

    columns = ["referral", "screened_on", *protocol.order]
    with jsonl.open("w") as out, csv_file.open("w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(columns)
        for p in patients:
            fixed = {"referral": p.referral, "screened_on": p.screened_on.isoformat()}
            out.write(json.dumps({**fixed, **{k: js(v) for k, v in p.answers.items()}}) + "\n")
            writer.writerow([fixed.get(c) or cell(p.answers.get(c)) for c in columns])
    parquet = directory / "p.parquet"
    spec = "{" + ", ".join(f"'{k}': '{t}'" for k, t in input_columns(protocol).items()) + "}"
    duckdb.execute(
        f"COPY (SELECT * FROM read_json('{jsonl}', format = 'newline_delimited', "
        f"columns = {spec})) TO '{parquet}'"
    )
    return {"jsonl": jsonl, "csv": csv_file, "parquet": parquet}


def _screen(path: Path, engine: str, protocol: str, dialogs: Path) -> tuple[int, list, str]:
    result = subprocess.run(
        [SCREEN_BOT, "screen", str(path), "-p", protocol, "--format", "json", "--engine", engine],
        capture_output=True,
        text=True,
        env={**os.environ, "SCREEN_BOT_DIALOGS_DIR": str(dialogs)},
        timeout=300,
    )  # fmt: skip
    return (
        result.returncode,
        [json.loads(line) for line in result.stdout.splitlines()],
        (result.stderr),
    )


@pytest.mark.parametrize("protocol_path", [BLINA, CTL019], ids=["blina-dli", "ctl019-rr-ball"])
def test_the_duckdb_engine_prints_what_the_python_engine_prints(
    protocol_path: Path, tmp_path: Path
) -> None:
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / f"{load(protocol_path).id}.yaml").write_text(protocol_path.read_text())
    files = _files(protocol_path, tmp_path, 600)
    protocol_id = load(protocol_path).id
    reference = None
    for fmt, path in files.items():
        if fmt != "parquet":
            code, python_rows, _ = _screen(path, "python", protocol_id, dialogs)
            assert code == 0
            reference = python_rows
        code, duckdb_rows, errors = _screen(path, "duckdb", protocol_id, dialogs)
        assert code == 0, errors
        assert len(duckdb_rows) == 600
        assert duckdb_rows == reference, fmt


CLOCK_SIDE = """\
id: clock-side
title: Windows on the screening date's side
version: "1"
anchors: [planned]
questions:
  - {variable: surgery_date, type: date_or_none, text: Last major surgery?}
  - {variable: planned, type: date, future: true, text: Planned infusion date?}
criteria:
  - {id: E1, kind: exclusion, label: surgery within 6 weeks, source: Surgery within 6 weeks.,
     applies_when: screening_date - days(42) < surgery_date}
  - {id: E2, kind: exclusion, label: surgery within 6 weeks, source: Surgery in 6 weeks.,
     applies_when: screening_date < surgery_date + days(42)}
  - {id: I1, kind: inclusion, label: infusion within 8 weeks, source: Infusion in 8 weeks.,
     met_when: planned < screening_date + weeks(8)}
"""


def _reasons_on_both_engines(
    tmp_path: Path, dialog_text: str, rows: str, field: str
) -> dict[str, dict[tuple[str, str], tuple[Any, Any]]]:
    """Each engine's (referral, criterion) -> (meets_from, ``field``) of every reason, for
    ``rows`` (JSON Lines) screened against the one protocol ``dialog_text``."""
    protocol_id = dialog_text.split("\n", 1)[0].removeprefix("id: ")
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / f"{protocol_id}.yaml").write_text(dialog_text)
    (tmp_path / "rows.jsonl").write_text(rows)
    found = {}
    for engine in ("python", "duckdb"):
        code, printed, errors = _screen(tmp_path / "rows.jsonl", engine, protocol_id, dialogs)
        assert code == 0, errors
        found[engine] = {
            (row["referral"], r["criterion"]): (r["meets_from"], r[field])
            for row in printed
            for r in row["reasons"]
        }
    return found


def test_a_window_on_the_screening_dates_side_is_met_from_the_same_day(tmp_path: Path) -> None:
    """README: days and weeks "may stand on either side (they meet the same days)". A
    surgery on 1 Nov 2026, screened on 20 Nov: its 6 weeks end on 13 Dec whichever side
    the window stands on. An infusion planned for 1 Dec 2026 is within 8 weeks of a
    screening from 7 Oct (1 Dec − 55 days). The DuckDB engine gave E1 no day at all."""
    rows = (
        '{"referral": "R-1", "surgery_date": "2026-11-01", "planned": "2026-12-01", '
        '"screened_on": "2026-11-20"}\n'
        '{"referral": "R-2", "surgery_date": "none", "planned": "2026-12-01", '
        '"screened_on": "2026-09-01"}\n'
    )
    found = _reasons_on_both_engines(tmp_path, CLOCK_SIDE, rows, "window_closed")
    assert found["python"] == {
        ("R-1", "E1"): ("2026-12-13", False),
        ("R-1", "E2"): ("2026-12-13", False),
        ("R-2", "I1"): ("2026-10-07", False),
    }
    assert found["duckdb"] == found["python"]


BOTH_CLOCKS = """\
id: both-clocks
title: Windows that read the anchor and the screening date
version: "1"
anchors: [planned]
questions:
  - {variable: transplant_date, type: date, text: Date of the transplant?}
  - {variable: planned, type: date, future: true, text: Planned infusion date?}
  - {variable: dli_date, type: date_or_none, text: Last DLI?}
criteria:
  - {id: I1, kind: inclusion, label: 6 months post-transplant, source: At least 6 months.,
     met_when: "planned >= transplant_date + months(6)
                or screening_date >= transplant_date + months(6)", recoverable: wait}
  - {id: E1, kind: exclusion, label: DLI within 6 weeks, source: DLI within 6 weeks.,
     applies_when: "planned < dli_date + days(42) and screening_date < dli_date + days(42)",
     recoverable: wait}
"""


def test_a_rule_reading_an_anchor_and_the_screening_date_counts_from_the_anchor(
    tmp_path: Path,
) -> None:
    """ctl019's route (b) and C-E11 read the screening date beside the planned infusion date
    (which may not lie before it). Moving either clock ends the failure on the same day,
    but only a later planned date does it alone: the day is said as a planned date, on both
    engines, not as a screening date (which the planned date would then have to follow)."""
    rows = (
        '{"referral": "R-1", "transplant_date": "2025-07-20", "planned": "2026-01-19", '
        '"dli_date": "2026-01-10", "screened_on": "2026-01-15"}\n'
    )
    found = _reasons_on_both_engines(tmp_path, BOTH_CLOCKS, rows, "meets_from_anchor")
    assert found["python"] == {
        ("R-1", "I1"): ("2026-01-20", "planned"),
        ("R-1", "E1"): ("2026-02-21", "planned"),
    }
    assert found["duckdb"] == found["python"]


STRICT = """\
id: strict
title: Windows that end the day before they are met
version: "1"
questions:
  - {variable: transplant_date, type: date, text: Date of the transplant?}
criteria:
  - {id: I1, kind: inclusion, label: over 2 months post-transplant, source: More than 2 months.,
     met_when: screening_date > transplant_date + months(2), recoverable: wait}
  - {id: E1, kind: exclusion, label: 2 months post-transplant, source: At most 2 months.,
     applies_when: screening_date <= transplant_date + months(2), recoverable: wait}
"""


def test_a_strict_window_is_met_from_the_day_after_it_ends_on_both_engines(
    tmp_path: Path,
) -> None:
    """A transplant on 1 December 2025: its 2 months end on 1 February 2026, so ``>`` (and
    an exclusion's ``<=``) is first passed on 2 February, and waiting helps."""
    rows = (
        '{"referral": "R-1", "transplant_date": "2025-12-01", "screened_on": "2026-01-15"}\n'
        '{"referral": "R-2", "transplant_date": "2025-12-01", "screened_on": "2026-02-01"}\n'
        '{"referral": "R-3", "transplant_date": "2025-12-01", "screened_on": "2026-02-02"}\n'
    )
    found = _reasons_on_both_engines(tmp_path, STRICT, rows, "recoverable")
    assert found["python"] == {
        (referral, criterion): ("2026-02-02", "wait")
        for referral in ("R-1", "R-2")
        for criterion in ("I1", "E1")
    }
    assert found["duckdb"] == found["python"]


ROUTES = """\
id: routes
title: The child's formula chosen by a question the adult's formula does not read
version: "1"
questions:
  - {variable: pediatric, type: yes_no, text: Is the patient a child?}
  - {variable: age, type: int, min: 0, max: 120, unit: years, text: Age?}
  - {variable: sex, type: choice, choices: [female, male], text: Sex?}
  - {variable: height_cm, type: number, min: 30, max: 250, unit: cm, text: Height?}
  - {variable: serum_creatinine_mg_dl, type: number, min: 0.1, max: 20, unit: mg/dL,
     text: Serum creatinine?}
derived:
  - name: gfr
    label: glomerular filtration rate
    unit: mL/min/1.73 m²
    calculators:
      - when: pediatric
        calculator: schwartz_bedside
        inputs: {height_cm: height_cm, serum_creatinine_mg_dl: serum_creatinine_mg_dl}
      - calculator: ckd_epi_2021
        inputs: {age: age, sex: sex, serum_creatinine_mg_dl: serum_creatinine_mg_dl}
criteria:
  - {id: I1, kind: inclusion, label: GFR 60+, source: GFR 60 or more., met_when: gfr >= 60}
"""


def test_an_unknown_condition_of_a_calculator_leaves_the_estimate_open_on_both_engines(
    tmp_path: Path,
) -> None:
    """Not known whether a 40-year-old is a child: which formula applies is not known, so
    there is no estimate and the row is unresolved on ``pediatric`` (CKD-EPI, which does not
    read it, would give 78.4: eligible). Known not to be a child: CKD-EPI, eligible."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "routes.yaml").write_text(ROUTES)
    rows = tmp_path / "rows.jsonl"
    adult = '"age": 40, "sex": "male", "height_cm": 170, "serum_creatinine_mg_dl": 1.2'
    rows.write_text(
        f'{{"referral": "R-1", "pediatric": null, {adult}, "screened_on": "2026-01-15"}}\n'
        f'{{"referral": "R-2", "pediatric": false, {adult}, "screened_on": "2026-01-15"}}\n'
    )
    found = {}
    for engine in ("python", "duckdb"):
        code, printed, errors = _screen(rows, engine, "routes", dialogs)
        assert code == 0, errors
        found[engine] = {
            row["referral"]: (row["verdict"], [item["variable"] for item in row["open_items"]])
            for row in printed
        }
    assert found["python"] == {"R-1": ("unresolved", ["pediatric"]), "R-2": ("eligible", [])}
    assert found["duckdb"] == found["python"]


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_a_value_in_a_column_that_is_not_a_variable_makes_its_row_bad(
    engine: str, tmp_path: Path
) -> None:
    """A measured CrCl under its alias was dropped and the patient passed on an estimate:
    the row is bad, as its key makes a JSON Lines row bad; an empty cell is no answer."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "blina-dli.yaml").write_text(BLINA.read_text())
    rows = [{"referral": "R-1", "age": 40, "crcl": 45}, {"referral": "R-2", "age": 40}]
    as_csv = tmp_path / "rows.csv"
    as_csv.write_text("referral,age,crcl\nR-1,40,45\nR-2,40, \n")
    as_jsonl = tmp_path / "rows.jsonl"
    as_jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    files = [as_csv, as_jsonl]
    if engine == "duckdb":
        files.append(tmp_path / "rows.parquet")
        duckdb.sql(
            "COPY (SELECT 'R-1' AS referral, 40 AS age, 45 AS crcl UNION ALL "
            f"SELECT 'R-2', 40, NULL) TO '{files[-1]}' (FORMAT parquet)"
        )
    printed = {}
    for path in files:
        code, screened, errors = _screen(path, engine, "blina-dli", dialogs)
        assert code == 2
        assert errors.splitlines() == [
            f"{path}: row 1: crcl: not a variable of blina-dli; did you mean 'crcl_ml_min'?"
        ]
        assert [row["row"] for row in screened] == [2]
        printed[path.suffix] = screened
    assert all(screened == printed[".csv"] for screened in printed.values())


def test_bad_rows_get_the_python_engines_messages(tmp_path: Path) -> None:
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "blina-dli.yaml").write_text(BLINA.read_text())
    path = tmp_path / "bad.csv"
    path.write_text(
        "referral,age,sex,serum_creatinine_mg_dl,lvef_percent,mood\n"
        "R-1,40,female,,55,\n"
        "R-2,130,female,,55,\n"  # out of range
        "R-3,40,robot,,55,happy\n"  # not a choice; a value in a column not a variable
        "R-4,40,fem,1.2 mg/dL,55,\n"  # a prefix (read) and a unit (Python only)
        "R 5,40,male,,55,\n"  # a referral with a space
        "R-6,40,male,,abc,\n"  # not a number
    )
    code_py, rows_py, errors_py = _screen(path, "python", "blina-dli", dialogs)
    code_db, rows_db, errors_db = _screen(path, "duckdb", "blina-dli", dialogs)
    assert code_py == code_db == 2
    assert [r["row"] for r in rows_db] == [1]
    assert rows_db == [r for r in rows_py if r["row"] == 1]
    python_lines = set(errors_py.splitlines())
    duckdb_lines = errors_db.splitlines()
    mood = [line for line in duckdb_lines if "mood" in line]  # an empty cell: no answer
    assert mood == [f"{path}: row 3: mood: not a variable of blina-dli"]
    for row in (2, 3, 5, 6):
        mine = {line for line in duckdb_lines if f": row {row}: " in line}
        assert mine and mine == {line for line in python_lines if f": row {row}: " in line}
    unit = [line for line in duckdb_lines if ": row 4: " in line]
    assert unit == [
        f"{path}: row 4: serum_creatinine_mg_dl: a value the DuckDB engine does not read "
        "(it reads plain numbers, yes/no, ISO dates, none and the choices); --engine python "
        "reads free-text answers such as units"
    ]


def test_a_float32_parquet_column_reads_as_the_decimal_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Parquet FLOAT (REAL, 32-bit: pandas' float32, Spark's FloatType) holds 1.2 as
    1.2000000476837158: a girl of 10 with her creatinine at its limit of 1.2 (a measured
    GFR of 55) was not eligible (audit 22, finding 2). At each of ctl019's limits FLOAT prints
    what DOUBLE and JSON Lines print, on both engines, and a value out of range gets the
    Python engine's message with the 30.1 written."""
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(ROOT / "dialogs"))
    base = {
        k: v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v
        for k, v in A.items()
        if v is not None
    }
    at_limits = [  # A is a girl of 10
        {"serum_creatinine_mg_dl": 1.2},
        {"age": 17, "sex": "male", "age_at_diagnosis": 15, "serum_creatinine_mg_dl": 1.7},
        {"age": 3, "age_at_diagnosis": 2, "serum_creatinine_mg_dl": 0.8},
        {"age": 1, "age_at_diagnosis": 1, "serum_creatinine_mg_dl": 0.6},
        {"serum_creatinine_mg_dl": 30.1},  # above 30: a bad row
    ]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps(base | {"referral": f"R-{i}", "screened_on": "2026-01-15"}
                       | {"measured_gfr_ml_min_173": 55.0} | changed) + "\n"
            for i, changed in enumerate(at_limits, 1)
        )
    )  # fmt: skip
    files = {"python": [jsonl], "duckdb": [jsonl]}
    for number_type in ("DOUBLE", "FLOAT"):  # every number column
        columns = {
            k: t.replace("DOUBLE", number_type) for k, t in input_columns(load(CTL019)).items()
        }
        spec = "{" + ", ".join(f"'{k}': '{t}'" for k, t in columns.items()) + "}"
        files["duckdb"].append(tmp_path / f"{number_type}.parquet")
        duckdb.execute(
            f"COPY (SELECT * FROM read_json('{jsonl}', format = 'newline_delimited', "
            f"columns = {spec})) TO '{files['duckdb'][-1]}'"
        )
    printed = set()
    for engine, paths in files.items():
        for path in paths:
            result = invoke("screen", str(path), "-p", "ctl019-rr-ball", "--engine", engine)
            assert result.returncode == 2
            printed.add((result.stdout, result.stderr.replace(str(path), "FILE")))
    assert len(printed) == 1
    ((stdout, stderr),) = printed
    assert stdout.split("--- row 2")[0].splitlines()[-1].startswith("verdict: eligible")
    assert stdout.count("C-I6a") == 0
    assert stderr == (
        "FILE: row 5: serum_creatinine_mg_dl: 30.1: 30.1 is out of range (0.05–30 mg/dL). "
        "Did you mean 30.1 µmol/L?\n"
    )


ONE_NUMBER = """\
id: one-number
title: One number
version: "1"
questions:
  - {variable: creatinine, type: number, min: 0.05, max: 30, unit: mg/dL, text: Creatinine?}
criteria:
  - {id: I1, kind: inclusion, label: creatinine at most 1.2, source: Creatinine ≤ 1.2 mg/dL.,
     met_when: creatinine <= 1.2}
  - {id: E1, kind: exclusion, label: creatinine above 1, source: Creatinine > 1 mg/dL.,
     applies_when: creatinine > 1}
  - {id: E2, kind: exclusion, label: creatinine below 2, source: Creatinine < 2 mg/dL.,
     applies_when: creatinine < 2}
"""


@pytest.fixture(scope="module")
def one_number(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dialogs directory with the protocol one-number (a reason quotes every creatinine
    in range: E1 or E2 excludes it), where the files screened are written too."""
    directory = tmp_path_factory.mktemp("one-number")
    (directory / "one-number.yaml").write_text(ONE_NUMBER)
    return directory


def _numpys(value: float) -> str:
    return str(numpy.float32(value))


DECIMALS = st.one_of(  # each the shortest decimal of its float32
    st.decimals(min_value=0, max_value=40, places=2).map(str),  # a creatinine as typed
    # up to 6 significant digits from the least normal float32 up: each its own float32
    st.builds("{}e{}".format, st.integers(-999_999, 999_999), st.integers(-37, 32)),
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(_numpys),  # any float32
)


@settings(max_examples=40, deadline=None)
@given(st.lists(DECIMALS, min_size=1, max_size=20))
@example(["1.2", "0.6", "0.8", "1.7", "30.1", "0", "-0.0"])
@example([_numpys(v) for v in (343126.125, 2508.15625, -64311768.0)])  # DuckDB's own text
@example([_numpys(v) for v in (2.0**-96, 2.0**87, 2.0**90)])  # the float below is nearer
@example([_numpys(v) for v in (2.0**-149, 2.0**-126, 3.4028234663852886e38)])  # subnormal ...
def test_both_engines_read_a_float32_as_its_shortest_decimal(
    one_number: Path, written: list[str]
) -> None:
    """``screen --engine duckdb`` reads a Parquet FLOAT as the decimal written, as the Python
    engine reads the same decimals from JSON Lines: the same output, and each value quoted
    (a verdict's reason, a bad row's message) is the decimal written, which is numpy's
    shortest decimal of the float32 in the file."""
    jsonl, parquet = one_number / "rows.jsonl", one_number / "rows.parquet"
    jsonl.write_text(
        "".join(
            json.dumps({"referral": f"R-{i:04d}", "creatinine": float(text)}) + "\n"
            for i, text in enumerate(written, 1)
        )
    )
    connection = duckdb.connect()
    connection.execute(
        "COPY (SELECT printf('R-%04d', i) AS referral, CAST(t AS FLOAT) AS creatinine "
        f"FROM (SELECT unnest($1) AS t, generate_subscripts($1, 1) AS i)) TO '{parquet}'",
        [written],
    )
    stored = connection.execute(
        f"SELECT CAST(creatinine AS DOUBLE) FROM '{parquet}' ORDER BY referral"
    ).fetchall()
    connection.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCREEN_BOT_DIALOGS_DIR", str(one_number))
        by_python = invoke("screen", str(jsonl), "-p", "one-number", "-f", "json")
        by_duckdb = invoke(
            "screen", str(parquet), "-p", "one-number", "-f", "json", "--engine", "duckdb"
        )
    assert by_duckdb.stdout == by_python.stdout
    assert by_duckdb.stderr.replace(str(parquet), "F") == by_python.stderr.replace(str(jsonl), "F")
    quoted = {
        verdict["row"]: verdict["reasons"][0]["answers"]["creatinine"]
        for verdict in map(json.loads, by_duckdb.stdout.splitlines())
    }
    for row, text in re.findall(r"row (\d+): creatinine: (\S+): ", by_duckdb.stderr):
        quoted[int(row)] = float(text)
    decimals = [repr(float(text)) for text in written]
    assert [repr(quoted[row]) for row in range(1, len(written) + 1)] == decimals
    assert [repr(float(_numpys(value))) for (value,) in stored] == decimals


def test_duckdbs_progress_bar_never_reaches_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """DuckDB draws a progress bar on standard output (the file descriptor) for a query
    over ``progress_bar_time``: 2 s by default, 1 ms here so a small file shows it."""
    from screen_bot.adapters import duckdb_batch

    real = duckdb.connect

    def impatient(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        connection = real(*args, **kwargs)
        connection.execute("SET progress_bar_time = 1")  # this also turns the bar on
        return connection

    monkeypatch.setattr(duckdb, "connect", impatient)
    path = _files(BLINA, tmp_path, 300)["jsonl"]
    screened = list(duckdb_batch.screen_file(load(BLINA), path, "jsonl", date(2026, 3, 1)))
    assert len(screened) == 300
    drawn = capfd.readouterr()
    assert "%" not in drawn.out and "elapsed" not in drawn.out + drawn.err


def test_an_estimate_of_exactly_50_is_50_in_sql_too(tmp_path: Path) -> None:
    # (140 - 20) x 63 / (72 x 2.1) = 50, and 49.99999999999999 in binary floating point:
    # the query drops the float error as calculators.py does.
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "blina-dli.yaml").write_text(BLINA.read_text())
    path = tmp_path / "fifty.jsonl"
    inputs = [(20, "male", 63, 2.1), (14, "male", 30, 1.05), (44, "female", 60, 1.36)]
    path.write_text(
        "".join(
            json.dumps({**ELIGIBLE_JSON, "screened_on": "2026-01-15", "crcl_ml_min": None}
                       | {"age": a, "sex": s, "weight_kg": w, "serum_creatinine_mg_dl": c}) + "\n"
            for a, s, w, c in inputs
        )
    )  # fmt: skip
    for engine in ("python", "duckdb"):
        code, rows, errors = _screen(path, engine, "blina-dli", dialogs)
        assert code == 0, errors
        assert [(r["verdict"], r["open_items"]) for r in rows] == [("eligible", [])] * 3, engine
        assert [r["estimates"][0]["value"] for r in rows] == [50.0] * 3


# Zones 25 hours apart: at any moment the local date of one of them is not UTC's.
FAR_ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago")


def _default_day(run: Any, dialect: str) -> set[date]:
    """The screening date the query gives a row without ``screened_on``, in each far zone."""
    query = compile_protocol(load(BLINA), dialect).text  # type: ignore[arg-type]
    days = set()
    for zone in FAR_ZONES:
        days.add(run(zone, f'SELECT "screened_on" FROM ({query}) AS q'))
    return days


def test_a_missing_screening_date_is_today_in_utc_on_duckdb() -> None:
    """Dictionary: 'batch: the optional screened_on column, else today, UTC'."""

    def run(zone: str, sql: str) -> date:
        connection = duckdb.connect()
        connection.execute(f"SET TimeZone = '{zone}'")
        columns = input_columns(load(BLINA))
        connection.execute(
            "CREATE TABLE answers (" + ", ".join(f'"{k}" {t}' for k, t in columns.items()) + ")"
        )
        connection.execute("INSERT INTO answers (referral) VALUES ('R-1')")
        ((day,),) = connection.execute(sql).fetchall()
        return day

    today = datetime.now(UTC).date()
    for dialect in ("duckdb", "ansi"):
        assert _default_day(run, dialect) <= {today, datetime.now(UTC).date()}


def test_a_missing_screening_date_is_today_in_utc_on_postgres(postgres_server: str) -> None:
    import psycopg

    from stores import new_database

    url = new_database(postgres_server)
    columns = input_columns(load(BLINA), "postgres")

    def run(zone: str, sql: str) -> date:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"SET TIME ZONE '{zone}'")
            connection.execute("DROP TABLE IF EXISTS answers")
            connection.execute(
                "CREATE TABLE answers (" + ", ".join(f'"{k}" {t}' for k, t in columns.items()) + ")"
            )
            connection.execute("INSERT INTO answers (referral) VALUES ('R-1')")
            row = connection.execute(sql).fetchone()
            assert row is not None
            return row[0]

    today = datetime.now(UTC).date()
    for dialect in ("postgres", "ansi"):
        assert _default_day(run, dialect) <= {today, datetime.now(UTC).date()}


def test_a_choice_named_like_unknown_is_that_choice_in_every_reading(tmp_path: Path) -> None:
    """A protocol may offer "unknown" (or "not known") as a result: typed, in a CSV cell
    or a JSON row it is that choice, on both engines; "?" stays the answer unknown."""
    text = """
id: hbv
title: A result that may be 'unknown'
version: "1"
questions:
  - variable: hbv_status
    type: choice
    choices: [positive, negative, unknown, not known]
    text: HBV status?
criteria:
  - id: E1
    kind: exclusion
    label: HBV status not established
    source: a made-up rule
    applies_when: hbv_status == 'unknown' or hbv_status == 'not known'
"""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "hbv.yaml").write_text(text)
    question = load(dialogs / "hbv.yaml").questions["hbv_status"]
    assert parse_text(question, "Unknown") == "unknown"
    assert parse_text(question, "not known.") == "not known"
    assert parse_text(question, "?") is None
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text("referral,hbv_status\nR-1,unknown\nR-2,?\nR-3,Not Known\nR-4,negative\n")
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"hbv_status": "unknown"}\n{"hbv_status": null}\n')
    for path, expected in (
        (csv_file, ["not_eligible", "unresolved", "not_eligible", "eligible"]),
        (jsonl, ["not_eligible", "unresolved"]),
    ):
        for engine in ("python", "duckdb"):
            code, rows, errors = _screen(path, engine, "hbv", dialogs)
            assert code == 0, errors
            assert [r["verdict"] for r in rows] == expected, (path.name, engine)


@pytest.mark.parametrize("text", ["", " \n", "\ufeff"])
def test_a_json_file_with_no_document_is_a_bad_row_on_both_engines(
    text: str, tmp_path: Path
) -> None:
    """DuckDB read no rows from an empty .json file and exited 0; it is not JSON."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "blina-dli.yaml").write_text(BLINA.read_text())
    path = tmp_path / "empty.json"
    path.write_text(text, encoding="utf-8")
    python = _screen(path, "python", "blina-dli", dialogs)
    assert python[0] == 2 and python[2].startswith(f"{path}: row 1: not valid JSON (Expecting")
    assert _screen(path, "duckdb", "blina-dli", dialogs) == python
