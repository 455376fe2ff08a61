"""End to end: the real ``screen-bot run`` process, polling a fake Bot API on 127.0.0.1.

Every test here runs on both stores: the SQLite file and a PostgreSQL database.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from bot_process import (
    BotProcess,
    free_port,
    last_id,
    reply_for,
    say,
    start_update,
    tap,
    variable_of,
    variables_of,
)
from fakebot import FakeBotApi
from stores import StoreUnderTest
from test_telegram_transcript import ELIGIBLE

COORDINATOR, SECOND, STRANGER = 111, 222, 333


@pytest.fixture
def bot(fake: FakeBotApi, store: StoreUnderTest):
    process = BotProcess(fake, store.data_dir, f"{COORDINATOR},{SECOND}", store=store)
    process.start()
    yield process
    process.stop()


def finish_screening(
    fake: FakeBotApi, user: int, message: dict, answers: dict, taps: list[str] | None = None
) -> dict:
    """Answer each question (buttons where the answer is one, typing otherwise); the labels
    tapped are added to ``taps``."""
    for _ in range(60):
        if not message.get("reply_markup"):
            return message
        how, what = reply_for(message, answers)
        if how == "tap" and taps is not None:
            taps.append(what)
        message = tap(fake, user, message, what) if how == "tap" else say(fake, user, what)
    raise AssertionError("no verdict")


def test_full_screening_by_buttons_and_typing(
    fake: FakeBotApi, bot: BotProcess, store: StoreUnderTest
) -> None:
    first = say(fake, COORDINATOR, "/screen R-0423")
    assert variable_of(first) == "age"
    taps: list[str] = []
    verdict = finish_screening(fake, COORDINATOR, first, ELIGIBLE, taps)
    assert verdict["text"].startswith("PRE-SCREEN PASSED"), fake.transcript(COORDINATOR)
    assert not any(m.get("reply_markup") for m in fake.messages(COORDINATOR))
    assert {c["command"] for c in fake.my_commands} >= {"screen", "back", "skip", "cancel"}
    assert {"✓ All of these hold", "✓ None of these", "female", "None (never)"} <= set(taps)
    assert len(fake.answered_callbacks) == len(taps)
    logged = store.rows("SELECT verdict, referral, channel FROM screening_log")
    assert logged == [("eligible", "R-0423", "telegram")]
    assert store.rows("SELECT COUNT(*) FROM inbox WHERE done = 0") == [(0,)]
    log = bot.output()
    assert fake.token not in log and fake.token.split(":")[1] not in log
    assert "106 µmol/L" not in log and "R-0423" not in log


def test_stale_button_changes_nothing(fake: FakeBotApi, bot: BotProcess) -> None:
    say(fake, COORDINATOR, "/screen R-1")
    question = say(fake, COORDINATOR, "42")
    tap(fake, COORDINATOR, question, "✓ All of these hold")
    fake.wait_until(lambda: len(fake.answered_callbacks) == 1)
    stale = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    query = fake.press_button(COORDINATOR, question["message_id"], stale)
    fake.wait_until(lambda: query in fake.answered_callbacks)
    assert "already answered" in fake.answered_callbacks[query]["text"]
    current = fake.messages(COORDINATOR)[-1]
    assert variable_of(current) == "transplant_date" and current.get("reply_markup")


def test_a_press_is_answered_beside_the_edit_and_before_the_next_question(
    fake: FakeBotApi, bot: BotProcess
) -> None:
    """The edit of the question pressed does not wait for the press's answer (one Bot API
    round trip less a tap); the next question waits for both."""
    say(fake, COORDINATOR, "/screen R-1")
    question = say(fake, COORDINATOR, "42")
    after, pressed = last_id(fake, COORDINATOR), question["message_id"]

    def shown() -> dict:
        (found,) = [m for m in fake.messages(COORDINATOR) if m["message_id"] == pressed]
        return found

    fake.delay_next("answerCallbackQuery", 4)
    fake.press(COORDINATOR, question, "✓ All of these hold")
    fake.wait_until(lambda: not shown().get("reply_markup"), timeout=3)  # retired meanwhile
    assert fake.answered_callbacks == {}  # the answer still hangs
    following = fake.wait_for_message(COORDINATOR, after=after, timeout=15)
    assert len(fake.answered_callbacks) == 1  # answered before the next question came
    assert variable_of(following) == "transplant_date"


def test_unauthorised_user_refused_and_not_stored(
    fake: FakeBotApi, bot: BotProcess, store: StoreUnderTest
) -> None:
    reply = say(fake, STRANGER, "/screen R-9")
    assert "only for the trial team" in reply["text"]
    assert store.rows("SELECT COUNT(*) FROM open_sessions WHERE owner = ?", (STRANGER,)) == [(0,)]
    assert store.rows("SELECT COUNT(*) FROM inbox WHERE chat_id = ?", (STRANGER,)) == [(0,)]


def test_kill_9_mid_screening_then_restart_goes_on(fake: FakeBotApi, bot: BotProcess) -> None:
    say(fake, COORDINATOR, "/screen R-1")
    question = say(fake, COORDINATOR, "42")
    assert variables_of(question)[:2] == ["b_all_cd19_positive", "ph_negative"]
    toggle(fake, question, "☑ 2")  # Ph-negative does not hold: kept in the session
    bot.kill()
    bot.start()
    redrawn = fake.messages(COORDINATOR)[-1]
    assert "☐ 2. Philadelphia" in redrawn["text"]
    nxt = tap(fake, COORDINATOR, redrawn, "✓ Done")  # the keyboard sent before the crash works
    assert nxt["text"].startswith("NOT ELIGIBLE") and "I3a" in nxt["text"]
    checklist = [m for m in fake.messages(COORDINATOR) if m["message_id"] == question["message_id"]]
    assert checklist[0]["text"].startswith("☑ B-ALL") and "☐ Philadelphia" in checklist[0]["text"]


def test_a_checklist_step_by_toggles_and_back(fake: FakeBotApi, bot: BotProcess) -> None:
    """One checklist through the real process: toggle, unknown, back into it, done."""
    say(fake, COORDINATOR, "/screen R-2")
    question = say(fake, COORDINATOR, "42")
    toggle(fake, question, "☑ 3")  # high-risk features: no
    toggle(fake, fake.messages(COORDINATOR)[-1], "☐ 3")  # … unknown
    after = tap(fake, COORDINATOR, fake.messages(COORDINATOR)[-1], "✓ Done")
    assert variable_of(after) == "transplant_date"
    back = tap(fake, COORDINATOR, after, "⬅ Back")
    assert "❓ 3. High-risk" in back["text"] and "☑ 1. B-ALL" in back["text"]
    again = tap(fake, COORDINATOR, back, "✓ Done")
    assert variable_of(again) == "transplant_date"
    status = say(fake, COORDINATOR, "/status")
    assert "9 answers so far" in status["text"]


def test_done_records_the_ticks_on_screen_after_a_late_redraw(
    fake: FakeBotApi, bot: BotProcess, store: StoreUnderTest
) -> None:
    """A redraw slower than the read timeout (5 s) is sent again; the first one lands after
    the next tap's redraw and shows older ticks than those saved: "Done" records those."""
    say(fake, COORDINATOR, "/screen R-3")
    pressed = say(fake, COORDINATOR, "42")["message_id"]

    def on_screen() -> dict:
        (shown,) = [m for m in fake.messages(COORDINATOR) if m["message_id"] == pressed]
        return shown

    def ticks() -> set[str]:
        rows = on_screen()["reply_markup"]["inline_keyboard"]
        return {b["text"] for row in rows for b in row if b["text"][0] in "☑☐❓"}

    def edits_done() -> bool:
        return all("ok" in c for c in fake.calls("editMessageText"))

    edits = len(fake.calls("editMessageText"))  # the age question's, retired
    # 14 s: the retry comes at 5 s, so the next tap's redraw has ~9 s to land first
    fake.delay_next("editMessageText", 14)
    fake.press(COORDINATOR, on_screen(), "☑ 2")  # Ph-negative: no; its redraw hangs
    fake.wait_until(lambda: "☐ 2" in ticks(), timeout=15)  # sent again after the timeout
    query = fake.press(COORDINATOR, on_screen(), "☐ 2")  # … unknown: saved
    fake.wait_until(lambda: query in fake.answered_callbacks)
    fake.wait_until(
        lambda: len(fake.calls("editMessageText")) == edits + 3 and edits_done(), timeout=20
    )
    assert "☐ 2" in ticks()  # the first redraw landed last
    after = last_id(fake, COORDINATOR)
    fake.press(COORDINATOR, on_screen(), "✓ Done")
    verdict = fake.wait_for_message(COORDINATOR, after=after, timeout=15)
    assert verdict["text"].startswith("NOT ELIGIBLE") and "I3a" in verdict["text"]
    ((answers,),) = store.rows("SELECT answers FROM screening_log")
    assert json.loads(answers)["ph_negative"] is False  # as on screen, not unknown as saved


