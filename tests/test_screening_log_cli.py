"""``screen-bot chat``, ``screen --log`` and ``screen-bot log ...`` run as a user runs them."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest

from cli_runner import Ran, invoke
from conftest import SHIPPED
from screen_bot.storage import Database, ledger
from screen_bot.storage.ledger import LogRecord
from screen_bot.verdict import ProtocolRef, Reason, Verdict
from test_ctl019_boundaries import A as CTL019_A
from test_ctl019_boundaries import P

GOOD_ROWS = (
    "referral,screened_on,age,transplant_date,qtc_ms,sex\n"
    "R-1,2026-01-15,70,2025-12-15,480,male\n"  # fails I1, I4a and E3c
    "R-2,2026-01-15,30,2025-12-15,,\n"  # fails I4a
    "R-3,2026-01-15,bad,,,\n"  # a bad row: not screened, not logged
    ",2026-01-15,40,,,\n"  # unresolved, no label
)
Run = Callable[..., Ran]


@pytest.fixture
def run() -> Run:
    def run(*args: str, stdin: str = "") -> Ran:
        return invoke(*args, stdin=stdin)

    return run


def records(tmp_path: Path) -> list[LogRecord]:
    path = tmp_path / "data" / "screen-bot.sqlite3"
    if not path.exists():
        return []
    with Database.existing(path) as db:
        return list(ledger.records(db.read()))


def test_chat_appends_exactly_one_record(run: Run, tmp_path: Path) -> None:
    done = run("chat", "--referral", "R-0423", stdin="70\n")
    assert done.returncode == 0, done.stderr
    assert "Screening log: record 1." in done.stdout
    (record,) = records(tmp_path)
    assert (record.channel, record.coordinator, record.referral) == ("cli", "cli", "R-0423")
    assert record.verdict == "not_eligible" and [r.criterion for r in record.reasons] == ["I1"]
    assert record.answers == {"age": 70}


def test_chat_quit_appends_nothing(run: Run, tmp_path: Path) -> None:
    assert run("chat", stdin="30\nquit\n").returncode == 0
    assert run("chat", stdin="30\n").returncode == 1  # end of input
    assert records(tmp_path) == []


def test_screen_log_appends_one_record_per_good_row(run: Run, tmp_path: Path) -> None:
    answers = tmp_path / "in.csv"
    answers.write_text(GOOD_ROWS, encoding="utf-8")
    done = run("screen", str(answers))
    assert done.returncode == 2 and records(tmp_path) == []  # no --log, no records
    done = run("screen", str(answers), "--log")
    assert done.returncode == 2, done.stderr
    assert "3 records appended" in done.stderr
    logged = records(tmp_path)
    assert [(r.channel, r.referral, r.verdict) for r in logged] == [
        ("batch", "R-1", "not_eligible"),
        ("batch", "R-2", "not_eligible"),
        ("batch", None, "unresolved"),
    ]
    assert logged[0].answers == {
        "age": 70,
        "transplant_date": "2025-12-15",
        "qtc_ms": 480,
        "sex": "male",
    }
    assert run("log", "verify").returncode == 0


def test_the_log_keeps_the_screening_date_the_verdict_counted_from(
    run: Run, tmp_path: Path
) -> None:
    """A row screened as of 2026-03-31, logged months later: filed as screened that day
    (I4a may pass from 2026-05-01, a date after it), and a change of it breaks the chain."""
    row = '{"referral": "R-1", "screened_on": "2026-03-31", "transplant_date": "2026-03-01"}\n'
    assert run("screen", "-", "--log", stdin=row).returncode == 0
    (record,) = records(tmp_path)
    assert record.screened_on == date(2026, 3, 31) and record.at.date() > date(2026, 3, 31)
    done = run("log", "export", "--format", "jsonl")
    (exported,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert exported["date"] == "2026-03-31"
    assert exported["may_pass_later"] == ["I4a from 2026-05-01"]
    # --since picks by that date too: logged today, it was not screened since November
    later = run("log", "export", "--format", "jsonl", "--since", "2026-04-01")
    assert later.returncode == 0 and later.stdout == ""
    assert "R-1" in run("log", "export", "--format", "jsonl", "--since", "2026-03-31").stdout
    assert "no screenings" in run("log", "stats", "--since", "2026-04-01").stdout
    raw = sqlite3.connect(tmp_path / "data" / "screen-bot.sqlite3")
    raw.execute("DROP TRIGGER screening_log_no_update")
    raw.execute("UPDATE screening_log SET screened_on = '2026-05-01'")
    raw.commit()
    raw.close()
    assert "record 1: changed after it was written" in run("log", "verify").stdout


def test_the_export_and_its_help_never_call_the_date_screened_utc(run: Run, tmp_path: Path) -> None:
    """The column holds the screening date, which is the site's day (SCREEN_BOT_TIMEZONE)
    for a chat: a header or a help saying "UTC" misdates a screening near midnight."""
    assert run("chat", "--referral", "R-77", stdin="70\n").returncode == 0
    done = run("log", "export")
    header = next(csv.reader(done.stdout.lstrip("\ufeff").splitlines()))
    assert header[1] == "date screened"
    for command in ("export", "stats"):
        helped = " ".join(run("log", command, "--help").stdout.split())
        assert "UTC date" not in helped and "date screened (UTC)" not in helped
        assert "date screened" in helped


def test_the_export_names_a_planned_infusion_date_as_the_verdict_does(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctl019 (reading, "May pass later"): C-I1b's and C-E11's date is a planned infusion
    date, C-E12's a screening date. The export says so as screen does, so the filed log
    does not read "re-screen from" a day the patient could be screened before."""
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(SHIPPED))
    base = {
        k: list(v) if isinstance(v, tuple) else v.isoformat() if isinstance(v, date) else v
        for k, v in CTL019_A.items()
    }
    rows = [
        {**base, "referral": "R-1", "last_dli_date": "2026-01-10"},  # cases.md 135
        {**base, "referral": "R-2", "transplant_date": "2025-07-20", P: "2026-01-19"},  # 6
        {**base, "referral": "R-3", "last_imp_date": "2026-01-01"},
    ]
    lines = "".join(json.dumps({**r, "screened_on": "2026-01-15"}) + "\n" for r in rows)
    done = run("screen", "-", "-p", "ctl019-rr-ball", "-f", "json", "--log", stdin=lines)
    assert done.returncode == 0, done.stderr
    screened = [json.loads(line)["reasons"] for line in done.stdout.splitlines()]
    assert [[(r["criterion"], r["meets_from_anchor"]) for r in x] for x in screened] == [
        [("C-E11", P)],
        [("C-I1b", P)],
        [("C-E12", None)],
    ]
    later = [
        "C-E11 when planned_infusion_date is on or after 2026-02-21",
        "C-I1b when planned_infusion_date is on or after 2026-01-20",
        "C-E12 from 2026-01-31",
    ]
    exported = run("log", "export", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["may_pass_later"] for line in exported] == [[x] for x in later]
    table = list(csv.reader(run("log", "export").stdout.lstrip("\ufeff").splitlines()))
    assert [row[8] for row in table[1:]] == later


