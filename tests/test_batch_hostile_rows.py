"""Hostile batch rows on both engines (outside audit): a bad row is reported with the Python
engine's message and the other rows are still screened; a file DuckDB cannot read at all is
one line naming it, never its data."""

from __future__ import annotations

import json
import sys
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


@pytest.mark.usefixtures("shipped_dialogs")  # ctl019-rr-ball: a planned date too
def test_a_parquet_date_outside_years_1_to_9999_is_a_bad_row(tmp_path: Path) -> None:
    """Parquet's DATE holds years past 9999, BC years and infinity, which DuckDB hands to
    Python as text (infinity as 9999-12-31): the screening date and each kind of date
    question (past, planned, date or none) is refused with the message CSV and JSON get."""
    path = tmp_path / "dates.parquet"
    connection = duckdb.connect()
    connection.execute(
        "COPY (SELECT * FROM (VALUES "
        "('R-1', DATE '2026-01-15', DATE '2025-03-10', DATE '2026-02-20', NULL::DATE), "
        "('R-2', DATE '12000-06-01', NULL, NULL, NULL), "
        "('R-3', DATE '0001-01-01 (BC)', NULL, NULL, NULL), "
        "('R-4', DATE 'infinity', NULL, NULL, NULL), "
        "('R-5', DATE '2026-01-15', DATE '-infinity', NULL, NULL), "
        "('R-6', NULL, NULL, DATE 'infinity', NULL), "
        "('R-7', DATE '2026-01-15', NULL, DATE '12000-01-01', NULL), "
        "('R-8', DATE '2026-01-15', NULL, NULL, DATE '-infinity'), "
        "('R-9', DATE '2026-01-15', DATE '2025-03-10', DATE '2026-02-20', DATE '2025-01-01')"
        ") AS t(referral, screened_on, transplant_date, planned_infusion_date, last_imp_date)) "
        f"TO '{path}'"
    )
    connection.close()
    result = invoke(
        "screen", str(path), "-p", "ctl019-rr-ball", "--format", "json", "--engine", "duckdb"
    )
    assert result.returncode == 2 and referrals(result) == ["R-1", "R-9"], result.stderr
    expected = "expected a date as YYYY-MM-DD"
    assert result.stderr.splitlines() == [
        f"{path}: row 2: screened_on: '12000-06-01': {expected}",
        f"{path}: row 3: screened_on: '0001-01-01 (BC)': {expected}",
        f"{path}: row 4: screened_on: 'infinity': {expected}",
        f"{path}: row 5: transplant_date: '-infinity': {expected}",
        f"{path}: row 6: planned_infusion_date: 'infinity': {expected}",
        f"{path}: row 7: planned_infusion_date: '12000-01-01': {expected}",
        f"{path}: row 8: last_imp_date: '-infinity': {expected} or none",
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


CSV_HEAD = "referral,screened_on,age,sex,lvef_percent\n"
RUNS = [("python", "1"), ("python", "3"), ("duckdb", "1")]


def screen_csv(path: Path, engine: str, jobs: str) -> Ran:
    args = ["--engine", engine] + (["--jobs", jobs] if engine == "python" else [])
    return invoke("screen", str(path), "-p", "blina-dli", "--format", "json", *args)


def numbered(result: Ran) -> list[tuple[int, str]]:
    return [(o["row"], o["referral"]) for o in map(json.loads, result.stdout.splitlines())]


@pytest.mark.parametrize(("engine", "jobs"), RUNS)
@pytest.mark.parametrize("last", [False, True], ids=["mid-file", "last-line-no-newline"])
def test_a_quote_left_open_makes_only_its_line_bad(
    tmp_path: Path, engine: str, jobs: str, last: bool
) -> None:
    # no answer holds a line break: a CSV record is one line, and the rows after it are
    # screened under their own numbers (the csv module read on to the end of the file)
    rows = [good_csv_row(i) for i in range(1, 6)]
    where = 5 if last else 2
    rows[where - 1] = f'R-{where},2026-01-15,"40,female,50' + ("" if last else "\n")
    path = tmp_path / "open-quote.csv"
    path.write_text(CSV_HEAD + "".join(rows))
    result = screen_csv(path, engine, jobs)
    assert result.returncode == 2
    assert numbered(result) == [(i, f"R-{i}") for i in range(1, 6) if i != where]
    problem = "not valid CSV (a quote opened in column 3 is not closed on its line)"
    assert result.stderr == f"{path}: row {where}: {problem}\n"


@pytest.mark.parametrize(("engine", "jobs"), RUNS)
def test_past_1_mib_after_an_open_quote_rows_keep_their_numbers(
    tmp_path: Path, engine: str, jobs: str
) -> None:
    # the csv module gave up at its 1 MiB field limit and read on: row 1,600 came out as row 3
    rows = [good_csv_row(i).replace("\n", " " * 700 + "\n") for i in range(1, 2001)]
    rows[1] = 'R-2,2026-01-15,"40,female,50\n'
    path = tmp_path / "open-quote-big.csv"
    path.write_text(CSV_HEAD + "".join(rows))
    result = screen_csv(path, engine, jobs)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert numbered(result) == [(i, f"R-{i}") for i in range(1, 2001) if i != 2]


@pytest.mark.parametrize(("engine", "jobs"), RUNS)
@pytest.mark.parametrize(
    "empty", [",,,,", ' , ,"",,', ",,,,,,", "\xa0,\xa0,\xa0,\xa0,\xa0", "\u3000,\t,\x85,,"]
)
def test_a_csv_row_of_empty_cells_is_no_patient(
    tmp_path: Path, engine: str, jobs: str, empty: str
) -> None:
    # the empty rows spreadsheets write were screened (and logged) as patients
    path = tmp_path / "empty-row.csv"
    path.write_text(CSV_HEAD + good_csv_row(1) + empty + "\n" + good_csv_row(3))
    result = screen_csv(path, engine, jobs)
    assert (result.returncode, result.stderr) == (0, "")
    assert numbered(result) == [(1, "R-1"), (3, "R-3")]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("value", ["02/01/2025", "2025-2-1", "3 months ago", "never"])
def test_a_csv_date_is_iso_or_none_as_the_data_dictionary_says(
    tmp_path: Path, engine: str, value: str
) -> None:
    # 02/01/2025 was read day-first (2 January) by the Python engine: an MI of 1 February
    # 2025 was over a year before 2026-01-15 and the patient eligible
    head = "referral,screened_on,last_mi_date\n"
    path = tmp_path / "dates.csv"
    path.write_text(head + f"R-1,2026-01-15,{value}\nR-2,2026-01-15,none\nR-3,2026-01-15,?\n")
    result = screen_csv(path, engine, "1")
    assert result.returncode == 2 and referrals(result) == ["R-2", "R-3"]
    expected = "expected a date as YYYY-MM-DD or none"
    assert result.stderr == f"{path}: row 1: last_mi_date: {value!r}: {expected}\n"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["numbers.csv", "numbers.jsonl"])
