"""Yes/no words and choices as people type them, read alike by the dialog, `check` and both
batch engines (CSV cells are typed answers).

Issue 13 asks for the words people type and to "keep the refusals that protect
correctness"; the README says `check` reads values "exactly as the dialog types them".
Base answer set A of ctl019 is eligible.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from conftest import SHIPPED
from screen_bot.answers import AnswerError, parse_text
from screen_bot.quick_check import judge, read
from test_ctl019_boundaries import PROTOCOL
from test_multi_select_no_choice import _csv, _row, _screen

ON = date(2026, 1, 15)


@pytest.fixture(autouse=True)
def shipped_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(SHIPPED))


def refusal(variable: str, text: str) -> str:
    with pytest.raises(AnswerError) as info:
        parse_text(PROTOCOL.questions[variable], text, ON)
    return str(info.value)


# -- "ok" is no yes: at the bedside "hiv ok" means normal, i.e. no ------------------------------


@pytest.mark.parametrize("variable", ["hiv_infection", "burkitt", "pregnant_or_lactating"])
@pytest.mark.parametrize("text", ["ok", "OK", "Ok."])
def test_ok_is_refused_with_the_yes_no_message(variable: str, text: str) -> None:
    assert refusal(variable, text) == refusal(variable, "maybe")


def test_check_hiv_ok_is_listed_not_read_as_an_exclusion() -> None:
    reading = read(PROTOCOL, "hiv_infection ok, burkitt ok", ON)
    assert "hiv_infection" not in reading.values and "burkitt" not in reading.values
    assert [u.part for u in reading.unread] == ["hiv_infection ok", "burkitt ok"]
    (judged,) = judge(PROTOCOL, reading, ON)
    assert judged.verdict.verdict != "not_eligible"


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_a_csv_ok_is_a_bad_value_on_both_engines(tmp_path: Path, engine: str) -> None:
    def screened(hiv: str) -> tuple[int, list[str], str]:
        return _screen(_csv(tmp_path, _row(hiv_infection=hiv, prior_therapies="none")), engine)

    code, verdicts, errors = screened("ok")
    assert (code, verdicts) == (2, []), errors
    assert "hiv_infection" in errors and "Please answer yes / no" in errors
    assert screened("no") == (0, ["eligible"], "")
