"""A site's many trials: three valid protocols (the two shipped and a third) side by side,
in two dialogs directories with a broken file, run through the command line and the bot."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cli_runner import SCREEN_BOT, invoke
from conftest import SHIPPED
from format2 import dialog, dump, inclusion, integer, yes_no
from screen_bot.adapters.telegram import messages as say
from screen_bot.adapters.telegram.app import build_application
from screen_bot.adapters.telegram.callback_data import Choice, ContinueCheck
from screen_bot.adapters.telegram.choosing import split_protocol
from screen_bot.protocol.catalog import Catalog
from screen_bot.settings import Settings
from screen_bot.storage import Database, ledger, sessions
from telegram_offline import Chat, RecordingRequest
from test_telegram_transcript import COORDINATOR, TOKEN

# A third protocol: shares `age` with both shipped ones (same type, range and unit).
ELIANA = dialog(
    [integer("age", unit="years"), yes_no("refractory")],
    [inclusion("E-I1", "age >= 18"), inclusion("E-I2", "refractory")],
    id="eliana",
)
CHOICES = ["blina-dli", "ctl019-rr-ball", "eliana", "all"]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Two dialogs directories: the three protocols, and one broken file."""
    trials, more = tmp_path / "trials", tmp_path / "more"
    trials.mkdir()
    more.mkdir()
    for name in ("blina-dli.yaml", "ctl019-rr-ball.yaml"):
        shutil.copy2(SHIPPED / name, trials / name)
    (trials / "eliana.yaml").write_text(dump(ELIANA), encoding="utf-8")
    (more / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", f"{trials}{os.pathsep}{more}")
    return trials, more


def logged(data: Path) -> list[ledger.LogRecord]:
    with Database.existing(data / "screen-bot.sqlite3") as db:
        return list(ledger.records(db.read()))


# -- the command line ------------------------------------------------------------------------


def test_protocols_lists_every_protocol_and_each_broken_file(site: tuple[Path, Path]) -> None:
    done = invoke("protocols")
    assert done.returncode == 0, done.stderr
    ids = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert ids[:3] == ["blina-dli", "ctl019-rr-ball", "eliana"]
    (broken,) = [line for line in done.stdout.splitlines() if "\tbroken\t" in line]
    assert broken.startswith(str(site[1] / "broken.yaml")) and "line 3: YAML syntax" in broken


def test_an_editors_lock_file_is_not_a_dialog_file(site: tuple[Path, Path]) -> None:
    """Emacs links .#eliana.yaml to nothing while eliana.yaml is edited: the running bot
    reads the files again at such a moment, and must not report the lock as broken."""
    lock = site[0] / ".#eliana.yaml"
    lock.symlink_to("user@host.1234:1700000000")
    listed = invoke("protocols")
    assert listed.returncode == 0, listed.stderr
    assert ".#eliana" not in listed.stdout and "broken.yaml" in listed.stdout
    assert str(lock) not in map(str, Catalog(site[0]).files)
    assert invoke("validate", str(site[0])).returncode == 0


@pytest.mark.parametrize("target", ["missing", "itself"])
def test_a_dangling_link_is_a_broken_file_and_the_others_work(
    site: tuple[Path, Path], target: str
) -> None:
    link = site[1] / "old-trial.yaml"
    link.symlink_to(link if target == "itself" else site[1] / "gone.yaml")
    listed = invoke("protocols")
    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(str(link))]
    assert "broken" in line
    checked = invoke("check", "--protocol", "eliana", "age 20, refractory yes")
    assert checked.returncode == 0 and "PASSED" in checked.stdout, checked.stderr


