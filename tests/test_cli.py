"""The installed `screen-bot` command, run as a subprocess: screen (batch), chat, protocols."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli_runner import Ran, invoke, process
from conftest import DIALOG, DIALOGS, REPO
from patients import ELIGIBLE
from screen_bot.engine import Engine
from screen_bot.protocol import load
from steps import lines_for

TOP_KEYS = [
    "row",
    "referral",
    "verdict",
    "reasons",
    "open_items",
    "estimated",
    "estimates",
    "warnings",
    "protocol",
    "screened_on",
]
NOT_ELIGIBLE = re.compile(r"not[ _]eligible", re.I)


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> Ran:
    """In-process, like every CLI test but the smoke tests at the end."""
    return invoke(*args, stdin=stdin)


def screen(tmp_path: Path, file: Path, *extra: str) -> Ran:
    return run(tmp_path, "screen", str(file), "--protocol", "blina-dli", *extra)


def dumps(value: Any) -> str:
    """JSON of a batch row: dates in ISO form."""
    return json.dumps(value, default=str)


def records(result: Ran) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def failed(record: dict[str, Any]) -> set[str]:
    return {r["criterion"] for r in record["reasons"]}


# -- screen: input formats and the output shape ----------------------------------------------------


def test_one_json_object_and_the_output_shape(tmp_path: Path) -> None:
    patient = {
        **ELIGIBLE,
        "referral": "R-0423",
        "sex": "male",
        "age": 13,
        "ecog": 3,
        "karnofsky": 60,
        "lvef_percent": 55,
        "qtc_ms": 460,
        "ast_x_uln": None,
    }
    file = tmp_path / "one.json"
    file.write_text(dumps(patient), encoding="utf-8")
    result = screen(tmp_path, file, "--format", "json")
    assert result.returncode == 0, result.stderr
    (record,) = records(result)
    assert list(record) == TOP_KEYS
    assert record["row"] == 1
    assert record["referral"] == "R-0423"
    assert record["verdict"] == "not_eligible"
    # every failed criterion is listed, not just the first
    assert failed(record) == {"I1", "I6a", "I6b", "E3a", "E3c"}
    for reason in record["reasons"]:
        assert isinstance(reason["criterion"], str)
    assert record["open_items"] == []  # open items only for an unresolved verdict
    assert set(record["protocol"]) == {"id", "version", "sha256"}
    assert record["protocol"]["id"] == "blina-dli"
    assert record["protocol"]["sha256"] == hashlib.sha256(DIALOG.read_bytes()).hexdigest()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["screened_on"])


def test_unresolved_output_shape(tmp_path: Path) -> None:
    file = tmp_path / "open.json"
    file.write_text(
        dumps({**ELIGIBLE, "karnofsky": None, "expected_survival_over_3_months": None}),
        encoding="utf-8",
    )
    result = screen(tmp_path, file, "--format", "json")
    assert result.returncode == 0, result.stderr
    (record,) = records(result)
    assert list(record) == TOP_KEYS
    assert record["verdict"] == "unresolved"
    assert record["reasons"] == []
    assert record["referral"] is None
    items = {(o["criterion"], o["variable"], o["kind"]) for o in record["open_items"]}
    assert items == {
        ("I6b", "karnofsky", "missing"),
        ("I9", "expected_survival_over_3_months", "judgment"),
    }
    for item in record["open_items"]:
        assert {"criterion", "variable", "kind"} <= set(item)


def test_json_lines_all_good_exit_0(tmp_path: Path) -> None:
    rows = [
        {**ELIGIBLE, "referral": "R-1"},
        {**ELIGIBLE, "referral": "R-2", "sex": "male", "qtc_ms": 451},
        {"referral": "R-3", "age": 40},
        {**ELIGIBLE, "referral": "R-4", "alt_x_uln": None, "bilirubin_x_uln": 3.5},
    ]
    file = tmp_path / "rows.jsonl"
    file.write_text("".join(dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = screen(tmp_path, file, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    out = records(result)
    assert [r["row"] for r in out] == [1, 2, 3, 4]
    assert [r["referral"] for r in out] == ["R-1", "R-2", "R-3", "R-4"]
    assert [r["verdict"] for r in out] == ["eligible", "not_eligible", "unresolved", "not_eligible"]
    assert failed(out[1]) == {"E3c"}
    assert failed(out[3]) == {"I8c", "E5"}


def test_csv_with_referral_column_and_empty_cells(tmp_path: Path) -> None:
    header = ["referral", *ELIGIBLE]
    file = tmp_path / "rows.csv"
    with file.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)

        def cells(**changes: Any) -> list[str]:
            values = {**ELIGIBLE, **changes}
            out = []
            for key in header:
                value = values.get(key)
                if value is None:
                    out.append("")
                elif isinstance(value, bool):
                    out.append("yes" if value else "no")
                else:
                    out.append(str(value))
            return out

        writer.writerow(cells(referral="R-10"))
        writer.writerow(cells(referral="", karnofsky=None))  # empty cells: unknown
        writer.writerow(cells(referral="R-12", creatinine_x_uln="2.01", crcl_ml_min="49.9"))
        writer.writerow(cells(referral="R-13", ast_x_uln="45/40", mrd_negative=False))
    result = screen(tmp_path, file, "--format", "json")
    assert result.returncode == 0, result.stderr
    out = records(result)
    assert [r["row"] for r in out] == [1, 2, 3, 4]
    assert [r["referral"] for r in out] == ["R-10", None, "R-12", "R-13"]
    assert [r["verdict"] for r in out] == [
        "eligible",
        "unresolved",
        "not_eligible",
        "not_eligible",
    ]
    assert {(o["criterion"], o["variable"]) for o in out[1]["open_items"]} == {("I6b", "karnofsky")}
    assert failed(out[2]) == {"I8d", "E6a", "E6b"}
    assert failed(out[3]) == {"I5b"}


def test_text_output(tmp_path: Path) -> None:
    file = tmp_path / "one.json"
    file.write_text(dumps({**ELIGIBLE, "referral": "R-7", "ecog": 3}), encoding="utf-8")
    result = screen(tmp_path, file)
    assert result.returncode == 0, result.stderr
    assert NOT_ELIGIBLE.search(result.stdout)
    assert "R-7" in result.stdout
    assert "I6a" in result.stdout


def test_bad_json_lines_are_reported_and_the_others_screened(tmp_path: Path) -> None:
    lines = [
        dumps({**ELIGIBLE, "referral": "R-1"}),  # 1 good
        dumps({**ELIGIBLE, "age": "forty"}),  # 2 wrong type
        dumps({**ELIGIBLE, "qtc_ms": 900}),  # 3 out of range
        dumps({**ELIGIBLE, "agee": 40}),  # 4 unknown key
        '{"age": 40,',  # 5 invalid JSON
        dumps({**ELIGIBLE, "referral": "John Smith"}),  # 6 a name, with a space
        dumps({**ELIGIBLE, "ecog": 2.5}),  # 7 not a whole number
        dumps({**ELIGIBLE, "arrhythmia": "yes"}),  # 8 yes/no as a string
        dumps({**ELIGIBLE, "referral": "R-9", "ecog": 3}),  # 9 good
    ]
    file = tmp_path / "mixed.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = screen(tmp_path, file, "--format", "json")
    assert result.returncode == 2
    out = records(result)
    assert [(r["row"], r["referral"], r["verdict"]) for r in out] == [
        (1, "R-1", "eligible"),
        (9, "R-9", "not_eligible"),
    ]
    errors = result.stderr.splitlines()

    def reported(row: int, *words: str) -> None:
        hits = [e for e in errors if re.search(rf"\brow {row}\b", e)]
        assert hits, f"row {row} not reported:\n{result.stderr}"
        assert any(all(w in e for w in words) for e in hits), hits

    reported(2, "age")
    reported(3, "qtc_ms", "200", "800")
    reported(4, "agee", "age")
    reported(5, "JSON")
    reported(6, "referral")
    reported(7, "ecog")
    reported(8, "arrhythmia")
    assert not any(re.search(r"\brow (1|9)\b", e) for e in errors)
    assert "John Smith" not in result.stdout


def test_bad_csv_rows_are_reported_and_the_others_screened(tmp_path: Path) -> None:
    file = tmp_path / "mixed.csv"
    file.write_text(
        "referral,age,ecog,sex,qtc_ms\n"
        "R-1,40,1,male,451\n"
        "R-2,abc,1,male,400\n"
        "Jane Doe,40,1,female,400\n"
        "R-4,40,7,female,400\n"
        "R-5,40,1,x,400\n"
        "R-6,40,3,,\n",
        encoding="utf-8",
    )
    result = screen(tmp_path, file, "--format", "json")
    assert result.returncode == 2
    out = records(result)
    assert [(r["row"], r["referral"]) for r in out] == [(1, "R-1"), (6, "R-6")]
    assert failed(out[0]) == {"E3c"}
    assert failed(out[1]) == {"I6a"}
    stderr = result.stderr
    assert re.search(r"\brow 2\b.*\bage\b", stderr)
    assert re.search(r"\brow 3\b.*\breferral\b", stderr)
    assert re.search(r"\brow 4\b.*\becog\b.*0–5", stderr)
    assert re.search(r"\brow 5\b.*\bsex\b", stderr)
    assert "Jane Doe" not in result.stdout


def test_csv_unknown_column_makes_a_row_with_a_value_there_bad(tmp_path: Path) -> None:
    file = tmp_path / "column.csv"
    file.write_text("referral,age,ecogg\nR-1,13,1\nR-2,13,\n", encoding="utf-8")
    result = screen(tmp_path, file, "--format", "json")
    assert result.returncode == 2
    assert result.stderr == (
        f"{file}: row 1: ecogg: not a variable of blina-dli; did you mean 'ecog'?\n"
    )
    (record,) = records(result)  # row 2: an empty cell is no answer
    assert record["row"] == 2 and failed(record) == {"I1"}


# -- chat: the terminal dialog, driven through stdin --------------------------------------------


def text_of(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


# The dictionary's "asked when": with a measured CrCl, weight and serum creatinine are not
# asked; for a woman of childbearing potential everything else is.
NOT_ASKED = ("weight_kg", "serum_creatinine_mg_dl")  # crcl_ml_min is known
ASKED = [v for v in ELIGIBLE if v not in NOT_ASKED]  # the questions asked of this woman


def dialog_order() -> list[str]:
    """The questions in the dialog file's order (their order is the project's choice)."""
    order = re.findall(r"^  - variable: (\w+)$", DIALOG.read_text(encoding="utf-8"), re.M)
    return [v for v in order if v in ASKED]


def question_texts() -> dict[str, str]:
    texts = re.findall(
        r"^  - variable: (\w+)$(?:\n    .*)*?\n    text: (.+)$",
        DIALOG.read_text(encoding="utf-8"),
        re.M,
    )
    return dict(texts)


def chat(tmp_path: Path, lines: list[str], *extra: str) -> Ran:
    """The terminal dialog; without --referral the first line answers the referral prompt
    (empty: skipped)."""
    if "--referral" not in extra:
        lines = ["", *lines]
    return run(
        tmp_path, "chat", "--protocol", "blina-dli", *extra, stdin="".join(f"{x}\n" for x in lines)
    )


def step_lines(answers: dict[str, Any]) -> list[str]:
    """What the coordinator types, step by step (a checklist is one line)."""
    return [line for _, line in lines_for(Engine(load(DIALOG)), answers, text_of)]


def step_of(answers: dict[str, Any], variable: str) -> int:
    """The index of the step that asks ``variable``."""
    steps = lines_for(Engine(load(DIALOG)), answers, text_of)
    return next(i for i, (items, _) in enumerate(steps) if variable in items)


def test_dialog_order_covers_the_asked_questions() -> None:
    assert sorted(dialog_order()) == sorted(ASKED)
    assert set(question_texts()) >= set(ASKED)


def test_chat_full_eligible_screening(tmp_path: Path) -> None:
    result = chat(tmp_path, step_lines(ELIGIBLE), "--referral", "R-0423")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    texts = question_texts()
    for variable in dialog_order():
        assert out.count(texts[variable]) == 1, variable
    for skipped in ("weight_kg", "serum_creatinine_mg_dl"):
        assert texts[skipped] not in out
    assert re.search(r"\beligible\b", out, re.I)
    assert not NOT_ELIGIBLE.search(out)
    assert "R-0423" in out


def test_chat_bad_answer_is_explained_and_asked_again(tmp_path: Path) -> None:
    answers = step_lines(ELIGIBLE)
    yes_no = step_of(ELIGIBLE, "childbearing_potential")  # a yes/no question on its own
    lines = ["forty", "12.5", *answers[:yes_no], "maybe", "twelve", *answers[yes_no:]]
    result = chat(tmp_path, lines)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    texts = question_texts()
    assert out.count(texts["age"]) == 3  # asked, then again after each bad answer
    assert out.count(texts["childbearing_potential"]) == 3
    assert "numbers (1–8)" not in out  # no checklist line was refused
    assert "0–120" in out
    assert "whole number" in out
    assert "yes / no" in out  # the refusal lists the accepted forms
    assert not NOT_ELIGIBLE.search(out)


def test_chat_back_replaces_the_answer(tmp_path: Path) -> None:
    result = chat(tmp_path, ["40", "back", "13"])
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    texts = question_texts()
    assert out.count(texts["age"]) == 2
    assert NOT_ELIGIBLE.search(out)
    assert "I1" in out
    assert "13" in out


def test_chat_back_at_the_first_question(tmp_path: Path) -> None:
    result = chat(tmp_path, ["back", "13"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(question_texts()["age"]) == 2
    assert NOT_ELIGIBLE.search(result.stdout)


def test_chat_unknown_answer_leaves_the_verdict_unresolved(tmp_path: Path) -> None:
    result = chat(tmp_path, step_lines({**ELIGIBLE, "karnofsky": "?"}))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"unresolved", out, re.I)
    assert "I6b" in out and "karnofsky" in out
    assert not NOT_ELIGIBLE.search(out)


def test_chat_quit(tmp_path: Path) -> None:
    result = chat(tmp_path, ["40", "quit", "yes", "yes"])
    assert result.returncode == 0  # quitting is a normal end
    out = result.stdout
    texts = question_texts()
    assert texts["b_all_cd19_positive"] in out  # in the checklist after age
    assert texts["transplant_date"] not in out  # nothing is read after quit
    assert not re.search(r"\beligible\b", out, re.I)


def test_chat_end_of_input_stops_cleanly(tmp_path: Path) -> None:
    result = chat(tmp_path, ["40"])
    assert result.returncode == 1


def test_chat_rejects_a_referral_that_looks_like_a_name(tmp_path: Path) -> None:
    result = chat(tmp_path, ["40"], "--referral", "John Smith")
    assert result.returncode == 2
    assert "referral" in result.stderr


# -- protocols -----------------------------------------------------------------------------------


def test_protocols(tmp_path: Path) -> None:
    result = run(tmp_path, "protocols")
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert ["blina-dli", "1.1"] in [line[:2] for line in lines]
    (title,) = [line[2] for line in lines if line[0] == "blina-dli"]
    assert "Blinatumomab" in title


# -- real processes: start-up smoke tests ---------------------------------------------------


def test_installed_command_starts_and_helps_without_bool_metavars() -> None:
    result = process("--help")
    assert result.returncode == 0
    assert "chat" in result.stdout and "where" in result.stdout and "log" in result.stdout
    screen_help = process("screen", "--help")
    assert "--log" in screen_help.stdout and "<bool>" not in screen_help.stdout


def test_check_help_says_whose_variable_names_its_example_uses() -> None:
    """lvef and qtc are blina-dli's names: with another protocol the example reads none."""
    shown = " ".join(process("check", "--help").stdout.split())
    assert "'age 40, male, lvef 55, qtc 430' (blina-dli's names)" in shown


