"""Transcripts of the short paths (issue 13): /check, checklists, multi-select toggles, the
referral asked first, /details; and the measured messages and taps from /screen (or
/check) to the verdict, which the README quotes."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import screen_bot.service as service_module
import screen_bot.session as session_module
from conftest import SHIPPED
from screen_bot.adapters.telegram import messages as say
from screen_bot.adapters.telegram.callback_data import Press, decode
from screen_bot.protocol.catalog import Catalog
from steps import checklist_line
from telegram_offline import Chat
from test_service import SITE_DAYS
from test_telegram_transcript import COORDINATOR, Harness

CONFIRMATIONS = [
    "b_all_cd19_positive",
    "ph_negative",
    "high_risk_features",
    "hematopoietic_reconstitution",
    "marrow_remission",
    "mrd_negative",
    "expected_survival_over_3_months",
    "consent_willing",
]
HISTORY = [
    "active_infection_or_bleeding",
    "gvhd_grade_3_4_history",
    "active_gvhd",
    "prior_solid_organ_transplant",
    "arrhythmia",
    "symptomatic_cad_on_medication",
    "severe_pulmonary_dysfunction",
    "substance_abuse",
    "hypersensitivity_to_study_drugs",
    "psychiatric_condition_impairing_consent",
    "other_investigator_concern",
]
# An eligible man of 35 with a measured clearance, as a coordinator types the answers.
MAN: dict[str, str] = {
    "age": "35",
    "sex": "male",
    "transplant_date": "4 months ago",
    "ecog": "1",
    "karnofsky": "80",
    "ast_x_uln": "1.1",
    "alt_x_uln": "1.2",
    "bilirubin_x_uln": "1",
    "creatinine_x_uln": "1",
    "crcl_ml_min": "95",
    "lvef_percent": "62",
    "qtc_ms": "430",
    "last_mi_date": "none",
    "last_vascular_event_date": "none",
    "last_major_surgery_date": "none",
    **dict.fromkeys(CONFIRMATIONS, "yes"),
    **dict.fromkeys(HISTORY, "no"),
}
# An eligible woman of childbearing potential without a measured clearance.
WOMAN: dict[str, str] = {
    **MAN,
    "sex": "female",
    "childbearing_potential": "yes",
    "pregnant_or_lactating": "no",
    "contraception_agreed": "yes",
    "crcl_ml_min": "?",
    "weight_kg": "60",
    "serum_creatinine_mg_dl": "0.9",
}
LAB_SHEET = (
    "age 35\nsex male\ntransplant date: 4 months ago\nECOG 1\nKPS 80\nAST 1.1\nALT 45/40\n"
    "bili 1.0\ncreatinine 1.0\nCrCl 95 mL/min\nLVEF 62%\nQTc 430 ms"
)


class Counting(Chat):
    """A chat that counts what the coordinator does: messages sent and buttons pressed."""

    actions = 0

    async def send(self, text: str) -> None:
        self.actions += 1
        await super().send(text)

    async def press(self, message: dict[str, Any], data: str) -> None:
        self.actions += 1
        await super().press(message, data)


def counting(harness: Harness) -> Counting:
    return Counting(harness.application, harness.request, COORDINATOR)


def labels(message: dict[str, Any]) -> list[str]:
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


async def play(chat: Chat, harness: Harness, answers: dict[str, str]) -> None:
    """Answer as a coordinator on a phone would: a button where the answer is one (a
    checklist with nothing to change is one tap), typing otherwise."""
    for _ in range(60):
        session = harness.active(chat.user_id)
        if session is None:
            return
        engine = harness.engine
        shown = labels(chat.last_with_buttons())
        checklist = engine.checklist(session)
        if checklist is not None:
            line = checklist_line(checklist, engine.step_items(session), answers)
            finish = say.FINISH_LABELS["all" if checklist.default else "none"]
            await (chat.tap(finish) if line == "0" else chat.send(line))
            continue
        answer = answers[session.state]
        button = {"yes": "Yes", "no": "No", "none": "None (never)"}.get(answer, answer)
        await (chat.tap(button) if button in shown else chat.send(answer))
    raise AssertionError("the screening never ended")


# -- the measurements the README quotes ---------------------------------------------------------


async def test_eligible_man_takes_at_most_20_messages_and_taps(harness: Harness) -> None:
    chat = counting(harness)
    await chat.send("/screen R-0423")
    await play(chat, harness, MAN)
    assert chat.last_text().startswith("PRE-SCREEN PASSED")
    assert chat.actions == 18  # README, "Short paths"; the issue asks for ≤ 20 (from 34)


async def test_woman_without_a_measured_clearance_takes_at_most_24(harness: Harness) -> None:
    chat = counting(harness)
    await chat.send("/screen R-0424")
    await play(chat, harness, WOMAN)
    text = chat.last_text()
    assert text.startswith("PRE-SCREEN PASSED")
    assert "by Cockcroft-Gault" in text and "rounded to 0.1" in text  # the estimate shown
    assert chat.actions == 23  # ≤ 24


async def test_bedside_check_then_continue_takes_at_most_8(harness: Harness) -> None:
    chat = counting(harness)
    await chat.send(f"/check {LAB_SHEET}")
    report = chat.last_text()
    assert "Not used" not in report  # every line of the sheet was read
    assert "alt_x_uln 1.12" in report  # 45/40, typed as the dialog types it
    await chat.tap(say.CONTINUE)
    assert "Referral code" in chat.last_text()
    await chat.send("R-0425")
    await play(chat, harness, MAN)
    assert chat.last_text().startswith("PRE-SCREEN PASSED")
    assert chat.actions == 8  # /check, continue, referral, 2 checklists, 3 dates: ≤ 8
    (record,) = harness.records()
    assert record.referral == "R-0425" and record.answers["crcl_ml_min"] == 95


# -- /check ------------------------------------------------------------------------------------


async def test_check_lists_what_it_cannot_use_with_the_reason(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/check age 40, male, lvf 55, qtc 430, age 41, weight 70, crcl 95, ecog=1")
    text = chat.last_text()
    assert "'lvf 55' — did you mean lvef?" in text
    assert "age was given twice (40 and 41): neither is used" in text
    assert "'weight 70' — weight_kg is not asked under the other answers" in text
    # each number in the unit it was read in (audit 20, F3: "creatinine 1.9" is × ULN)
    assert "Read: sex male · qtc_ms 430 ms · crcl_ml_min 95 mL/min · ecog 1" in text
    assert "Nothing fails so far." in text and "Still unknown" in text
    assert say.CONTINUE in labels(chat.messages()[-1])
    assert harness.active(COORDINATOR) is None  # a check is not a screening


async def test_check_says_what_already_fails(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/check\nage: 40\nsex = female\nqtc 480\nlvef 45")
    text = chat.last_text()
    assert "NOT ELIGIBLE: already failing" in text
    assert "E3c prolonged QTc" in text and "I8e LVEF ≥ 50 %" in text
    await chat.tap(say.CONTINUE)  # the dialog's order: it ends when LVEF's turn comes
    await chat.send("skip")
    await chat.tap(say.FINISH_LABELS["all"])
    await chat.send("4 months ago")
    await chat.tap(say.FINISH_LABELS["none"])
    assert chat.last_text().startswith("NOT ELIGIBLE") and "I8e" in chat.last_text()
    assert harness.records()[0].verdict == "not_eligible"


async def test_a_complete_check_is_logged_in_one_tap(harness: Harness) -> None:
    chat = harness.chat()
    everything = ", ".join(f"{v} {x}" for v, x in MAN.items())
    await chat.send(f"/check ref R-70, {everything}")
    assert chat.last_text().split("── blina-dli 1.1 ──\n")[1].startswith("PRE-SCREEN PASSED")
    await chat.tap(say.LOG_IT)  # the referral was in the check: nothing is asked
    assert chat.last_text().startswith("PRE-SCREEN PASSED")
    (record,) = harness.records()
    assert record.referral == "R-70" and record.verdict == "eligible"


@pytest.mark.parametrize(
    "left_open",
    [
        {"expected_survival_over_3_months", "high_risk_features", "arrhythmia"},  # judgment
        {"crcl_ml_min"},  # estimated from age 60, 70 kg, creatinine 2: measure it (confirm)
    ],
)
async def test_screen_and_log_only_when_continuing_asks_nothing(
    harness: Harness, left_open: set[str]
) -> None:
    chat = harness.chat()
    known = {v: x for v, x in MAN.items() if v not in left_open}
    if "crcl_ml_min" in left_open:
        known |= {"age": "60", "weight_kg": "70", "serum_creatinine_mg_dl": "2"}
    await chat.send("/check ref R-10, " + ", ".join(f"{v} {x}" for v, x in known.items()))
    assert "Still unknown" not in chat.last_text()  # nothing of kind "missing" is open
    assert labels(chat.messages()[-1]) == [say.CONTINUE]  # not "Screen and log this"
    await chat.tap(say.CONTINUE)
    assert harness.active(COORDINATOR) is not None and not harness.records()  # it asks


async def test_check_with_nothing_readable_offers_no_continue(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/check hello there")
    assert "Nothing could be read" in chat.last_text()
    assert "'hello there' —" in chat.last_text()
    assert not chat.messages()[-1].get("reply_markup")
    await chat.send("/check")
    assert chat.last_text() == say.CHECK_USAGE


async def test_an_older_check_cannot_be_continued(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/check age 40")
    old = chat.messages()[-1]
    await chat.send("/check age 41")
    await chat.press(old, labels_data(old)[say.CONTINUE])
    assert harness.request.answers()[-1]["text"] == say.REFUSALS["no_check"]
    assert harness.active(COORDINATOR) is None


async def test_a_refused_continue_keeps_the_check(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-5")
    await chat.send("/check ref R-5, age 40, male, lvef 62")
    report = chat.messages()[-1]
    await chat.tap(say.CONTINUE)
    assert harness.request.answers()[-1]["text"] == say.refusal("referral_taken", "R-5")
    await chat.send("/cancel")  # the other screening of R-5
    await chat.press(report, labels_data(report)[say.CONTINUE])
    session = harness.active(COORDINATOR)
    assert session is not None and session.referral == "R-5"
    assert session.answers["age"].value == 40  # the check's values, filled in


def labels_data(message: dict[str, Any]) -> dict[str, str]:
    return {
        b["text"]: b["callback_data"]
        for row in message["reply_markup"]["inline_keyboard"]
        for b in row
    }


async def test_continued_screening_asks_only_what_is_missing_and_back_reaches_it(
    harness: Harness,
) -> None:
    chat = harness.chat()
    await chat.send("/check ref R-31, age 35, male, lvef 62")
    await chat.tap(say.CONTINUE)
    session = harness.active(COORDINATOR)
    assert session.referral == "R-31" and session.state == "b_all_cd19_positive"  # no prompt
    assert session.values() == {"age": 35}  # the others wait for their questions
    await chat.tap("⬅ Back")  # back reaches a pre-filled answer: it is asked again
    assert harness.active(COORDINATOR).state == "age"
    await chat.send("36")
    await chat.tap(say.FINISH_LABELS["all"])
    await chat.send("4 months ago")
    await chat.tap(say.FINISH_LABELS["none"])
    session = harness.active(COORDINATOR)
    assert session.state == "ecog"  # lvef and sex came from the check
    assert session.answers["lvef_percent"].filled and session.values()["age"] == 36


# -- checklists --------------------------------------------------------------------------------


async def test_checklist_toggle_unknown_none_and_back(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-40")
    await chat.send("35")
    await chat.tap("☑ 3")  # high-risk features: no …
    await chat.tap("☐ 3")  # … unknown
    message = chat.last_with_buttons()
    assert "❓ 3. High-risk features?" in message["text"] and "✓ Done" in labels(message)
    assert harness.active(COORDINATOR).answers.keys() == {"age"}  # ticks are not answers
    await chat.tap("✓ Done")
    session = harness.active(COORDINATOR)
    assert session.values()["high_risk_features"] is None
    assert session.values()["ph_negative"] is True and session.state == "transplant_date"
    await chat.send("4 months ago")
    await chat.tap("✓ None of these")  # eleven exclusions, one tap
    session = harness.active(COORDINATOR)
    assert all(session.values()[v] is False for v in HISTORY)
    await chat.send("/back")  # back into the checklist, its ticks as answered
    await chat.tap("☐ 3")  # GVHD active now: yes
    assert "✓ Done" in labels(chat.last_with_buttons())
    await chat.tap("✓ Done")
    text = chat.last_text()
    assert text.startswith("NOT ELIGIBLE") and "I7b" in text


async def test_a_checklist_typed(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-41")
    await chat.send("35")
    await chat.send("9")
    assert "numbers (1–8)" in chat.last_text()  # refused, asked again
    await chat.send("2 5?")  # Ph-negative does not hold, remission unknown: not eligible
    assert chat.last_text().startswith("NOT ELIGIBLE") and "I3a" in chat.last_text()
    (record,) = harness.records()
    assert record.answers["ph_negative"] is False and record.answers["marrow_remission"] is None
    assert record.answers["mrd_negative"] is True  # the items after it are kept too


async def test_toggles_after_a_restart_apply_to_the_ticks_shown(
    tmp_path: Path, catalog: Catalog
) -> None:
    first = Harness(tmp_path, catalog)
    await first.application.initialize()
    chat = first.chat()
    await chat.send("/screen R-42")
    await chat.send("35")
    keyboard = chat.last_with_buttons()
    await chat.tap("☑ 2")
    await first.application.shutdown()
    first.db.close()

    second = Harness(tmp_path, catalog, first.request)
    await second.application.initialize()
    chat = second.chat()
    await chat.tap("☑ 4")  # the message as redrawn before the restart: ☐ 2 stays
    ticks = second.engine.item_values(second.active(COORDINATOR))
    assert ticks["ph_negative"] is False and ticks["hematopoietic_reconstitution"] is False
    data = labels_data(keyboard)  # the keyboard as first sent, were it still on screen
    await chat.press(keyboard, data["☑ 3"])  # applies to the ticks it showed: ☑ 2, ☑ 4
    ticks = second.engine.item_values(second.active(COORDINATOR))
    assert ticks["high_risk_features"] is False
    assert ticks["ph_negative"] is True and ticks["hematopoietic_reconstitution"] is True
    await chat.press(keyboard, data[say.FINISH_LABELS["all"]])  # says "all hold": does that
    session = second.active(COORDINATOR)
    assert all(session.values()[v] is True for v in CONFIRMATIONS)
    await chat.press(keyboard, data["☑ 1"])  # a toggle of a step already answered
    assert second.request.answers()[-1]["text"] == say.STALE_TEXT
    assert second.active(COORDINATOR).answers == session.answers
    await second.application.shutdown()
    second.db.close()


async def test_done_records_the_ticks_on_screen_when_a_redraw_failed(harness: Harness) -> None:
    """A redraw the Bot API refuses leaves the message showing other ticks than those
    saved: "Done" records the ones on screen (its buttons carry them)."""
    chat = harness.chat()
    await chat.send("/screen R-43")
    await chat.send("35")
    await chat.tap("☑ 1")
    harness.request.failing["editMessageText"] = 1  # the next redraw is refused
    await chat.tap("☑ 2")  # saved as "does not hold", still shown holding
    assert {"☐ 1", "☑ 2"} <= set(labels(chat.last_with_buttons()))
    await chat.tap("✓ Done")
    (record,) = harness.records()
    assert record.answers["b_all_cd19_positive"] is False
    assert record.answers["ph_negative"] is True  # as on screen
    assert record.reasons[0].criterion == "I2" and len(record.reasons) == 1


async def test_done_records_the_ticks_on_screen_when_a_late_redraw_put_older_ones_back(
    harness: Harness,
) -> None:
    """A redraw sent again after a timeout can land after the next tap's redraw (Telegram
    then shows the older ticks): "Done" records those, not the ones saved."""
    chat = harness.chat()
    await chat.send("/screen R-44")
    await chat.send("35")
    await chat.tap("☑ 2")
    first_redraw = chat.last_with_buttons()  # ☐ 2
    await chat.tap("☐ 2")  # ❓ 2, saved
    harness.request.messages[(COORDINATOR, first_redraw["message_id"])] = first_redraw
    await chat.tap("✓ Done")
    (record,) = harness.records()
    assert record.answers["ph_negative"] is False  # ☐ as shown, not unknown as saved
    assert record.verdict == "not_eligible" and record.reasons[0].criterion == "I3a"


async def test_toggles_and_done_without_the_ticks_shown_change_nothing(harness: Harness) -> None:
    """A keyboard sent before the ticks were carried: refused, and the list is shown again
    with buttons that carry them. Ticks that do not fit the step: refused."""
    chat = harness.chat()
    await chat.send("/screen R-45")
    await chat.send("35")
    await chat.tap("☑ 2")
    message = chat.last_with_buttons()
    session = harness.active(COORDINATOR)
    button = f"v|{session.id}|{session.step}"
    for data in (f"{button}|t0", f"{button}|d"):
        await chat.press(message, data)
        assert harness.request.answers()[-1]["text"] == say.REFUSALS["outdated"]
    redrawn = chat.last_with_buttons()
    assert redrawn["message_id"] == message["message_id"] and labels(redrawn) == labels(message)
    ticks = (True, False, *(True,) * 6)  # ☐ 2
    assert decode(labels_data(redrawn)["☑ 1"]) == Press(session.id, session.step, "t0", ticks)
    for data in (f"{button}|t0|9.0", f"{button}|d|8.ffffffff"):
        await chat.press(redrawn, data)
        assert harness.request.answers()[-1]["text"] == say.FORGED_TEXT
    assert harness.active(COORDINATOR) == session
    assert chat.last_with_buttons() == redrawn


async def test_multi_select_by_toggles(tmp_path: Path) -> None:
    harness = Harness(tmp_path, Catalog(SHIPPED))
    await harness.application.initialize()
    chat = harness.chat()
    await chat.send("/screen ctl019-rr-ball R-50")
    await chat.send("2")  # marrow relapses
    message = chat.last_with_buttons()
    assert "Ever received any of these?" in message["text"]
    assert {"☐ blinatumomab", "✓ None of these"} <= set(labels(message))
    await chat.tap("✓ None of these")
    assert harness.active(COORDINATOR).values()["prior_therapies"] == []
    await chat.send("/back")
    await chat.tap("☐ blinatumomab")
    await chat.tap("☐ cd19_car_t")
    await chat.tap("☑ cd19_car_t")
    assert "☑ blinatumomab" in labels(chat.last_with_buttons())
    await chat.tap("✓ Done")
    assert chat.messages()[-2]["text"].endswith("→ blinatumomab")
    assert "C-E1" in chat.last_text() or harness.records()[0].verdict == "not_eligible"
    await harness.application.shutdown()
    harness.db.close()


async def test_multi_select_done_records_the_choices_on_screen(tmp_path: Path) -> None:
    harness = Harness(tmp_path, Catalog(SHIPPED))
    await harness.application.initialize()
    chat = harness.chat()
    await chat.send("/screen ctl019-rr-ball R-51")
    await chat.send("2")
    await chat.tap("☐ blinatumomab")
    harness.request.failing["editMessageText"] = 1  # the next redraw is refused
    await chat.tap("☐ cd19_car_t")  # saved, still shown unticked
    assert "☐ cd19_car_t" in labels(chat.last_with_buttons())
    await chat.tap("✓ Done")
    assert chat.messages()[-2]["text"].endswith("→ blinatumomab")
    (record,) = harness.records()  # prior anti-CD19 therapy: not eligible
    assert record.answers["prior_therapies"] == ["blinatumomab"]
    await harness.application.shutdown()
    harness.db.close()


async def test_screen_without_a_code_asks_for_one(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen")
    assert "Referral code" in chat.last_text()
    assert labels(chat.last_with_buttons()) == [say.BUTTON_LABELS["skip"]]
    await chat.send("John Smith")
    assert "never a name" in chat.last_text()
    assert harness.active(COORDINATOR).referral is None
    await chat.send("R-0423")
    session = harness.active(COORDINATOR)
    assert session.referral == "R-0423" and session.state == "age"
    await chat.send("/screen")
    await chat.tap(say.BUTTON_LABELS["skip"])
    assert harness.active(COORDINATOR).referral is None
    assert harness.active(COORDINATOR).state == "age"


async def test_details_on_and_off(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-60")
    compact = chat.last_with_buttons()["text"]
    assert "I1" not in compact and "(age:" not in compact and "Age in whole years" in compact
    await chat.send("/details on")
    assert chat.last_text() == say.DETAILS_ON
    await chat.send("/status")
    detailed = chat.last_with_buttons()["text"]
    assert "I1, I8d, E6b · Age in whole years" in detailed and "(age: whole number" in detailed
    await chat.send("35")
    assert "(b_all_cd19_positive · I2)" in chat.last_with_buttons()["text"]
    await chat.send("/details off")
    await chat.send("/details")
    assert chat.last_text().startswith(say.DETAILS_OFF)


async def test_check_all_checks_every_protocol(tmp_path: Path) -> None:
    harness = Harness(tmp_path, Catalog(SHIPPED))
    await harness.application.initialize()
    chat = harness.chat()
    await chat.send("/check all age 70, lvef 55")
    text = chat.last_text()
    assert "── blina-dli 1.1 ──" in text and "── ctl019-rr-ball" in text
    assert "I1 age 14–65 inclusive" in text  # blina-dli fails on age
    await chat.tap(say.CONTINUE)
    await chat.send("skip")
    session = harness.active(COORDINATOR)
    assert session.protocol_id == "all"
    await harness.application.shutdown()
    harness.db.close()


async def test_the_check_examples_say_whose_variable_names_they_are(tmp_path: Path) -> None:
    """/help and /check alone show blina-dli's names (lvef, qtc); with other protocols they
    are no one's, so the example says whose they are."""
    harness = Harness(tmp_path, Catalog(SHIPPED))
    await harness.application.initialize()
    chat = harness.chat()
    for command in ("/help", "/check"):
        await chat.send(command)
        text = chat.last_text()
        near = text[: text.index("lvef 55")].splitlines()[-2:]  # its line and the one before
        assert any("blina-dli" in line for line in near), (command, near)
    await harness.application.shutdown()
    harness.db.close()


