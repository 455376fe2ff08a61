"""The real ``screen-bot run`` under attack and failure (issue #10), against the fake Bot API.

No output of the bot ever holds the token; strangers cannot slow a coordinator; a crafted
update is skipped once; a 401 while polling ends the process; an update being handled,
or a reply decided but not sent, survives ``kill -9``.

The tests of a running bot run on both stores (the SQLite file and a PostgreSQL database);
those of start-up failures, which end before any screening, on SQLite.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from bot_process import (
    SCREEN_BOT,
    BotProcess,
    free_port,
    last_id,
    say,
    start_update,
    variable_of,
    variables_of,
)
from fakebot import FakeBotApi
from fakebot.server import ApiError as FakeApiError
from screen_bot.adapters.telegram import messages as words
from screen_bot.adapters.telegram.app import check_token
from screen_bot.engine import Engine
from screen_bot.errors import ScreenBotError
from screen_bot.service import DEFAULT_LIFETIME
from screen_bot.session import utc_now
from screen_bot.storage import inbox, outbox, sessions
from screen_bot.storage.inbox import Received
from stores import StoreUnderTest

COORDINATOR = 111
STRANGERS = range(5000, 5300)
DIALOGS = Path(__file__).resolve().parents[1] / "dialogs"


@pytest.fixture
def bot(fake: FakeBotApi, store: StoreUnderTest):
    process = BotProcess(fake, store.data_dir, str(COORDINATOR), store=store)
    process.start()
    yield process
    process.stop()


def everything_written(output: str, data_dir: Path) -> str:
    """The process output and every text file it left in its data directory."""
    files = [p for p in data_dir.rglob("*") if p.is_file() and "sqlite3" not in p.name]
    return output + "".join(p.read_text(errors="replace") for p in files)


def assert_no_token(text: str, token: str) -> None:
    assert token not in text and token.split(":", 1)[1] not in text


def run_to_exit(
    fake: FakeBotApi, data_dir: Path, *args: str, timeout: float = 60, **env: str
) -> tuple[int, str]:
    environment = BotProcess(fake, data_dir, str(COORDINATOR)).env() | env
    done = subprocess.run(
        [str(SCREEN_BOT), "run", *args],
        env=environment,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr


# -- the token never shows --------------------------------------------------------------------

OTHER_TOKEN = "654321:REVOKED-token_abcdefghijklmnopqrstuv"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("revoked token", "the Bot API rejected the token (401)"),
        ("mistyped URL", "the API URL looks wrong (404)"),
        ("network down", "did not answer"),
        ("5xx at start", "did not answer (502"),
        ("webhook refused", "refused the webhook"),
    ],
)
def test_start_up_failures_exit_2_without_the_token(
    fake: FakeBotApi, tmp_path: Path, case: str, expected: str
) -> None:
    env: dict[str, str] = {}
    args: list[str] = []
    token = fake.token
    if case == "revoked token":
        env["TELEGRAM_BOT_TOKEN"] = token = OTHER_TOKEN
    elif case == "mistyped URL":
        env["TELEGRAM_API_BASE_URL"] = fake.base_url.replace("/bot", "/typo/bot")
    elif case == "network down":
        env["TELEGRAM_API_BASE_URL"] = f"http://127.0.0.1:{free_port()}/bot"
    elif case == "5xx at start":
        fake.fail_next("getMe", 502, times=5)
    else:
        args = ["--webhook", "http://bot.example.org/hook", "--port", str(free_port())]
    code, output = run_to_exit(fake, tmp_path, *args, **env)
    assert code == 2, output
    assert expected in output, output
    assert "Traceback" not in output
    assert_no_token(everything_written(output, tmp_path), token)


def test_a_description_quoting_the_url_hides_a_token_it_cuts(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    """A relay in front of a self-hosted Bot API quotes the request URL in its error, long
    enough that the 200 characters kept of a description end inside the token: the
    token is hidden before the cut (its first part was printed)."""
    secret_half = fake.token.split(":", 1)[1]
    url = f"/bot{fake.token}/getMe"
    padding = "x" * (200 - len(url) + len(secret_half) - 10)  # the cut: 10 characters in
    fake.fail_next("getMe", 500, f"{padding}{url}", times=5)
    code, output = run_to_exit(fake, tmp_path)
    assert code == 2 and "did not answer (500 xxx" in output, output
    assert secret_half[:10] not in everything_written(output, tmp_path)


def test_a_password_in_the_bot_api_url_is_not_shown(fake: FakeBotApi, tmp_path: Path) -> None:
    """A self-hosted Bot API behind basic auth, down: the error names its URL with the
    password hidden, as the database URL's is."""
    base_url = f"http://botuser:ZZSECRET42@127.0.0.1:{free_port()}/bot"
    code, output = run_to_exit(fake, tmp_path, TELEGRAM_API_BASE_URL=base_url)
    assert code == 2, output
    assert "error: the Bot API at http://botuser:***@127.0.0.1:" in output, output
    assert "ZZSECRET42" not in everything_written(output, tmp_path)