def test_installed_command_screens_in_the_terminal() -> None:
    answers = step_lines(ELIGIBLE)
    result = process("chat", "--referral", "R-0423", stdin="".join(f"{a}\n" for a in answers))
    assert result.returncode == 0, result.stderr
    assert "PRE-SCREEN PASSED" in result.stdout and "Screening log: record 1." in result.stdout


def test_where_prints_the_data_directory_and_database(isolated: Path) -> None:
    result = invoke("where")
    assert result.returncode == 0
    assert f"data directory:    {isolated}" in result.stdout
    assert f"{isolated / 'screen-bot.sqlite3'} (not created yet)" in result.stdout
    assert str(DIALOGS) in result.stdout
    assert f"cache directory:   {isolated.parent / 'cache'}" in result.stdout  # conftest's
    assert "time zone:         UTC (" in result.stdout


def test_where_names_a_database_left_in_the_earlier_default_data_directory(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions before 2026-11-25 kept it in ./data: after an upgrade a command would start
    a second, empty database in the new default, without a word."""
    site = isolated.parent / "site"
    (site / "data").mkdir(parents=True)
    (site / "data" / "screen-bot.sqlite3").write_bytes(b"an old version's database")
    monkeypatch.chdir(site)
    earlier = f"earlier database:  {site / 'data' / 'screen-bot.sqlite3'} (./data, the default"
    assert earlier in invoke("where").stdout
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", "data")  # README's fix: it is the database then
    assert "earlier database" not in invoke("where").stdout
    monkeypatch.chdir(isolated.parent)  # no ./data/screen-bot.sqlite3 here
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(isolated))
    assert "earlier database" not in invoke("where").stdout


def test_where_says_what_its_cache_directory_keeps(isolated: Path, monkeypatch) -> None:
    """A cache directory holding the dialog files was labelled as holding checked files."""
    monkeypatch.setenv("SCREEN_BOT_CACHE_DIR", str(DIALOGS))
    result = invoke("where")
    assert f"cache directory:   {DIALOGS} (it holds YAML files, so nothing is kept" in result.stdout
    monkeypatch.setenv("SCREEN_BOT_CACHE_DIR", str(isolated / "new"))
    result = invoke("where")
    assert f"cache directory:   {isolated / 'new'} (not created yet: " in result.stdout


def test_where_prints_the_sites_time_zone(isolated: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCREEN_BOT_TIMEZONE", "Australia/Sydney")
    result = invoke("where")
    assert result.returncode == 0
    assert "time zone:         Australia/Sydney (the day a chat or check is dated)" in result.stdout


def test_default_cache_directory_is_the_platforms(monkeypatch) -> None:
    from platformdirs import user_cache_dir

    from screen_bot.settings import Settings

    monkeypatch.delenv("SCREEN_BOT_CACHE_DIR")
    assert Settings().cache_dir == Path(user_cache_dir("screen-bot", appauthor=False))


def test_default_data_directory_is_the_platforms(monkeypatch) -> None:
    from platformdirs import user_data_dir

    from screen_bot.settings import Settings

    monkeypatch.delenv("SCREEN_BOT_DATA_DIR")
    assert Settings().data_dir == Path(user_data_dir("screen-bot", appauthor=False))
    assert Settings().data_dir.is_absolute()


def test_the_readme_json_example_is_real_output(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```json\n(\{\"row\".*?)\n```", readme, re.S)
    shown = json.loads(example)
    file = tmp_path / "one.json"
    file.write_text(dumps({**ELIGIBLE, "referral": "R-0423", "qtc_ms": 480}), encoding="utf-8")
    (real,) = records(screen(tmp_path, file, "--format", "json"))
    assert shown["protocol"].pop("sha256") == "…" and real["protocol"].pop("sha256")
    assert shown.pop("screened_on") and real.pop("screened_on")
    assert shown == real


def _commands(command: Any, path: str = "") -> Any:
    """Each command of the command line (groups walked), with its path: 'log purge'."""
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield path.strip(), command
    for name, sub in (subcommands or {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_every_option_of_every_command_is_named_in_the_readme() -> None:
    """README never named screen --input-format, quiz --trainee or log purge -y/--yes."""
    import typer.main

    from screen_bot.cli.app import app

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    unnamed = [
        f"{path} {'/'.join(option.opts)}"
        for path, command in _commands(typer.main.get_command(app))
        for option in command.params
        if option.param_type_name == "option" and "--help" not in option.opts
        if not any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", readme) for o in option.opts)
    ]
    assert unnamed == []


def test_an_unexpected_error_is_one_line_and_a_trace_file(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from screen_bot.cli import dialogs
    from screen_bot.cli.app import run

    def broken() -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(dialogs.options, "catalog", broken)
    with CliRunner().isolation() as (out, err, _):
        code = run(["protocols"])
        sys.stderr.flush()
        stderr = err.getvalue().decode()
    assert code == 1
    (line,) = stderr.splitlines()
    assert line.startswith("unexpected error: RuntimeError; full trace in ")
    trace = Path(line.rsplit(" in ", 1)[1])
    assert trace.parent == isolated and oct(trace.stat().st_mode & 0o777) == "0o600"
    assert "Traceback" in trace.read_text() and "internal detail" not in stderr


def test_chat_quotes_a_bad_answer_escaped_as_check_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # (an escape sequence clears the terminal, U+202E reverses the line: shown, never run)
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(REPO / "dialogs"))
    typed = "\x1b[2Jfoo\u202e" + "x" * 100
    done = invoke("chat", "-p", "ctl019-rr-ball", stdin=f"\n2\n{typed}\nquit\n")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout
    assert "'\\x1b[2Jfoo\\u202exxx" in done.stdout and "x…' is not one of:" in done.stdout
    checked = invoke("check", "-p", "ctl019-rr-ball", typed).stdout
    assert "'\\x1b[2Jfoo\\u202exxx" in checked and "\x1b" not in checked


def test_errors_say_what_to_do_for_all_on_duckdb_and_a_data_directory_that_is_a_file(
    isolated: Path, tmp_path: Path, monkeypatch
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"age": 40}\n')
    done = invoke("screen", str(rows), "-p", "all", "--engine", "duckdb")
    assert done.returncode == 2 and "--protocol all needs --engine python" in done.stderr
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(rows))
    done = invoke("log", "stats")
    assert done.returncode == 2 and f"the data directory {rows} is a file" in done.stderr