def test_validate_a_directory_of_three_is_clean(site: tuple[Path, Path]) -> None:
    done = invoke("validate", str(site[0]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": ok (") == 3


def test_chat_asks_which_protocol_by_number(site: tuple[Path, Path], data_dir: Path) -> None:
    done = invoke("chat", "--referral", "R-1", stdin="3\n20\nyes\n")
    assert done.returncode == 0, done.stderr
    for number, choice in enumerate(CHOICES, start=1):
        assert f"  {number}. {choice} (" in done.stderr
    assert "PRE-SCREEN PASSED" in done.stdout and "protocol eliana version 1" in done.stdout
    (record,) = logged(data_dir)
    assert (record.protocol.id, record.verdict, record.referral) == ("eliana", "eligible", "R-1")


def test_chat_asks_again_after_a_wrong_pick_and_ends_on_no_pick(site: tuple[Path, Path]) -> None:
    done = invoke("chat", stdin="9\neliana\n\n20\nyes\n")  # (an empty referral: none)
    assert done.returncode == 0 and "'9' is not one of them" in done.stderr
    done = invoke("chat", stdin="")
    assert done.returncode == 2
    assert "error: several protocols: choose one with --protocol" in done.stderr


def test_the_protocol_prompt_takes_no_other_digit_and_quotes_bad_input_short(
    site: tuple[Path, Path],
) -> None:
    # '²' (a French keyboard's top-left key) is a digit to str.isdigit() that int() refuses
    typed = ["²", "٣", "\x1b[2J" + "x" * 1_000_000]
    done = invoke("start", stdin="\n".join([*typed, "eliana", "", "20", "yes", ""]))
    assert done.returncode == 0, done.stderr
    assert "'²' is not one of them" in done.stderr and "'٣' is not one of them" in done.stderr
    assert "\x1b" not in done.stderr and "'\\x1b[2Jxxx" in done.stderr
    assert len(done.stderr) < 2000  # the long line is not echoed whole


@pytest.mark.parametrize("word", ["quit", "Q", "exit"])
def test_quit_at_the_protocol_prompt_ends_as_quit_in_the_dialog(
    site: tuple[Path, Path], word: str
) -> None:
    done = invoke("start", stdin=f"{word}\n1\n")
    assert done.returncode == 0 and "not one of them" not in done.stderr
    assert done.stderr.endswith("Stopped; no protocol chosen.\n") and "Referral" not in done.stdout


def test_a_mistyped_protocol_gets_a_suggestion_and_the_list(site: tuple[Path, Path]) -> None:
    for command in (["chat"], ["learn"], ["screen", "-"], ["graph"]):
        done = invoke(*command, "--protocol", "elianna", stdin="")
        assert done.returncode == 2, command
        assert "no protocol 'elianna' — did you mean 'eliana'?" in done.stderr, command
        assert "blina-dli, ctl019-rr-ball, eliana" in done.stderr, command


def test_a_protocol_id_in_other_letters_case_is_suggested_not_taken(
    site: tuple[Path, Path],
) -> None:
    """Ids are lower case: 'ELIANA' is not taken for eliana (nothing is screened under a
    name the file does not have), but suggested, as a misspelling is."""
    done = invoke("chat", "--protocol", "ELIANA", stdin="")
    assert done.returncode == 2
    assert "no protocol 'ELIANA' — did you mean 'eliana'?" in done.stderr
    done = invoke("learn", "--protocol", "ALL", stdin="")
    assert "no protocol 'ALL' — 'all' screens every protocol at once" in done.stderr


def test_start_with_several_protocols_asks_and_screens(site: tuple[Path, Path]) -> None:
    done = invoke("start", stdin="3\nR-17\n17\n")
    assert done.returncode == 0, done.stderr
    assert "NOT ELIGIBLE" in done.stdout and "E-I1" in done.stdout


def test_chat_against_all_logs_one_record_per_protocol(
    site: tuple[Path, Path], data_dir: Path
) -> None:
    done = invoke("chat", "--protocol", "all", "--referral", "R-2", stdin="?\n" * 150)
    assert done.returncode == 0, done.stderr
    assert "Screened against 3 protocols, best first:" in done.stdout
    records = logged(data_dir)
    assert sorted(r.protocol.id for r in records) == CHOICES[:3]
    (screening,) = {r.screening_id for r in records}
    assert screening and f"(screening {screening})" in done.stdout
    assert {r.verdict for r in records} == {"unresolved"}


def test_screen_asks_at_a_terminal_and_refuses_to_ask_otherwise(
    site: tuple[Path, Path], tmp_path: Path
) -> None:
    import pty
    import subprocess
    import sys

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"age": 30, "refractory": true}\n', encoding="utf-8")
    done = invoke("screen", str(rows), "--format", "json", stdin="3\n")  # no terminal
    assert done.returncode == 2 and "several protocols" in done.stderr
    done = invoke("screen", "-", stdin='{"age": 30}\n')  # the rows are on stdin: never asks
    assert done.returncode == 2 and "several protocols" in done.stderr
    terminal, stdin = pty.openpty()  # a person at a terminal picks from the list
    os.write(terminal, b"3\n")
    screen_bot = Path(sys.executable).parent / "screen-bot"
    asked = subprocess.run(
        [str(screen_bot), "screen", str(rows), "--format", "json"],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )
    os.close(terminal)
    os.close(stdin)
    assert asked.returncode == 0, asked.stderr
    assert "Several protocols" in asked.stderr
    assert json.loads(asked.stdout)["protocol"]["id"] == "eliana"


def test_check_without_protocol_checks_every_protocol_as_its_help_says(
    site: tuple[Path, Path],
) -> None:
    """check's -p help said 'left out: the only one, else you are asked', against its own
    description and what it does: every protocol is checked, nothing is asked."""
    checked = invoke("check", "age 40")
    headings = sorted(line for line in checked.stdout.splitlines() if line.startswith("── "))
    assert headings == ["── blina-dli 1.1 ──", "── ctl019-rr-ball 0.2 ──", "── eliana 1 ──"]
    shown = " ".join(invoke("check", "--help").stdout.split())
    assert "(left out: every protocol, as with 'all')" in shown
    assert "you are asked" not in shown


def test_screen_all_writes_one_object_per_row_with_a_verdict_per_protocol(
    site: tuple[Path, Path], tmp_path: Path, data_dir: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"referral": "R-1", "screened_on": "2026-01-15", "age": 30, "refractory": true}\n'
        '{"referral": "R-2", "screened_on": "2026-01-15", "age": 10}\n',
        encoding="utf-8",
    )
    done = invoke("screen", str(rows), "--protocol", "all", "--format", "json", "--log")
    assert done.returncode == 2, done.stderr  # the broken file's protocol was left out
    left_out = f"warning: {site[1] / 'broken.yaml'} is broken, so its protocol is left out"
    assert left_out in done.stderr  # (its YAML is broken: its id is not known)
    lines = done.stdout.splitlines()
    compact = [json.dumps(json.loads(x), separators=(",", ":"), ensure_ascii=False) for x in lines]
    assert lines == compact  # one compact object per row, as --help says ('{"row": 1, …' was not)
    first, second = (json.loads(line) for line in lines)
    assert (first["row"], first["referral"], first["screened_on"]) == (1, "R-1", "2026-01-15")
    assert [v["protocol"]["id"] for v in first["verdicts"]][0] == "eliana"  # eligible first
    assert [v["verdict"] for v in first["verdicts"]] == [
        "eligible",
        "unresolved",
        "unresolved",
    ]
    assert {v["protocol"]["id"] for v in second["verdicts"]} == set(CHOICES[:3])
    records = logged(data_dir)
    assert len(records) == 6
    by_screening: dict[str | None, list[str]] = {}
    for record in records:
        by_screening.setdefault(record.screening_id, []).append(record.referral or "")
    assert sorted(by_screening.values()) == [["R-1"] * 3, ["R-2"] * 3]
    with Database.existing(data_dir / "screen-bot.sqlite3") as db:
        assert ledger.verify(db.read()) == []


def test_learn_quiz_and_graph_ask_which_protocol(site: tuple[Path, Path]) -> None:
    learned = invoke("learn", stdin="3\n")
    assert learned.returncode == 0 and "— eliana version 1" in learned.stdout
    assert "4. all" not in learned.stderr  # one protocol at a time
    drawn = invoke("graph", stdin="3\n")
    assert drawn.returncode == 0 and "refractory" in drawn.stdout
    quizzed = invoke("quiz", "--count", "1", "--seed", "3", stdin="3\ne\n")
    assert quizzed.returncode == 0, quizzed.stderr
    assert "Case 1/1" in quizzed.stdout