async def test_a_bot_api_that_is_none_is_named_without_its_password() -> None:
    class NoBot:
        async def call(self, method: str, params: object = None, *, timeout: float = 0) -> dict:
            return {"not": "a bot"}

    with pytest.raises(ScreenBotError) as refused:
        await check_token(NoBot(), "https://botuser:ZZSECRET42@bot.example.org/bot")  # type: ignore[arg-type]
    assert refused.value.message.startswith(
        "https://botuser:***@bot.example.org/bot answered getMe without a bot"
    )


class QuotingWebhook(FakeBotApi):
    """A Bot API (a relay) whose refusal of setWebhook quotes the request's parameters."""

    def _api_setWebhook(self, p: dict) -> bool:
        raise FakeApiError(400, f"Bad Request: {json.dumps(p)}")


def test_the_webhook_secret_made_up_at_start_is_hidden(tmp_path: Path) -> None:
    """SCREEN_BOT_WEBHOOK_SECRET unset: the secret made for the process is as secret as a
    configured one, hidden from every output."""
    with QuotingWebhook() as fake:
        args = ("--webhook", "https://bot.example.org/hook", "--port", str(free_port()))
        code, output = run_to_exit(fake, tmp_path, *args)
    assert code == 2 and "refused the webhook (400 Bad Request: " in output, output
    assert '"secret_token": "<secret>"' in output, output


def test_401_while_polling_ends_the_process_with_a_clear_line(
    fake: FakeBotApi, bot: BotProcess
) -> None:
    fake.fail_next("getUpdates", 502)  # transient: retried, and said
    say(fake, COORDINATOR, "/help")
    fake.fail_next("getUpdates", 401)
    fake.send_text(COORDINATOR, "/help")  # ends the long poll in progress
    assert bot.process is not None
    assert bot.process.wait(30) == 2
    output = bot.output()
    assert "getUpdates failed (502 Bad Gateway); retrying in 1 s" in output
    assert "the Bot API rejected the token (401) while polling" in output
    assert_no_token(everything_written(output, bot.data_dir), fake.token)


# -- crafted updates ----------------------------------------------------------------------------


def test_a_crafted_update_is_skipped_once_and_not_logged(fake: FakeBotApi, bot: BotProcess) -> None:
    fake.add_chat(COORDINATOR)
    chat = {"id": COORDINATOR, "type": "private"}
    sender = {"id": COORDINATOR, "is_bot": False, "first_name": "C"}
    text = {"message_id": 10, "date": int(time.time()), "text": "/help SECRET-4"}
    shown = {"message_id": 1, "date": 0, "chat": chat}
    press = {"id": "2", "chat_instance": "1", "data": "SECRET-5", "message": shown}
    crafted = [
        fake.send_update({"message": "SECRET-ONE"}),
        fake.send_update(
            {"message": {"message_id": 9, "date": "x", "chat": chat, "text": "SECRET-TWO"}}
        ),
        fake.send_update({"callback_query": {"id": "1", "from": sender, "data": "SECRET-3"}}),
        # ids no Telegram sends: a list or object was unhashable, the poller died unconfirmed
        fake.send_update({"message": {**text, "chat": {**chat, "id": []}, "from": sender}}),
        fake.send_update({"message": {**text, "chat": chat, "from": {**sender, "id": {}}}}),
        fake.send_update({"callback_query": {**press, "from": {**sender, "id": []}}}),
    ]
    polls = len(fake.calls("getUpdates"))
    reply = say(fake, COORDINATOR, "/help")  # the next update is served as usual
    assert "/screen" in reply["text"]
    time.sleep(2)
    assert len(fake.calls("getUpdates")) - polls < 10  # no spin
    fake.wait_until(lambda: fake.pending_updates == 0)  # each confirmed once
    log = bot.output()
    for update_id in crafted:
        assert log.count(f"update {update_id} skipped: malformed") == 1
    assert "SECRET" not in log and len(log) < 20_000


