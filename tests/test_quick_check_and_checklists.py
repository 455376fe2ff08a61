"""The quick check's reading, the checklist validator, and `screen-bot check`."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import screen_bot.service as service_module
import screen_bot.session as session_module
from cli_runner import invoke
from conftest import DIALOG, DIALOGS, SHIPPED
from screen_bot.adapters import terminal
from screen_bot.answers import AnswerError, parse_text
from screen_bot.checklists import parse_checklist
from screen_bot.errors import ScreenBotError
from screen_bot.protocol import DialogFileError, load
from screen_bot.protocol.catalog import Catalog
from screen_bot.quick_check import judge, read
from screen_bot.results import Checked, Finished
from screen_bot.rules.units import same_unit
from screen_bot.service import TERMINAL, ScreeningService
from screen_bot.storage import ledger, sessions
from screen_bot.storage.db import Database
from test_service import EDGE_OF_I4A, EDGE_VERDICTS, SITE_DAYS
from test_terminal_dialog import typed_then_ctrl_c

ON = date(2026, 1, 15)
PROTOCOL = load(DIALOG)


def test_names_aliases_forms_and_decimal_commas() -> None:
    reading = read(
        PROTOCOL,
        "Age: 40; MAN, alt 1,2, AST=45/40\nTransplant date 2025-10-15\nCrCl 95 mL/min",
        ON,
    )
    assert reading.values == {
        "age": 40,
        "sex": "male",
        "alt_x_uln": 1.2,
        "ast_x_uln": 1.125,
        "transplant_date": date(2025, 10, 15),
        "crcl_ml_min": 95.0,
    }
    assert reading.unread == []


@pytest.mark.parametrize("typed", ["Aug 14, 2025", "14 Aug, 2025", "August 14th,  2025"])
def test_a_date_with_its_comma_is_read_as_the_dialog_reads_it(typed: str) -> None:
    # the comma split "Aug 14, 2026" in two: a garbled refusal of "Aug 14", "2026" not used
    day = date(2025, 8, 14)
    assert parse_text(PROTOCOL.questions["transplant_date"], typed, ON) == day  # the dialog
    reading = read(PROTOCOL, f"age 40, transplant {typed}, ecog 1, alt 1,2", ON)
    assert reading.unread == []  # other commas still split (a decimal comma does not)
    assert reading.values == {"age": 40, "transplant_date": day, "ecog": 1, "alt_x_uln": 1.2}


@pytest.mark.parametrize(
    ("typed", "alone"),
    [
        ("mi 14/08/2025 10:00", "mi 14/08/2025"),
        ("mi 2025-03-14T10:00", "mi 2025-03-14"),
        ("mi: 14/08/2025 10:00:30", "mi 14/08/2025"),
        ("mi=2025-03-14 9:30 pm", "mi 2025-03-14"),
        ("Transplant date 2025-10-15 10:00Z", "Transplant date 2025-10-15"),
    ],
)
def test_a_date_with_a_time_of_day_is_refused_for_its_time(typed: str, alone: str) -> None:
    # the time's colon read as "name: value": 'mi 14/08/2025 10' was "not a question"
    reading = read(PROTOCOL, f"age 40, {typed}", ON)
    assert reading.values == {"age": 40}
    (unread,) = reading.unread
    variable = "transplant_date" if alone.startswith("Transplant") else "last_mi_date"
    assert unread.why == f"{variable}: a date with a time of day; type the date alone ({alone})"
    assert read(PROTOCOL, alone, ON).unread == []  # what it says to type is read
    only_time = read(PROTOCOL, "mi 10:00", ON).unread[0].why
    assert only_time == "last_mi_date: a time of day is not a date; type the date"


def test_a_thousands_separator_in_a_check_is_asked_about_not_read_as_a_decimal() -> None:
    # "alt 1,200/40" (30 × ULN) was read as 0.03 × ULN: I8b and E5 passed
    reading = read(PROTOCOL, "age 40, alt 1,200/40, ast 1.000", ON)
    assert reading.values == {"age": 40}
    why = {u.part: u.why for u in reading.unread}
    assert why["alt 1,200/40"] == "alt_x_uln: 1,200 could be 1.2 or 1200: type 1.2/40 or 1200/40"
    assert why["ast 1.000"] == "ast_x_uln: 1.000 could be 1 or 1000: type 1 or 1000"


def test_a_number_with_more_digits_than_a_double_holds_is_not_used() -> None:
    # "lvef 49.999999999999999" was read as 50 (I8e met), "age 13.9999999999999999" as 14
    typed = {
        "lvef": ("lvef_percent", "49.999999999999999", " (0–100 %)"),
        "age": ("age", "13.9999999999999999", " (0–120 years)"),
        "ecog": ("ecog", "2.9999999999999999", " (0–5)"),
        "scr": ("serum_creatinine_mg_dl", "0.0499999999999999999", " (0.05–30 mg/dL)"),
    }
    reading = read(
        PROTOCOL, ", ".join(f"{name} {text}" for name, (_, text, _) in typed.items()), ON
    )
    assert reading.values == {}
    why = {u.part: u.why for u in reading.unread}
    assert why == {
        f"{name} {text}": (
            f"{variable}: Too many digits in {text}: please type 15 significant digits at most"
            + limits
        )
        for name, (variable, text, limits) in typed.items()
    }


def test_every_unusable_part_is_listed_with_its_reason() -> None:
    reading = read(PROTOCOL, "lvf 55, age 200, weight 70, crcl 95, qtc, female, female", ON)
    why = {u.part: u.why for u in reading.unread}
    assert why["lvf 55"] == "did you mean lvef?"
    assert "out of range" in why["age 200"]
    assert "not asked under the other answers" in why["weight 70"]
    assert why["qtc"] == "no value for qtc"
    assert "given twice; used once" in why["female"]
    assert reading.values == {"crcl_ml_min": 95.0, "sex": "female"}


def test_a_referral_in_the_check_and_a_name_refused() -> None:
    assert read(PROTOCOL, "ref R-0423, age 40", ON).referral == "R-0423"
    reading = read(PROTOCOL, "referral John Smith", ON)
    assert reading.referral is None and "never a name" in reading.unread[0].why


def test_a_referral_given_twice_is_listed_as_any_value_is() -> None:
    reading = read(PROTOCOL, "ref R-1, age 40, ref R-2, referral R-3", ON)
    assert reading.referral is None  # continuing asks it
    assert [u.why for u in reading.unread] == [
        "the referral was given twice (R-1 and R-2): neither is used",
        "the referral was given twice: neither is used",
    ]
    reading = read(PROTOCOL, "ref R-1, age 40, code R-1", ON)
    assert reading.referral == "R-1"
    assert [u.why for u in reading.unread] == ["the referral was given twice; used once"]


def test_check_against_all_reads_each_protocols_names() -> None:
    protocols = Catalog(SHIPPED).protocol_set
    reading = read(protocols, "age 40, lvef 55, creatinine 1.1", ON)
    assert reading.values["lvef_percent"] == reading.values["ejection_fraction_percent"] == 55
    (creatinine,) = reading.unread
    assert "write the variable name instead" in creatinine.why  # two meanings in blina-dli
    judged = judge(protocols, reading, ON)
    assert {j.verdict.protocol.id for j in judged} == {"blina-dli", "ctl019-rr-ball"}


def test_check_all_refuses_a_name_meaning_two_units_and_uses_lvef_for_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Audit 22, F1: 'bilirubin 1.9' (× ULN in blina-dli, mg/dL in ctl019-rr-ball) was given
    to both: a man at 2.28 mg/dL (1.9 × ULN) typed as blina asks passed ctl019's C-I6b2. A
    name of two units is refused; lvef (% in both files) is still used for each."""
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(SHIPPED))
    done = invoke("check", "-p", "all", "age 19, bilirubin 1.9, lvef 55")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Read: age 19 years · lvef_percent 55 % · ejection_fraction_percent 55 %"
    assert lines[2] == (
        "• 'bilirubin 1.9' — this name means bilirubin_x_uln (× ULN) in blina-dli, "
        "total_bilirubin_mg_dl (mg/dL) in ctl019-rr-ball: write the variable name instead"
    )
    unknown = [line for line in lines if line.startswith("Still unknown")]
    assert len(unknown) == 2 and all("bilirubin" in line for line in unknown)  # used by neither
    named = invoke("check", "-p", "all", "bilirubin_x_uln 1.9, total_bilirubin_mg_dl 2.28")
    assert named.stdout.splitlines()[0] == (
        "Read: bilirubin_x_uln 1.9 × ULN · total_bilirubin_mg_dl 2.28 mg/dL"
    )