def test_a_conflicting_shared_variable_names_both_places(
    site: tuple[Path, Path], tmp_path: Path
) -> None:
    other = dialog([integer("age", high=99, unit="months")], [inclusion("O1", "age >= 6")])
    clash = tmp_path / "clash.yaml"
    clash.write_text(dump({**other, "id": "clash"}), encoding="utf-8")
    eliana = site[0] / "eliana.yaml"
    done = invoke("validate", str(eliana), str(clash))
    assert done.returncode == 2
    assert f"{clash}:" in done.stderr and f"({eliana}:" in done.stderr
    assert "variable 'age' is shared with eliana" in done.stderr
    assert (
        "unit months here, years there" in done.stderr and "max 99 here, 120 there" in done.stderr
    )
    assert "fix: give 'age' the same unit, max in both files" in done.stderr


def test_conditions_needing_opposite_orders_are_reported_like_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file is valid alone; together, `all` could not order x and y. `validate DIR` said
    ok and `all` was offered, then failed at chat time with no file, line or fix."""
    trials = tmp_path / "trials"
    trials.mkdir()
    one = dialog([yes_no("x"), yes_no("y", when="x")], [inclusion("A1", "x and y")], id="one")
    two = dialog([yes_no("y"), yes_no("x", when="y")], [inclusion("B1", "y and x")], id="two")
    for data in (one, two):
        (trials / f"{data['id']}.yaml").write_text(dump(data), encoding="utf-8")
    line = dump(one).splitlines().index("  - variable: y") + 1
    done = invoke("validate", str(trials))
    assert done.returncode == 2
    assert f"{trials / 'one.yaml'}:{line}: these protocols cannot be screened together" in (
        done.stderr
    )
    assert f"two ({trials / 'two.yaml'}:{line}) asks 'x' after 'y'" in done.stderr
    assert "fix: an 'all' screening asks each question once" in done.stderr
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(trials))
    listed = invoke("protocols")
    assert "conflict: " in listed.stderr and "opposite question orders" in listed.stderr
    assert Catalog([trials]).choices() == ["one", "two"]  # no 'all' to fail later


# -- broken files beside good ones -----------------------------------------------------------

AMENDED = "    met_when: 14 <= age <= 75"  # blina-dli's I1, amended from 14 <= age <= 65
TYPOS = {  # a name that is no question (blina-dli's at line 319)
    "blina-dli.yaml": ("    met_when: 14 <= age <= 65", "    met_when: 14 <= agee <= 65"),
    "ctl019-rr-ball.yaml": ("met_when: b_all_cd19_positive\n", "met_when: b_all_cd19_positiv\n"),
}


def shipped_beside(directory: Path, *, broken: str = "") -> Path:
    """The shipped protocols in ``directory``, the file named ``broken`` with a typo."""
    directory.mkdir(exist_ok=True)
    for name, typo in TYPOS.items():
        text = (SHIPPED / name).read_text(encoding="utf-8")
        (directory / name).write_text(text.replace(*typo) if name == broken else text, "utf-8")
    return directory


@pytest.fixture
def backed_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A coordinator kept a backup of blina-dli.yaml, then amended blina-dli.yaml: the
    backup sorts first ('-' before '.')."""
    trials = shipped_beside(tmp_path / "trials")
    shutil.copy2(trials / "blina-dli.yaml", trials / "blina-dli-backup.yaml")
    amended = (trials / "blina-dli.yaml").read_text(encoding="utf-8")
    amended = amended.replace("    met_when: 14 <= age <= 65", AMENDED)
    (trials / "blina-dli.yaml").write_text(amended, encoding="utf-8")
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(trials))
    return trials


def test_two_files_with_one_id_are_neither_used_and_each_names_the_other(
    backed_up: Path,
) -> None:
    """The backup used to win, silently: 'age 70' was NOT ELIGIBLE under the old rule."""
    backup, amended = backed_up / "blina-dli-backup.yaml", backed_up / "blina-dli.yaml"
    listed = invoke("protocols")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["ctl019-rr-ball", str(backup), str(amended)]
    assert f"{backup}\tbroken\tprotocol id 'blina-dli' is also used by {amended}" in lines[1]
    assert f"{amended}\tbroken\tprotocol id 'blina-dli' is also used by {backup}" in lines[2]
    assert "so neither file is used (fix: keep one file per protocol id" in lines[1]
    named = invoke("check", "--protocol", "blina-dli", "age 70")
    assert named.returncode == 2 and named.stdout == ""
    (error,) = named.stderr.splitlines()
    assert error.startswith(f"error: no protocol 'blina-dli': {backup} is broken: protocol id")
    assert str(amended) in error and "(protocols: ctl019-rr-ball, all)" in error
    checked = invoke("check", "age 70")  # every protocol: ctl019-rr-ball, and a word of both
    assert checked.returncode == 2 and "blina-dli 1.1" not in checked.stdout
    warned = [line for line in checked.stdout.splitlines() if line.startswith("⚠")]
    assert [line.split(" is broken, ")[0] for line in warned] == [f"⚠ {backup}", f"⚠ {amended}"]
    assert all("so protocol 'blina-dli' is left out: protocol id" in line for line in warned)
    validated = invoke("validate", str(backed_up))
    assert validated.returncode == 2 and ": ok (blina-dli" not in validated.stdout
    assert validated.stderr.count("so neither file is used") == 2


def test_the_same_file_twice_is_one_file_not_a_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trials = shipped_beside(tmp_path / "trials")
    blina = trials / "blina-dli.yaml"
    done = invoke("validate", str(blina), str(trials / ".." / "trials" / "blina-dli.yaml"))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout == f"{blina}: ok (blina-dli version 1.1, 39 questions, 38 criteria)\n"
    assert invoke("validate", str(trials), str(blina)).returncode == 0
    (trials / "current.yaml").symlink_to(blina)  # a link to a file beside it: the same file
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", os.pathsep.join([str(trials)] * 2))
    listed = invoke("protocols")
    assert listed.returncode == 0 and "broken" not in listed.stdout, listed.stdout
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == [
        "blina-dli",
        "ctl019-rr-ball",
    ]


