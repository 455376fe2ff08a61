"""A multi-select answer that names no choice (``""``, ``","``) is not "none of them".

README: "An absent key, null or an empty cell is unknown"; none of them is ``[]`` or
``none``. Text made only of separators says neither: every path refuses it as a bad value,
as JSON Lines refuses ``""`` for a yes/no. Base answer set A of ctl019 is eligible with
``prior_therapies`` none of them (C-E5a/b cleared) and unresolved with it unknown.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cli_runner import invoke
from conftest import SHIPPED
from screen_bot.answers import AnswerError, check_value, parse_text
from test_ctl019_boundaries import PROTOCOL, A

PRIOR = PROTOCOL.questions["prior_therapies"]
NO_CHOICE = ["", " ", ",", " , ", ";", ",\n,"]


@pytest.fixture(autouse=True)
def shipped_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(SHIPPED))


def _row(**changed: Any) -> dict[str, Any]:
    plain = {
        k: list(v) if isinstance(v, tuple) else v.isoformat() if isinstance(v, date) else v
        for k, v in A.items()
    }
    return {**plain, "referral": "R-1", "screened_on": "2026-01-15", **changed}


def _screen(path: Path, engine: str) -> tuple[int, list[str], str]:
    done = invoke("screen", str(path), "-p", "ctl019-rr-ball", "-f", "json", "--engine", engine)
    verdicts = [json.loads(line)["verdict"] for line in done.stdout.splitlines()]
    return done.returncode, verdicts, done.stderr


def _jsonl(tmp_path: Path, row: dict[str, Any]) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


def _csv(tmp_path: Path, row: dict[str, Any]) -> Path:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        return ", ".join(value) if isinstance(value, list) else str(value)

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(row)
    writer.writerow([cell(v) for v in row.values()])
    path = tmp_path / "rows.csv"
    path.write_text(text.getvalue())
    return path


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_base_a_is_eligible_with_none_of_them_and_unresolved_without_an_answer(
    tmp_path: Path, engine: str
) -> None:
    assert _screen(_jsonl(tmp_path, _row(prior_therapies=[])), engine) == (0, ["eligible"], "")
    assert _screen(_jsonl(tmp_path, _row(prior_therapies="none")), engine)[1] == ["eligible"]
    unknown = _row()
    del unknown["prior_therapies"]
    assert _screen(_jsonl(tmp_path, unknown), engine)[1] == ["unresolved"]


@pytest.mark.parametrize("engine", ["python", "duckdb"])
@pytest.mark.parametrize("value", NO_CHOICE, ids=repr)
def test_a_multi_select_with_no_choice_in_it_is_not_none_of_them(
    tmp_path: Path, engine: str, value: str
) -> None:
    code, verdicts, errors = _screen(_jsonl(tmp_path, _row(prior_therapies=value)), engine)
    assert (code, verdicts) == (2, []), errors
    assert "prior_therapies" in errors and "No choice given" in errors
    # as "" for a yes/no: a bad row, not screened
    bad_yes_no = _screen(_jsonl(tmp_path, _row(primary_refractory=value)), engine)
    assert bad_yes_no[:2] == (2, [])


@pytest.mark.parametrize("engine", ["python", "duckdb"])
@pytest.mark.parametrize("value", [",", " , ", ";", ", ;"], ids=repr)
def test_a_csv_cell_of_only_a_comma_is_not_none_of_them(
    tmp_path: Path, engine: str, value: str
) -> None:
    code, verdicts, errors = _screen(_csv(tmp_path, _row(prior_therapies=value)), engine)
    assert (code, verdicts) == (2, []), errors
    assert "prior_therapies" in errors and "No choice given" in errors


@pytest.mark.parametrize("engine", ["python", "duckdb"])
@pytest.mark.parametrize("value", ["", " ", "  "], ids=repr)
def test_an_empty_csv_cell_of_a_multi_select_is_unknown(
    tmp_path: Path, engine: str, value: str
) -> None:
    assert _screen(_csv(tmp_path, _row(prior_therapies=value)), engine) == (0, ["unresolved"], "")


@pytest.mark.parametrize("value", [",", " , ", ";;", ",\n"], ids=repr)
def test_a_typed_answer_of_only_separators_is_asked_again(value: str) -> None:
    """The terminal dialog, the bot and `check` type an answer with parse_text."""
    with pytest.raises(AnswerError, match="No choice given; write 'none'"):
        parse_text(PRIOR, value)
    with pytest.raises(AnswerError, match="No choice given"):
        check_value(PRIOR, value)
    assert parse_text(PRIOR, "none") == ()


def test_chat_asks_a_multi_select_again_after_a_bare_comma() -> None:
    done = invoke("chat", "-p", "ctl019-rr-ball", stdin="\n1\nno\nno\n,\nquit\n")
    question = "Ever received any of these?"
    assert done.stdout.count(question) == 2, done.stdout + done.stderr
    assert "No choice given; write 'none' for none of them." in done.stdout


def test_check_takes_no_value_from_a_multi_select_of_only_a_separator() -> None:
    done = invoke("check", "-p", "ctl019-rr-ball", "prior_therapies ;")
    assert "no value for prior_therapies" in done.stdout, done.stdout + done.stderr
    assert "prior_therapies" in done.stdout.split("Still unknown")[1]
