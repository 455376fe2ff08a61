"""Batch input that is not what it should be: every bad row is reported, the others are
screened, and nothing ends in a traceback (issue #10, defect 5); --jobs changes nothing but
speed (issue #14)."""

from __future__ import annotations

import codecs
import json
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import pytest

from cli_runner import Ran, invoke, process
from patients import ELIGIBLE_JSON

GOOD = json.dumps({**ELIGIBLE_JSON, "referral": "R-1", "screened_on": "2026-01-15"})


def screen(path: Path, *extra: str) -> Ran:
    return invoke("screen", str(path), "--protocol", "blina-dli", "--format", "json", *extra)


def rows(result: Ran) -> list[int]:
    return [json.loads(line)["row"] for line in result.stdout.splitlines()]


# (name, the middle line of a three-line JSON Lines file, what stderr says about row 2)
BAD_LINES = [
    ("400-digit-number", '{"age": 1' + "0" * 400 + ".5}", "finite number"),
    ("5000-digit-integer", '{"age": 1' + "0" * 5000 + "}", "too long to be an answer"),
    ("deeply-nested", '{"age": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deep"),
    ("duplicated-key", '{"age": 40, "age": 50}', "'age' is given twice"),
    ("not-an-object", "[1, 2, 3]", "expected a JSON object"),
    ("broken-json", '{"age": 40', "not valid JSON"),
    ("line-over-1-mib", '{"referral": "' + "x" * (1 << 20) + '"}', "longer than 1 MiB"),
    ("huge-int-value", '{"age": 100000000000000000000}', "out of range"),
    ("text-for-a-number", '{"age": "forty"}', "age"),
]


@pytest.mark.parametrize(("name", "line", "said"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_a_bad_json_line_is_a_bad_row_and_the_others_are_screened(
    tmp_path: Path, name: str, line: str, said: str
) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_text(f"{GOOD}\n{line}\n{GOOD}\n", encoding="utf-8")
    result = screen(path)
    assert result.returncode == 2
    assert rows(result) == [1, 3]
    assert "row 2: " in result.stderr and said in result.stderr
    assert len(result.stderr) < 2000  # the offending text is not echoed back whole


def test_bytes_that_are_not_utf8_make_their_row_bad(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        f"{GOOD}\n".encode() + '{"referral": "R-é"}\n'.encode("latin-1") + f"{GOOD}\n".encode()
    )
    result = screen(path)
    assert (result.returncode, rows(result)) == (2, [1, 3])
    assert "row 2: not UTF-8 text" in result.stderr


def test_a_csv_field_over_1_mib_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("referral,age\nR-1,40\nR-2," + "9" * (2 << 20) + "\nR-3,41\n", "utf-8")
    result = screen(path)
    assert result.returncode == 2
    assert [json.loads(x)["referral"] for x in result.stdout.splitlines()] == ["R-1", "R-3"]
    assert "row 2: the line is longer than 1 MiB" in result.stderr


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("utf16", codecs.BOM_UTF16_LE + GOOD.encode("utf-16-le"), "UTF-16"),
        ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "not a text file"),
    ],
)
def test_an_undecodable_file_is_refused_as_a_whole(
    tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(data)
    result = screen(path)
    assert result.returncode == 2 and result.stdout == ""
    assert said in result.stderr


def test_a_bom_is_accepted_on_stdin_as_in_files(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + f"{GOOD}\n{GOOD}\n".encode()
    path = tmp_path / "bom.jsonl"
    path.write_bytes(data)
    from_file = screen(path)
    from_stdin = process(
        "screen", "-", "--protocol", "blina-dli", "--format", "json", stdin=data.decode("utf-8")
    )
    assert from_file.returncode == from_stdin.returncode == 0, from_stdin.stderr
    assert from_file.stdout == from_stdin.stdout and rows(from_stdin) == [1, 2]


def test_jobs_give_the_same_output_in_the_same_order(tmp_path: Path) -> None:
    lines = []
    for i in range(4500):  # more than two chunks of 2,000 rows
        row = {**ELIGIBLE_JSON, "referral": f"R-{i}", "screened_on": "2026-01-15"}
        if i % 7 == 0:
            row["qtc_ms"] = 480
        if i % 11 == 0:
            row["lvef_percent"] = None
        lines.append(json.dumps(row) if i % 1000 != 500 else '{"age": "bad"}')
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    one = process("screen", str(path), "--protocol", "blina-dli", "--format", "json")
    two = process("screen", str(path), "--protocol", "blina-dli", "--format", "json", "-j", "2")
    assert one.returncode == two.returncode == 2
    assert one.stdout == two.stdout
    assert one.stderr == two.stderr and one.stderr.count(": row ") == 4
    assert rows(Ran(0, two.stdout, "")) == [n for n in range(1, 4501) if n % 1000 != 501]


def test_a_key_with_terminal_control_characters_is_reported_escaped(tmp_path: Path) -> None:
    path = tmp_path / "escape.jsonl"
    path.write_text(json.dumps({"\x1b[2J\x1b]0;x\x07": 1, "referral": "R-1"}) + "\n")
    result = screen(path)
    assert result.returncode == 2 and "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "row 1: \\x1b[2J\\x1b]0;x\\x07: not a variable" in result.stderr
    path = tmp_path / "escape.csv"
    path.write_text("referral,\x1b[31mred\nR-1,5\n")
    result = screen(path)
    assert "row 1: \\x1b[31mred: not a variable" in result.stderr


def test_json_lines_in_a_json_file_are_split_at_line_feeds_only(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"  # U+2028 inside a string is text, not a line break
    path.write_text('{"age": 40, "sex": "fe\u2028male"}\n{"referral": "R-2", "age": "x"}\n')
    result = screen(path)
    assert result.returncode == 2 and "row 3" not in result.stderr
    assert "row 1: sex: 'fe\\u2028male'" in result.stderr and "row 2: age: 'x'" in result.stderr


class _FixedClock(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _FixedClock:
        moment = datetime(2026, 3, 1, 12, tzinfo=UTC)
        return cls.fromtimestamp(moment.timestamp(), tz)


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_an_empty_screened_on_is_today_in_a_csv_cell_and_a_bad_value_in_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """README: an empty cell is unknown, and screened_on's default is today; in JSON "" is a
    bad value for every key (the Python engine took it for today, DuckDB blamed free text)."""
    from screen_bot import answers

    monkeypatch.setattr(answers, "datetime", _FixedClock)
    path = tmp_path / "empty.jsonl"
    path.write_text(json.dumps({**ELIGIBLE_JSON, "screened_on": ""}) + "\n" + GOOD + "\n")
    result = screen(path, "--engine", engine)
    assert result.returncode == 2 and rows(result) == [2]
    assert result.stderr == (
        f"{path}: row 1: screened_on: '': expected a date as YYYY-MM-DD "
        "(for today leave the key out, or null)\n"
    )
    path = tmp_path / "empty.csv"
    path.write_text("referral,age,screened_on\nR-1,40,\nR-2,40, \nR-3,40,\t2026-01-15\n")
    result = screen(path, "--engine", engine)
    days = [json.loads(line)["screened_on"] for line in result.stdout.splitlines()]
    if engine == "python":
        assert result.returncode == 0 and days == ["2026-03-01", "2026-03-01", "2026-01-15"]
    else:  # DuckDB's trim() leaves a tab: never said to be free text
        assert result.returncode == 2 and days == ["2026-03-01", "2026-03-01"]
        assert result.stderr == (
            f"{path}: row 3: screened_on: a value the DuckDB engine does not read (it reads "
            "YYYY-MM-DD without a tab or line break around it); --engine python reads it\n"
        )


@pytest.mark.parametrize("engine", ["python", "duckdb"])
@pytest.mark.parametrize(
    "day", ["2026-W03-4", "20260115", "2026-01-15T00:00", "２０２６-01-15", "0000-01-01"]
)
def test_screened_on_is_read_as_yyyy_mm_dd_only(tmp_path: Path, day: str, engine: str) -> None:
    # DuckDB reads 0000-01-01 as 1 BC, which Python cannot hold: that was an unexpected error
    for suffix, text in [
        (".jsonl", json.dumps({**ELIGIBLE_JSON, "screened_on": day}) + "\n"),
        (".csv", f"age,screened_on\n40,{day}\n"),
    ]:
        path = tmp_path / f"day{suffix}"
        path.write_text(text, encoding="utf-8")
        result = screen(path, "--engine", engine)
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert (
            result.stderr == f"{path}: row 1: screened_on: {day!r}: expected a date as YYYY-MM-DD\n"
        )