_SET = Catalog(SHIPPED).protocol_set
_SHARED_NAMES = sorted(
    {n for m in _SET.members for n in m.aliases if sum(n in o.aliases for o in _SET.members) > 1}
)
_UNITS = sorted(
    {u for q in _SET.questions.values() for u in [q.unit, *(a.unit for a in q.also_accepts)] if u}
)


@given(
    name=st.sampled_from(_SHARED_NAMES),
    number=st.decimals(min_value=0, max_value=200, places=2),
    unit=st.sampled_from(["", "/40", *_UNITS]),
)
def test_a_name_used_for_several_protocols_is_one_unit_read_alike_by_each(
    name: str, number: Decimal, unit: str
) -> None:
    """Every shipped name that several protocols take: either it is refused as ambiguous,
    or its variables are in one unit and each protocol reads the typed value alike (so no
    value is dropped for all because one protocol refuses its unit: audit 22, F1 (c))."""
    meanings = [m.questions[m.aliases[name]] for m in _SET.members if name in m.aliases]
    typed = f"{number} {unit}".strip()
    reading = read(_SET, f"{name} {typed}", ON)
    if any(u.why.endswith("write the variable name instead") for u in reading.unread):
        assert len({q.variable for q in meanings}) > 1
        return
    assert all(same_unit(q.unit, meanings[0].unit) for q in meanings)
    assert all(same_unit(g.unit, meanings[0].unit) for g in reading.given)
    outcomes = set()
    for question in meanings:
        try:
            outcomes.add(repr(parse_text(question, typed, ON)))
        except AnswerError:
            outcomes.add("refused")
    assert len(outcomes) == 1, outcomes


