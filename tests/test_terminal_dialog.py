"""The terminal dialog (`screen-bot chat`) when it is interrupted or its screening goes away."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import screen_bot.service as service_module
import screen_bot.session as session_module
from cli_runner import SCREEN_BOT, invoke
from conftest import DIALOGS, SHIPPED
from format2 import build, dialog, inclusion, number, yes_no
from screen_bot.adapters import terminal
from screen_bot.errors import ScreenBotError
from screen_bot.protocol.catalog import Catalog
from screen_bot.results import Asked, Checked, Finished, Result
from screen_bot.service import TERMINAL, ScreeningService
from screen_bot.session import utc_now
from screen_bot.storage import Store, ledger, sessions
from screen_bot.storage.db import Database
from stores import StoreUnderTest
from test_service import SITE_DAYS


def _until_prompts(process: subprocess.Popen[bytes], count: int, timeout: float = 30) -> bytes:
    """Standard output until the dialog has shown its '> ' prompt ``count`` times (input()
    flushes the prompt, so it is read while the dialog waits for the next line)."""
    assert process.stdout is not None
    seen, deadline = b"", time.monotonic() + timeout
    while seen.count(b"\n> ") < count:
        left = deadline - time.monotonic()
        assert left > 0, seen.decode(errors="replace")
        ready, _, _ = select.select([process.stdout], [], [], left)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, seen.decode(errors="replace")  # it ended before the prompt
            seen += chunk
    return seen


def _until_it_waits_for_a_line(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Return once the dialog (one thread) sleeps in the read of its next line, where a
    person's Ctrl-C finds it. Seeing the prompt is not enough: CPython acts on a signal
    between bytecodes or when it interrupts a system call, so a SIGINT that lands after
    input() flushed its prompt but before its read() began waits for the next line (or the
    end of the input). No hand is that fast; a test is. Linux's /proc shows the wait."""
    stat = Path(f"/proc/{process.pid}/stat")
    if not stat.exists():
        pytest.skip("no /proc here to see the dialog wait for its next line (Linux only)")
    deadline = time.monotonic() + timeout
    # the state follows the ') ' closing the command's name: 'S' is asleep
    while stat.read_text().rpartition(") ")[2][:1] != "S":
        assert process.poll() is None, "the dialog ended before it waited for its next line"
        assert time.monotonic() < deadline, "the dialog never waited for its next line"
        time.sleep(0.01)