def test_all_keeps_its_shape_and_names_each_file_it_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trials = shipped_beside(tmp_path / "trials", broken="ctl019-rr-ball.yaml")
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(trials))
    left_out = (
        f"warning: {trials / 'ctl019-rr-ball.yaml'} is broken, so protocol 'ctl019-rr-ball' "
        "is left out: line "
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"referral": "R-1", "age": 40}\n', encoding="utf-8")
    screened = invoke("screen", str(rows), "--protocol", "all", "--format", "json")
    assert screened.returncode == 2
    (line,) = screened.stderr.splitlines()
    assert line.startswith(left_out)
    (row,) = (json.loads(line) for line in screened.stdout.splitlines())
    assert [v["protocol"]["id"] for v in row["verdicts"]] == ["blina-dli"]
    checked = invoke("check", "--protocol", "all", "age 40")
    assert checked.returncode == 2 and "── blina-dli 1.1 ──" in checked.stdout
    assert checked.stdout.rstrip().endswith("(fix: did you mean 'b_all_cd19_positive'?)")
    assert f"⚠ {left_out.removeprefix('warning: ')}" in checked.stdout
    chat = invoke("chat", "--protocol", "all", "--referral", "R-2", stdin="quit\n")
    assert chat.returncode == 0 and chat.stderr.startswith(left_out), chat.stderr
    sql = invoke("sql", "--protocol", "all")
    assert sql.returncode == 2 and sql.stderr.startswith(left_out) and "WITH" in sql.stdout
    alone = invoke("sql", "--protocol", "blina-dli")  # one named: nothing is left out
    assert alone.returncode == 0 and alone.stderr == ""
    (trials / "ctl019-rr-ball.yaml").unlink()  # one protocol, nothing broken: still a list
    screened = invoke("screen", str(rows), "--protocol", "all", "--format", "json")
    assert screened.returncode == 0 and screened.stderr == ""
    assert [v["verdict"] for v in json.loads(screened.stdout)["verdicts"]] == ["unresolved"]