# -- a quick check continued on a later day ------------------------------------------------------

PAST_PLAN = (
    "planned_infusion_date 2026-11-26 from the quick check is not used: a planned date cannot "
    "be in the past: 2026-11-26 is before the screening date 2026-11-27"
)


def clock(monkeypatch: pytest.MonkeyPatch, day: int, hour: int, minute: int) -> None:
    now = lambda: datetime(2026, 11, day, hour, minute, tzinfo=UTC)  # noqa: E731
    monkeypatch.setattr(service_module, "utc_now", now)
    monkeypatch.setattr(session_module, "utc_now", now)


@pytest.fixture
async def ctl019(tmp_path: Path) -> AsyncIterator[Harness]:
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    shutil.copy(SHIPPED / "ctl019-rr-ball.yaml", dialogs)
    harness = Harness(tmp_path, Catalog([dialogs]))
    await harness.application.initialize()
    yield harness
    await harness.application.shutdown()
    harness.db.close()


async def test_a_planned_date_passed_since_the_check_is_asked_with_the_reason(
    ctl019: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # checked at 23:59, continued at 00:01: "today" is past when its question comes. Before,
    # re-checking it raised outside the answer's handling: the answer that leads to it
    # (prior_allo_hsct) was lost at every try ("Something went wrong")
    chat = ctl019.chat()
    clock(monkeypatch, 26, 23, 59)
    await chat.send("/check ref R-77, planned_infusion_date today, marrow_relapse_count 2")
    clock(monkeypatch, 27, 0, 1)
    await chat.tap(say.CONTINUE)
    for typed in ["none", "CNS1", "30", "12", "8", "yes", "no", "no"]:
        await chat.send(typed)
    assert ctl019.active(COORDINATOR).state == "prior_allo_hsct"
    await chat.send("yes")
    session = ctl019.active(COORDINATOR)
    assert session.state == "planned_infusion_date" and session.answers["prior_allo_hsct"].value
    assert f"⚠ {PAST_PLAN}" in chat.last_text()  # said with the question, once
    assert "planned_infusion_date" not in session.prefilled
    await chat.send("in 2 weeks")  # typed there, a future date is taken
    session = ctl019.active(COORDINATOR)
    assert session.answers["planned_infusion_date"].value == "2026-12-11"
    assert not session.answers["planned_infusion_date"].filled


async def test_a_continue_that_reaches_a_passed_planned_date_at_once_asks_it(
    ctl019: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every question before the planned date was in the check: the Continue tap itself
    # reached it, and failed the same way at every tap
    chat = ctl019.chat()
    clock(monkeypatch, 26, 23, 59)
    await chat.send(
        "/check ref R-78, planned_infusion_date today, marrow_relapse_count 2, prior_therapies "
        "none, cns_status CNS1, marrow_blasts 30, age 12, age_at_diagnosis 8, "
        "b_all_cd19_positive yes, burkitt no, isolated_extramedullary_relapse no, "
        "prior_allo_hsct yes"
    )
    assert "Not used" not in chat.last_text()
    clock(monkeypatch, 27, 0, 1)
    await chat.tap(say.CONTINUE)
    session = ctl019.active(COORDINATOR)
    assert session is not None and session.state == "planned_infusion_date"
    assert session.answers["prior_allo_hsct"].filled
    assert f"⚠ {PAST_PLAN}" in chat.last_text()


async def test_a_decided_check_logged_the_next_day_says_which_value_it_could_not_use(
    ctl019: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Burkitt ends the dialog at once; the planned date, never reached, is recorded still,
    # unless it has passed since the check: then the record lacks it (and C-E11), and the
    # coordinator is told so instead of finding a record that differs from the check silently
    chat = ctl019.chat()
    clock(monkeypatch, 26, 23, 59)
    await chat.send(
        "/check ref R-79, marrow_relapse_count 2, prior_therapies none, cns_status CNS1, "
        "marrow_blasts 30, age 12, age_at_diagnosis 8, b_all_cd19_positive yes, burkitt yes, "
        "prior_allo_hsct yes, planned_infusion_date today, last_dli_date 10 days ago"
    )
    assert "C-E11" in chat.last_text()
    clock(monkeypatch, 27, 0, 1)
    before = len(chat.messages())
    await chat.tap(say.LOG_IT)
    (record,) = ctl019.records()
    assert "C-E11" not in {r.criterion for r in record.reasons}
    said = "\n".join(m.get("text", "") for m in chat.messages()[before:])
    assert PAST_PLAN in said, said


@pytest.mark.parametrize(("zone", "now", "day"), SITE_DAYS)
async def test_the_bot_dates_a_screening_and_a_check_by_the_sites_day(
    tmp_path: Path,
    catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
    zone: str | None,
    now: datetime,
    day: date,
) -> None:
    # SCREEN_BOT_TIMEZONE: /check's "yesterday", a /screen's date and the date the log files
    harness = Harness(tmp_path, catalog, **({"SCREEN_BOT_TIMEZONE": zone} if zone else {}))
    await harness.application.initialize()
    for module in (service_module, session_module):
        monkeypatch.setattr(module, "utc_now", lambda: now)
    yesterday = (day - timedelta(days=1)).isoformat()
    chat = harness.chat()
    await chat.send("/check age 40, transplant_date yesterday")
    assert f"transplant_date {yesterday}" in chat.last_text().splitlines()[0]
    await chat.send("/screen R-TZ3")
    session = harness.active(COORDINATOR)
    assert session is not None and session.screened_on == day
    for typed in ("40", "0", "yesterday"):  # I4a: too recent, the verdict at once
        await chat.send(typed)
    assert harness.active(COORDINATOR) is None
    (record,) = harness.records()
    assert (record.screened_on, record.answers["transplant_date"]) == (day, yesterday)
    await harness.application.shutdown()
    harness.db.close()


async def test_back_at_a_check_value_to_confirm_keeps_it_waiting(harness: Harness) -> None:
    # QTc 650 from the check waits for its confirmation after the LVEF typed: back returns to
    # LVEF, and the check's 650 waits for its question again (it was thrown away)
    chat = harness.chat()
    await chat.send(
        "/check ref R-B2, age 35, male, transplant 4 months ago, ecog 1, kps 80, ast 1, "
        "alt 1, bili 1, creatinine 1, crcl 95, qtc 650"
    )
    await chat.tap(say.CONTINUE)
    await chat.tap(say.FINISH_LABELS["all"])
    await chat.tap(say.FINISH_LABELS["none"])
    assert harness.active(COORDINATOR).state == "lvef_percent"
    await chat.send("65")
    session = harness.active(COORDINATOR)
    assert session.state == "qtc_ms" and session.pending is not None
    await chat.tap("⬅ Back")
    session = harness.active(COORDINATOR)
    assert session.state == "lvef_percent" and session.pending is None
    assert session.prefilled["qtc_ms"] == 650
    await chat.send("65")
    session = harness.active(COORDINATOR)
    assert session.state == "qtc_ms" and session.pending is not None
    assert session.pending.value == 650


async def test_back_after_a_continued_check_returns_to_the_question_the_user_answered(
    harness: Harness,
) -> None:
    # Back went to QTc, pre-filled and never shown, and took four taps to reach AST, each
    # discarding a value of the check
    chat = harness.chat()
    await chat.send(
        "/check ref R-B1, age 35, male, transplant 4 months ago, lvef 62, ecog 1, kps 80, "
        "alt 1, bili 1, creatinine 1, crcl 95, qtc 430"
    )
    await chat.tap(say.CONTINUE)
    await chat.tap(say.FINISH_LABELS["all"])
    await chat.tap(say.FINISH_LABELS["none"])
    assert harness.active(COORDINATOR).state == "ast_x_uln"
    await chat.send("3")  # meant 1.3
    assert harness.active(COORDINATOR).state == "last_mi_date"  # ALT..QTc filled in
    await chat.tap("⬅ Back")
    session = harness.active(COORDINATOR)
    assert session.state == "ast_x_uln" and "ast_x_uln" not in session.answers
    assert session.prefilled == {  # the check's values wait for their questions again
        "alt_x_uln": 1,
        "bilirubin_x_uln": 1,
        "creatinine_x_uln": 1,
        "crcl_ml_min": 95,
        "qtc_ms": 430,
    }
    await chat.send("1.3")
    session = harness.active(COORDINATOR)
    assert session.state == "last_mi_date" and session.values()["ast_x_uln"] == 1.3
    assert all(session.answers[v].filled for v in ["alt_x_uln", "crcl_ml_min", "qtc_ms"])
    await chat.tap("⬅ Back")
    assert harness.active(COORDINATOR).state == "ast_x_uln"
    await chat.tap("⬅ Back")  # then the step answered before it: the history checklist
    assert harness.active(COORDINATOR).state == HISTORY[0]


async def test_screen_and_log_this_logs_the_check_it_was_shown_with(harness: Harness) -> None:
    # the dialog stops at LVEF: the QTc given, never reached, was not logged, nor E3c, which
    # the check right above the button listed
    chat = harness.chat()
    facts = dict(MAN, lvef_percent="45", qtc_ms="480")
    await chat.send("/check ref R-L1, " + ", ".join(f"{v} {x}" for v, x in facts.items()))
    shown = chat.last_text()
    assert all(c in shown for c in ["I8e", "E3a", "E3c prolonged QTc"])
    await chat.tap(say.LOG_IT)
    (record,) = harness.records()
    assert sorted(r.criterion for r in record.reasons) == ["E3a", "E3c", "I8e"]
    assert record.answers["qtc_ms"] == 480 and set(record.answers) >= set(facts)
    assert "E3c" in chat.last_text()  # the verdict sent after the tap


async def test_a_check_continued_and_cancelled_says_so_when_continued_again(
    harness: Harness,
) -> None:
    # "replaced or expired" it was not: it was continued
    chat = harness.chat()
    await chat.send("/check ref R-C1, age 40")
    report = chat.messages()[-1]
    await chat.tap(say.CONTINUE)
    await chat.send("/cancel")
    await chat.press(report, labels_data(report)[say.CONTINUE])
    assert harness.request.answers()[-1]["text"] == say.REFUSALS["check_continued"]
    assert harness.active(COORDINATOR) is None


def test_the_confirm_prompt_puts_no_full_stop_after_a_question_mark() -> None:
    # audit 22: "… — did you mean µmol/L?. Tap ✓ if it is right, …"
    tap = "Tap ✓ if it is right, or type the corrected value."
    hinted = "12 mg/dL is unusual for total_bilirubin_mg_dl (above 10 mg/dL) — did you mean µmol/L?"
    assert say.unusual(hinted) == f"⚠ {hinted} {tap}"
    plain = "12 % is unusual for lvef_percent (below 15 %)"
    assert say.unusual(plain) == f"⚠ {plain}. {tap}"