def test_a_number_the_dialog_refuses_is_refused_by_both_engines(
    tmp_path: Path, engine: str, name: str
) -> None:
    # "12,500" (12.5 or 12500) and "-0" were read by DuckDB as 12.5 and 0; "1.250" is 1.25
    # on both (1250 % is no answer), as a value just past a limit is written (50.001)
    values = ["12,500", "1.250", "-0", "45,0"]
    path = tmp_path / name
    if name.endswith(".csv"):
        rows = [f'R-{i},2026-01-15,"{v}"\n' for i, v in enumerate(values, start=1)]
        path.write_text("referral,screened_on,lvef_percent\n" + "".join(rows))
    else:
        rows = [
            json.dumps({"referral": f"R-{i}", "screened_on": "2026-01-15", "lvef_percent": v})
            + "\n"
            for i, v in enumerate(values, start=1)
        ]
        path.write_text("".join(rows))
    result = screen(path, engine)
    assert result.returncode == 2 and referrals(result) == ["R-2", "R-4"], result.stderr
    assert result.stderr.splitlines() == [
        f"{path}: row 1: lvef_percent: '12,500': 12,500 could be 12.5 or 12500: type 12.5 if "
        "that is what you mean.",
        f"{path}: row 3: lvef_percent: '-0': Please type the number without a minus sign "
        "(0–100 %).",
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".PQ"])
def test_a_parquet_file_on_the_python_engine_names_the_engine_that_reads_it(
    tmp_path: Path, suffix: str
) -> None:
    # it was read as JSON: "this is not a text file (it holds NUL bytes)"
    path = tmp_path / f"population{suffix}"
    connection = duckdb.connect()
    connection.execute(f"COPY (SELECT 'R-1' AS referral, 40 AS age) TO '{path}' (FORMAT parquet)")
    connection.close()
    result = invoke("screen", str(path), "-p", "blina-dli", "--format", "json")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == "error: Parquet is read by --engine duckdb only"