def test_a_bare_number_or_none_is_not_taken_for_a_choice() -> None:
    protocols = Catalog(SHIPPED).protocol_set  # ctl019's acute_gvhd_grade is "0".."4"
    reading = read(protocols, "age 19, male, prior_allo_hsct yes, ecog 1, 2, none", ON)
    assert "acute_gvhd_grade" not in reading.values and "prior_malignancy" not in reading.values
    why = {u.part: u.why for u in reading.unread}
    assert why["2"].startswith("'2' alone could also answer") and "acute_gvhd_grade 2" in why["2"]
    assert "prior_malignancy none" in why["none"]
    assert reading.values["sex"] == "male"  # a word that answers nothing else still does


def test_a_multi_select_is_read_whole_across_its_commas() -> None:
    ctl019 = Catalog(SHIPPED).protocols["ctl019-rr-ball"]
    text = "age 19, prior_therapies gene_therapy, blinatumomab, male; cns_status CNS1, cd19_car_t"
    reading = read(ctl019, text, ON)
    assert reading.values["prior_therapies"] == ("gene_therapy", "blinatumomab")
    assert reading.values["sex"] == "male"
    (stray,) = reading.unread  # a choice away from its name is listed, not dropped or cut
    assert stray.part == "cd19_car_t" and "prior_therapies cd19_car_t" in stray.why


def test_an_estimate_in_a_reason_is_shown_rounded_and_kept_unrounded() -> None:
    from screen_bot.render import reason_text

    reading = read(PROTOCOL, "age 60, male, weight 70, scr 2, creat 2.5", ON)
    (judged,) = judge(PROTOCOL, reading, ON)
    (reason,) = [r for r in judged.verdict.reasons if r.criterion == "I8d"]
    assert reason.answers["crcl"] == pytest.approx(80 * 70 / 144)  # 38.888…, as it decided
    assert "crcl (estimated) = 38.9, creatinine_x_uln = 2.5" in reason_text(reason)


def test_a_complete_check_has_the_verdict_and_no_open_item() -> None:
    from patients import ELIGIBLE

    text = ", ".join(
        f"{v} {x.isoformat() if isinstance(x, date) else x}" for v, x in ELIGIBLE.items()
    )
    reading = read(PROTOCOL, text.replace("True", "yes").replace("False", "no"), ON)
    (judged,) = judge(PROTOCOL, reading, ON)
    assert judged.verdict.verdict == "eligible" and judged.open_items == ()


@pytest.mark.parametrize(
    ("mode", "typed", "expected"),
    [
        ("none_apply", "0", [False, False, False]),
        ("none_apply", "none", [False, False, False]),
        ("none_apply", "2", [False, True, False]),
        ("none_apply", "1, 3?", [True, False, None]),
        ("all_hold", "yes", [True, True, True]),
        ("all_hold", "2", [True, False, True]),
        ("all_hold", "?", [None, None, None]),
    ],
)
def test_a_checklist_typed(mode: str, typed: str, expected: list[bool | None]) -> None:
    checklist = next(c for c in PROTOCOL.spec.checklists if c.mode == mode)
    assert parse_checklist(checklist, 3, typed) == expected


