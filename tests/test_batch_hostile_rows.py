"""Hostile batch rows on both engines (outside audit): a bad row is reported with the Python
engine's message and the other rows are still screened; a file DuckDB cannot read at all is
one line naming it, never its data."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from cli_runner import Ran, invoke
from patients import ELIGIBLE_JSON

ENGINES = ["python", "duckdb"]


def screen(path: Path, engine: str) -> Ran:
    return invoke("screen", str(path), "-p", "blina-dli", "--format", "json", "--engine", engine)


def referrals(result: Ran) -> list[str]:
    return [json.loads(line)["referral"] for line in result.stdout.splitlines()]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("list.json", '[{"referral":"R-1","age":150,"age":40},{"referral":"R-2","age":40}]'),
        ("lines.jsonl", '{"referral":"R-1","age":10,"age":40}\n{"referral":"R-2","age":40}\n'),
    ],
)
def test_a_key_given_twice_makes_its_row_bad(
    tmp_path: Path, engine: str, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = screen(path, engine)
    assert result.returncode == 2 and referrals(result) == ["R-2"], result.stderr
    assert result.stderr == f"{path}: row 1: not valid JSON here (the key 'age' is given twice)\n"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_csv_column_given_twice_refuses_the_file(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("referral,age,sex,age\nR-1,40,male,\n")
    result = screen(path, engine)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == "error: the header row gives the column 'age' twice"


def good_csv_row(i: int) -> str:
    return f"R-{i},2026-01-15,{40 + i % 20},female,{50 + i % 30}\n"


def good_json_row(i: int) -> str:
    row = {"referral": f"R-{i}", "screened_on": "2026-01-15", "age": 40 + i % 20, "sex": "female"}
    return json.dumps(row) + "\n"


BAD_ROWS = {  # file name: its bad row (latin1: written as Latin-1)
    "nan.jsonl": '{"referral": "R-BAD1", "age": NaN}\n',
    "infinity.jsonl": '{"referral": "R-BAD1", "age": -Infinity}\n',
    "huge.jsonl": '{"referral": "R-BAD1", "age": 99999999999999999999}\n',
    "huge.csv": "R-BAD1,2026-01-15,99999999999999999999,female,50\n",
    "short.csv": "R-BAD1,2026-01-15,40\n",
    "long.csv": "R-BAD1,2026-01-15,40,female,50,60\n",
    "latin1.csv": "R-BAD1,2026-01-15,40,f\u00e9male,50\n",
    "line-over-2-mb.csv": "R-BAD1,2026-01-15,40,female," + "5" * (3 << 20) + "\n",
}


@pytest.mark.parametrize("where", [1, 2100], ids=["first-row", "past-duckdbs-first-batch"])
@pytest.mark.parametrize("name", list(BAD_ROWS))
def test_duckdb_engine_reports_the_bad_row_and_screens_the_others(
    tmp_path: Path, name: str, where: int
) -> None:
    good = good_csv_row if name.endswith(".csv") else good_json_row
    lines = [good(i) for i in range(1, 2200)]
    lines[where - 1] = BAD_ROWS[name]
    head = "referral,screened_on,age,sex,lvef_percent\n" if name.endswith(".csv") else ""
    path = tmp_path / name
    path.write_bytes((head + "".join(lines)).encode("latin-1" if "latin1" in name else "utf-8"))
    python, duckdb = screen(path, "python"), screen(path, "duckdb")
    assert duckdb.stderr == python.stderr and len(duckdb.stderr.splitlines()) <= 1
    assert duckdb.stdout == python.stdout and len(python.stdout.splitlines()) >= 2198
    assert duckdb.returncode == python.returncode


def test_duckdb_engine_reports_the_bad_parquet_row_and_screens_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ages.parquet"
    connection = duckdb.connect()
    connection.execute(
        "COPY (SELECT * FROM (VALUES ('R-1', 'nan'::DOUBLE), ('R-2', 1e20), ('R-3', 40.0)) "
        f"AS t(referral, age)) TO '{path}'"
    )
    connection.close()
    result = screen(path, "duckdb")
    assert result.returncode == 2 and referrals(result) == ["R-3"]
    assert result.stderr.splitlines() == [
        f"{path}: row 1: age: nan: expected a finite number (0–120 years)",
        f"{path}: row 2: age: 1e+20: 1e+20 is out of range (0–120 years).",
    ]


def test_a_file_duckdb_cannot_read_is_one_line_without_its_data(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1" + b"R-1,secret health data\n" * 10 + b"PAR1")
    result = screen(path, "duckdb")
    assert result.returncode == 2 and result.stdout == ""
    assert "secret" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert str(path) in result.stderr and "DuckDB cannot read the file as parquet" in result.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_mi_the_day_before_screening_excludes_in_year_9999(tmp_path: Path, engine: str) -> None:
    # the year after the MI ends in 10000: on 9999-12-31 it has not passed (E3d applies)
    rows = [
        dict(ELIGIBLE_JSON, referral=f"R-{i}", screened_on=on, last_mi_date=mi, transplant_date=tx)
        for i, (on, mi, tx) in enumerate(
            [
                ("9999-12-31", "9999-12-30", "9999-10-01"),
                ("9999-06-15", "9999-06-14", "9999-03-15"),
                ("9999-12-31", "9998-12-31", "9999-10-01"),  # a year to the day: passed
            ]
        )
    ]
    path = tmp_path / "year-9999.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = screen(path, engine)
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [v["verdict"] for v in verdicts] == ["not_eligible", "not_eligible", "eligible"]
    for verdict in verdicts[:2]:
        (reason,) = verdict["reasons"]
        assert reason["criterion"] == "E3d" and reason["meets_from"] is None  # no such day


LINES = {  # file name: lines around which good rows are screened (latin1: as Latin-1 bytes)
    "blank.jsonl": ["\n", '{"referral": "R-BAD1", "age": "x"}\n'],
    "spaces.jsonl": [" \t\r\n", '{"referral": "R-BAD1", "age": "x"}\n'],
    "blank.csv": ["\n", "R-BAD1,2026-01-15,x,female,50\n"],
    "broken.jsonl": ['{"referral": "R-BAD1", "age": 40\n'],
    "latin1.jsonl": ['{"referral": "R-BAD1", "sex": "f\u00e9male"}\n'],
}


@pytest.mark.parametrize("name", list(LINES))
def test_duckdb_engine_numbers_and_words_bad_lines_as_the_python_engine(
    tmp_path: Path, name: str
) -> None:
    good = good_csv_row if name.endswith(".csv") else good_json_row
    head = "referral,screened_on,age,sex,lvef_percent\n" if name.endswith(".csv") else ""
    path = tmp_path / name
    text = head + good(1) + "".join(LINES[name]) + good(2) + good(3)
    path.write_bytes(text.encode("latin-1" if "latin1" in name else "utf-8"))
    python, duckdb = screen(path, "python"), screen(path, "duckdb")
    assert python.returncode == 2 and len(python.stdout.splitlines()) == 3
    assert (duckdb.returncode, duckdb.stdout, duckdb.stderr) == (2, python.stdout, python.stderr)