# -- strangers ----------------------------------------------------------------------------------


def test_data_never_sent_leaves_the_current_question_alone(
    fake: FakeBotApi, bot: BotProcess
) -> None:
    """A press on the current question whose data names a screening the bot does not know
    is refused in its answer, and the question keeps its buttons."""
    say(fake, COORDINATOR, "/screen R-1")
    question = say(fake, COORDINATOR, "42")
    forged = fake.press_button(COORDINATOR, question["message_id"], "v|deadbeef|1|a")
    fake.press(COORDINATOR, question, "☑ 2")  # handled after it (one chat in order): works
    fake.wait_until(lambda: "☐ 2. Philadelphia" in fake.messages(COORDINATOR)[-1]["text"])
    assert fake.answered_callbacks[forged]["text"] == words.FORGED_TEXT
    assert fake.calls("editMessageReplyMarkup") == []
    assert fake.messages(COORDINATOR)[-1]["message_id"] == question["message_id"]


def latency(fake: FakeBotApi, text: str = "/help") -> float:
    started = time.monotonic()
    say(fake, COORDINATOR, text, timeout=30)
    return time.monotonic() - started


def test_a_stranger_flood_does_not_slow_a_coordinator(
    fake: FakeBotApi, bot: BotProcess, store: StoreUnderTest
) -> None:
    idle = statistics.median(latency(fake) for _ in range(5))
    for stranger in STRANGERS:
        fake.send_text(stranger, "/screen")
    flooded = latency(fake)
    assert flooded <= 5 * idle + 0.5, (idle, flooded)
    time.sleep(1)
    refusals = [c for c in fake.calls("sendMessage") if c["params"]["chat_id"] in STRANGERS]
    assert 1 <= len(refusals) <= 10  # a small budget; the rest dropped without a call
    assert store.rows("SELECT COUNT(*) FROM inbox WHERE chat_id >= 5000") == [(0,)]


def test_one_stranger_is_refused_once_a_day(fake: FakeBotApi, bot: BotProcess) -> None:
    for _ in range(50):
        fake.send_text(4242, "hello")
    say(fake, COORDINATOR, "/help")
    time.sleep(0.5)
    assert [m["text"] for m in fake.messages(4242)] == [words.REFUSED]


# -- kill -9 --------------------------------------------------------------------------------------


def started_sending(fake: FakeBotApi, count: int) -> None:
    fake.wait_until(lambda: len(fake.calls("sendMessage")) > count, timeout=15)


def test_an_update_being_handled_survives_kill_9(
    fake: FakeBotApi, bot: BotProcess, store: StoreUnderTest
) -> None:
    first = say(fake, COORDINATOR, "/screen R-1")
    assert variable_of(first) == "age"
    sends = len(fake.calls("sendMessage"))
    fake.delay_next("sendMessage", 60)  # the reply to 42 hangs: the update is in the handler
    fake.send_text(COORDINATOR, "42")
    started_sending(fake, sends)
    fake.wait_until(lambda: fake.pending_updates == 0)  # 42 is confirmed now
    bot.kill()
    after = last_id(fake, COORDINATOR)
    bot.start()
    # The answer was saved before the reply hung: the restart shows the next question.
    reply = fake.wait_for_message(COORDINATOR, after=after, timeout=15)
    assert variable_of(reply) == "b_all_cd19_positive"
    nxt = say(fake, COORDINATOR, "yes")  # every confirmation holds
    assert variable_of(nxt) == "transplant_date"
    [(body,)] = store.rows("SELECT body FROM open_sessions")
    assert json.loads(body)["history"][:3] == ["age", "b_all_cd19_positive", "ph_negative"]
    assert len(json.loads(body)["history"]) == 9