def toggle(fake: FakeBotApi, message: dict, label: str) -> None:
    """Tap a toggle: the bot answers the press and redraws the same message."""
    query = fake.press(COORDINATOR, message, label)
    fake.wait_until(lambda: query in fake.answered_callbacks)
    fake.wait_until(
        lambda: (
            fake.messages(COORDINATOR)[-1].get("edit_date") is not None
            and fake.messages(COORDINATOR)[-1]["text"] != message["text"]
        )
    )


def test_two_coordinators_at_once_no_cross_talk(fake: FakeBotApi, bot: BotProcess) -> None:
    results: dict[int, dict] = {}
    ineligible = dict(ELIGIBLE, qtc_ms="480")

    def coordinator(user: int, answers: dict) -> None:
        first = say(fake, user, f"/screen R-{user}")
        results[user] = finish_screening(fake, user, first, answers)

    threads = [
        threading.Thread(target=coordinator, args=(COORDINATOR, ELIGIBLE)),
        threading.Thread(target=coordinator, args=(SECOND, ineligible)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results[COORDINATOR]["text"].startswith("PRE-SCREEN PASSED")
    assert results[SECOND]["text"].startswith("NOT ELIGIBLE")
    assert "E3c" in results[SECOND]["text"] and "R-222" in results[SECOND]["text"]
    assert "R-222" not in fake.transcript(COORDINATOR)


def test_429_and_5xx_are_retried_and_nothing_lost(fake: FakeBotApi, bot: BotProcess) -> None:
    say(fake, COORDINATOR, "/screen R-1")
    fake.fail_next("sendMessage", 429, retry_after=1)
    first = say(fake, COORDINATOR, "42")
    assert variable_of(first) == "b_all_cd19_positive"
    fake.fail_next("sendMessage", 502)
    fake.fail_next("editMessageText", 500)
    second = tap(fake, COORDINATOR, first, "✓ All of these hold")
    assert variable_of(second) == "transplant_date"
    edited = [m for m in fake.messages(COORDINATOR) if m["message_id"] == first["message_id"]]
    assert edited[0]["text"].startswith("☑ B-ALL")
    failed = [c for c in fake.calls() if c.get("error_code")]
    assert {c["error_code"] for c in failed} == {429, 502, 500}


def test_webhook_mode_refuses_requests_without_secret(
    fake: FakeBotApi, store: StoreUnderTest
) -> None:
    port = free_port()
    process = BotProcess(
        fake,
        store.data_dir,
        str(COORDINATOR),
        "--webhook",
        "https://bot.example.org:8443/hook",
        "--port",
        str(port),
        store=store,
    )
    process.start(wait_for_poll=False)
    try:
        fake.wait_until(lambda: bool(fake.webhook_url), timeout=30)
        secret = [c for c in fake.calls("setWebhook")][-1]["params"]["secret_token"]
        fake.add_chat(COORDINATOR)
        update = start_update(COORDINATOR, 1)
        url = f"http://127.0.0.1:{port}/hook"
        _wait_listening(url)
        with pytest.raises(urllib.error.HTTPError) as refused:
            _post(url, update, None)
        assert refused.value.code == 403
        assert _post(url, update, secret) == 200
        reply = fake.wait_for_message(COORDINATOR)
        assert "pre-screen" in reply["text"]
    finally:
        process.stop()


def _post(url: str, update: dict, secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(url, json.dumps(update).encode(), headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def _wait_listening(url: str) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _post(url, {}, None)
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("webhook server did not start")


def test_failed_edit_or_callback_answer_does_not_stop_the_dialog(
    fake: FakeBotApi, bot: BotProcess
) -> None:
    say(fake, COORDINATOR, "/screen R-1")
    question = say(fake, COORDINATOR, "42")
    fake.fail_next("answerCallbackQuery", 400, "Bad Request: query is too old")
    fake.fail_next("editMessageText", 400, "Bad Request: message can't be edited")
    assert variable_of(tap(fake, COORDINATOR, question, "✓ All of these hold")) == (
        "transplant_date"
    )
