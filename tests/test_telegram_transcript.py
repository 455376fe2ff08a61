"""Transcripts of the Telegram adapter, with no network (see telegram_offline.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from screen_bot.adapters.telegram import messages as say
from screen_bot.adapters.telegram.app import build_application
from screen_bot.adapters.telegram.callback_data import Press, decode
from screen_bot.buttons import options
from screen_bot.protocol.catalog import Catalog
from screen_bot.results import NOT_OPEN, Asked
from screen_bot.service import DEFAULT_LIFETIME
from screen_bot.session import Session
from screen_bot.settings import Settings, default_dialogs_dir
from screen_bot.storage import Database, ledger, sessions
from screen_bot.storage.ledger import LogRecord
from screen_bot.storage.sessions import OpenScreening
from steps import step_line
from telegram_offline import Chat, RecordingRequest

TOKEN = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz"
COORDINATOR, OTHER, STRANGER = 111, 222, 333

# Typed answers of an eligible woman (values as people type them).
ELIGIBLE = {
    "age": "42",
    "b_all_cd19_positive": "yes",
    "ph_negative": "yes",
    "high_risk_features": "yes",
    "transplant_date": "4 months ago",
    "hematopoietic_reconstitution": "yes",
    "marrow_remission": "yes",
    "mrd_negative": "yes",
    "gvhd_grade_3_4_history": "no",
    "active_gvhd": "no",
    "prior_solid_organ_transplant": "no",
    "ecog": "1",
    "karnofsky": "80",
    "sex": "female",
    "childbearing_potential": "yes",
    "pregnant_or_lactating": "no",
    "contraception_agreed": "yes",
    "ast_x_uln": "45/40",
    "alt_x_uln": "1.2",
    "bilirubin_x_uln": "1",
    "creatinine_x_uln": "1.1",
    "crcl_ml_min": "?",
    "weight_kg": "60",
    "serum_creatinine_mg_dl": "106 µmol/L",
    "lvef_percent": "62",
    "qtc_ms": "440",
    "arrhythmia": "no",
    "last_mi_date": "none",
    "symptomatic_cad_on_medication": "no",
    "severe_pulmonary_dysfunction": "no",
    "last_vascular_event_date": "never",
    "last_major_surgery_date": "none",
    "substance_abuse": "no",
    "hypersensitivity_to_study_drugs": "no",
    "active_infection_or_bleeding": "no",
    "psychiatric_condition_impairing_consent": "no",
    "expected_survival_over_3_months": "yes",
    "other_investigator_concern": "no",
    "consent_willing": "yes",
}


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        catalog: Catalog,
        request: RecordingRequest | None = None,
        **settings: str,  # more settings, by their names (SCREEN_BOT_TIMEZONE=...)
    ) -> None:
        self.settings = Settings(
            TELEGRAM_BOT_TOKEN=TOKEN,
            SCREEN_BOT_ALLOWED_USERS=f"{COORDINATOR},{OTHER}",
            SCREEN_BOT_DATA_DIR=tmp_path,
            SCREEN_BOT_DIALOGS_DIR=default_dialogs_dir(),
            **settings,
        )
        self.catalog = catalog
        self.db = Database(self.settings.database)
        self.request = request or RecordingRequest()  # Telegram's side outlives a restart
        self.application, self.bot = build_application(
            self.settings,
            self.catalog,
            self.db,
            request=self.request,
            get_updates_request=RecordingRequest(),
        )

    def chat(self, user_id: int = COORDINATOR, **kwargs) -> Chat:
        return Chat(self.application, self.request, user_id, **kwargs)

    @property
    def engine(self):
        return self.catalog.engine()

    def active(self, owner: int) -> Session | None:
        return sessions.active(self.db.read(), owner)

    def list(self, owner: int) -> list[OpenScreening]:
        return sessions.list_open(self.db.read(), owner)

    def records(self) -> list[LogRecord]:
        return list(ledger.records(self.db.read()))

    def save(self, owner: int, session: Session, activate: bool = True) -> None:
        with self.db.transaction() as tx:
            sessions.save(tx, owner, session, lifetime=DEFAULT_LIFETIME, activate=activate)


async def answer_all(chat: Chat, harness: Harness, answers: dict[str, str]) -> None:
    """Answer whatever the bot asks from ``answers`` until it gives a verdict (a checklist
    as one typed line)."""
    for _ in range(60):
        session = harness.active(chat.user_id)
        if session is None:
            return
        await chat.send(step_line(harness.engine, session, answers))
    raise AssertionError("the screening never ended")


async def test_start_explains_pre_screen_and_privacy(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/start")
    text = chat.last_text()
    assert "not an eligibility decision" in text
    assert "Never type patient names" in text


async def test_full_screening_typed_and_buttons_ends_eligible(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-0423")
    first = chat.last_with_buttons()
    assert "[1/" in first["text"] and "Age in whole years" in first["text"]
    await chat.send("42")
    await chat.tap("✓ All of these hold")  # the confirmations checklist, one tap
    await answer_all(chat, harness, ELIGIBLE)
    assert chat.last_text().startswith("PRE-SCREEN PASSED")
    assert "verdict: eligible · protocol blina-dli version 1.1" in chat.last_text()
    # every question message was edited to its answer and lost its buttons
    assert not [m for m in chat.messages() if m.get("reply_markup")]
    assert chat.messages()[0]["text"].endswith("→ 42")
    assert harness.list(COORDINATOR) == []
    (record,) = harness.records()
    assert record.verdict == "eligible" and record.referral == "R-0423"
    assert record.channel == "telegram" and record.coordinator == str(COORDINATOR)
    assert record.answers["serum_creatinine_mg_dl"] == pytest.approx(106 / 88.4)


async def test_knock_out_ends_early_with_reason(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("70")
    text = chat.last_text()
    assert text.startswith("NOT ELIGIBLE") and "I1" in text and "Age 14-65 years" in text


async def test_bad_answer_explained_and_same_question_again(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("forty")
    text = chat.last_text()
    assert text.startswith("⚠") and "Age in whole years" in text
    assert harness.active(COORDINATOR).state == "age"
    await chat.send("130")
    assert "out of range" in chat.last_text()
    assert harness.active(COORDINATOR).state == "age"


async def test_a_thousands_separator_is_asked_about_and_the_question_asked_again(
    harness: Harness,
) -> None:
    # ALT "1,200/40" (30 × ULN) was recorded as 0.03 × ULN and the patient screened eligible
    chat = harness.chat()
    await chat.send("/screen R-0423")
    await chat.send("42")
    await chat.tap("✓ All of these hold")
    for _ in range(30):
        session = harness.active(COORDINATOR)
        if session.state == "alt_x_uln":
            break
        await chat.send(step_line(harness.engine, session, ELIGIBLE))
    await chat.send("1,200/40")
    assert "1,200 could be 1.2 or 1200: type 1.2/40 or 1200/40." in chat.last_text()
    assert harness.active(COORDINATOR).state == "alt_x_uln"
    await chat.send("1200/40")  # 30 × ULN: above the plausibility limit, to confirm
    assert harness.active(COORDINATOR).pending is not None


async def test_stale_and_forged_buttons_change_nothing(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42")
    old = chat.last_with_buttons()  # the confirmations checklist
    await chat.tap("✓ All of these hold")
    state = harness.active(COORDINATOR)
    await chat.press(old, old["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    assert harness.request.answers()[-1]["text"] == say.STALE_TEXT
    await chat.press(old, "v|deadbeef|1|y")
    assert harness.request.answers()[-1]["text"] == say.GONE_TEXT
    await chat.press(old, "anything else")
    assert harness.request.answers()[-1]["text"] == say.FORGED_TEXT
    current = chat.last_with_buttons()["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await chat.press(chat.last_with_buttons(), current.rsplit("|", 1)[0] + "|c7")
    assert harness.request.answers()[-1]["text"] == say.FORGED_TEXT
    assert harness.active(COORDINATOR) == state
    # every callback query was answered
    presses = sum(1 for e, _ in harness.request.calls if e == "answerCallbackQuery")
    assert presses == 5


async def test_button_of_finished_screening_is_refused(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42")
    question = chat.last_with_buttons()
    await chat.send("/cancel")
    await chat.press(question, question["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    assert harness.request.answers()[-1]["text"] == say.GONE_TEXT
    assert harness.list(COORDINATOR) == []


async def test_unauthorised_user_refused_once_and_nothing_stored(harness: Harness) -> None:
    chat = harness.chat(STRANGER)
    await chat.send("/screen R-1")
    await chat.send("42")
    assert [m["text"] for m in chat.messages()] == [say.REFUSED]  # once a day, then silence
    assert sessions.count(harness.db.read()) == 0
    assert harness.records() == []


async def test_group_chat_refused(harness: Harness) -> None:
    chat = harness.chat(COORDINATOR, chat_type="group", chat_id=-100)
    await chat.send("/screen R-1")
    assert chat.last_text() == say.PRIVATE_ONLY
    assert harness.list(-100) == []


async def test_back_skip_status_cancel(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42")
    await chat.send("/back")
    session = harness.active(COORDINATOR)
    assert session.state == "age" and session.answers == {}
    await chat.send("/back")
    assert chat.last_text() == "This is the first question."
    await chat.send("43")
    await chat.send("/skip")
    session = harness.active(COORDINATOR)
    assert session.answers["b_all_cd19_positive"].value is None
    await chat.tap("⬅ Back")
    assert harness.active(COORDINATOR).state == "b_all_cd19_positive"
    await chat.send("/status")
    assert "1 answer so far" in chat.last_text()
    await chat.send("/cancel")
    assert "cancelled" in chat.last_text()
    assert harness.active(COORDINATOR) is None


async def test_list_and_resume_keep_two_screenings_apart(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42")
    await chat.send("/screen R-2")
    assert "R-1 is paused" in chat.messages()[-1]["text"]
    await chat.send("30")
    await chat.send("/list")
    assert "R-1" in chat.last_text() and "▶ R-2" in chat.last_text()
    await chat.send("/resume R-1")
    session = harness.active(COORDINATOR)
    assert session.referral == "R-1" and session.answers["age"].value == 42


async def test_list_says_a_screening_waits_for_its_referral_code(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen")  # its referral code is asked first
    await chat.send("/list")
    assert " · blina-dli · at the referral code · " in chat.last_text()
    assert "at age" not in chat.last_text()  # not yet asked


async def test_list_of_hundreds_open_is_one_message_of_the_latest_and_a_count_of_the_rest(
    harness: Harness,
) -> None:
    """Listed whole, 1,000 open screenings were 18 messages in a quarter of a second, past
    Telegram's about one a second per chat (one 429 holds every send of the bot)."""
    from datetime import timedelta

    from screen_bot.session import utc_now

    now = utc_now()
    for number in range(1, 301):  # R-0300 used last
        session = harness.engine.start(f"R-{number:04d}")
        session.updated_at = now - timedelta(minutes=301 - number)
        harness.save(COORDINATOR, session)
    chat = harness.chat()
    await chat.send("/list")
    (reply,) = chat.messages()
    text = reply["text"]
    assert len(text.encode("utf-16-le")) // 2 <= say.MAX_MESSAGE
    title, *listed, more = text.split("\n")
    assert title == say.LISTING_TITLE and len(listed) > 30
    latest = [f"R-{number:04d}" for number in range(300, 300 - len(listed), -1)]
    assert [line.removeprefix("▶ ").split(" · ")[0] for line in listed] == latest
    assert more == (
        f"…and {300 - len(listed)} more unfinished screenings, used longer ago: "
        "/resume LABEL or /cancel LABEL works for any of them."
    )
    await chat.send("/resume R-0001")  # the oldest, not listed, is there
    assert harness.active(COORDINATOR).referral == "R-0001"