def test_a_question_cut_short_by_a_stop_is_sent_at_restart(
    fake: FakeBotApi, bot: BotProcess
) -> None:
    """SIGTERM while the next question waits out a 429: the answer is saved (its update
    done), and the question goes out after the restart, as the shutdown line says."""
    assert variable_of(say(fake, COORDINATOR, "/screen R-5")) == "age"
    sends = len(fake.calls("sendMessage"))
    fake.fail_next("sendMessage", 429, retry_after=30)
    fake.send_text(COORDINATOR, "42")
    started_sending(fake, sends)
    bot.stop()
    stopped = bot.output()
    after = last_id(fake, COORDINATOR)
    bot.start()
    reply = fake.wait_for_message(COORDINATOR, after=after, timeout=15)
    assert variable_of(reply) == "b_all_cd19_positive"
    assert variable_of(say(fake, COORDINATOR, "yes")) == "transplant_date"
    assert "questions and verdicts not sent are sent" in stopped


def test_an_update_confirmed_but_not_handled_is_handled_after_kill_9(
    fake: FakeBotApi, bot: BotProcess
) -> None:
    say(fake, COORDINATOR, "/help")
    sends = len(fake.calls("sendMessage"))
    fake.delay_next("sendMessage", 60)  # the handler hangs before the update is done
    fake.send_text(COORDINATOR, "/protocols")
    started_sending(fake, sends)
    fake.wait_until(lambda: fake.pending_updates == 0)  # confirmed: only the inbox has it
    bot.kill()
    after = last_id(fake, COORDINATOR)
    bot.start()
    reply = fake.wait_for_message(COORDINATOR, after=after, timeout=15)
    assert "blina-dli" in reply["text"]


def test_an_answer_typed_while_the_bot_was_down_is_not_taken_for_a_later_question(
    fake: FakeBotApi, bot: BotProcess, store: StoreUnderTest
) -> None:
    first = say(fake, COORDINATOR, "/screen R-4")
    assert variable_of(first) == "age"
    sends = len(fake.calls("sendMessage"))
    fake.delay_next("sendMessage", 60)
    fake.send_text(COORDINATOR, "/status")  # its reply hangs: the chat's next update waits
    started_sending(fake, sends)
    fake.send_text(COORDINATOR, "42")  # stored, not handled
    fake.wait_until(lambda: fake.pending_updates == 0)
    bot.kill()
    # No reply came: the coordinator goes on as if the next question were the confirmations.
    fake.send_text(COORDINATOR, "yes")
    after = last_id(fake, COORDINATOR)
    bot.start()
    fake.wait_until(
        lambda: any(
            variables_of(m)[:1] == ["b_all_cd19_positive"] for m in new_messages(fake, after)
        ),
        timeout=15,
    )
    time.sleep(1.0)  # time for the "yes" to be handled
    [(body,)] = store.rows("SELECT body FROM open_sessions")
    assert json.loads(body)["history"] == ["age"]  # 42 for the age; the "yes" for nothing
    reply = say(fake, COORDINATOR, "yes")  # typed after seeing the confirmations: taken
    assert variable_of(reply) == "transplant_date"


def new_messages(fake: FakeBotApi, after: int) -> list[dict]:
    return [m for m in fake.messages(COORDINATOR) if m["message_id"] > after]


def test_a_verdict_decided_but_not_sent_is_sent_after_kill_9(
    fake: FakeBotApi, bot: BotProcess, store: StoreUnderTest
) -> None:
    say(fake, COORDINATOR, "/screen R-3")
    sends = len(fake.calls("sendMessage"))
    fake.delay_next("sendMessage", 60)
    fake.send_text(COORDINATOR, "70")  # too old: the screening ends, not eligible
    started_sending(fake, sends)
    bot.kill()
    after = last_id(fake, COORDINATOR)
    bot.start()
    verdict = fake.wait_for_message(COORDINATOR, after=after, timeout=15)
    assert verdict["text"].startswith("NOT ELIGIBLE") and "I1" in verdict["text"]
    assert store.count("screening_log") == 1
    deadline = time.monotonic() + 10
    while store.count("outbox") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.count("outbox") == 0  # sent, so forgotten
    assert [m["text"] for m in fake.messages(COORDINATOR)].count(verdict["text"]) == 1


def texts(fake: FakeBotApi) -> list[str]:
    return [m["text"] for m in fake.messages(COORDINATOR)]