HEADER_CASES = {  # name: (file text, exit code, stderr after the path, referrals screened)
    "trailing-comma-header": (
        "referral,age,\nR-1,40,\nR-2,41,\n",
        0,
        "",
        ["R-1", "R-2"],
    ),
    "nameless-column-with-a-value": (  # not read, and said once (the Python engine said
        "referral,,age\nR-1,,40\nR-2,yes,41\nR-3, ,42\nR-4,no,43\n",  # nothing)
        0,
        ": header: note: column 2 has no name, so its values are not read\n",
        ["R-1", "R-2", "R-3", "R-4"],
    ),
    "empty-file": ("", 0, "", []),
    "header-only": ("referral,age\n", 0, "", []),
    "space-before-quote": (  # the Python engine's reading, the stricter: DuckDB read female
        'referral,age,sex\nR-1,40, "female"\nR-2,41,female\n',
        2,
        ": row 1: sex: '\"female\"': Please answer one of: female, male.\n",
        ["R-2"],
    ),
}


@pytest.mark.parametrize(("engine", "jobs"), RUNS)
@pytest.mark.parametrize("name", list(HEADER_CASES))
def test_both_engines_read_csv_headers_and_cells_alike(
    tmp_path: Path, engine: str, jobs: str, name: str
) -> None:
    text, code, stderr, screened = HEADER_CASES[name]
    path = tmp_path / f"{name}.csv"
    path.write_text(text)
    result = screen_csv(path, engine, jobs)
    assert (result.returncode, result.stderr) == (code, f"{path}{stderr}" if stderr else "")
    assert referrals(result) == screened


@pytest.mark.parametrize(
    ("text", "python_reads_it"),
    [
        (b"a,b\n1,2\n", False),
        (b'a,b\n"x",y\n1,"2 ""3"""', False),
        (b'a,b\n"x,y\n1,2\n', True),  # a quote left open
        (b'a,b\n1,2\n"x,y', True),  # on the last line, without a line break
        (b"a,b\n1,2\n,\n", True),  # empty cells
        (b"a,b\n1,2\n\xc2\xa0,\xc2\xa0\n", True),  # no-break spaces: empty cells to str.strip()
        (b'a,b\n1, "2"\n', True),  # a quote after a space
        (b"a,b\n1,2\n\n", True),  # a blank line
        (b"", False),
    ],
)
def test_duckdb_engine_hands_the_lines_it_reads_otherwise_to_the_python_engine(
    tmp_path: Path, text: bytes, python_reads_it: bool
) -> None:
    from screen_bot.adapters.duckdb_batch import _read_otherwise

    path = tmp_path / "lines.csv"
    path.write_bytes(text)
    assert _read_otherwise(path, "csv") is python_reads_it


MULTI_LINE = (  # each referral's number is its row's: the number of the line it starts on
    "referral,age,prior_therapies,sex\n"
    'R-1,12,"blinatumomab\ncd19_car_t",female\n'
    "R-3,10,none,male\n"
    'R-4,11,"gene_therapy\r\n\ncd19_car_t\n",female\n'
    "R-8,13,none,male\n"
)


@pytest.fixture
def shipped_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """ctl019-rr-ball's multi-select (prior_therapies) too."""
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(Path(__file__).parents[1] / "dialogs"))