def test_screen_log_from_stdin_jsonl(run: Run, tmp_path: Path) -> None:
    lines = "".join(f'{{"referral": "J-{i}", "age": {60 + i}}}\n' for i in range(12))
    done = run("screen", "-", "--log", "--format", "json", stdin=lines)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 12 == len(records(tmp_path))


def test_export_stats_verify_purge(run: Run, tmp_path: Path) -> None:
    answers = tmp_path / "in.csv"
    answers.write_text(GOOD_ROWS, encoding="utf-8")
    run("screen", str(answers), "--log")
    with Database(tmp_path / "data" / "screen-bot.sqlite3") as db, db.transaction() as tx:
        hostile = Verdict(
            referral='=cmd|" /C calc"!A0',
            verdict="not_eligible",
            reasons=[
                Reason(
                    criterion="E3c", kind="exclusion", label='+1, "x"\nnew', source="", answers={}
                )
            ],
            protocol=ProtocolRef(id="other", version="@2", sha256="00" * 32),
            screened_on="2026-03-01",  # type: ignore[arg-type]
        )
        ledger.append(tx, hostile, channel="telegram", coordinator="99", answers={})

    out = tmp_path / "log.csv"
    done = run("log", "export", "-o", str(out))
    assert done.returncode == 0 and "exported 4 screenings" in done.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    with out.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0][0] == "screening number" and len(rows) == 5
    assert rows[1][6] == "I1 age 14–65 inclusive; I4a ≥ 2 months post-transplant; E3c prolonged QTc"
    assert rows[4][2:5] == ['\'=cmd|" /C calc"!A0', "other", "'@2"]
    assert rows[4][6] == 'E3c +1, "x"\nnew'

    done = run("log", "export", "--protocol", "other", "--format", "jsonl")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 1
    assert not done.stdout.startswith("\ufeff")
    done = run("log", "export", "--since", "2999-01-01")
    assert done.stdout.lstrip("\ufeff").splitlines()[1:] == []

    chart = tmp_path / "failures.png"
    done = run("log", "stats", "--protocol", "blina-dli", "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    assert "3 patients screened" in done.stdout
    assert "I4a       2" in done.stdout and "I1        1" in done.stdout
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert "other: 1 patients" in run("log", "stats").stdout

    done = run("log", "verify")
    assert done.returncode == 0 and done.stdout.startswith("intact: last record 4")
    assert run("log", "purge", "--before", "2999-01-01", "--yes").stdout.startswith("purged 4")
    assert run("log", "verify").returncode == 0
    assert run("log", "stats").stdout.strip() == "no screenings logged"


def test_verify_reports_tampering(run: Run, tmp_path: Path) -> None:
    run("screen", "-", "--log", stdin='{"age": 70}\n{"age": 71}\n{"age": 72}\n')
    db = sqlite3.connect(tmp_path / "data" / "screen-bot.sqlite3")
    db.execute("DROP TRIGGER screening_log_no_update")
    db.execute("UPDATE screening_log SET verdict = 'eligible' WHERE number = 2")
    db.commit()
    db.close()
    done = run("log", "verify")
    assert done.returncode == 1
    assert done.stdout == (
        "record 2: changed after it was written\n"
        "the log's guard screening_log_no_update (it refuses changing a record) is missing: "
        "'screen-bot migrate' run as the tables' owner puts it back\n"
    )
    done = run("log", "purge", "--before", "2999-01-01", "--yes")
    assert done.returncode == 2 and "not intact" in done.stderr


@pytest.mark.parametrize("stamp", ["garbage", "2026-11-27 05:00:00"])
def test_verify_lists_a_tampered_time_instead_of_failing_on_it(
    run: Run, tmp_path: Path, stamp: str
) -> None:
    """A record's time changed by hand (unreadable, or without its zone) is a problem to
    list, not a time to compare with its neighbour's (review D of round 23: a traceback)."""
    run("screen", "-", "--log", stdin='{"age": 70}\n{"age": 71}\n{"age": 72}\n')
    db = sqlite3.connect(tmp_path / "data" / "screen-bot.sqlite3")
    db.execute("DROP TRIGGER screening_log_no_update")
    db.execute("UPDATE screening_log SET at = ? WHERE number = 2", (stamp,))
    db.commit()
    db.close()
    done = run("log", "verify")
    assert done.returncode == 1
    assert done.stdout.startswith("record 2: changed after it was written\n"), done.stdout


def test_verify_notes_and_purge_explains_a_clock_that_went_back(run: Run, tmp_path: Path) -> None:
    """Record 2 was made while the server's clock was years ahead, then NTP set it right:
    the chain is intact, but a purge cut at record 2 keeps records 3 and 4, made before
    the date. Both commands say so (nothing stamped or purged differently)."""
    run("migrate")
    with Database(tmp_path / "data" / "screen-bot.sqlite3") as db:
        for referral, at in [
            ("R-1", "2026-01-05"),
            ("R-2", "2030-01-05"),
            ("R-3", "2026-01-06"),
            ("R-4", "2026-02-01"),
        ]:
            logged = datetime.fromisoformat(f"{at}T10:00:00+00:00")
            with db.transaction() as tx:
                ledger.append(
                    tx, _verdict(referral), channel="cli", coordinator="cli", answers={}, at=logged
                )
    done = run("log", "verify")
    assert done.returncode == 0 and done.stdout.startswith("intact: last record 4")
    (note,) = [line for line in done.stdout.splitlines() if line.startswith("note:")]
    assert "record 3 is stamped 2026-01-06" in note and "before record 2 (2030-01-05" in note
    assert "clock went back" in note
    done = run("log", "purge", "--before", "2026-06-01", "--yes")
    assert done.returncode == 0
    assert done.stdout.splitlines()[:2] == [
        "purged 1 records made before 2026-06-01",
        "kept 2 records made before 2026-06-01: record 2, stamped 2030-01-05T10:00:00+00:00,"
        " comes before them, and the log is purged from its start only (the server's clock"
        " was wrong: ahead when that record was made, or set back after it); they go with a"
        " purge past that record's date",
    ]
    assert [r.number for r in records(tmp_path)] == [2, 3, 4]
    done = run("log", "purge", "--before", "2999-01-01", "--yes")
    assert done.stdout == "purged 3 records made before 2999-01-01\n"  # nothing kept: no note


def _verdict(referral: str) -> Verdict:
    return Verdict(
        referral=referral,
        verdict="eligible",
        protocol=ProtocolRef(id="blina-dli", version="1", sha256="00" * 32),
        screened_on=date(2026, 1, 5),
    )


@pytest.mark.parametrize("answer", ["n\n", ""], ids=["declined", "no answer"])
def test_purge_asks_first_and_purges_nothing_unless_told_yes(
    run: Run, tmp_path: Path, answer: str
) -> None:
    run("screen", "-", "--log", stdin='{"age": 70}\n')
    done = run("log", "purge", "--before", "2999-01-01", stdin=answer)
    assert done.returncode == 2 and len(records(tmp_path)) == 1
    assert done.stderr == (
        "error: not confirmed: nothing was purged (add --yes to purge without asking)\n"
    )
    done = run("log", "purge", "--before", "2999-01-01", stdin="y\n")
    assert done.returncode == 0 and records(tmp_path) == []


def test_bad_input_and_broken_database_give_plain_errors(run: Run, tmp_path: Path) -> None:
    done = run("log", "export", "--since", "March")
    assert done.returncode == 2 and "March" in done.stderr
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "screen-bot.sqlite3").write_bytes(b"this is not a database" * 100)
    for args in (["log", "verify"], ["log", "stats"], ["log", "export"]):
        done = run(*args)
        assert done.returncode == 2, args
        assert done.stderr.startswith("error: the file") and "not an SQLite file" in done.stderr
    done = run("chat", stdin="70\n")
    assert done.returncode == 2 and "Age in whole years" not in done.stdout  # fails before asking