async def test_name_like_labels_are_refused(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen John Smith")
    assert "never a name" in chat.last_text()
    assert harness.list(COORDINATOR) == []


async def test_two_coordinators_do_not_cross_talk(harness: Harness) -> None:
    one, two = harness.chat(COORDINATOR), harness.chat(OTHER)
    await one.send("/screen A-1")
    await two.send("/screen B-1")
    await one.send("42")
    await two.send("70")
    assert two.last_text().startswith("NOT ELIGIBLE")
    assert harness.active(COORDINATOR).answers["age"].value == 42
    assert harness.active(OTHER) is None


async def test_restart_continues_where_it_stopped(tmp_path: Path, catalog: Catalog) -> None:
    first = Harness(tmp_path, catalog)
    await first.application.initialize()
    chat = first.chat()
    await chat.send("/screen R-7")
    await chat.send("42")
    await chat.send("yes")  # all of the confirmations hold
    await first.application.shutdown()
    first.db.close()

    second = Harness(tmp_path, catalog, first.request)
    await second.application.initialize()
    chat = second.chat()
    await chat.send("2025-10-01")  # transplant_date, answered to the restarted bot
    session = second.active(COORDINATOR)
    assert session.referral == "R-7"
    confirmations = second.engine.protocol.spec.checklists[0].items
    assert session.values() == {
        "age": 42,
        **dict.fromkeys(confirmations, True),
        "transplant_date": "2025-10-01",
    }
    await second.application.shutdown()
    second.db.close()


async def test_commands_registered_and_expiry_runs(harness: Harness) -> None:
    from datetime import timedelta

    from screen_bot.session import utc_now

    stale = harness.engine.start("OLD-2")
    stale.updated_at = utc_now() - timedelta(hours=harness.settings.session_ttl_hours + 1)
    harness.save(COORDINATOR, stale)
    await harness.bot.post_init(harness.application)
    assert harness.list(COORDINATOR) == []  # expired at start-up
    expiry = harness.bot._expiry
    assert expiry is not None and not expiry.done()  # and again every few minutes
    await harness.bot.post_shutdown(harness.application)
    await asyncio.sleep(0)
    assert expiry.cancelled()
    (params,) = [p for e, p in harness.request.calls if e == "setMyCommands"]
    names = {c["command"] for c in params["commands"]}
    assert {"screen", "back", "skip", "cancel", "status", "list", "resume"} <= names


async def test_expiry_goes_on_after_one_pass_failed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A pass the database refuses (locked by another process past the busy timeout, a
    full disk) is logged in a line, and a later pass expires what is due."""
    from contextlib import AbstractContextManager
    from datetime import timedelta

    from screen_bot.adapters.telegram import bot as bot_module
    from screen_bot.errors import StorageFailed
    from screen_bot.session import utc_now
    from screen_bot.storage.db import Tx

    stale = harness.engine.start("OLD-3")
    stale.updated_at = utc_now() - timedelta(hours=harness.settings.session_ttl_hours + 1)
    harness.save(COORDINATOR, stale)
    writes = harness.db.transaction
    failures = [StorageFailed("screen-bot.sqlite3: database is locked")]

    def fails_once(*, durable: bool = True) -> AbstractContextManager[Tx]:
        if failures:
            raise failures.pop()
        return writes(durable=durable)

    monkeypatch.setattr(harness.db, "transaction", fails_once)
    monkeypatch.setattr(bot_module, "EXPIRY_EVERY_SECONDS", 0.01)
    monkeypatch.setattr(bot_module, "EXPIRY_RETRY_SECONDS", 0.01, raising=False)
    caplog.set_level(logging.INFO)
    expiring = asyncio.create_task(harness.bot._expire_regularly())
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if not harness.list(COORDINATOR) or expiring.done():
                break
    finally:
        expiring.cancel()
    assert failures == []  # the first pass failed
    assert harness.list(COORDINATOR) == []  # and a later one expired the screening
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["expiry failed, tried again in 0 s: screen-bot.sqlite3: database is locked"]


async def test_logs_hold_no_message_text_or_token(harness: Harness, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    chat = harness.chat()
    await chat.send("/screen R-5")
    await chat.send("secret-words-42")
    await chat.send("42")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "secret-words" not in logged
    assert TOKEN not in logged and TOKEN.split(":")[1] not in logged


@pytest.mark.parametrize("protocol_id", list(Catalog(default_dialogs_dir()).protocols))
def test_keyboards_fit_telegram_limits(tmp_path: Path, protocol_id: str) -> None:
    engine = Catalog(default_dialogs_dir()).engine(protocol_id)
    session = engine.start("R-000000000000000000000000000001")
    for question in engine.protocol.questions.values():
        asked = Asked(
            session_id=session.id,
            step=999_999_999,
            referral=session.referral,
            question=question,
            progress=(1, 1),
            text=question.text,
            options=options(question),
        )
        markup = say.keyboard(asked)
        for row in markup.inline_keyboard:
            for button in row:
                assert 1 <= len(button.callback_data.encode()) <= 64


@pytest.mark.parametrize(
    "ticks",
    [(True,) * 60, (None,) * 20, (False, True, None) * 6 + (None, True), (False, False), ()],
)
def test_ticks_shown_fit_in_button_data_and_read_back(ticks: tuple[bool | None, ...]) -> None:
    """A toggle's or "done"'s data carries the ticks its message shows: up to 60 choices or
    20 checklist items, within Telegram's 64 bytes at a nine-digit step."""
    press = Press("0123abcd", 999_999_999, "t59", ticks)
    data = press.encode()
    assert len(data.encode()) <= 64 and decode(data) == press
    assert decode(Press("0123abcd", 1, "d", ticks).encode()) == Press("0123abcd", 1, "d", ticks)


@pytest.mark.parametrize("count", [1, 3, 20, 60])
def test_ticks_one_past_the_last_the_bot_can_send_are_refused(count: int) -> None:
    """``count`` items take the numbers 0 to 3**count - 1 (every item unknown is the
    largest); 3**count needs one more base-3 digit than there are items: forged data."""
    largest = Press("0123abcd", 1, "d", (None,) * count)
    assert largest.encode().endswith(f"|{count}.{3**count - 1:x}") and decode(largest.encode())
    assert decode(f"v|0123abcd|1|d|{count}.{3**count:x}") is None


def test_split_respects_4096_and_keeps_everything() -> None:
    text = "\n".join(f"line {i} " + "x" * (i % 300) for i in range(400)) + "\n" + "y" * 9000
    parts = say.split(text)
    assert all(0 < len(p) <= 4096 for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


@given(st.text(st.characters(codec="utf-8"), max_size=400), st.integers(2, 60))
def test_split_counts_as_telegram_counts(text: str, limit: int) -> None:
    """Parts fit in ``limit`` UTF-16 code units (an emoji past U+FFFF is two); nothing lost."""
    parts = say.split(text, limit)
    assert all(len(p.encode("utf-16-le")) // 2 <= limit for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_a_text_of_emoji_is_split_within_4096_utf16_units() -> None:
    parts = say.split("🙂" * 3000)
    assert [len(p) for p in parts] == [2048, 952]


async def test_unfinished_screenings_expire_after_the_ttl(harness: Harness) -> None:
    from datetime import timedelta

    from screen_bot.session import utc_now

    engine = harness.engine
    old, recent = engine.start("OLD-1"), engine.start("NEW-1")
    old.updated_at = utc_now() - timedelta(hours=harness.settings.session_ttl_hours + 1)
    harness.save(COORDINATOR, old, activate=False)
    harness.save(COORDINATOR, recent)
    await harness.bot.post_init(harness.application)  # expiry runs at start-up
    await harness.bot.post_shutdown(harness.application)
    assert [o.referral for o in harness.list(COORDINATOR)] == ["NEW-1"]
    chat = harness.chat()
    await chat.send("/resume OLD-1")
    assert "No unfinished screening" in chat.last_text()
    assert "expires when left unused" in chat.last_text()  # why it may be gone


async def test_a_reply_to_an_earlier_question_is_not_taken_for_the_current_one(
    harness: Harness,
) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42", reply_to=chat.last_with_buttons())  # to the current question: taken
    await chat.tap("✓ All of these hold")
    await chat.send("2026-01-02")
    await chat.tap("✓ None of these")
    lvef = chat.last_with_buttons()
    await chat.send("65")
    await chat.send("1")  # ECOG; Karnofsky now
    current = chat.last_with_buttons()
    before = harness.active(COORDINATOR)
    assert before.values()["lvef_percent"] == 65 and before.state == "karnofsky"
    await chat.send("62", reply_to=lvef)  # a correction of the LVEF, as a reply: not Karnofsky
    assert harness.active(COORDINATOR).values() == before.values()
    again = chat.last_with_buttons()
    assert again["text"].startswith(say.invalid(say.EARLIER_QUESTION))
    assert again["text"].endswith(current["text"]) and again["message_id"] > current["message_id"]
    await chat.send("80", reply_to=again)  # a reply to the current question: taken
    assert harness.active(COORDINATOR).values()["karnofsky"] == 80
    history = len(harness.active(COORDINATOR).history)
    await chat.send("female")  # no reply at all: taken as ever
    assert len(harness.active(COORDINATOR).history) == history + 1


async def test_a_reply_to_an_earlier_question_without_from_is_not_taken_either(
    harness: Harness,
) -> None:
    """``from`` is optional in the Bot API (a relay or an emulator may leave it out of the
    message replied to): the reply to an earlier question is refused all the same, not
    taken for the current one (a checklist's "3" here: a wrong verdict)."""
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("abc")  # refused: the age asked again, in a new message
    age = chat.last_with_buttons()
    await chat.send("42")
    before = harness.active(COORDINATOR)
    assert before.state != "age"
    without_from = {k: v for k, v in age.items() if k != "from"}
    await chat.send("3", reply_to=without_from)
    assert harness.active(COORDINATOR).values() == before.values()
    assert chat.last_with_buttons()["text"].startswith(say.invalid(say.EARLIER_QUESTION))


async def test_a_second_copy_of_an_answered_question_loses_its_buttons_when_pressed(
    harness: Harness,
) -> None:
    """A send that timed out after Telegram delivered it is sent again: two copies, and only
    the second's id is known, so answering the question retires that one only."""
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42")
    tracked = chat.last_with_buttons()
    copy = {**tracked, "message_id": 999_999}  # the copy whose send timed out: id never known
    harness.request.messages[(COORDINATOR, copy["message_id"])] = copy
    await chat.press(tracked, tracked["reply_markup"]["inline_keyboard"][-2][0]["callback_data"])
    state = harness.active(COORDINATOR)
    assert state is not None and state.state == "transplant_date"
    await chat.press(copy, copy["reply_markup"]["inline_keyboard"][-2][0]["callback_data"])
    assert harness.request.answers()[-1]["text"] == say.STALE_TEXT
    assert not harness.request.messages[(COORDINATOR, copy["message_id"])].get("reply_markup")
    assert harness.active(COORDINATOR) == state


@pytest.mark.parametrize("spelled", ["unknown", "Not known"])
def test_a_choice_spelled_like_unknown_keeps_the_unknown_button_apart(spelled: str) -> None:
    """Two buttons reading "unknown" would mean two answers: the choice (a result that is
    'unknown') and the answer not known."""
    from screen_bot.protocol.schema import Question

    question = Question.model_validate(
        {"variable": "hbv_status", "type": "choice", "text": "HBV status?",
         "choices": ["positive", "negative", spelled]}
    )  # fmt: skip
    asked = Asked(
        session_id="a" * 8, step=1, referral=None, question=question, progress=(1, 3),
        text="x", options=options(question),
    )  # fmt: skip
    labels = [b.text for row in say.keyboard(asked).inline_keyboard for b in row]
    assert spelled in labels and say.UNKNOWN_BESIDE_A_CHOICE in labels
    assert [label.lower() for label in labels].count(spelled.lower()) == 1


async def test_cancel_with_a_label_cancels_that_screening_only(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42")
    await chat.send("/screen R-2")
    await chat.send("50")
    question = chat.last_with_buttons()  # R-2's, active
    await chat.send("/cancel R-1")  # the paused one, named
    assert [o.referral for o in harness.list(COORDINATOR)] == ["R-2"]
    active = harness.active(COORDINATOR)
    assert active.referral == "R-2" and active.answers["age"].value == 50
    assert harness.request.messages[(COORDINATOR, question["message_id"])] == question
    assert chat.last_text() == say.cancelled("R-1", "R-2")
    await chat.send("/cancel R-9")  # none of this chat's: nothing changes, one line
    assert chat.last_text() == say.refusal(NOT_OPEN)
    assert harness.active(COORDINATOR) == active
    await chat.send("/cancel R-2")  # the active one, named
    assert chat.last_text() == say.cancelled("R-2")
    assert harness.list(COORDINATOR) == []


async def test_a_label_with_a_lone_surrogate_is_no_open_screening(harness: Harness) -> None:
    """Valid JSON ("\\ud800") but no UTF-8: /resume looked it up in the log (was "Something
    went wrong", UnicodeEncodeError); /cancel already said it names no open screening."""
    chat = harness.chat()
    await chat.send("/screen R-1")
    for command in ("/resume \ud800", "/cancel \ud800", "/resume R-1\ud800"):
        await chat.send(command)
        assert chat.last_text() == say.refusal(NOT_OPEN), command
    assert [o.referral for o in harness.list(COORDINATOR)] == ["R-1"]


async def test_cancel_with_a_label_of_another_chat_changes_nothing(harness: Harness) -> None:
    one, two = harness.chat(COORDINATOR), harness.chat(OTHER)
    await one.send("/screen A-1")
    await two.send("/screen B-1")
    await two.send("/cancel A-1")
    assert two.last_text() == say.refusal(NOT_OPEN)
    assert [o.referral for o in harness.list(COORDINATOR)] == ["A-1"]
    assert [o.referral for o in harness.list(OTHER)] == ["B-1"]


@pytest.mark.parametrize("command", ["/resume R-1", "/status"])
async def test_resume_and_status_restart_the_screenings_lifetime(
    harness: Harness, command: str
) -> None:
    """A screening just taken up again is in use: the expiry must not remove it from under
    the question it shows."""
    from datetime import timedelta

    from screen_bot.session import utc_now

    chat = harness.chat()
    ttl = timedelta(hours=harness.settings.session_ttl_hours)
    await chat.send("/screen R-1")
    await chat.send("42")
    await chat.send("/screen R-2")  # R-1 paused
    if command == "/status":
        await chat.send("/resume R-1")
    session = next(o for o in harness.list(COORDINATOR) if o.referral == "R-1")
    with harness.db.transaction() as tx:  # R-1 left alone for the TTL but 5 minutes
        tx.execute(
            "UPDATE open_sessions SET updated_at = ? WHERE session_id = ?",
            ((utc_now() - ttl + timedelta(minutes=5)).isoformat(), session.session_id),
        )
    await chat.send(command)
    assert "Do all of these hold?" in chat.last_text()
    harness.bot.service.expire(ttl - timedelta(minutes=10))  # 10 minutes later
    assert "R-1" in [o.referral for o in harness.list(COORDINATOR)]


async def test_resume_of_the_active_screening_retires_its_question_shown_before(
    harness: Harness,
) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42")
    first = chat.last_with_buttons()
    await chat.send("/resume R-1")  # already the active one: its question again
    again = chat.last_with_buttons()
    assert again["message_id"] > first["message_id"]
    assert not harness.request.messages[(COORDINATOR, first["message_id"])].get("reply_markup")