@pytest.mark.usefixtures("shipped_dialogs")
@pytest.mark.parametrize(("engine", "jobs"), RUNS)
def test_a_quoted_cell_may_hold_line_breaks(tmp_path: Path, engine: str, jobs: str) -> None:
    # RFC 4180 2.6, as spreadsheets write a cell's Alt+Enter: the lines after the first were
    # screened as patients (a verdict for 'cd19_car_t",female', every answer unknown)
    path = tmp_path / "multi-line-cells.csv"
    path.write_text(MULTI_LINE)
    args = ["--engine", engine] + (["--jobs", jobs] if engine == "python" else [])
    result = invoke("screen", str(path), "-p", "ctl019-rr-ball", "--format", "json", *args)
    assert (result.returncode, result.stderr) == (0, "")
    assert numbered(result) == [(1, "R-1"), (3, "R-3"), (4, "R-4"), (8, "R-8")]
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    prior = [r for r in verdicts[0]["reasons"] if "prior_therapies" in r["answers"]]
    assert prior and prior[0]["answers"]["prior_therapies"] == ["blinatumomab", "cd19_car_t"]


@pytest.mark.usefixtures("shipped_dialogs")
def test_the_lines_of_a_quoted_cell_are_logged_as_no_patient(tmp_path: Path) -> None:
    path = tmp_path / "multi-line-cells.csv"
    path.write_text(MULTI_LINE)
    result = invoke("screen", str(path), "-p", "ctl019-rr-ball", "--log")
    assert result.returncode == 0 and "screening log: 4 records appended" in result.stderr


STRAY_QUOTES = {  # name: a row whose quote is not a cell's line breaks, and the rows after it
    "closed-mid-cell": 'R-2,2026-01-15,"40,female,50\nR-3,2026-01-15,41,"female",51\n',
    "too-many-cells": 'R-2,2026-01-15,40,"female\nR-3,2026-01-15,41,female",51,52\n',
    "closed-after-21-lines": 'R-2,2026-01-15,40,"female,50\n'
    + "".join(good_csv_row(i) for i in range(3, 24))
    + '",50\n',
    "closed-past-64-kib": 'R-2,2026-01-15,40,"female\n' + "5" * (64 << 10) + '",50\n',
}


@pytest.mark.parametrize(("engine", "jobs"), RUNS)
@pytest.mark.parametrize("name", list(STRAY_QUOTES))
def test_a_stray_quote_makes_only_its_line_bad(
    tmp_path: Path, engine: str, jobs: str, name: str
) -> None:
    # a quote may go on over 20 more lines, to a well-formed row no wider than the header;
    # else its line is bad and the next line is the next row
    path = tmp_path / "stray-quote.csv"
    path.write_text(CSV_HEAD + good_csv_row(1) + STRAY_QUOTES[name] + good_csv_row(99))
    result = screen_csv(path, engine, jobs)
    assert result.returncode == 2 and result.stderr.startswith(f"{path}: row 2: not valid CSV")
    assert numbered(result)[0] == (1, "R-1") and numbered(result)[-1][1] == "R-99"
    assert f"{path}: row 3: " in result.stderr or numbered(result)[1] == (3, "R-3")


INDEXED = {  # the index pandas' DataFrame.to_csv() and R's write.csv() write by default
    "pandas": ",referral,age,sex\n0,R-1,40,female\n1,R-2,41,male\n2,R-3,abc,male\n",
    "r": '"","referral","age","sex"\n"1","R-1",40,"female"\n"2","R-2",41,"male"\n'
    '"3","R-3","abc","male"\n',
}


@pytest.mark.parametrize(("engine", "jobs"), RUNS)
@pytest.mark.parametrize("writer", list(INDEXED))
def test_an_index_column_without_a_name_is_not_read(
    tmp_path: Path, engine: str, jobs: str, writer: str
) -> None:
    # every row was refused ("column 1 has no name in the header, but this row gives it a
    # value"); the note is no bad row: the exit code is row 3's
    path = tmp_path / f"{writer}.csv"
    path.write_text(INDEXED[writer])
    result = screen_csv(path, engine, jobs)
    assert result.returncode == 2 and numbered(result) == [(1, "R-1"), (2, "R-2")]
    assert result.stderr.splitlines() == [
        f"{path}: header: note: column 1 has no name, so its values are not read",
        f"{path}: row 3: age: 'abc': Please type a number (0–120 years).",
    ]