def leave_stale_work(store: StoreUnderTest, engine: Engine, hours: float) -> None:
    """What a run ``hours`` ago left for the next start: a verdict not sent, and a
    screening whose question was never delivered."""
    written = utc_now() - timedelta(hours=hours)
    then, expires = written.isoformat(), (written + DEFAULT_LIFETIME).isoformat()
    with store.open() as db, db.transaction() as tx:
        outbox.put(
            tx,
            COORDINATOR,
            "NOT ELIGIBLE Referral: R-STALE-VERDICT age = 70",
            lifetime=DEFAULT_LIFETIME,
        )
        sessions.save(tx, COORDINATOR, engine.start("R-STALE-QUESTION"), lifetime=DEFAULT_LIFETIME)
        tx.execute("UPDATE outbox SET created_at = ?, expires_at = ?", (then, expires))
        tx.execute("UPDATE open_sessions SET updated_at = ?, expires_at = ?", (then, expires))


def test_what_the_last_run_left_past_its_lifetime_expires_before_it_is_sent(
    fake: FakeBotApi, store: StoreUnderTest, engine: Engine
) -> None:
    """A bot down longer than SCREEN_BOT_SESSION_TTL_HOURS: the start's expiry pass runs
    before the left work is queued, so none of it reaches the chat."""
    leave_stale_work(store, engine, hours=100)
    process = BotProcess(fake, store.data_dir, str(COORDINATOR), store=store)
    process.start()
    try:
        say(fake, COORDINATOR, "/help")  # queued after whatever the restart sends
    finally:
        process.stop()
    assert not [t for t in texts(fake) if "R-STALE" in t]
    assert store.count("outbox") == 0 and store.count("open_sessions") == 0


def test_an_update_stored_past_its_lifetime_is_not_handled_at_a_webhook_start(
    fake: FakeBotApi, store: StoreUnderTest, engine: Engine
) -> None:
    leave_stale_work(store, engine, hours=100)
    stale = start_update(COORDINATOR, 77)
    stale["message"]["text"] = "/screen blina-dli R-STALE-UPDATE-7"
    stale["message"]["entities"][0]["length"] = len("/screen")
    then = utc_now() - timedelta(hours=100)
    with store.open() as db, db.transaction() as tx:
        inbox.receive(
            tx,
            [Received(77, COORDINATOR, json.dumps(stale))],
            now=then,
            lifetime=DEFAULT_LIFETIME,
        )
    port = free_port()
    args = ("--webhook", "https://bot.example.org:8443/hook", "--port", str(port))
    process = BotProcess(fake, store.data_dir, str(COORDINATOR), *args, store=store)
    process.start(wait_for_poll=False)
    try:
        fake.wait_until(lambda: bool(fake.webhook_url), timeout=30)
        secret = fake.calls("setWebhook")[-1]["params"]["secret_token"]
        fake.add_chat(COORDINATOR)
        fresh = json.dumps(start_update(COORDINATOR, 78)).encode()
        assert post(f"http://127.0.0.1:{port}/hook", fresh, secret) == 200
        fake.wait_until(lambda: any("pre-screen" in t for t in texts(fake)), timeout=30)
    finally:
        process.stop()
    assert not [t for t in texts(fake) if "R-STALE" in t]
    assert store.count("outbox") == 0 and store.count("open_sessions") == 0
    assert store.rows("SELECT update_id FROM inbox WHERE body LIKE '%R-STALE%'") == []


# -- webhook ------------------------------------------------------------------------------------