def test_a_variable_of_a_protocol_left_out_is_no_bad_key_for_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file for ``all`` holds every protocol's variables: with blina-dli's file broken,
    its ``ecog`` is not screened, and ctl019-rr-ball still screens the row."""
    trials = shipped_beside(tmp_path / "trials", broken="blina-dli.yaml")
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(trials))
    as_jsonl = tmp_path / "rows.jsonl"
    as_jsonl.write_text('{"referral": "R-1", "age": 40, "ecog": 1}\n', encoding="utf-8")
    as_csv = tmp_path / "rows.csv"
    as_csv.write_text("referral,age,ecog\nR-1,40,1\n", encoding="utf-8")
    runs = [(path, chosen) for path in (as_jsonl, as_csv) for chosen in (["-p", "all"], [])]
    runs += [(path, ["--engine", "duckdb"]) for path in (as_jsonl, as_csv)]
    for path, chosen in runs:
        screened = invoke("screen", str(path), *chosen, "--format", "json")
        assert screened.returncode == 2  # a protocol was left out
        (warning,) = screened.stderr.splitlines()
        assert "so protocol 'blina-dli' is left out" in warning
        (row,) = (json.loads(line) for line in screened.stdout.splitlines())
        verdicts = row.get("verdicts", [row])
        assert [v["protocol"]["id"] for v in verdicts] == ["ctl019-rr-ball"], (path, chosen)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"referral": "R-1", "age": 40, "ecgo": 1}\n', encoding="utf-8")
    screened = invoke("screen", str(wrong), "-p", "all", "--format", "json")
    assert screened.stderr.splitlines()[1] == f"{wrong}: row 1: ecgo: not a variable of all"
    # YAML that cannot be read: its variables are not known, and the message names it
    (trials / "blina-dli.yaml").write_text("id: blina-dli\ntitle: [unclosed\n", encoding="utf-8")
    for path in (as_jsonl, as_csv):
        screened = invoke("screen", str(path), "-p", "all", "--format", "json")
        assert screened.returncode == 2 and screened.stdout == ""
        assert screened.stderr.splitlines()[1] == (
            f"{path}: row 1: ecog: not a variable of the protocols screened "
            "(blina-dli.yaml is left out, broken)"
        )
    # the same process, ctl019-rr-ball taken as the only valid one, then named: then nothing
    # is left out, and the message says so
    screened = invoke("screen", str(as_jsonl), "--format", "json")
    assert "(blina-dli.yaml is left out, broken)" in screened.stderr
    screened = invoke("screen", str(as_jsonl), "-p", "ctl019-rr-ball", "--format", "json")
    assert screened.stderr.splitlines() == [
        f"{as_jsonl}: row 1: ecog: not a variable of ctl019-rr-ball"
    ]


def test_errors_about_broken_files_are_one_line_naming_the_file_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trials = shipped_beside(tmp_path / "trials", broken="blina-dli.yaml")
    blina = trials / "blina-dli.yaml"
    for number in range(4):  # five broken files in all: none of them dropped unsaid
        (trials / f"z{number}.yaml").write_text("id: [\n", encoding="utf-8")
    (trials / "ctl019-rr-ball.yaml").write_text("id: ctl019-rr-ball\ntitle: [\n", "utf-8")
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(trials))
    first = f"{blina} is broken: line 319: 'agee' is neither a question nor a derived value"
    for command in (["chat"], ["check", "age 40"], ["sql"], ["graph"], ["protocols"]):
        done = invoke(*command, stdin="")
        assert done.returncode == 2, command
        (error,) = done.stderr.splitlines()  # one line, no "fix:" line of its own
        assert error == (
            f"error: no valid dialog file in {trials}: 6 dialog files are broken, the first "
            f"{blina}: line 319: 'agee' is neither a question nor a derived value (fix: did "
            f"you mean 'age'?); 'screen-bot validate {trials}' lists every problem"
        ), command
    for command in (["chat"], ["screen", "-"], ["check", "age 40"]):  # they do take 'all'
        done = invoke(*command, "--protocol", "all", stdin="")
        assert done.returncode == 2 and "this takes one" not in done.stderr, command
        assert done.stderr.startswith("error: no valid dialog file in "), command
    for command in (["check", "age 40"], ["learn"], ["sql"]):  # a protocol whose file is broken
        done = invoke(*command, "--protocol", "blina-dli", stdin="")
        assert done.returncode == 2
        assert done.stderr == (
            f"error: no protocol 'blina-dli': {first} (fix: did you mean 'age'?) (protocols: "
            "none)\n"
        ), command
        done = invoke(*command, "--protocol", "ctl019-rr-ball", stdin="")  # its YAML broken
        assert (
            f"no protocol 'ctl019-rr-ball': {trials / 'ctl019-rr-ball.yaml'} is broken: line 3: "
            "YAML syntax"
        ) in done.stderr, (command, done.stderr)


def test_a_conflict_under_all_is_one_line(site: tuple[Path, Path], tmp_path: Path) -> None:
    other = dialog([integer("age", high=99, unit="months")], [inclusion("O1", "age >= 6")])
    (site[0] / "clash.yaml").write_text(dump({**other, "id": "clash"}), encoding="utf-8")
    done = invoke("chat", "--protocol", "all", stdin="")
    assert done.returncode == 2
    *_, error = done.stderr.splitlines()  # (after the warning naming broken.yaml)
    assert error.startswith("error: the protocols cannot be screened together: ")
    assert "(fix: give 'age' the same" in error and "\n    fix:" not in done.stderr


def test_a_missing_dialogs_directory_is_named_by_protocols_and_where(
    site: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from screen_bot.adapters.telegram.app import report_catalog

    typo = site[0].parent / "trails"
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", os.pathsep.join(map(str, [*site, typo])))
    listed = invoke("protocols")
    assert listed.returncode == 0
    assert (
        f"{typo}\tmissing\tthe dialogs directory does not exist (fix: correct "
        "SCREEN_BOT_DIALOGS_DIR)"
    ) in listed.stdout.splitlines()
    where = invoke("where").stdout.splitlines()
    assert [line for line in where if line.startswith("dialogs")] == [
        f"dialogs directory: {site[0]}",
        f"dialogs directory: {site[1]}",
        f"dialogs directory: {typo} (does not exist)",
    ]
    caplog.set_level("INFO")
    report_catalog(Catalog(Settings().dialogs_dirs))  # the bot's start
    assert f"dialogs directory {typo}: the dialogs directory does not exist" in caplog.text


def test_a_dialog_file_that_cannot_be_read_is_named_with_its_fix(tmp_path: Path) -> None:
    """Named on the command line, it got Click's usage error ('is not readable')."""
    import subprocess

    trials = shipped_beside(tmp_path / "trials")
    blina = trials / "blina-dli.yaml"
    blina.chmod(0)
    tmp_path.chmod(0o755)
    command = [str(SCREEN_BOT), "validate", str(blina)]
    if os.geteuid() == 0:  # root reads any file: a user namespace makes us nobody
        command = ["unshare", "--user", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        blina.chmod(0o644)
    if "unshare" in command and "unshare:" in done.stderr:
        pytest.skip("no user namespace here")
    assert done.returncode == 2 and "Usage:" not in done.stderr, done.stderr
    assert done.stderr == (
        f"{blina}: cannot read the file: Permission denied\n    fix: check the path\n"
    )


# -- the bot ---------------------------------------------------------------------------------


@pytest.fixture
async def bot(site: tuple[Path, Path], tmp_path: Path) -> AsyncIterator[tuple[Any, Database]]:
    settings = Settings(
        TELEGRAM_BOT_TOKEN=TOKEN,
        SCREEN_BOT_ALLOWED_USERS=str(COORDINATOR),
        SCREEN_BOT_DATA_DIR=tmp_path / "bot",
        SCREEN_BOT_DIALOGS_DIR=f"{site[0]}{os.pathsep}{site[1]}",
    )
    db = Database(settings.database)
    application, chat = await _started_bot(settings, db)
    yield chat, db
    await application.shutdown()


async def _started_bot(settings: Settings, db: Database) -> tuple[Any, Chat]:
    """The bot, initialised (it reads its dialog files as it starts), and its chat."""
    request = RecordingRequest()
    application, _ = build_application(
        settings,
        Catalog(settings.dialogs_dirs),
        db,
        request=request,
        get_updates_request=RecordingRequest(),
    )
    await application.initialize()
    return application, Chat(application, request, COORDINATOR)
    db.close()


def buttons(message: dict[str, Any]) -> list[str]:
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


async def test_bot_protocols_lists_all_and_the_broken_file(bot: tuple[Chat, Database]) -> None:
    chat, _ = bot
    await chat.send("/protocols")
    text = chat.last_text()
    for protocol_id in CHOICES[:3]:
        assert f"{protocol_id} (version" in text
    assert "all: every protocol in one screening" in text
    assert "Broken, not offered" in text and "broken.yaml:3: YAML syntax" in text


async def test_bot_screen_offers_the_protocols_as_buttons(bot: tuple[Chat, Database]) -> None:
    chat, db = bot
    await chat.send("/screen R-1")
    offer = chat.last_with_buttons()
    assert buttons(offer) == [*CHOICES[:3], say.ALL_LABEL]
    await chat.tap("eliana")
    assert chat.messages()[0]["text"] == "Protocol: eliana"  # the offer keeps the choice
    await chat.send("20")
    await chat.tap("Yes")
    assert chat.last_text().startswith("PRE-SCREEN PASSED")
    (record,) = ledger.records(db.read())
    assert (record.protocol.id, record.referral) == ("eliana", "R-1")


def data_of(message: dict[str, Any], label: str) -> str:
    rows = message["reply_markup"]["inline_keyboard"]
    return next(b["callback_data"] for row in rows for b in row if b["text"] == label)


def paused(chat: Chat) -> bool:
    return any("is paused" in m["text"] for m in chat.messages())


async def test_bot_a_protocol_button_starts_one_screening_only(bot: tuple[Chat, Database]) -> None:
    """A double tap: the second press arrives before the first one's edit took the buttons
    away. It is refused; the screening the first one started is not paused."""
    chat, db = bot
    await chat.send("/screen")  # no referral code: nothing else tells the two apart
    offer = chat.last_with_buttons()
    await chat.press(offer, data_of(offer, "eliana"))
    await chat.press(offer, data_of(offer, "blina-dli"))
    assert [o.protocol_id for o in sessions.list_open(db.read(), COORDINATOR)] == ["eliana"]
    assert not paused(chat)
    assert chat.request.answers()[-1].get("text") == say.refusal("no_offer")


async def test_bot_an_old_protocol_button_changes_nothing(bot: tuple[Chat, Database]) -> None:
    """The offer kept its buttons (the edit removing them failed): pressed again later, or
    after a newer /screen or /check replaced it, it starts nothing and pauses nothing."""
    chat, db = bot
    await chat.send("/screen")
    offer = chat.last_with_buttons()
    chat.request.failing["editMessageText"] = 1
    await chat.press(offer, data_of(offer, "eliana"))
    assert chat.request.messages[(COORDINATOR, offer["message_id"])].get("reply_markup")
    await chat.send("/skip")  # no referral code
    await chat.send("20")
    (screening,) = sessions.list_open(db.read(), COORDINATOR)
    await chat.press(offer, data_of(offer, "eliana"))
    assert sessions.list_open(db.read(), COORDINATOR) == [screening] and not paused(chat)
    assert chat.request.answers()[-1].get("text") == say.refusal("no_offer")
    await chat.send("/screen R-2")
    replaced = chat.last_with_buttons()
    await chat.send("/check age 20")
    await chat.press(replaced, data_of(replaced, "eliana"))
    assert sessions.list_open(db.read(), COORDINATOR) == [screening] and not paused(chat)
    assert chat.request.answers()[-1].get("text") == say.refusal("no_offer")


async def test_bot_an_offers_key_continues_no_quick_check(bot: tuple[Chat, Database]) -> None:
    """The offer is kept where a quick check is: its key on a forged continue button is
    refused as no check, not read as one."""
    chat, db = bot
    await chat.send("/screen")
    offer = chat.last_with_buttons()
    key = data_of(offer, "eliana").rsplit("|", 1)[1]
    await chat.press(offer, ContinueCheck(key).encode())
    assert chat.request.answers()[-1].get("text") == say.refusal("no_check")
    assert sessions.list_open(db.read(), COORDINATOR) == []


async def test_bot_a_referral_already_open_is_refused_before_the_choice(
    bot: tuple[Chat, Database],
) -> None:
    chat, db = bot
    await chat.send("/screen R-7")
    await chat.tap("eliana")
    offers = len([m for m in chat.messages() if m.get("reply_markup")])
    await chat.send("/screen R-7")
    assert chat.last_text() == say.refusal("referral_taken", "R-7")  # with the /resume hint
    assert len([m for m in chat.messages() if m.get("reply_markup")]) == offers  # no choice
    assert [o.referral for o in sessions.list_open(db.read(), COORDINATOR)] == ["R-7"]


async def test_bot_a_mistyped_protocol_is_not_taken_for_a_referral(
    bot: tuple[Chat, Database],
) -> None:
    chat, db = bot
    await chat.send("/screen elianna R-T1")
    assert "no protocol 'elianna' — did you mean 'eliana'?" in chat.last_text()
    assert "never a name" not in chat.last_text()
    await chat.send("/learn elianna")
    assert "did you mean 'eliana'?" in chat.last_text()
    assert sessions.list_open(db.read(), COORDINATOR) == []


async def test_bot_a_protocol_in_capitals_gets_a_suggestion(
    bot: tuple[Chat, Database],
) -> None:
    chat, db = bot
    await chat.send("/screen BLINA-DLI R-7")
    assert "no protocol 'BLINA-DLI' — did you mean 'blina-dli'?" in chat.last_text()
    await chat.send("/screen ALL R-9")
    assert "no protocol 'ALL' — did you mean 'all'?" in chat.last_text()
    await chat.send("/screen BLINA-DLI")  # one word, an id in capitals: read as the id
    assert "no protocol 'BLINA-DLI' — did you mean 'blina-dli'?" in chat.last_text()
    assert sessions.list_open(db.read(), COORDINATOR) == []


@pytest.mark.parametrize(
    ("word", "choices"),
    [
        *((w, CHOICES) for w in ("ALL-1", "ALL1", "ALL01", "BALL", "BLINA-D1", "ELIANNA")),
        ("BLINA-D1", ["blina-dli"]),  # a one-protocol site
    ],
)
def test_one_capitalised_word_only_like_all_or_an_id_stays_a_referral(
    word: str, choices: list[str]
) -> None:
    """'ALL-1' is a natural referral at a B-ALL site: comparing the lowered word with the
    ids took it (and 'ALL1', 'BLINA-D1') for a misspelt protocol, refused with "did you mean
    'all'?". One word is compared as typed; only where a word is read as a protocol (of two
    words, the first) does a capitalised id get the suggestion."""
    assert split_protocol([word], choices) == (None, [word])


async def test_bot_a_capitalised_referral_like_all_is_a_referral(
    bot: tuple[Chat, Database],
) -> None:
    chat, _ = bot
    await chat.send("/screen ALL-1")  # the protocols offered, for referral ALL-1
    assert buttons(chat.last_with_buttons()) == [*CHOICES[:3], say.ALL_LABEL]


async def test_bot_an_unknown_protocol_is_answered_as_in_the_terminal(
    bot: tuple[Chat, Database], site: tuple[Path, Path]
) -> None:
    """Of two words the first is the protocol (a referral is one word), even one that
    looks like none installed (a new trial's file not added yet): not a bad referral."""
    chat, db = bot
    await chat.send("/screen newtrial-01 R-4")
    terminal = invoke("check", "--protocol", "newtrial-01", "age 20")
    assert terminal.returncode == 2
    assert chat.last_text() == terminal.stderr.strip().removeprefix("error: ")
    assert chat.last_text().startswith("no protocol 'newtrial-01' (protocols: blina-dli, ")
    await chat.send("/screen R-4")  # one word: the referral, and the protocols offered
    assert buttons(chat.last_with_buttons()) == [*CHOICES[:3], say.ALL_LABEL]
    assert sessions.list_open(db.read(), COORDINATOR) == []


async def test_bot_screen_all_logs_one_record_per_protocol(bot: tuple[Chat, Database]) -> None:
    chat, db = bot
    await chat.send("/screen all R-2")
    assert "started against all protocols" in chat.messages()[0]["text"]
    for _ in range(150):
        if not sessions.list_open(db.read(), COORDINATOR):
            break
        await chat.send("/skip")
    assert "Screened against 3 protocols" in "\n".join(m["text"] for m in chat.messages())
    records = list(ledger.records(db.read()))
    assert sorted(r.protocol.id for r in records) == CHOICES[:3]
    assert len({r.screening_id for r in records}) == 1


async def test_bot_learn_and_quiz_offer_the_protocols(bot: tuple[Chat, Database]) -> None:
    chat, _ = bot
    await chat.send("/learn")
    assert buttons(chat.last_with_buttons()) == CHOICES[:3]
    await chat.tap("eliana")
    assert chat.last_text().startswith("E-I1")
    await chat.send("/quiz 7")
    await chat.tap("ctl019-rr-ball")
    assert (
        "Quiz on ctl019-rr-ball" in chat.messages()[-2]["text"]
        and "seed 7" in (chat.messages()[-2]["text"])
    )
    await chat.send("/flow")
    await chat.tap("eliana")
    if shutil.which("dot"):  # else the bot says the diagram cannot be drawn here
        ((method, params),) = chat.request.uploads
        assert method == "sendDocument" and params["caption"].startswith("eliana version 1")


async def test_bot_a_choice_from_another_list_changes_nothing(bot: tuple[Chat, Database]) -> None:
    chat, db = bot
    await chat.send("/screen R-3")
    offer = chat.last_with_buttons()
    await chat.press(offer, Choice("s", "0000", 0, "R-3").encode())
    assert chat.request.answers()[-1]["text"] == say.CHOICES_CHANGED
    assert sessions.list_open(db.read(), COORDINATOR) == []


def test_screen_all_in_worker_processes_gives_the_same_rows(
    site: tuple[Path, Path], tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    lines = ["referral,screened_on,age,refractory,ph_negative"]
    lines += [f"R-{n},2026-01-15,{n % 80},{'yes' if n % 3 else 'no'},yes" for n in range(40)]
    rows.write_text("\n".join(lines) + "\n", encoding="utf-8")
    one = invoke("screen", str(rows), "--protocol", "all", "--format", "json")
    two = invoke("screen", str(rows), "--protocol", "all", "--format", "json", "--jobs", "2")
    assert one.returncode == two.returncode == 2, one.stderr + two.stderr  # broken.yaml
    assert one.stderr == two.stderr and "broken.yaml is broken" in one.stderr
    assert one.stdout == two.stdout and len(one.stdout.splitlines()) == 40
    text = invoke("screen", str(rows), "--protocol", "all")
    assert text.stdout.count("Screened against 3 protocols, best first:") == 40


def test_the_bots_start_up_log_names_each_broken_file(
    site: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    from screen_bot.adapters.telegram.app import report_catalog

    caplog.set_level("INFO")
    report_catalog(Catalog(Settings().dialogs_dirs))
    assert "3 protocol(s): blina-dli, ctl019-rr-ball, eliana" in caplog.text
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "broken.yaml is broken: line 3: YAML syntax" in warning.getMessage()


def test_a_value_yaml_cannot_build_breaks_only_its_own_file(
    site: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """An impossible date (ruamel raises ValueError) makes its file broken, not every command."""
    from screen_bot.adapters.telegram.app import report_catalog

    dated = dump(ELIANA).replace("id: eliana", "id: dated")
    (site[1] / "dated.yaml").write_text(dated + "notes_date: 2025-02-29\n", encoding="utf-8")
    done = invoke("protocols")
    assert done.returncode == 0 and "dated\t" not in done.stdout
    (dated_line,) = [line for line in done.stdout.splitlines() if "dated.yaml\tbroken" in line]
    assert "cannot read '2025-02-29' as a date" in dated_line
    assert invoke("check", "--protocol", "eliana", "age 40").returncode == 0
    caplog.set_level("INFO")
    report_catalog(Catalog(Settings().dialogs_dirs))  # the bot's start
    assert "3 protocol(s): blina-dli, ctl019-rr-ball, eliana" in caplog.text


def test_a_batch_run_without_a_terminal_is_told_to_name_a_protocol(tmp_path: Path) -> None:
    """A script's stdin may stay open: screen asks only a person at a terminal."""
    import subprocess
    import sys

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"age": 40}\n', encoding="utf-8")
    screen_bot = Path(sys.executable).parent / "screen-bot"
    done = subprocess.run(
        [str(screen_bot), "screen", str(rows)],
        stdin=subprocess.PIPE,  # open, never written: a prompt here would wait forever
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "SCREEN_BOT_DIALOGS_DIR": str(SHIPPED)},
    )
    assert done.returncode == 2
    assert "choose one with --protocol" in done.stderr and "Several protocols" not in done.stderr


# -- broken files, in the bot ----------------------------------------------------------------


@pytest.fixture
def shadowing(site: tuple[Path, Path]) -> Path:
    """A backup of eliana.yaml beside it (set up before the bot's catalog is read)."""
    backup = site[0] / "eliana-backup.yaml"
    shutil.copy2(site[0] / "eliana.yaml", backup)
    return backup


async def test_bot_protocols_names_both_files_of_one_id(
    shadowing: Path, bot: tuple[Chat, Database], caplog: pytest.LogCaptureFixture
) -> None:
    from screen_bot.adapters.telegram.app import report_catalog

    chat, _ = bot
    await chat.send("/protocols")
    text = chat.last_text()
    assert "eliana (version" not in text
    eliana = shadowing.parent / "eliana.yaml"
    assert f"• {shadowing}: protocol id 'eliana' is also used by {eliana}" in text
    assert f"• {eliana}: protocol id 'eliana' is also used by {shadowing}" in text
    caplog.set_level("INFO")
    report_catalog(Catalog(Settings().dialogs_dirs))  # the bot's start
    assert "2 protocol(s): blina-dli, ctl019-rr-ball" in caplog.text
    assert f"dialog file {shadowing} is broken: protocol id 'eliana'" in caplog.text
    assert f"dialog file {eliana} is broken: protocol id 'eliana'" in caplog.text


async def test_bot_screen_all_and_check_name_the_broken_file_left_out(
    site: tuple[Path, Path], bot: tuple[Chat, Database]
) -> None:
    chat, _ = bot
    left_out = f"⚠ {site[1] / 'broken.yaml'} is broken, so its protocol is left out: line 3"
    await chat.send("/screen all R-2")
    started = chat.messages()[0]["text"]
    assert "started against all protocols" in started and left_out in started
    await chat.send("/check age 40")  # several protocols, none named: every one
    assert left_out in chat.last_text() and "── eliana 1 ──" in chat.last_text()
    await chat.send("/check eliana age 40")  # one named: nothing is left out
    assert "⚠" not in chat.last_text()


def test_chat_resume_of_a_screening_whose_file_broke_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trials = shipped_beside(tmp_path / "trials")
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(trials))
    blina = trials / "blina-dli.yaml"
    good = blina.read_text(encoding="utf-8")
    done = invoke("chat", "--protocol", "blina-dli", "--referral", "R-1", stdin="40\n")
    assert done.returncode == 1  # the input ended: dropped; so keep one as Ctrl-C would
    with Database(Settings().database) as db:
        from screen_bot.service import TERMINAL, ScreeningService

        ScreeningService(Catalog([trials]), db, channel="cli").start(TERMINAL, "blina-dli", "R-1")
    blina.write_text(good.replace(*TYPOS["blina-dli.yaml"]), encoding="utf-8")
    done = invoke("chat", "--resume", "R-1", stdin="quit\n")
    assert done.returncode == 2
    assert done.stderr == (
        f"error: screening R-1 cannot go on: {blina} is broken: line 319: 'agee' is neither a "
        "question nor a derived value (fix: did you mean 'age'?); it is kept: once the file is "
        "fixed, 'screen-bot chat --resume R-1' goes on with it (or ends it, if its protocols "
        "changed)\n"
    )
    blina.write_text(good, encoding="utf-8")
    done = invoke("chat", "--resume", "R-1", stdin="quit\n")
    assert done.returncode == 0 and "Resuming R-1 at its current question." in done.stdout


def test_chat_resume_of_a_screening_whose_file_is_missing_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file moved away (an editor's save, a `mv` out and back): kept, not removed."""
    trials = shipped_beside(tmp_path / "trials")
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(trials))
    blina, away = trials / "blina-dli.yaml", tmp_path / "blina-dli.yaml"
    with Database(Settings().database) as db:
        from screen_bot.service import TERMINAL, ScreeningService

        ScreeningService(Catalog([trials]), db, channel="cli").start(TERMINAL, "blina-dli", "R-1")
    blina.rename(away)
    done = invoke("chat", "--resume", "R-1", stdin="quit\n")
    assert done.returncode == 2
    assert done.stderr == (
        "error: screening R-1 cannot go on: its protocol file is missing (no dialog file holds "
        "blina-dli now); it is kept: once the file is back, 'screen-bot chat --resume R-1' "
        "goes on with it (or ends it, if the file changed)\n"
    )
    away.rename(blina)
    done = invoke("chat", "--resume", "R-1", stdin="quit\n")
    assert done.returncode == 0 and "Resuming R-1 at its current question." in done.stdout


async def test_bot_resume_of_a_screening_whose_file_broke_keeps_it(
    tmp_path: Path,
) -> None:
    trials = shipped_beside(tmp_path / "trials")
    blina = trials / "blina-dli.yaml"
    good = blina.read_text(encoding="utf-8")
    settings = Settings(
        TELEGRAM_BOT_TOKEN=TOKEN,
        SCREEN_BOT_ALLOWED_USERS=str(COORDINATOR),
        SCREEN_BOT_DATA_DIR=tmp_path / "bot",
        SCREEN_BOT_DIALOGS_DIR=str(trials),
    )

    with Database(settings.database) as db:
        application, chat = await _started_bot(settings, db)
        await chat.send("/screen blina-dli R-1")
        await chat.send("/screen blina-dli R-2")
        await application.shutdown()
        blina.write_text(good.replace(*TYPOS["blina-dli.yaml"]), encoding="utf-8")
        application, chat = await _started_bot(settings, db)
        await chat.send("/resume R-1")
        assert chat.last_text() == (
            f"⚠ Screening R-1 cannot go on: its protocol file is broken ({blina} is broken: "
            "line 319: 'agee' is neither a question nor a derived value (fix: did you mean "
            "'age'?)). It is kept: once the file is fixed, /resume R-1 goes on with it (or "
            "ends it, if its protocols changed); /cancel R-1 drops it."
        )
        await chat.send("40")  # the active one, R-2: the same, and it is paused
        assert chat.last_text().startswith("⚠ Screening R-2 cannot go on")
        await chat.send("/list")
        assert "R-1" in chat.last_text() and "R-2" in chat.last_text()
        await application.shutdown()
        blina.write_text(good, encoding="utf-8")
        application, chat = await _started_bot(settings, db)
        await chat.send("/resume R-1")
        assert "[1/22]" in chat.last_text()
        await application.shutdown()


async def test_bot_a_protocol_whose_file_is_broken_is_named_with_the_file(
    site: tuple[Path, Path], bot: tuple[Chat, Database]
) -> None:
    chat, db = bot
    why = f"no protocol 'broken': {site[1] / 'broken.yaml'} is broken: line 3: YAML syntax"
    for command in ("/screen broken R-5", "/check broken age 40", "/learn broken"):
        await chat.send(command)
        assert why in chat.last_text(), command
    assert sessions.list_open(db.read(), COORDINATOR) == []