def test_duckdb_engine_finds_a_row_of_empty_cells_as_str_strip_does() -> None:
    # a row of no-break spaces was skipped by the Python engine and screened by DuckDB
    from screen_bot.adapters.duckdb_batch import _EMPTY_CELLS

    for code in [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000]:
        cell = chr(code)
        if cell not in '\n,"':  # a line break ends the line; quotes and commas are CSV's
            found = _EMPTY_CELLS.search(b"\n" + cell.encode() + b',"' + cell.encode() + b'"\n')
            assert (found is not None) is (not cell.strip()), hex(code)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_dot_is_refused_only_where_its_thousands_reading_is_an_answer_too(
    tmp_path: Path, engine: str
) -> None:
    # alt_x_uln's range is 0–1000: "1.000" may be 1 or 1000 × ULN, "1.200" only 1.2
    path = tmp_path / "alt.csv"
    rows = [f"R-{i},2026-01-15,{v}\n" for i, v in enumerate(["1.000", "3.001", "1.200"], 1)]
    path.write_text("referral,screened_on,alt_x_uln\n" + "".join(rows))
    result = screen(path, engine)
    assert result.returncode == 2 and referrals(result) == ["R-2", "R-3"], result.stderr
    assert result.stderr.splitlines() == [
        f"{path}: row 1: alt_x_uln: '1.000': 1.000 could be 1 or 1000: type 1 or 1000."
    ]
    verdicts = {v["referral"]: v for v in map(json.loads, result.stdout.splitlines())}
    assert "I8b" in {r["criterion"] for r in verdicts["R-2"]["reasons"]}  # 3.001 > 3 × ULN


def test_an_unknown_key_of_every_row_is_looked_up_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file screened against the wrong protocol has the same unknown keys on every row;
    the "did you mean" search ran for each (9 ms a row: 20,000 rows took minutes)."""
    import difflib

    searched: list[str] = []
    search = difflib.get_close_matches

    def counted(word: str, *args: object, **kwargs: object) -> list[str]:
        searched.append(word)
        return search(word, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(difflib, "get_close_matches", counted)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"referral":"R-{i}","ecog_x":1,"age":40}}\n' for i in range(5)))
    result = screen(path, "python")
    assert result.stderr.count("ecog_x: not a variable of blina-dli") == 5
    assert searched.count("ecog_x") == 1


@pytest.mark.parametrize("column", ["_ref", "_json", "_extra", "_day"])
def test_a_column_named_like_the_duckdb_engines_own_is_read_as_any_other(
    tmp_path: Path, column: str
) -> None:
    """Empty, its cell is no answer and the row is screened; with a value, the row is bad
    with the Python engine's message, on both engines (the DuckDB query has columns of its
    own of such names, and read those instead: every row was bad)."""
    patient = {"referral": "R-1", **ELIGIBLE_JSON}
    header = [*patient, column]
    path = tmp_path / "rows.csv"
    cells = [str(v).lower() if isinstance(v, bool) else str(v) for v in patient.values()]
    path.write_text(
        ",".join(header) + "\n" + ",".join([*cells, ""]) + "\n" + ",".join([*cells, "x"]) + "\n"
    )
    python, duckdb_ran = screen(path, "python"), screen(path, "duckdb")
    assert (duckdb_ran.stdout, duckdb_ran.stderr) == (python.stdout, python.stderr)
    assert len(python.stdout.splitlines()) == 1
    assert f"row 2: {column}: not a variable of blina-dli" in python.stderr


# each the other side of a limit or threshold once rounded to a double (audit 23, finding 3)
TOO_PRECISE = {
    "lvef_percent": "49.999999999999999",  # 50: I8e's LVEF ≥ 50 was met
    "age": "13.9999999999999999",  # 14: I1's age ≥ 14 was met
    "ecog": "2.9999999999999999",  # 3: taken as a whole number
    "serum_creatinine_mg_dl": "0.0499999999999999999",  # 0.05: its minimum
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["cells.csv", "texts.jsonl"])
def test_a_number_text_with_more_digits_than_a_double_holds_is_a_bad_row(
    tmp_path: Path, engine: str, name: str
) -> None:
    """A CSV cell or a JSON text of 17+ significant digits is refused, not rounded across a
    limit: the CSV row with LVEF 49.999999999999999 was screened with LVEF 50."""
    rows = [{"referral": f"R-{i}", v: text} for i, (v, text) in enumerate(TOO_PRECISE.items(), 1)]
    rows.append({"referral": "R-5", "lvef_percent": "49.9999999999999"})  # 15 digits: read
    rows.append({"referral": "R-6", "lvef_percent": "49.99999999999999"})  # a double's repr
    path = tmp_path / name
    if name.endswith(".csv"):
        columns = ["referral", *TOO_PRECISE]
        cells = [",".join(row.get(column, "") for column in columns) for row in rows]
        path.write_text("\n".join([",".join(columns), *cells]) + "\n")
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = screen(path, engine)
    assert result.returncode == 2 and referrals(result) == ["R-5", "R-6"], result.stderr
    for verdict in map(json.loads, result.stdout.splitlines()):  # below 50: I8e fails
        assert "I8e" in [reason["criterion"] for reason in verdict["reasons"]]
    lines = result.stderr.splitlines()
    for row, (line, (variable, text)) in enumerate(zip(lines, TOO_PRECISE.items(), strict=True), 1):
        assert line == (
            f"{path}: row {row}: {variable}: '{text}': Too many digits in {text}: "
            f"please type 15 significant digits at most{RANGES[variable]}."
        )


RANGES = {
    "lvef_percent": " (0–100 %)",
    "age": " (0–120 years)",
    "ecog": " (0–5)",
    "serum_creatinine_mg_dl": " (0.05–30 mg/dL)",
}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_json_number_is_read_as_the_json_parsers_double(tmp_path: Path, engine: str) -> None:
    """As README says: a JSON number is a double once parsed (by any JSON parser), so
    49.999999999999999 there is 50 and I8e's LVEF ≥ 50 does not fail; a text is refused."""
    path = tmp_path / "numbers.jsonl"
    path.write_text('{"referral": "R-1", "lvef_percent": 49.999999999999999}\n')
    result = screen(path, engine)
    assert result.returncode == 0 and referrals(result) == ["R-1"], result.stderr
    reasons = {r["criterion"]: r["answers"] for r in json.loads(result.stdout)["reasons"]}
    assert "I8e" not in reasons and reasons["E3a"] == {"lvef_percent": 50.0}