def post(url: str, body: bytes, secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(url, body, headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def crafted_ids(first_id: int) -> list[dict]:
    """Updates whose chat or user id is a list or object, which no Telegram sends."""
    chat = {"id": COORDINATOR, "type": "private"}
    sender = {"id": COORDINATOR, "is_bot": False, "first_name": "C"}
    text = {"message_id": 10, "date": int(time.time()), "text": "/help SECRET-BODY"}
    shown = {"message_id": 1, "date": 0, "chat": chat}
    press = {"id": "2", "chat_instance": "1", "data": "SECRET-BODY", "message": shown}
    bodies = [
        {"message": {**text, "chat": {**chat, "id": []}, "from": sender}},
        {"message": {**text, "chat": chat, "from": {**sender, "id": {}}}},
        {"callback_query": {**press, "from": {**sender, "id": []}}},
    ]
    return [{"update_id": first_id + n, **body} for n, body in enumerate(bodies)]


def test_webhook_refuses_malformed_bodies_and_stores_before_200(
    fake: FakeBotApi, store: StoreUnderTest
) -> None:
    port = free_port()
    args = ("--webhook", "https://bot.example.org:8443/hook", "--port", str(port))
    process = BotProcess(fake, store.data_dir, str(COORDINATOR), *args, store=store)
    process.start(wait_for_poll=False)
    url = f"http://127.0.0.1:{port}/hook"
    try:
        fake.wait_until(lambda: bool(fake.webhook_url), timeout=30)
        secret = fake.calls("setWebhook")[-1]["params"]["secret_token"]
        assert post(url, b"{}", None) == 403
        assert post(url, b'{"SECRET-BODY": 1', secret) == 400
        assert post(url, b'["SECRET-BODY"]', secret) == 400
        for crafted in crafted_ids(5):  # skipped and confirmed, as polled (was a 500)
            assert post(url, json.dumps(crafted).encode(), secret) == 200
        fake.add_chat(COORDINATOR)
        fake.delay_next("sendMessage", 60)  # the handler hangs after the 200
        assert post(url, json.dumps(start_update(COORDINATOR, 7)).encode(), secret) == 200
        fake.wait_until(lambda: len(fake.calls("sendMessage")) == 1)
        process.kill()
        process.start(wait_for_poll=False)  # the stored update is handled after the restart
        reply = fake.wait_for_message(COORDINATOR, timeout=30)
        assert "pre-screen" in reply["text"]
    finally:
        process.stop()
    assert "SECRET-BODY" not in process.output()  # (the settings may name *_SECRET)
    assert process.output().count("a request that is not an update was refused") == 2
    assert process.output().count("skipped: malformed (ValueError)") == 3
    assert "Traceback" not in process.output() and "/hook" not in process.output()


def test_webhook_paths_are_text_and_odd_bodies_and_settings_are_refused(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    """A path with '+', '(' or '[' was read as a route pattern (every update a silent
    404); JSON nested past Python's reading was a 500 with a traceback."""
    port = free_port()
    args = ("--webhook", "https://bot.example.org:8443/tg+1(a)", "--port", str(port))
    process = BotProcess(fake, tmp_path, str(COORDINATOR), *args)
    process.start(wait_for_poll=False)
    url = f"http://127.0.0.1:{port}"
    try:
        fake.wait_until(lambda: bool(fake.webhook_url), timeout=30)
        secret = fake.calls("setWebhook")[-1]["params"]["secret_token"]
        fake.add_chat(COORDINATOR)
        update = json.dumps(start_update(COORDINATOR, 7)).encode()
        assert post(f"{url}/tg+1(a)", update, secret) == 200
        assert "pre-screen" in fake.wait_for_message(COORDINATOR, timeout=30)["text"]
        assert post(f"{url}/tg%2B1%28a%29/", update, secret) == 200  # encoded: the same
        assert post(f"{url}/tgg1(a)", update, secret) == 404
        nested = b'{"update_id": 8, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        assert post(f"{url}/tg+1(a)", nested, secret) == 400
    finally:
        process.stop()
    assert "Traceback" not in process.output()
    for bad, env in (("--port", {}), ("", {"SCREEN_BOT_WEBHOOK_SECRET": "abc=/+"})):
        extra = ("--port", "70000") if bad else ("--port", str(free_port()))
        process = BotProcess(
            fake, tmp_path, str(COORDINATOR), "--webhook", "https://x.org/h", *extra
        )
        process.env_extra = env
        process.start(wait_for_poll=False)
        try:
            assert process.process.wait(30) == 2
        finally:
            process.stop()
        assert ("--port" if bad else "SCREEN_BOT_WEBHOOK_SECRET") in process.output()


# -- start-up -----------------------------------------------------------------------------------


def test_a_broken_dialog_file_is_logged_and_the_good_ones_serve(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "blina-dli.yaml").write_bytes((DIALOGS / "blina-dli.yaml").read_bytes())
    (dialogs / "broken.yaml").write_text("id: broken\nquestions: [\n")
    process = BotProcess(fake, tmp_path, str(COORDINATOR))
    process.env_extra = {"SCREEN_BOT_DIALOGS_DIR": str(dialogs)}
    process.start()
    try:
        assert "blina-dli" in say(fake, COORDINATOR, "/protocols")["text"]
    finally:
        process.stop()
    assert "is broken: " in process.output()
    assert "broken.yaml" in process.output()


def test_the_bot_log_has_no_state_machine_chatter(fake: FakeBotApi, bot: BotProcess) -> None:
    say(fake, COORDINATOR, "/screen R-1")
    say(fake, COORDINATOR, "70")
    assert " transitions." not in bot.output()