def test_reading_commands_refuse_without_a_database_and_create_none(
    run: Run, data_dir: Path
) -> None:
    for args in (["log", "verify"], ["log", "stats"], ["log", "export"]):
        done = run(*args)
        assert done.returncode == 2, args
        assert (
            done.stderr.startswith("error: no database yet") and "screen-bot where" in done.stderr
        )
    assert not (data_dir / "screen-bot.sqlite3").exists()


def test_resume_of_a_screening_that_finished_names_its_log_record(run: Run) -> None:
    # as left by a chat killed after the verdict was logged, before it was shown
    assert run("chat", "--referral", "R-DONE1", stdin="70\n").returncode == 0
    assert run("chat", "--referral", "R-DONE1", stdin="71\n").returncode == 0  # screened again
    done = run("chat", "--resume", "R-DONE1")
    assert done.returncode == 2
    assert done.stderr == (
        "error: no unfinished screening named 'R-DONE1': it finished and was logged as record 2 "
        "('screen-bot log export' shows the verdict)\n"
    )
    done = run("chat", "--resume", "R-NEVER1")
    assert done.stderr == "error: no unfinished screening named 'R-NEVER1'\n"


@pytest.mark.parametrize(
    ("label", "shown"),
    [("R-1\nerror: something else", "R-1\\nerror: something else"), ("\u202eR-1", "\\u202eR-1")],
)
def test_resume_quotes_a_label_it_does_not_know_escaped(run: Run, label: str, shown: str) -> None:
    # a line break split the one-line error (forging a second one); U+202E reversed the line
    done = run("chat", "--resume", label)
    assert done.returncode == 2
    assert done.stderr == f"error: no unfinished screening named '{shown}'\n"


@pytest.mark.parametrize(
    "args",
    [
        ("log", "export", "--protocol"),
        ("log", "stats", "-p"),
        ("chat", "--resume"),
        ("quiz", "--progress", "--trainee"),
    ],
)
def test_option_text_that_is_not_utf8_is_named_as_the_protocol_is(
    run: Run, args: tuple[str, ...]
) -> None:
    # ($'\xff' on the command line reaches Python as '\udcff'; learn and chat named it, the
    # log's filters and --resume ended in an unexpected UnicodeEncodeError)
    assert run("migrate").returncode == 0
    done = run(*args, "\udcff")
    assert done.returncode == 2, done
    name = "--protocol" if args[-1] == "-p" else args[-1]
    assert done.stderr == f"error: {name}: '\\udcff' is not UTF-8 text\n"
    assert "no protocol '\\udcff'" in run("learn", "--protocol", "\udcff").stderr