@pytest.mark.parametrize("name", ["cells.csv", "texts.jsonl"])
def test_a_number_text_of_seventeen_digits_is_read_as_its_double(tmp_path: Path, name: str) -> None:
    """printf("%.17g"), PostgreSQL's extra_float_digits=3 and MATLAB's num2str(x, 17) write a
    double with 17 significant digits, read back as that same double (on its side of every
    limit: 59.99999999999999 is below E3a's 60); they were refused as bad rows. Other 17+ digit
    texts still are, and both engines say the same."""
    rows = [
        ("R-1", "55.299999999999997", "0.69999999999999996"),  # 55.3 and 0.7
        ("R-2", "59.999999999999993", "0.10000000000000001"),  # 59.99999999999999 and 0.1
        ("R-3", "60.000000000000007", "1.2"),  # 60.00000000000001: E3a's LVEF < 60 not met
        ("R-4", "49.999999999999999", "1.2"),  # the double 50, not its 17 digits: refused
    ]
    columns = ["referral", "lvef_percent", "serum_creatinine_mg_dl"]
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text("\n".join(",".join(cells) for cells in [columns, *rows]) + "\n")
    else:
        path.write_text(
            "".join(json.dumps(dict(zip(columns, r, strict=True))) + "\n" for r in rows)
        )
    python, duckdb_ran = (screen(path, engine) for engine in ENGINES)
    assert (duckdb_ran.stdout, duckdb_ran.stderr) == (python.stdout, python.stderr)
    assert python.returncode == 2 and referrals(python) == ["R-1", "R-2", "R-3"], python.stderr
    assert python.stderr.splitlines() == [
        f"{path}: row 4: lvef_percent: '49.999999999999999': Too many digits in "
        f"49.999999999999999: please type 15 significant digits at most (0–100 %)."
    ]
    read = []
    for verdict in map(json.loads, python.stdout.splitlines()):
        reasons = {r["criterion"]: r["answers"] for r in verdict["reasons"]}
        read.append(reasons.get("E3a"))
    assert read == [{"lvef_percent": 55.3}, {"lvef_percent": 59.99999999999999}, None]
