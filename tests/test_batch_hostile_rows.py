"""Hostile batch rows on both engines (outside audit): a bad row is reported with the Python
engine's message and the other rows are still screened; a file DuckDB cannot read at all is
one line naming it, never its data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import Ran, invoke

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