@pytest.mark.parametrize("typed", ["4", "1 x", "-1", "0 2"])
def test_a_checklist_line_out_of_range_is_refused(typed: str) -> None:
    from screen_bot.answers import AnswerError

    with pytest.raises(AnswerError, match="numbers"):
        parse_checklist(PROTOCOL.spec.checklists[0], 3, typed)


@pytest.mark.parametrize("typed", ["3? 3", "3 3?", "1, 3?, 2, 3"])
def test_a_checklist_line_that_marks_one_item_two_ways_is_refused(typed: str) -> None:
    from screen_bot.answers import AnswerError

    with pytest.raises(AnswerError, match="Item 3 is given twice"):
        parse_checklist(PROTOCOL.spec.checklists[0], 3, typed)


def test_a_checklist_item_given_twice_the_same_way_is_taken() -> None:
    checklist = PROTOCOL.spec.checklists[0]
    assert parse_checklist(checklist, 3, "3, 3") == parse_checklist(checklist, 3, "3")
    assert parse_checklist(checklist, 3, "3? 3?") == parse_checklist(checklist, 3, "3?")


@pytest.mark.parametrize("typed", ["3? 3", "3 3?"])
def test_chat_asks_a_contradictory_checklist_line_again(typed: str) -> None:
    done = invoke("chat", "--protocol", "blina-dli", stdin=f"\n35\n{typed}\nquit\n")
    assert "Item 3 is given twice" in done.stdout, done.stdout + done.stderr
    assert "NOT ELIGIBLE" not in done.stdout
    assert "exported 0 screenings" in invoke("log", "export").stderr  # nothing decided


CHECKLIST = """
checklists:
  - name: history
    mode: none_apply
    text: Any of these?
    items: [{items}]
"""


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("arrhythmia, lvef_percent", "checklist item 'lvef_percent' is a number question"),
        ("arrhythmia, arrythmia", "checklist item 'arrythmia' is not a question"),
        ("arrhythmia, substance_abuse", "are not consecutive questions"),
        ("symptomatic_cad_on_medication, arrhythmia", "are not consecutive questions"),
        ("sex, childbearing_potential", "is a choice question"),
    ],
)
def test_the_validator_checks_checklists(tmp_path: Path, items: str, message: str) -> None:
    text = DIALOG.read_text(encoding="utf-8")
    start, end = text.index("\nchecklists:"), text.index("\ncriteria:\n")
    text = text[:start] + CHECKLIST.format(items=items) + text[end:]  # only the test's
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DialogFileError) as info:
        load(path)
    assert any(message in p.message for p in info.value.problems), info.value.problems


def test_a_condition_inside_a_checklist_is_refused(tmp_path: Path) -> None:
    text = DIALOG.read_text(encoding="utf-8").replace(
        "  - variable: active_gvhd\n",
        "  - variable: active_gvhd\n    when: gvhd_grade_3_4_history\n",
    )
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DialogFileError) as info:
        load(path)
    assert any("in the same checklist 'history'" in p.message for p in info.value.problems)


def test_screen_bot_check_from_an_argument_and_from_stdin() -> None:
    done = invoke("check", "age 40, male, lvf 55")
    assert done.returncode == 0, done.stderr
    assert "Read: age 40 years · sex male" in done.stdout and "did you mean lvef?" in done.stdout
    done = invoke("check", stdin="age 70\n")
    assert done.returncode == 0 and "I1 age 14–65 inclusive" in done.stdout
    done = invoke("check", "hello")
    assert done.returncode == 2 and "Nothing could be read" in done.stdout


def test_the_read_line_shows_each_number_in_the_unit_it_was_read_in() -> None:
    """Audit 20, F3: 'creatinine 1.9' copied from a lab sheet in mg/dL is read as 1.9 × ULN
    (a woman with an upper limit of 0.9 mg/dL is at 2.1 × ULN and fails E6a). It is still
    read so; the Read line says how, for every value with a unit."""
    done = invoke("check", "creatinine 1.9, qtc 450, crcl ?, weight 70, scr 133 µmol/L, male")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        "Read: creatinine_x_uln 1.9 × ULN · qtc_ms 450 ms · crcl_ml_min unknown · "
        "weight_kg 70 kg · serum_creatinine_mg_dl 1.505 mg/dL · sex male"
    )