def test_ctrl_c_keeps_the_screening_for_resume_and_exits_130() -> None:
    # Ctrl-C is an interruption, not an answer: the answers typed stay, as a closed
    # terminal (SIGHUP) or SIGTERM leaves them, and the dialog says how to go on.
    process = subprocess.Popen(
        [str(SCREEN_BOT), "chat", "-p", "blina-dli", "--referral", "R-INT1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert process.stdin is not None
    process.stdin.write(b"35\n")
    process.stdin.flush()
    _until_prompts(process, 2)  # the age is answered: the next question waits
    _until_it_waits_for_a_line(process)
    # a Ctrl-C leaves the input open: closing it first would race the signal with the end
    # of the input ("Stopped; … not kept", exit 1), which no person at a terminal causes
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(
            "the dialog went on waiting for input 30 s after a Ctrl-C (SIGINT): "
            + out.decode(errors="replace")[-300:]
            + err.decode(errors="replace")[-300:]
        )
    out, err = process.communicate(timeout=30)  # it has ended: what is left of its output
    assert process.returncode == 130, out.decode() + err.decode()
    said = out.decode().strip().splitlines()[-1]
    assert said == (
        "Interrupted; the screening is kept: 'screen-bot chat --resume R-INT1' goes on with it."
    )
    assert b"not kept" not in out and b"Traceback" not in err
    resumed = invoke("chat", "--resume", "R-INT1", stdin="quit\n")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resuming R-INT1 at its current question." in resumed.stdout


def typed_then_ctrl_c(*lines: str) -> Callable[[str], str]:
    """A terminal's ``read``: the user types ``lines``, then presses Ctrl-C."""
    typed = iter(lines)

    def read(prompt: str) -> str:
        try:
            return next(typed)
        except StopIteration:
            raise KeyboardInterrupt from None

    return read


def test_ctrl_c_in_the_dialog_cancels_nothing(db: Database) -> None:
    service = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        terminal.chat(service, "blina-dli", "R-K1", read=typed_then_ctrl_c("35"), write=said.append)
    (kept,) = sessions.list_open(db.read(), TERMINAL)
    active = sessions.active(db.read(), TERMINAL)
    assert kept.referral == "R-K1" and active is not None and active.answers["age"].value == 35
    assert said[-1].startswith("Interrupted; the screening is kept")


def test_a_warning_ending_in_a_question_mark_gets_no_full_stop_after_it(
    db: Database, tmp_path: Path
) -> None:
    # audit 22: "… — did you mean µmol/L?. Type it again to confirm, …"
    questions = [
        number("bilirubin_mg_dl", 0, 50, unit="mg/dL", confirm_above=10, confirm_hint="µmol/L?"),
        number("lvef_percent", 0, 100, unit="%", confirm_below=15),
        yes_no("consent"),
    ]
    rules = ["bilirubin_mg_dl < 20", "lvef_percent >= 10", "consent"]
    build(tmp_path, dialog(questions, [inclusion(f"I{n}", r) for n, r in enumerate(rules, 1)]))
    service = ScreeningService(Catalog(tmp_path), db, channel="cli")
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        read = typed_then_ctrl_c("12", "12", "9")
        terminal.chat(service, "synthetic", "R-Q1", read=read, write=said.append)
    again = "Type it again to confirm, or type the corrected value."
    assert f"12 mg/dL is unusual for bilirubin_mg_dl (above 10 mg/dL) — µmol/L? {again}" in said
    assert f"9 % is unusual for lvef_percent (below 15 %). {again}" in said


def test_a_screening_that_expired_while_the_dialog_waited_is_said_to_have_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Any other command (here `migrate`) or the bot's pass deletes a screening left open
    # longer than SCREEN_BOT_SESSION_TTL_HOURS: the dialog says so, with no --resume that
    # cannot work, and records nothing.
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "SCREEN_BOT_SESSION_TTL_HOURS": "0.0003"}
    process = subprocess.Popen(
        [str(SCREEN_BOT), "chat", "-p", "blina-dli", "--referral", "R-TTL1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None
    process.stdin.write(b"35\n")
    process.stdin.flush()
    _until_prompts(process, 2)
    time.sleep(0.0003 * 3600 + 0.5)  # longer than the lifetime
    monkeypatch.setenv("SCREEN_BOT_SESSION_TTL_HOURS", "0.0003")
    assert invoke("migrate").returncode == 0  # opening the database expires it
    out, err = process.communicate(b"0\n", timeout=30)
    assert process.returncode == 2, out.decode() + err.decode()
    assert err.decode().strip() == (
        "error: screening R-TTL1 expired: it was left open longer than "
        "SCREEN_BOT_SESSION_TTL_HOURS (0.0003 hours) and was removed; nothing was recorded"
    )
    assert "exported 0 screenings" in invoke("log", "export").stderr


def test_a_screening_of_a_changed_dialog_file_is_named_when_it_is_removed(
    db: Database, tmp_path: Path
) -> None:
    """After an upgrade (or an edit) 'chat --resume' ends a screening of a changed file:
    the line names it and how to start it again."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    good = (DIALOGS / "blina-dli.yaml").read_text(encoding="utf-8")
    (dialogs / "blina-dli.yaml").write_text(good, encoding="utf-8")
    ScreeningService(Catalog(dialogs), db, channel="cli").start(TERMINAL, "blina-dli", "R-CH1")
    changed = good.replace("14 <= age <= 65", "14 <= age <= 75")
    assert changed != good
    (dialogs / "blina-dli.yaml").write_text(changed, encoding="utf-8")
    with pytest.raises(ScreenBotError) as stopped:
        terminal.chat(
            ScreeningService(Catalog(dialogs), db, channel="cli"),
            resume="R-CH1",
            read=lambda _: "quit",
            write=lambda _: None,
        )
    assert stopped.value.message == (
        "the protocol file changed since screening R-CH1 began, so it was removed: "
        "'screen-bot chat' starts it again"
    )
    assert sessions.list_open(db.read(), TERMINAL) == []


def test_a_screening_ended_in_another_dialog_is_not_called_displaced(db: Database) -> None:
    first = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    second = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    typed = iter(["40", "0"])

    def read(prompt: str) -> str:  # before the second answer, another dialog quits R-A1
        text = next(typed)
        if text == "0":
            second.resume(TERMINAL, "R-A1")
            second.cancel(TERMINAL)
        return text

    with pytest.raises(ScreenBotError) as stopped:
        terminal.chat(first, "blina-dli", "R-A1", read=read, write=lambda _: None)
    message = stopped.value.message
    assert message == (
        "screening R-A1 is no longer open (finished or quit in another terminal dialog?); "
        "nothing was recorded"
    )
    assert sessions.list_open(db.read(), TERMINAL) == []


def test_quit_cancels_this_dialogs_screening_only(db: Database) -> None:
    # Another dialog starts R-B1 while this one waits at R-A1's question: the quit drops
    # R-A1 (the one it showed), never R-B1, now the active one.
    first = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    second = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    typed = ["40", "quit"]

    def read(prompt: str) -> str:
        if len(typed) == 1:  # before the quit
            second.start(TERMINAL, "blina-dli", "R-B1")
        return typed.pop(0)

    with pytest.raises(terminal.Stopped):
        terminal.chat(first, "blina-dli", "R-A1", read=read, write=lambda _: None)
    assert [o.referral for o in sessions.list_open(db.read(), TERMINAL)] == ["R-B1"]


def test_another_dialog_starting_between_the_check_and_the_answer_gets_none_of_it(
    store: StoreUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Audit 17, finding 5: the dialog checked that its screening was still the active one,
    # then answered "the active one"; another dialog's start in between (two desks sharing
    # a PostgreSQL database: two connections) took this dialog's age of 40, and the dialog
    # went on with that screening's next question and logged a mixed verdict.
    with store.open() as desk_a, store.open() as desk_b:
        first = ScreeningService(Catalog(DIALOGS), desk_a, channel="cli")
        second = ScreeningService(Catalog(DIALOGS), desk_b, channel="cli")
        answer = first.answer

        def another_starts_then(*args: Any, **kwargs: Any) -> list[Result]:
            if not sessions.list_open(desk_b.read(), TERMINAL)[1:]:
                second.start(TERMINAL, "blina-dli", "R-B1")
            return answer(*args, **kwargs)

        monkeypatch.setattr(first, "answer", another_starts_then)
        read = typed_then_ctrl_c("40", "0")
        with pytest.raises(KeyboardInterrupt):
            terminal.chat(first, "blina-dli", "R-A1", read=read, write=lambda _: None)
        kept = {
            o.referral: _values(desk_b, o.session_id)
            for o in sessions.list_open(desk_b.read(), TERMINAL)
        }
    assert set(kept) == {"R-A1", "R-B1"} and kept["R-B1"] == {}
    assert kept["R-A1"]["age"] == 40 and len(kept["R-A1"]) == 9  # and the checklist's 8


def _values(db: Store, session_id: str) -> dict[str, Any]:
    session = sessions.get(db.read(), TERMINAL, session_id)
    assert session is not None
    return session.values()


# Two patients, one line per question of blina-dli, both eligible: they differ in age,
# LVEF, ECOG, Karnofsky, weight and QTc.
PATIENT_A = "42|0|4 months ago|0|62|1|80|female|yes|no|yes|1.0|1.2|1|1.1|?|60|106 µmol/L|440"
PATIENT_B = "35|0|4 months ago|0|65|0|90|female|yes|no|yes|1.0|1.2|1|1.1|?|72|106 µmol/L|420"
LINES = {
    "R-A1": f"{PATIENT_A}|none|none|none".split("|"),
    "R-B1": f"{PATIENT_B}|none|none|none".split("|"),
}
OWN = {
    "R-A1": {
        "age": 42,
        "lvef_percent": 62,
        "ecog": 1,
        "karnofsky": 80,
        "weight_kg": 60,
        "qtc_ms": 440,
    },
    "R-B1": {
        "age": 35,
        "lvef_percent": 65,
        "ecog": 0,
        "karnofsky": 90,
        "weight_kg": 72,
        "qtc_ms": 420,
    },
}


def test_two_terminal_dialogs_at_once_each_log_their_own_patient(store: StoreUnderTest) -> None:
    # Audit 17, findings 4 and 5: every terminal screening is one owner, on PostgreSQL
    # site-wide; a second `chat` (the same data directory, or another desk on the same
    # database) stopped the first ("another screening became the active one"), and in a
    # race the two mixed their patients' answers into one logged verdict. Now each dialog
    # answers only its own screening: the two answer turn about, question by question.
    def desk(referral: str, data_dir: Path) -> subprocess.Popen[bytes]:
        data_dir.mkdir(exist_ok=True)
        env = {
            **os.environ,
            **store.env(),
            "SCREEN_BOT_DATA_DIR": str(data_dir),
            "PYTHONIOENCODING": "utf-8",
        }
        return subprocess.Popen(
            [str(SCREEN_BOT), "chat", "-p", "blina-dli", "--referral", referral],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

    # on SQLite both share the data directory; on PostgreSQL each desk has its own
    elsewhere = store.data_dir / "desk-b" if store.url else store.data_dir
    dialogs = {"R-A1": desk("R-A1", store.data_dir)}
    try:
        _until_prompts(dialogs["R-A1"], 1)
        dialogs["R-B1"] = desk("R-B1", elsewhere)
        _until_prompts(dialogs["R-B1"], 1)
        for turn in range(len(LINES["R-A1"]) - 1):
            for referral, process in dialogs.items():
                assert process.stdin is not None
                process.stdin.write(f"{LINES[referral][turn]}\n".encode())
                process.stdin.flush()
                _until_prompts(process, 1)  # its next question
        said = {
            referral: process.communicate(f"{LINES[referral][-1]}\n".encode(), timeout=30)
            for referral, process in dialogs.items()
        }
    finally:
        for process in dialogs.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for referral, process in dialogs.items():
        out, err = (text.decode() for text in said[referral])
        assert process.returncode == 0, out + err
        assert f"Referral: {referral}" in out and "PRE-SCREEN PASSED" in out
    records = store.rows("SELECT referral, verdict, answers FROM screening_log")
    logged = {referral: (verdict, json.loads(answers)) for referral, verdict, answers in records}
    assert len(records) == 2 and set(logged) == set(OWN)
    for referral, own in OWN.items():
        verdict, answers = logged[referral]
        assert verdict == "eligible"
        assert {variable: answers[variable] for variable in own} == own
    assert store.count("open_sessions") == 0


def test_a_taken_referral_is_refused_with_referral_and_asked_again_at_the_prompt(
    db: Database,
) -> None:
    """README: given with --referral, a referral with an unfinished screening is refused
    (exit 2); typed at the prompt, the prompt asks again."""
    killed = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    killed.start(TERMINAL, "blina-dli", "R-200")  # a dialog killed before its verdict
    service = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    with pytest.raises(ScreenBotError) as refused:
        terminal.chat(service, "blina-dli", "R-200", read=lambda _: "quit", write=lambda _: None)
    assert "R-200 already has an unfinished screening" in refused.value.message
    shown: list[str] = []
    typed = iter(["R-200", "quit"])
    with pytest.raises(terminal.Stopped):
        terminal.chat(service, "blina-dli", read=lambda _: next(typed), write=shown.append)
    said = "\n".join(shown)
    asked = "Referral code for this screening?"
    taken = "R-200 already has an unfinished screening: type another code, or skip"
    assert said.count(asked) == 2 and said.index(asked) < said.index(taken) < said.rindex(asked)


def test_input_answers_only_the_question_this_dialog_showed(db: Database) -> None:
    # A second `chat --resume R-S2` answered AST while this dialog still showed it: the 3.5
    # typed here for AST was recorded as ALT and logged as I8b failing (review)
    walk = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    results = walk.start(TERMINAL, "blina-dli", "R-S2", ask_referral=False)
    results = walk.answer(TERMINAL, "40")
    while "AST" not in results[-1].text:  # '?' / '0' up to the AST question
        asked = results[-1]
        assert isinstance(asked, Asked)
        results = walk.answer(TERMINAL, "0" if asked.checklist else "?")
    first = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    second = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    shown: list[str] = []

    def read(prompt: str) -> str:  # meanwhile, in another terminal: AST answered 1.0
        second.resume(TERMINAL, "R-S2")
        second.answer(TERMINAL, "1.0")
        return "3.5"

    with pytest.raises(ScreenBotError) as stopped:
        terminal.chat(first, resume="R-S2", read=read, write=shown.append)
    assert "AST" in shown[-1]
    assert stopped.value.message == (
        "screening R-S2 changed in another terminal dialog while this one waited; this input "
        "was not taken: 'screen-bot chat --resume R-S2' shows its current question"
    )
    active = sessions.active(db.read(), TERMINAL)
    assert active is not None and "alt_x_uln" not in active.answers
    assert active.answers["ast_x_uln"].value == 1.0


def test_a_screening_finished_in_another_dialog_is_not_called_expired(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # finished (and logged) elsewhere, then this dialog's user came back past the lifetime:
    # "expired ... nothing was recorded" invited a second screening of the patient (review)
    first = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    second = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    later = utc_now() + timedelta(hours=80)

    def read(prompt: str) -> str:
        second.resume(TERMINAL, "R-F1")
        assert isinstance(second.answer(TERMINAL, "10")[-1], Finished)  # age 10: at once
        monkeypatch.setattr(terminal, "utc_now", lambda: later)
        return "40"

    with pytest.raises(ScreenBotError) as stopped:
        terminal.chat(first, "blina-dli", "R-F1", read=read, write=lambda _: None, ttl_hours=72)
    assert stopped.value.message == (
        "screening R-F1 was finished in another terminal dialog and logged as record 1 "
        "('screen-bot log export' shows the verdict); this input was not taken"
    )


def test_a_planned_date_passed_since_the_check_is_asked_with_the_reason(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `check --continue` across midnight: "today" is past when the dialog continues
    dialogs = tmp_path / "ctl019"
    dialogs.mkdir()
    shutil.copy(SHIPPED / "ctl019-rr-ball.yaml", dialogs)
    service = ScreeningService(Catalog([dialogs]), db, channel="cli")
    now = [datetime(2026, 11, 26, 23, 59, tzinfo=UTC)]
    for module in (service_module, session_module, terminal):
        monkeypatch.setattr(module, "utc_now", lambda: now[0])
    (checked,) = service.check(
        TERMINAL,
        "planned_infusion_date today, marrow_relapse_count 2, prior_therapies none, "
        "cns_status CNS1, marrow_blasts 30, age 12, age_at_diagnosis 8, b_all_cd19_positive "
        "yes, burkitt no, isolated_extramedullary_relapse no, prior_allo_hsct yes",
    )
    assert isinstance(checked, Checked) and checked.check_id is not None
    now[0] = datetime(2026, 11, 27, 0, 1, tzinfo=UTC)
    shown: list[str] = []
    typed = iter(["", "quit"])  # no referral code, then quit at the question that follows
    with pytest.raises(terminal.Stopped):
        terminal.chat(
            service, check_id=checked.check_id, read=lambda _: next(typed), write=shown.append
        )
    said = "\n".join(shown)
    refused = (
        "planned_infusion_date 2026-11-26 from the quick check is not used: a planned date "
        "cannot be in the past: 2026-11-26 is before the screening date 2026-11-27"
    )
    assert said.index(refused) < said.index("Planned date of the CAR-T infusion?")  # then asked


@pytest.mark.parametrize(("zone", "now", "day"), SITE_DAYS)
def test_screen_bot_chat_dates_a_screening_by_the_sites_day(
    db: Database, monkeypatch: pytest.MonkeyPatch, zone: str | None, now: datetime, day: date
) -> None:
    # SCREEN_BOT_TIMEZONE, read by the command: "yesterday" is the site's, and so is the
    # date the verdict says and the log files as the date screened
    if zone is not None:
        monkeypatch.setenv("SCREEN_BOT_TIMEZONE", zone)
    for module in (service_module, session_module, terminal):
        monkeypatch.setattr(module, "utc_now", lambda: now)
    done = invoke(
        "chat", "--protocol", "blina-dli", "--referral", "R-TZ2", stdin="40\n0\nyesterday\n"
    )
    assert done.returncode == 0, done.stderr
    yesterday = (day - timedelta(days=1)).isoformat()
    assert f"transplant_date = {yesterday}" in done.stdout  # I4a: too recent
    assert f"screened {day.isoformat()}" in done.stdout
    (record,) = ledger.records(db.read())
    assert (record.screened_on, record.answers["transplant_date"]) == (day, yesterday)