def test_screen_bot_check_at_a_terminal_says_what_to_type_on_stderr() -> None:
    # (it waited for the end of the input saying nothing: it looked hung)
    import os
    import pty
    import subprocess

    from cli_runner import SCREEN_BOT

    terminal, stdin = pty.openpty()
    os.write(terminal, b"age 70\n\x04")  # Ctrl-D on a new line: the end of the input
    done = subprocess.run(
        [str(SCREEN_BOT), "check"], stdin=stdin, capture_output=True, text=True, timeout=30
    )
    os.close(terminal)
    os.close(stdin)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("Type the values known, e.g. 'age 40, male, lvef 55'")
    assert "then Ctrl-D on a new line" in done.stderr
    assert done.stdout.startswith("Read: age 70 years")  # the output is the result only
    assert "Type" not in invoke("check", stdin="age 70\n").stderr  # not asked when piped


def test_screen_bot_check_continue_asks_only_what_is_missing() -> None:
    values = (
        "age 35, male, transplant 4 months ago, ecog 1, kps 80, ast 1, alt 1, bili 1, "
        "creat 1, crcl 95, lvef 62, qtc 430"
    )
    done = invoke("check", values, "--continue", stdin="R-1\n0\n0\nnone\nnone\nnone\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PRE-SCREEN PASSED" in done.stdout and "Screening log: record 1." in done.stdout
    assert "Age in whole years" not in done.stdout  # given: not asked


def test_check_reads_standard_input_with_a_byte_order_mark() -> None:
    done = invoke("check", stdin="\ufeffage 40\nsex male\n")
    assert done.stdout.splitlines()[0] == "Read: age 40 years · sex male", done.stdout


def test_check_shows_terminal_control_characters_escaped() -> None:
    done = invoke("check", "age 40, \x1b]0;owned\x07 lvf 55")
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "'\\x1b]0' —" in done.stdout and "'owned\\x07 lvf 55' —" in done.stdout


def _left_open(referral: str, age: str) -> None:
    """A terminal screening of ``referral`` left open, as by a dialog killed after its first
    answer (the service's calls of `screen-bot chat --referral`, without the quit)."""
    with Database(Path("data") / "screen-bot.sqlite3") as db:
        service = ScreeningService(Catalog(DIALOGS), db, channel="cli")
        service.start(TERMINAL, None, referral)
        service.answer(TERMINAL, age)


@pytest.mark.parametrize(
    "command",
    [("check", "ref R-8, age 40, male", "--continue"), ("chat", "--referral", "R-8")],
)
def test_input_never_goes_to_a_screening_left_open_with_the_same_referral(
    command: tuple[str, ...],
) -> None:
    _left_open("R-8", "50")
    done = invoke(*command, stdin="2\n" * 40)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "screen-bot chat --resume R-8" in done.stderr
    assert "Screening log" not in done.stdout
    assert "exported 0 screenings" in invoke("log", "export").stderr  # nothing logged
    resumed = invoke("chat", "--resume", "R-8", stdin="quit\n")  # shown, then dropped
    assert resumed.returncode == 0 and "Resuming R-8 at its current question." in resumed.stdout
    assert "unfinished" not in invoke("chat", "--referral", "R-8", stdin="quit\n").stderr


def test_a_second_terminal_dialog_never_gets_the_first_ones_input(db: Database) -> None:
    # Every terminal dialog is the same owner: a second `chat` on the same data directory
    # makes its screening the active one; what the first one's user types next still
    # answers, and goes back in, the first one's screening only (the first one used to stop
    # there, and in a race answered the second one's: audit 17, finding 5).
    first = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    second = ScreeningService(Catalog(DIALOGS), db, channel="cli")

    typed = typed_then_ctrl_c("40", "back", "41")

    def read(prompt: str) -> str:  # the first dialog's user types while the second starts
        if not sessions.list_open(db.read(), TERMINAL)[1:]:
            second.start(TERMINAL, "blina-dli", "R-B2")
        return typed(prompt)

    with pytest.raises(KeyboardInterrupt):
        terminal.chat(first, "blina-dli", "R-A1", read=read, write=lambda _: None)
    answers = {
        o.referral: _answers(db, o.session_id) for o in sessions.list_open(db.read(), TERMINAL)
    }
    assert answers == {"R-A1": {"age": 41}, "R-B2": {}}


def _answers(db: Database, session_id: str) -> dict[str, object]:
    session = sessions.get(db.read(), TERMINAL, session_id)
    assert session is not None
    return session.values()


def test_a_check_replaced_before_it_continued_says_so(db: Database) -> None:
    # The terminal's quick check is kept per owner, and all terminals are one owner (on
    # PostgreSQL every desk): another desk's `check` between this one's check and its
    # continuation replaces it. Its values are never taken for another's; the dialog says why
    # nothing started ("no quick check to continue", just after the check was shown, did not).
    service = ScreeningService(Catalog(DIALOGS), db, channel="cli")
    (mine,) = service.check(TERMINAL, "age 40, lvef 65")
    service.check(TERMINAL, "age 70")  # at another desk
    assert isinstance(mine, Checked) and mine.check_id is not None
    with pytest.raises(ScreenBotError) as refused:
        terminal.chat(service, check_id=mine.check_id, read=lambda _: "", write=lambda _: None)
    assert refused.value.message == (
        "the quick check was replaced by another one (a 'check' at another terminal using "
        "this database) before its screening began; nothing was recorded: run the 'check "
        "--continue' again"
    )
    assert sessions.list_open(db.read(), TERMINAL) == []


def test_a_decided_check_continued_logs_the_verdict_it_showed(db: Database) -> None:
    # a check failing at LVEF and at QTc: the dialog ends at LVEF, before QTc's turn; the
    # values it did not reach are recorded still, so the verdict is the check's, reasons and all
    from test_telegram_bedside import MAN

    service = ScreeningService(Catalog([SHIPPED]), db, channel="cli")
    facts = dict(MAN, lvef_percent="45", qtc_ms="480")
    text = "ref R-D1, " + ", ".join(f"{v} {x}" for v, x in facts.items())
    (checked,) = service.check(TERMINAL, text, "blina-dli")
    assert isinstance(checked, Checked) and checked.decided and checked.check_id is not None
    (judged,) = checked.judged
    assert {r.criterion for r in judged.verdict.reasons} == {"I8e", "E3a", "E3c"}
    finished = service.continue_check(TERMINAL, checked.check_id)[-1]
    assert isinstance(finished, Finished)
    assert finished.verdicts == (judged.verdict,)


def _site(monkeypatch: pytest.MonkeyPatch, zone: str | None, now: datetime) -> None:
    """SCREEN_BOT_TIMEZONE ``zone`` (None: unset) and the clock at ``now``."""
    if zone is not None:
        monkeypatch.setenv("SCREEN_BOT_TIMEZONE", zone)
    for module in (service_module, session_module, terminal):
        monkeypatch.setattr(module, "utc_now", lambda: now)


@pytest.mark.parametrize(("zone", "now", "day"), SITE_DAYS)
def test_screen_bot_check_reads_yesterday_as_the_sites(
    monkeypatch: pytest.MonkeyPatch, zone: str | None, now: datetime, day: date
) -> None:
    _site(monkeypatch, zone, now)
    done = invoke("check", "age 40, transplant_date yesterday")
    yesterday = (day - timedelta(days=1)).isoformat()
    assert done.stdout.splitlines()[0] == f"Read: age 40 years · transplant_date {yesterday}"


@pytest.mark.parametrize(("zone", "now", "verdict"), EDGE_VERDICTS)
def test_screen_bot_check_decides_a_window_edge_on_the_sites_day(
    db: Database, monkeypatch: pytest.MonkeyPatch, zone: str | None, now: datetime, verdict: str
) -> None:
    # I4a's first day (see test_service): the check and the screening it logs alike
    from patients import ELIGIBLE

    _site(monkeypatch, zone, now)
    patient = {**ELIGIBLE, "transplant_date": EDGE_OF_I4A}
    text = ", ".join(
        f"{v} {x.isoformat() if isinstance(x, date) else x}" for v, x in patient.items()
    )
    text = "ref R-E2, " + text.replace("True", "yes").replace("False", "no")
    done = invoke("check", text, "--continue")
    assert done.returncode == 0, done.stdout + done.stderr
    said = "PRE-SCREEN PASSED" if verdict == "eligible" else "I4a ≥ 2 months post-transplant"
    assert said in done.stdout
    (record,) = ledger.records(db.read())
    assert record.verdict == verdict
