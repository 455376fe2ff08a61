"""The Telegram adapter against hostile or failing input, offline (no network).

Forwarded messages and chats that are not the user's own are refused; every handler
error gets a short reply and a log line without content; a failed write says that
nothing was saved; the intake skips a malformed update, keeps strangers out of the
store, and hands what a crash left over to the handlers again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from telegram import Update
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest

from bot_process import free_port
from conftest import SHIPPED
from screen_bot.adapters.telegram import intake as intake_module
from screen_bot.adapters.telegram import messages as say
from screen_bot.adapters.telegram import webhook
from screen_bot.adapters.telegram.app import configure_logging
from screen_bot.adapters.telegram.botapi import RawBotApi
from screen_bot.adapters.telegram.gate import Refusal, StrangerGate, refusal
from screen_bot.adapters.telegram.intake import Intake
from screen_bot.adapters.telegram.ordering import ChatQueues
from screen_bot.adapters.telegram.polling import Poller
from screen_bot.protocol.catalog import Catalog
from screen_bot.redact import RedactingFormatter, redact
from screen_bot.results import PROTOCOL_CHANGED, PROTOCOL_MISSING
from screen_bot.service import DEFAULT_LIFETIME
from screen_bot.storage import inbox, outbox, sessions
from screen_bot.storage.inbox import Received
from stores import StoreUnderTest
from telegram_offline import BOT_USER, Chat, RecordingRequest
from test_telegram_training_and_log import _application
from test_telegram_transcript import COORDINATOR, OTHER, STRANGER, TOKEN, Harness

BLOCKED = (403, "Forbidden: bot was blocked by the user")
BUILT_WRONG = (400, "Bad Request: BUTTON_DATA_INVALID")  # a request the bot built wrong


def message(update_id: int, text: str, user: int = COORDINATOR, **extra: object) -> dict:
    body: dict = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": "C"},
        "text": text,
        **extra,
    }
    if text.startswith("/"):
        body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": body}


# -- access ---------------------------------------------------------------------------------


async def test_a_forwarded_message_is_neither_an_answer_nor_a_command(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    origin = {"type": "user", "date": 1, "sender_user": {**BOT_USER, "id": 5, "is_bot": False}}
    for text in ("42", "/cancel"):
        update = message(9000 + len(text), text, forward_origin=origin)
        await harness.application.process_update(Update.de_json(update, harness.application.bot))
        assert chat.last_text() == say.FORWARDED
    session = harness.active(COORDINATOR)
    assert session is not None and session.answers == {}


async def test_a_forward_as_a_bot_api_before_7_sends_it_is_not_an_answer(harness: Harness) -> None:
    """Before Bot API 7.0 a forward came with ``forward_date`` (and ``forward_from`` …), not
    ``forward_origin``: it is refused as a forward all the same."""
    chat = harness.chat()
    await chat.send("/screen R-1")
    update = message(9100, "42", forward_date=1, forward_from={**BOT_USER, "id": 5})
    await harness.application.process_update(Update.de_json(update, harness.application.bot))
    assert chat.last_text() == say.FORWARDED
    session = harness.active(COORDINATOR)
    assert session is not None and session.answers == {}


async def test_a_message_without_text_is_answered_in_a_line_and_changes_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    photo = {"file_id": "f1", "file_unique_id": "u1", "width": 9, "height": 9}
    kinds = [
        {"photo": [photo], "caption": "45 SECRET"},
        {"voice": {"file_id": "v1", "file_unique_id": "u2", "duration": 2}},
        {"sticker": {**photo, "type": "regular", "is_animated": False, "is_video": False}},
        {"document": {"file_id": "d1", "file_unique_id": "u3"}},
        {"contact": {"phone_number": "+15550100", "first_name": "SECRET"}},
    ]
    caplog.set_level(logging.INFO)
    for n, kind in enumerate(kinds):
        update = message(9100 + n, "", **kind)
        del update["message"]["text"]
        before = len(chat.messages())
        await harness.application.process_update(Update.de_json(update, harness.application.bot))
        assert len(chat.messages()) == before + 1 and chat.last_text() == say.NOT_TEXT
    session = harness.active(COORDINATOR)
    assert session is not None and session.values() == {}
    stranger = message(9200, "", user=STRANGER, voice=kinds[1]["voice"])
    del stranger["message"]["text"]
    await harness.application.process_update(Update.de_json(stranger, harness.application.bot))
    assert harness.chat(STRANGER).last_text() == say.REFUSED
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SECRET" not in logged and "+1555" not in logged


@pytest.mark.parametrize("via", ["intake", "handlers"])
async def test_a_group_command_for_another_bot_gets_no_reply(harness: Harness, via: str) -> None:
    """In a group (privacy mode off) every bot gets every command; ``/command@OtherBot`` is
    how the group picks that bot, so ours says nothing. Addressed to ours (our getMe
    username, any case), it is refused as before. ``via``: the intake reads a stranger's
    update raw (``plain_stranger``), the handlers' guard parsed (``refusal``)."""
    sent = [
        (-100, STRANGER, "/help@OtherBot"),
        (-200, COORDINATOR, "/start@OtherBot now"),
        (-300, STRANGER, "/help@Screen_Test_Bot"),
        (-400, COORDINATOR, "/start@screen_test_bot"),
    ]
    updates = [
        message(9300 + n, text, user=user, chat={"id": chat, "type": "supergroup", "title": "W"})
        for n, (chat, user, text) in enumerate(sent)
    ]
    if via == "intake":
        await Intake(harness.application, harness.bot, harness.db).accept(updates)
    else:
        for update in updates:
            await harness.application.process_update(
                Update.de_json(update, harness.application.bot)
            )
    await harness.bot.gate.idle()
    replies = {chat: [m["text"] for m in harness.request.sent(chat)] for chat, _, _ in sent}
    assert replies == {-100: [], -200: [], -300: [say.REFUSED], -400: [say.PRIVATE_ONLY]}
    assert harness.db.read().all("SELECT update_id FROM inbox") == []


async def test_a_private_chat_that_is_not_the_users_own_is_refused(harness: Harness) -> None:
    chat = harness.chat(COORDINATOR, chat_id=COORDINATOR + 1)
    await chat.send("/screen R-1")
    assert chat.last_text() == say.PRIVATE_ONLY
    assert harness.list(COORDINATOR + 1) == [] and harness.list(COORDINATOR) == []


async def test_data_naming_an_unknown_screening_leaves_the_current_question_alone(
    harness: Harness,
) -> None:
    """Button data the bot never sent (the Bot API warns a message may carry no button with
    the data of a press) on the current question: refused in the answer, nothing edited."""
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42")
    current = chat.last_with_buttons()
    state = harness.active(COORDINATOR)
    calls = len(harness.request.calls)
    await chat.press(current, "v|deadbeef|1|a")
    assert [method for method, _ in harness.request.calls[calls:]] == ["answerCallbackQuery"]
    assert harness.request.answers()[-1]["text"] == say.FORGED_TEXT
    assert chat.last_with_buttons() == current and harness.active(COORDINATOR) == state
    await chat.tap("✓ All of these hold")  # its buttons still work
    await chat.press(current, "v|deadbeef|1|a")  # an old question's message: retired
    assert harness.request.answers()[-1]["text"] == say.GONE_TEXT
    assert harness.request.calls[-1][0] == "editMessageReplyMarkup"


# -- handler errors -------------------------------------------------------------------------


async def test_a_400_digit_age_is_explained(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("9" * 400)
    assert chat.last_text().startswith("⚠") and "Please type a number" in chat.last_text()
    assert harness.active(COORDINATOR).state == "age"


async def test_a_5000_digit_quiz_seed_is_explained(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/quiz " + "5" * 5000)
    assert chat.last_text() == say.SEED_TOO_LONG


async def test_a_handler_error_gets_a_short_reply_and_a_line_without_content(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")

    def broken(*args: object, **kwargs: object) -> None:
        raise OverflowError("int too large: secret-content-42")

    monkeypatch.setattr(harness.bot.service, "answer", broken)
    caplog.set_level(logging.INFO)
    await chat.send("secret-content-42")
    position, total = harness.engine.progress(harness.active(COORDINATOR))
    assert (position, total) == (1, 22)  # steps: a checklist counts once
    assert chat.last_text() == say.went_wrong((position, total))
    assert "safe at question 1 of 22" in chat.last_text()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed: OverflowError" in logged and "secret-content" not in logged


async def test_an_error_after_a_press_was_answered_still_reaches_the_chat(
    harness: Harness,
) -> None:
    """The press is answered first; when the next question then cannot be sent, the Bot
    API refuses a second answer, so the words must come as a message."""
    chat = harness.chat()
    await chat.send("/screen R-1")
    await chat.send("42")
    harness.request.failing["sendMessage"] = 1  # the next question, refused for good
    await chat.tap("✓ All of these hold")
    assert chat.last_text() == say.went_wrong(harness.bot.service.where(COORDINATOR))
    assert len(harness.request.answers()) == 2  # the press, and the refused second answer


async def test_an_error_reply_that_fails_too_is_one_line_without_a_traceback(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A relay answering sendMessage with a malformed result (no ``date``) breaks the
    handler's reply and then the error reply itself: one line each (the update id and the
    error type), never python-telegram-bot's traceback of an error handler that failed."""
    answer = harness.request._answer
    malformed = {"sendMessage": 2}

    def garbled(endpoint: str, params: dict[str, object]) -> object:
        if malformed.get(endpoint):
            malformed[endpoint] -= 1
            return {"message_id": 1, "chat": {"id": COORDINATOR, "type": "private"}}
        return answer(endpoint, params)

    monkeypatch.setattr(harness.request, "_answer", garbled)
    caplog.set_level(logging.INFO)
    await harness.chat().send("/help")
    assert malformed["sendMessage"] == 0
    assert [r for r in caplog.records if r.exc_info or r.stack_info] == []
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(line.endswith("failed: KeyError") for line in logged), logged
    assert any(line.endswith("the error reply failed: KeyError") for line in logged), logged
    assert all("\n" not in line for line in logged), logged


async def test_a_failed_write_tells_the_user_nothing_was_saved(harness: Harness) -> None:
    chat = harness.chat()
    await chat.send("/screen R-1")
    harness.db.read().execute("PRAGMA query_only = ON")  # the disk refuses every write
    await chat.send("42")
    assert chat.last_text() == say.NOT_SAVED
    harness.db.read().execute("PRAGMA query_only = OFF")
    assert harness.active(COORDINATOR).answers == {}
    await chat.send("42")
    assert harness.active(COORDINATOR).values() == {"age": 42}


async def test_an_answer_that_waited_too_long_for_the_write_lock_is_the_only_one_not_saved(
    postgres_store: StoreUnderTest,
    catalog: Catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL, another process holding the write lock past the lock timeout (a long
    log purge): that answer is NOT saved, and the one sent after the lock is free is. It
    was NOT saved too, and every message after it, until the bot was restarted."""
    import psycopg

    from screen_bot.storage import postgres as pg

    monkeypatch.setattr(pg, "LOCK_TIMEOUT_MS", 200)  # 5 s in use
    made = _application(tmp_path, catalog, RecordingRequest(), postgres_store.open())
    async for application, request, db in made:
        chat = Chat(application, request, COORDINATOR)
        await chat.send("/screen R-1")
        with psycopg.connect(str(postgres_store.url)) as holder:  # its transaction holds it
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (pg.lock_key_of(pg.WRITE_LOCK),))
            await chat.send("42")
            assert chat.last_text() == say.NOT_SAVED
        await chat.send("42")
        assert sessions.active(db.read(), COORDINATOR).values() == {"age": 42}  # type: ignore[union-attr]


# -- intake ---------------------------------------------------------------------------------


async def test_the_intake_skips_malformed_updates_and_keeps_strangers_out(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    intake = Intake(harness.application, harness.bot, harness.db)
    caplog.set_level(logging.INFO)
    batch = [
        {"update_id": 20, "message": "SECRET-A"},
        {"update_id": "21"},
        message(22, "/screen SECRET-B", user=STRANGER),
        message(23, "/help"),
        {"update_id": 24, "channel_post": message(24, "41")["message"]},  # never asked for
    ]
    assert await intake.accept(batch) == 25
    assert await intake.queues.join(5)
    await harness.bot.gate.idle()
    stored = harness.db.read().all("SELECT update_id, done FROM inbox")
    assert stored == [(23, 1)]
    assert "/screen" in harness.chat().last_text()
    assert harness.chat(STRANGER).last_text() == say.REFUSED
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "update 20 skipped: malformed (AttributeError)" in logged
    assert "without a valid update_id" in logged and "SECRET" not in logged
    assert await intake.accept([message(23, "/help")]) == 24  # delivered again: not handled
    assert await intake.queues.join(5)
    assert sum(1 for m in harness.chat().messages() if "/screen" in m["text"]) == 1


def press_update(update_id: int, user: object = COORDINATOR, chat: object = COORDINATOR) -> dict:
    shown = {"message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"}}
    sender = {"id": user, "is_bot": False, "first_name": "C"}
    query = {"id": "1", "from": sender, "chat_instance": "1", "data": "x", "message": shown}
    return {"update_id": update_id, "callback_query": query}


def with_id(update: dict, path: tuple[str, ...], value: object) -> dict:
    update = json.loads(json.dumps(update))
    *where, last = path
    part = update
    for key in where:
        part = part[key]
    part[last] = value
    return update


CRAFTED_ID_AT = [
    (message(30, "/help"), ("message", "chat", "id")),
    (message(30, "/help"), ("message", "from", "id")),
    (press_update(30), ("callback_query", "from", "id")),
    (press_update(30), ("callback_query", "message", "chat", "id")),
]
NOT_IDS = [[], {}, [COORDINATOR], "111", float(COORDINATOR), True, 2**63]


@pytest.mark.parametrize(("update", "path"), CRAFTED_ID_AT)
@pytest.mark.parametrize("value", NOT_IDS, ids=repr)
async def test_a_user_or_chat_id_that_is_no_telegram_id_is_skipped_and_confirmed(
    harness: Harness, caplog: pytest.LogCaptureFixture, update: dict, path: tuple, value: object
) -> None:
    """A list or object as an id was unhashable to the gate: the error left the intake,
    the poller died without confirming the batch, and every restart died on it again."""
    intake = Intake(harness.application, harness.bot, harness.db)
    caplog.set_level(logging.INFO)
    crafted = with_id(update, path, value)
    assert await intake.accept([crafted, message(31, "/help")]) == 32
    assert await intake.queues.join(5)
    await harness.bot.gate.idle()
    assert harness.db.read().all("SELECT update_id FROM inbox") == [(31,)]
    assert "/screen" in harness.chat().last_text()  # the next update is served
    logged = [r.getMessage() for r in caplog.records]
    assert logged.count("update 30 skipped: malformed (ValueError)") == 1, logged


# -- the webhook's connections ----------------------------------------------------------------

SECRET = "s3cret"


@asynccontextmanager
async def webhook_server(
    harness: Harness, **limits: Any
) -> AsyncIterator[tuple[webhook.BoundedHTTPServer, int]]:
    """A webhook server and its port (a free one), its timeouts and cap as given."""
    intake = Intake(harness.application, harness.bot, harness.db)
    port = free_port()
    server = webhook.serve(intake, SECRET, "/hook", "127.0.0.1", port, **limits)
    try:
        yield server, port
    finally:
        server.stop()
        await server.close_all_connections()
        await intake.queues.join(5)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def request(body: bytes, length: int | None = None) -> bytes:
    head = (
        f"POST /hook HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection without a word (wait at most 10 s)."""
    try:
        return await asyncio.wait_for(reader.read(), 10) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def post_update(port: int, update: dict) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request(json.dumps(update).encode()))
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return status


async def test_the_webhook_closes_a_connection_that_sends_nothing_or_too_slowly(
    harness: Harness,
) -> None:
    """Without timeouts an idle connection, or one sending its body a byte at a time,
    held a file descriptor for an hour: about a thousand of them took them all."""
    async with webhook_server(harness, idle_timeout=0.2, body_timeout=0.2) as (_, port):
        idle_reader, idle = await asyncio.open_connection("127.0.0.1", port)
        slow_reader, slow = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps(message(40, "/help")).encode()
        slow.write(request(body)[: -len(body) + 10])  # the headers and 10 bytes of the body
        assert await closed_by_server(idle_reader)
        assert await closed_by_server(slow_reader)
        idle.close()
        slow.close()
    assert harness.db.read().all("SELECT update_id FROM inbox") == []


async def test_the_webhook_serves_beside_idle_connections_and_closes_those_past_its_cap(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """With every file descriptor taken, accepting failed in a loop: a traceback each
    time (megabytes of log a second), and no update was taken."""
    caplog.set_level(logging.INFO)
    async with webhook_server(harness, max_connections=3) as (server, port):
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        assert (await post_update(port, message(41, "/help"))).startswith(b"HTTP/1.1 200")
        await until(lambda: server.open_connections() == 2)  # the post's was closed
        idle.append(await asyncio.open_connection("127.0.0.1", port))
        await until(lambda: server.open_connections() == 3)  # three idle ones: the cap
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await closed_by_server(reader)  # past the cap
            writer.close()
        for _, writer in idle:
            writer.close()
        await until(lambda: server.open_connections() == 0)  # room again
        assert (await post_update(port, message(42, "/help"))).startswith(b"HTTP/1.1 200")
    assert harness.db.read().all("SELECT update_id FROM inbox ORDER BY 1") == [(41,), (42,)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["webhook: 3 connections are open; new ones are closed until some end"]


async def test_the_webhook_refuses_a_request_without_the_secret_before_its_body(
    harness: Harness,
) -> None:
    """tornado read the whole body (up to 1 MB, held in memory) before the secret was
    checked: 200 such connections held 220 MB."""
    async with webhook_server(harness) as (_, port):
        for path, secret, status in (("/hook", "wrong", b"403"), ("/other", SECRET, b"404")):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = request(b"", length=webhook.MAX_BODY - 1).replace(b"/hook", path.encode())
            writer.write(head.replace(SECRET.encode(), secret.encode()))  # and no body
            answer = await asyncio.wait_for(reader.readline(), 10)
            assert answer.startswith(b"HTTP/1.1 " + status), answer
            writer.close()


async def test_a_webhook_request_that_fails_is_logged_without_its_path(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tornado logged a failed request with a traceback and the request line, whose path
    is the webhook's secret one."""

    async def fails(self: Intake, raw: object) -> None:
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(Intake, "accept", fails)
    caplog.set_level(logging.INFO)
    async with webhook_server(harness) as (_, port):
        assert (await post_update(port, message(43, "/help"))).startswith(b"HTTP/1.1 500")
    logged = [(r.getMessage(), r.exc_info) for r in caplog.records]
    assert logged == [("webhook: a request failed (TypeError)", None)]


@pytest.mark.parametrize(
    ("soft", "hard", "settable", "cap"),
    [
        (1024, 524288, True, webhook.MAX_CONNECTIONS),  # systemd's: raised to the hard limit
        (1024, 1024, True, 1024 - webhook.FD_RESERVE),
        (1024, -1, False, 1024 - webhook.FD_RESERVE),  # unlimited, and not allowed
        (256, 256, True, 128),
    ],
)
def test_the_webhook_takes_no_more_connections_than_file_descriptors_allow(
    monkeypatch: pytest.MonkeyPatch, soft: int, hard: int, settable: bool, cap: int
) -> None:
    limits = {"now": (soft, hard)}

    def setrlimit(_: int, wanted: tuple[int, int]) -> None:
        if not settable:
            raise ValueError("not allowed to set the current limit")
        limits["now"] = wanted

    fake = SimpleNamespace(
        RLIMIT_NOFILE=7, RLIM_INFINITY=-1, getrlimit=lambda _: limits["now"], setrlimit=setrlimit
    )
    monkeypatch.setattr(webhook, "resource", fake)
    assert webhook.connection_cap() == cap
    assert limits["now"] == ((hard, hard) if settable else (soft, hard))


async def test_a_command_sent_without_entities_is_still_a_command(harness: Harness) -> None:
    """Telegram marks a command with a ``bot_command`` entity, and python-telegram-bot's
    command handlers read only that mark: from a Bot API that leaves entities out, the
    intake marks a leading command itself, so ``/screen`` is not taken for an answer.
    Entities that were sent (none of them a command) are kept."""
    intake = Intake(harness.application, harness.bot, harness.db)
    bare = [message(40, "/screen R-4"), message(41, "/help@Screen_Test_Bot")]
    for update in bare:
        del update["message"]["entities"]
    await intake.accept(bare[:1])
    assert await intake.queues.join(5)
    session = harness.active(COORDINATOR)
    assert session is not None and session.referral == "R-4"
    await intake.accept(bare[1:])
    assert await intake.queues.join(5)
    assert "/screen" in harness.chat().last_text()
    assert intake_module.with_command_entity(bare[1])["message"]["entities"] == [
        {"type": "bot_command", "offset": 0, "length": len("/help@Screen_Test_Bot")}
    ]

    def marked(text: str) -> bool:
        update = intake_module.with_command_entity({"update_id": 1, "message": {"text": text}})
        return "entities" in update["message"]

    for text in ("/05/2024", "/screen/R-4", "/helpé", "/skip<", "/x>1", "1/2", "/"):
        assert not marked(text), text  # no command to Telegram's parser either
    for text in ("/skip", "/screen R-9", "/screen\nR-9", "/back@Screen_Test_Bot", "/list."):
        assert marked(text), text
    unmarked = message(42, "/screen R-5")
    unmarked["message"]["entities"] = []
    await intake.accept([unmarked])
    assert await intake.queues.join(5)
    assert harness.active(COORDINATOR).referral == "R-4"


async def test_the_inbox_keeps_no_names_telegram_sends(harness: Harness) -> None:
    """Each update carries the sender's and the chat's names, username and language, and a
    reply quotes the message replied to: none of it is read by a handler, so none of it is
    written; the stored update is still handled as sent (a reply to the bot still is one)."""
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(30, "/screen R-3")])
    assert await intake.queues.join(5)
    question = harness.chat().last_with_buttons()
    names = {"first_name": "ALICE-FIRST", "last_name": "ALICE-LAST", "username": "alice_user"}
    person = {"id": COORDINATOR, "is_bot": False, "language_code": "de", **names}
    update = message(31, "42", chat={"id": COORDINATOR, "type": "private", **names})
    update["message"]["from"] = person
    update["message"]["reply_to_message"] = {**question, "text": "ALICE-QUOTED question"}
    update["message"]["quote"] = {"text": "ALICE-QUOTED", "position": 0}
    intake.caught_up.clear()  # stored, not handled yet
    await intake.accept([update])
    [(body,)] = harness.db.read().all("SELECT body FROM inbox WHERE update_id = 31")
    assert "ALICE" not in body and "alice_user" not in body and '"de"' not in body, body
    stored = Update.de_json(json.loads(body), harness.application.bot)
    assert stored.message is not None and stored.message.text == "42"
    replied = stored.message.reply_to_message
    assert replied is not None and replied.message_id == question["message_id"]
    assert replied.from_user is not None and replied.from_user.is_bot
    intake.caught_up.set()
    assert await intake.queues.join(5)
    assert harness.active(COORDINATOR).values() == {"age": 42}
    for file in (harness.settings.database, Path(f"{harness.settings.database}-wal")):
        assert not file.exists() or b"ALICE" not in file.read_bytes(), file


async def test_a_cancelled_screening_and_a_refused_name_leave_no_write_ahead_log(
    harness: Harness,
) -> None:
    """ "Nothing of it is kept" (/cancel) and "a name is refused, never kept" (the referral
    prompt) hold for the disk at once, not only at the next expiry pass: the write-ahead
    log, which keeps pages as they were, is emptied into the file and truncated, as after
    /forget. The raw files are read, never opened with SQLite (which would empty it)."""
    intake = Intake(harness.application, harness.bot, harness.db)
    wal = Path(f"{harness.settings.database}-wal")
    files = (harness.settings.database, wal)

    async def send(update_id: int, text: str) -> None:
        await intake.accept([message(update_id, text)])  # each after the one before
        assert await intake.queues.join(5)

    await send(60, "/screen")
    await send(61, "John Smith")
    assert "never a name" in harness.chat().last_text()
    assert not wal.exists() or b"John Smith" not in wal.read_bytes()
    await send(62, "R-CANCEL9")
    await send(63, "63")
    assert harness.active(COORDINATOR).values() == {"age": 63}
    assert b"R-CANCEL9" in wal.read_bytes()  # an open screening: written, as it must be
    await send(64, "/cancel")
    assert "nothing of it is kept" in harness.chat().last_text()
    for file in files:
        assert not file.exists() or b"R-CANCEL9" not in file.read_bytes(), file
        assert not file.exists() or b"John Smith" not in file.read_bytes(), file


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("/screen blina-dli Johnny Smithson", b"Smithson"),
        ("/screen blina-dli 4-Mar-1961", b"4-Mar-1961"),
        ("/check age 40, referral 4-Mar-1961", b"4-Mar-1961"),
    ],
)
async def test_a_referral_refused_in_a_command_leaves_no_write_ahead_log(
    harness: Harness, text: str, refused: bytes
) -> None:
    """As at the referral prompt: a name or a date of birth given with /screen or /check is
    refused and never kept, in the write-ahead log either (read raw, never opened)."""
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(70, text)])
    assert await intake.queues.join(5)
    assert "never a name" in harness.chat().last_text()
    for file in (harness.settings.database, Path(f"{harness.settings.database}-wal")):
        assert not file.exists() or refused not in file.read_bytes(), file


def test_the_inbox_keeps_no_names_of_a_forward_as_a_bot_api_before_7_sends_it() -> None:
    """A self-hosted Bot API server older than 7.0 (or a relay) tells a forward's origin in
    fields of their own, not in ``forward_origin``: their names are not kept either."""
    update = message(
        40,
        "45",
        forward_from={"id": 5, "is_bot": False, "first_name": "Jane", "username": "jleak"},
        forward_from_chat={"id": -1001, "type": "channel", "title": "Leak ward", "username": "lw"},
        forward_sender_name="Jane Leakname",
        forward_signature="Dr Leakname",
        forward_from_message_id=3,
        forward_date=1,
    )
    stored = intake_module.stored_form(update)["message"]
    assert stored["forward_sender_name"] == stored["forward_signature"] == "-"
    assert stored["forward_from"] == {"id": 5, "is_bot": False, "first_name": "-", "username": "-"}
    assert stored["forward_from_chat"] == {
        "id": -1001,
        "type": "channel",
        "title": "-",
        "username": "-",
    }
    assert stored["forward_from_message_id"] == 3 and stored["forward_date"] == 1


async def test_an_edited_answer_is_never_applied_and_says_nothing(harness: Harness) -> None:
    """'65' edited to '55' (from a Bot API that sends edits unasked): never applied, and no
    reply (Telegram also sends edits for reactions, where nothing changed)."""
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(60, "/screen R-6")])
    assert await intake.queues.join(5)
    await intake.accept([message(61, "65")])
    assert await intake.queues.join(5)
    shown = harness.chat().messages()
    edited = {**message(61, "55")["message"], "edit_date": int(time.time())}
    stranger = {**message(63, "55", user=STRANGER)["message"], "edit_date": int(time.time())}
    batch = [
        {"update_id": 62, "edited_message": edited},
        {"update_id": 63, "edited_message": stranger},
    ]
    assert await intake.accept(batch) == 64
    assert await intake.queues.join(5)
    await harness.bot.gate.idle()
    assert harness.chat().messages() == shown  # no reply
    assert harness.active(COORDINATOR).values()["age"] == 65
    assert harness.chat(STRANGER).messages() == []  # a stranger's edit: dropped, not stored
    assert [u for (u,) in harness.db.read().all("SELECT update_id FROM inbox")] == [60, 61, 62]


async def test_polling_does_not_ask_for_edited_messages() -> None:
    class OnePoll:
        params: dict = {}

        async def call(self, method: str, params: dict, timeout: float = 0) -> list:
            OnePoll.params = params
            raise asyncio.CancelledError

    poller = Poller(OnePoll(), SimpleNamespace(caught_up=asyncio.Event()))  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await poller.run()
    assert OnePoll.params["allowed_updates"] == ["message", "callback_query"]


async def test_an_update_id_reused_after_a_quiet_week_is_handled(harness: Harness) -> None:
    """Bot API: after a week without updates, ids start anew; one may equal an update
    handled before the quiet week, still in the inbox until it is pruned."""
    week_ago = datetime.now(UTC) - timedelta(days=8)
    with harness.db.transaction() as tx:
        inbox.receive(
            tx,
            [Received(70, COORDINATOR, json.dumps(message(70, "/cancel")))],
            week_ago,
            lifetime=DEFAULT_LIFETIME,
        )
        inbox.finish(tx, 70)
    intake = Intake(harness.application, harness.bot, harness.db)  # a restart after the week
    assert await intake.accept([message(70, "/help")]) == 71
    assert await intake.queues.join(5)
    assert "/screen" in harness.chat().last_text()


async def test_updates_a_crash_left_are_handled_at_start_up(harness: Harness) -> None:
    with harness.db.transaction() as tx:
        inbox.receive(
            tx,
            [Received(30, COORDINATOR, json.dumps(message(30, "/help")))],
            lifetime=DEFAULT_LIFETIME,
        )
    intake = Intake(harness.application, harness.bot, harness.db)
    assert intake.recover() == 1
    assert await intake.queues.join(5)
    assert "/screen" in harness.chat().last_text()
    assert inbox.pending(harness.db.read()) == []


async def test_the_sweep_handles_updates_and_verdicts_another_process_left(
    harness: Harness,
) -> None:
    """Another instance stored an update and decided a verdict, then died: no new update
    comes for that chat, and the sweep picks both up once they have waited a while."""
    intake = Intake(harness.application, harness.bot, harness.db)
    long_ago = datetime.now(UTC) - timedelta(minutes=1)
    with harness.db.transaction() as tx:
        inbox.receive(
            tx,
            [Received(50, COORDINATOR, json.dumps(message(50, "/help")))],
            long_ago,
            lifetime=DEFAULT_LIFETIME,
        )
        inbox.receive(  # fresh
            tx,
            [Received(51, STRANGER, json.dumps(message(51, "/help")))],
            lifetime=DEFAULT_LIFETIME,
        )
        outbox.put(
            tx,
            COORDINATOR,
            "NOT ELIGIBLE — left by the other instance",
            lifetime=DEFAULT_LIFETIME,
        )
        tx.execute("UPDATE outbox SET created_at = ?", (long_ago.isoformat(),))
    assert intake.sweep() == 1  # only the update that waited
    assert await intake.queues.join(5)
    texts = [m["text"] for m in harness.chat().messages()]
    assert "NOT ELIGIBLE — left by the other instance" in texts
    assert any("/screen" in t for t in texts)
    assert [r.update_id for r in inbox.pending(harness.db.read())] == [51]
    assert outbox.undelivered(harness.db.read()) == []
    assert intake.sweep() == 0  # nothing waited long enough now


async def test_the_sweep_does_not_wait_for_the_clock_to_catch_up_with_what_it_stamped_ahead(
    harness: Harness,
) -> None:
    """The server's clock was an hour ahead when an update was stored, a verdict decided
    and a question left unsent; NTP set it right. The sweep picks them up at once, not an
    hour later."""
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(60, "/screen R-6")])
    assert await intake.queues.join(5)
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with harness.db.transaction() as tx:
        inbox.receive(
            tx,
            [Received(61, COORDINATOR, json.dumps(message(61, "/help")))],
            datetime.now(UTC) + timedelta(hours=1),
            lifetime=DEFAULT_LIFETIME,
        )
        outbox.put(tx, OTHER, "NOT ELIGIBLE — stamped an hour ahead", lifetime=DEFAULT_LIFETIME)
        tx.execute("UPDATE outbox SET created_at = ?", (ahead,))
        tx.execute("UPDATE open_sessions SET shown_step = NULL, updated_at = ?", (ahead,))
    assert intake.sweep() == 1  # the update
    assert await intake.queues.join(5)
    texts = [m["text"] for m in harness.chat().messages()]
    assert any(t.startswith("R-6 · [1/22]") for t in texts[1:])  # the question shown again
    assert any("/screen" in t for t in texts)  # the /help answered
    assert [m["text"] for m in harness.chat(OTHER).messages()] == [
        "NOT ELIGIBLE — stamped an hour ahead"
    ]
    assert inbox.pending(harness.db.read()) == []


async def test_a_server_clock_a_day_off_telegrams_dates_is_warned_of_once_an_hour(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    intake = Intake(harness.application, harness.bot, harness.db, clock=lambda: now[0])
    caplog.set_level(logging.WARNING)
    await intake.accept([message(90, "/help")])  # Telegram's date agrees with the clock
    a_day_ago = int(time.time()) - 24 * 3600  # the server's clock a day ahead
    await intake.accept([message(91, "/screen R-SECRET-91", date=a_day_ago)])
    now[0] += 1800
    await intake.accept([message(92, "/help", date=a_day_ago + 1800)])  # within the hour
    assert await intake.queues.join(5)
    (warning,) = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    assert warning.startswith("the server's clock is 24 h 00 min ahead of Telegram's date")
    assert "'today'" in warning and "NTP" in warning
    assert "R-SECRET-91" not in caplog.text and TOKEN not in caplog.text
    now[0] += 3600
    an_hour_ahead = int(time.time()) + 3600  # the server's clock an hour behind
    await intake.accept([message(93, "/help", date=an_hour_ahead)])
    assert await intake.queues.join(5)
    assert "is 1 h 00 min behind Telegram's date" in caplog.records[-1].getMessage()


async def test_a_verdict_whose_send_failed_comes_before_the_reply_to_the_next_update(
    harness: Harness,
) -> None:
    """The coordinator blocked the bot as the verdict was sent, unblocks it and writes
    /status: the verdict first, then the answer (no sweep ran meanwhile)."""
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(80, "/screen R-8")])
    assert await intake.queues.join(5)
    harness.request.failure = BLOCKED
    harness.request.failing["sendMessage"] = 1  # the verdict
    await intake.accept([message(81, "70")])  # too old: not eligible
    assert await intake.queues.join(5)
    # the screening is done, only its verdict's send failed: nothing "went wrong" to say
    assert say.went_wrong(None) not in [m["text"] for m in harness.chat().messages()]
    (left,) = outbox.undelivered(harness.db.read())
    before = len(harness.chat().messages())
    await intake.accept([message(82, "/status")])
    assert await intake.queues.join(5)
    texts = [m["text"] for m in harness.chat().messages()[before:]]
    assert texts == [left.text, say.NO_SCREENING_TEXT]
    assert texts[0].startswith("NOT ELIGIBLE")
    assert outbox.undelivered(harness.db.read()) == []


def keep_an_unsent_verdict(harness: Harness) -> None:
    """A verdict whose send failed, kept in the outbox since long ago (due for the sweep)."""
    with harness.db.transaction() as tx:
        outbox.put(tx, COORDINATOR, "NOT ELIGIBLE — its send failed", lifetime=DEFAULT_LIFETIME)
        tx.execute("UPDATE outbox SET created_at = ?", ("2026-01-01T00:00:00+00:00",))


async def test_the_sweep_sends_a_verdict_left_again_less_often_each_time(
    harness: Harness,
) -> None:
    now, first_wait = [0.0], intake_module.RETRY_FIRST
    intake = Intake(harness.application, harness.bot, harness.db, clock=lambda: now[0])
    keep_an_unsent_verdict(harness)
    harness.request.failure = BLOCKED
    harness.request.failing["sendMessage"] = 2

    async def sweep(after: float) -> int:
        """Sweep ``after`` seconds later; return how many sends it tried."""
        now[0] += after
        calls = len(harness.request.calls)
        intake.sweep()
        assert await intake.queues.join(5)
        return len(harness.request.calls) - calls

    assert await sweep(0) == 1  # blocked
    assert await sweep(2) == 0  # not at every sweep
    assert await sweep(first_wait - 2) == 1  # blocked still
    assert await sweep(first_wait) == 0  # twice as long now
    assert await sweep(first_wait) == 1  # unblocked: sent
    assert [m["text"] for m in harness.chat().messages()] == ["NOT ELIGIBLE — its send failed"]
    assert outbox.undelivered(harness.db.read()) == []
    assert await sweep(3600) == 0  # nothing left


async def test_the_sweeps_failed_send_to_a_user_who_blocked_the_bot_is_a_warning_not_an_error(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who keeps the bot blocked is expected: each of the sweep's tries is logged as
    the first send's failure is (kept to send again), never as work that failed at ERROR
    (one at every try, for as long as the verdict is kept); an unexpected error still is."""
    now = [0.0]
    intake = Intake(harness.application, harness.bot, harness.db, clock=lambda: now[0])
    keep_an_unsent_verdict(harness)
    harness.request.failure = BLOCKED
    harness.request.failing["sendMessage"] = 2
    caplog.set_level(logging.INFO)
    for _ in range(2):
        intake.sweep()
        assert await intake.queues.join(5)
        now[0] += intake_module.RETRY_MAX
    assert harness.request.failing["sendMessage"] == 0  # both tries refused
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 2
    assert {r.getMessage() for r in caplog.records} == {
        "a verdict was not sent, kept to send again: Forbidden"
    }
    caplog.clear()

    async def broken(*args: object) -> None:
        raise RuntimeError("not a Bot API refusal")

    monkeypatch.setattr(harness.bot, "_send_verdict", broken)
    intake.sweep()
    assert await intake.queues.join(5)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "work for a chat failed: RuntimeError")
    ]
    assert len(outbox.undelivered(harness.db.read())) == 1


@pytest.mark.parametrize(
    ("error", "level"),
    [
        (Forbidden("Forbidden: bot was blocked by the user"), logging.WARNING),
        (NetworkError("Bad Gateway"), logging.WARNING),
        (TimedOut(), logging.WARNING),
        (RetryAfter(30), logging.WARNING),
        (BadRequest("Bad Request: message text is empty"), logging.ERROR),
        (InvalidToken(), logging.ERROR),
    ],
    ids=["blocked", "outage", "timeout", "flood limit", "built wrong", "token refused"],
)
async def test_a_verdict_the_sweep_cannot_send_is_an_error_only_when_the_bot_is_at_fault(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    error: TelegramError,
    level: int,
) -> None:
    """A blocked user, an outage or a flood limit is waited out: a warning at each try. A
    request refused as built (400) or a token refused fails at every try until fixed: an
    ERROR. Either way the verdict is kept to send again."""
    intake = Intake(harness.application, harness.bot, harness.db)
    keep_an_unsent_verdict(harness)

    async def refused(*args: object) -> None:
        raise error

    monkeypatch.setattr(harness.bot, "_send_verdict", refused)
    caplog.set_level(logging.INFO)
    intake.sweep()
    assert await intake.queues.join(5)
    name = type(error).__name__
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (level, f"a verdict was not sent, kept to send again: {name}")
    ]
    assert len(outbox.undelivered(harness.db.read())) == 1


def parts_sent(harness: Harness, parts: list[str]) -> list[int]:
    """How many times each of ``parts`` was sent to the coordinator."""
    texts = [m["text"] for m in harness.chat().messages()]
    return [texts.count(part) for part in parts]


async def test_a_verdict_whose_second_part_failed_goes_on_from_there_without_a_went_wrong(
    tmp_path: Path,
) -> None:
    """A verdict of two messages (both protocols, every answer unknown) whose second part
    is refused once (the coordinator blocked the bot): the second part comes from the
    sweep, the first is not sent again, and no "went wrong" line points to /list, which
    shows nothing for a finished screening."""
    async with harness_on(RecordingRequest(), tmp_path, Catalog(SHIPPED)) as harness:
        intake = Intake(harness.application, harness.bot, harness.db)
        harness.request.failure = BLOCKED
        harness.request.failing["sendMessage"] = 1
        harness.request.failing_when = lambda p: "continued (2/2)" in str(p.get("text"))
        await intake.accept([message(100, "/screen all R-10")])
        for update in range(101, 200):
            assert await intake.queues.join(5)
            if harness.active(COORDINATOR) is None:
                break
            await intake.accept([message(update, "/skip")])
        assert harness.request.failing["sendMessage"] == 0  # the second part was refused
        (left,) = outbox.undelivered(harness.db.read())
        parts = say.parts(left.text)
        assert len(parts) == 2
        assert harness.chat().messages()[-1]["text"] == parts[0]  # and nothing after it
        with harness.db.transaction() as tx:  # left long enough for the sweep
            tx.execute("UPDATE outbox SET created_at = ?", ("2026-01-01T00:00:00+00:00",))
        intake.sweep()
        assert await intake.queues.join(5)
        assert parts_sent(harness, parts) == [1, 1]
        assert outbox.undelivered(harness.db.read()) == []


async def test_the_sweep_sends_a_verdict_on_from_the_first_part_it_did_not_send(
    harness: Harness,
) -> None:
    """The sweep's own send of a verdict in three messages fails at the third: its next
    try sends only the third."""
    now = [0.0]
    intake = Intake(harness.application, harness.bot, harness.db, clock=lambda: now[0])
    text = "NOT ELIGIBLE\n" + "\n".join(f"{n}. a reason " + "x" * 90 for n in range(100))
    parts = say.parts(text)
    assert len(parts) == 3
    with harness.db.transaction() as tx:
        outbox.put(tx, COORDINATOR, text, lifetime=DEFAULT_LIFETIME)
        tx.execute("UPDATE outbox SET created_at = ?", ("2026-01-01T00:00:00+00:00",))
    harness.request.failure = BLOCKED
    harness.request.failing["sendMessage"] = 1
    harness.request.failing_when = lambda p: p.get("text") == parts[2]
    intake.sweep()
    assert await intake.queues.join(5)
    assert parts_sent(harness, parts) == [1, 1, 0]
    assert len(outbox.undelivered(harness.db.read())) == 1
    now[0] += intake_module.RETRY_FIRST
    intake.sweep()
    assert await intake.queues.join(5)
    assert parts_sent(harness, parts) == [1, 1, 1]
    assert outbox.undelivered(harness.db.read()) == []


async def _sweep_long_after(harness: Harness, intake: Intake) -> None:
    """The sweep, run as if the open screenings were last changed long ago (past its wait),
    and its work done."""
    with harness.db.transaction() as tx:
        tx.execute("UPDATE open_sessions SET updated_at = ?", ("2026-01-01T00:00:00+00:00",))
    intake.sweep()
    assert await intake.queues.join(5)


async def test_a_question_whose_send_failed_is_sent_again_by_the_sweep(harness: Harness) -> None:
    """After the answer was saved the next question could not be sent (an outage longer
    than the retries): the sweep sends it once the Bot API answers again."""
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(90, "/screen R-9")])
    assert await intake.queues.join(5)
    harness.request.failing["sendMessage"] = 2  # the next question, and the error reply
    await intake.accept([message(91, "42")])
    assert await intake.queues.join(5)
    assert harness.active(COORDINATOR).values() == {"age": 42}
    await _sweep_long_after(harness, intake)
    question = harness.chat().last_with_buttons()
    assert "[2/22]" in question["text"]
    assert sessions.unshown(harness.db.read(), datetime.now(UTC)) == []
    sends = len(harness.request.calls)
    intake.sweep()  # shown now: not sent again
    assert await intake.queues.join(5)
    assert len(harness.request.calls) == sends
    await intake.accept([message(92, "yes")])  # every confirmation holds: taken
    assert await intake.queues.join(5)
    assert "[3/22]" in harness.chat().last_with_buttons()["text"]


async def test_a_first_question_whose_send_failed_is_sent_again_by_the_sweep(
    harness: Harness,
) -> None:
    intake = Intake(harness.application, harness.bot, harness.db)
    harness.request.failing["sendMessage"] = 2  # the first question, and the error reply
    await intake.accept([message(90, "/screen R-9")])
    assert await intake.queues.join(5)
    assert harness.chat().messages() == []
    await _sweep_long_after(harness, intake)
    assert "[1/22]" in harness.chat().last_with_buttons()["text"]
    assert sessions.unshown(harness.db.read(), datetime.now(UTC)) == []


@pytest.mark.parametrize(
    ("failure", "level", "name"),
    [(BLOCKED, logging.WARNING, "Forbidden"), (BUILT_WRONG, logging.ERROR, "BadRequest")],
    ids=["blocked", "built wrong"],
)
async def test_the_sweeps_failed_question_to_a_user_who_blocked_the_bot_is_a_warning(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    failure: tuple[int, str],
    level: int,
    name: str,
) -> None:
    """As for a verdict: a question the sweep cannot send to a user who keeps the bot blocked
    is logged as a warning at each try (it is still to send), never as work that failed; a
    request the bot built wrong (400) is a fault, an ERROR at each try."""
    now = [0.0]
    intake = Intake(harness.application, harness.bot, harness.db, clock=lambda: now[0])
    harness.request.failure = failure
    harness.request.failing["sendMessage"] = 4  # the first question, the error reply, 2 tries
    await intake.accept([message(90, "/screen R-9")])
    assert await intake.queues.join(5)
    caplog.set_level(logging.INFO)
    caplog.clear()  # the update's own failure (its error reply failed too)
    for _ in range(2):
        await _sweep_long_after(harness, intake)
        now[0] += intake_module.RETRY_MAX
    assert harness.request.failing["sendMessage"] == 0  # both tries refused
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (level, f"a question was not sent, kept to send again: {name}")
    ] * 2
    await _sweep_long_after(harness, intake)  # unblocked
    assert "[1/22]" in harness.chat().last_with_buttons()["text"]


async def test_nothing_kept_goes_to_a_coordinator_removed_from_the_allowed_list(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The coordinator's verdict could not be sent (they blocked the bot), nor their next
    question; an update of theirs is stored, unhandled. The bot restarts without them in
    SCREEN_BOT_ALLOWED_USERS (they left the team, their phone was stolen): the restart, the
    sweep and their stored update send neither the verdict nor the question (the update is
    refused as a stranger's); both stay, unsent and untried, until they expire. A
    coordinator still authorised gets theirs."""
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(90, "/screen R-9")])
    assert await intake.queues.join(5)
    harness.request.failing["sendMessage"] = 2  # the next question, and the error reply
    await intake.accept([message(91, "42")])
    assert await intake.queues.join(5)
    long_ago = datetime.now(UTC) - timedelta(minutes=1)
    with harness.db.transaction() as tx:
        outbox.put(tx, COORDINATOR, "NOT ELIGIBLE — R-KEPT1", lifetime=DEFAULT_LIFETIME)
        outbox.put(tx, OTHER, "NOT ELIGIBLE — R-KEPT2", lifetime=DEFAULT_LIFETIME)
        tx.execute("UPDATE outbox SET created_at = ?", (long_ago.isoformat(),))
        tx.execute("UPDATE open_sessions SET updated_at = ?", (long_ago.isoformat(),))
        inbox.receive(
            tx,
            [Received(92, COORDINATOR, json.dumps(message(92, "/status")))],
            lifetime=DEFAULT_LIFETIME,
        )
    assert sessions.unshown(harness.db.read(), datetime.now(UTC)) == [COORDINATOR]
    before = len(harness.chat().messages())

    harness.bot.settings = harness.settings.model_copy(update={"allowed_users": frozenset({OTHER})})
    caplog.set_level(logging.INFO)
    now = [0.0]
    restarted = Intake(harness.application, harness.bot, harness.db, clock=lambda: now[0])
    restarted.recover()
    assert await restarted.queues.join(5)
    await harness.bot.gate.idle()
    for _ in range(3):
        now[0] += intake_module.RETRY_MAX  # every retry due
        restarted.sweep()
        assert await restarted.queues.join(5)

    assert [m["text"] for m in harness.chat().messages()[before:]] == [say.REFUSED]
    assert [m["text"] for m in harness.chat(OTHER).messages()] == ["NOT ELIGIBLE — R-KEPT2"]
    assert [v.text for v in outbox.undelivered(harness.db.read())] == ["NOT ELIGIBLE — R-KEPT1"]
    assert sessions.unshown(harness.db.read(), datetime.now(UTC)) == [COORDINATOR]
    assert inbox.pending(harness.db.read()) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "2 verdict(s) or question(s) kept for users no longer authorised" in logged
    assert "R-KEPT" not in logged and "R-9" not in logged


async def test_a_question_sent_again_under_a_changed_dialog_file_says_it_was_removed(
    harness: Harness,
) -> None:
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(90, "/screen R-9")])
    assert await intake.queues.join(5)
    harness.request.failing["sendMessage"] = 2  # the next question, and the error reply
    await intake.accept([message(91, "42")])
    assert await intake.queues.join(5)
    with harness.db.transaction() as tx:
        session = sessions.active(tx, COORDINATOR)
        assert session is not None
        session.protocol_sha256 = "0" * 64  # the dialog file changed meanwhile
        sessions.save(tx, COORDINATOR, session, lifetime=DEFAULT_LIFETIME)
    await _sweep_long_after(harness, intake)
    assert harness.chat().last_text() == say.refusal(PROTOCOL_CHANGED, "R-9")
    assert "screening R-9 began" in say.refusal(PROTOCOL_CHANGED, "R-9")  # which patient
    assert harness.active(COORDINATOR) is None


async def test_a_question_sent_again_while_its_dialog_file_is_missing_keeps_the_screening(
    harness: Harness,
) -> None:
    """The sweep met a protocol that no file holds (its file moved away for a moment): it
    removed the screening as if the file had changed; it is kept, paused, and said once."""
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(90, "/screen R-9")])
    assert await intake.queues.join(5)
    harness.request.failing["sendMessage"] = 2  # the next question, and the error reply
    await intake.accept([message(91, "42")])
    assert await intake.queues.join(5)
    with harness.db.transaction() as tx:
        session = sessions.active(tx, COORDINATOR)
        assert session is not None
        session.protocol_id = "newtrial-01"  # in no dialog file now
        sessions.save(tx, COORDINATOR, session, lifetime=DEFAULT_LIFETIME)
    await _sweep_long_after(harness, intake)
    assert harness.chat().last_text() == say.refusal(PROTOCOL_MISSING, "R-9", "newtrial-01")
    assert harness.active(COORDINATOR) is None and sessions.count(harness.db.read()) == 1
    said = len(harness.chat().messages())
    await _sweep_long_after(harness, intake)  # paused: not sent again, nor said again
    assert len(harness.chat().messages()) == said


class FirstCopyLate(RecordingRequest):
    """A sendMessage done at once whose answer comes too late (a timeout): the send is
    retried, and the second copy, dated seconds later, is the one returned."""

    late = False

    async def do_request(self, url: str, method: str, *args: object, **kwargs: object) -> tuple:
        answer = await super().do_request(url, method, *args, **kwargs)  # type: ignore[arg-type]
        if self.late and url.endswith("/sendMessage"):
            self.late = False
            shown = json.loads(answer[1])["result"]["date"]
            while time.time() < shown + 2:
                await asyncio.sleep(0.05)
            raise TimedOut("the answer came too late") from httpx.ReadTimeout("late")
        return answer


@asynccontextmanager
async def harness_on(
    request: RecordingRequest, tmp_path: Path, catalog: Catalog
) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path, catalog, request)
    await harness.application.initialize()
    try:
        yield harness
    finally:
        await harness.application.shutdown()
        harness.db.close()


async def test_input_typed_before_the_copy_that_came_back_is_asked_for_again(
    tmp_path: Path, catalog: Catalog
) -> None:
    """The call that timed out may have shown a first copy, or nothing: input typed
    before the copy that came back is not taken (a retyped earlier answer, under load, was
    taken for the question when it counted from the first call); after it, it is."""
    request = FirstCopyLate()
    async with harness_on(request, tmp_path, catalog) as harness:
        chat = harness.chat()
        await chat.send("/screen R-1")
        request.late = True
        await chat.send("42")
        first, second = [m for m in chat.messages() if "[2/22]" in m["text"]]
        assert second["date"] >= first["date"] + 2
        await chat.send("yes", date=first["date"] - 3)  # before the question was sent
        assert chat.last_text() == say.EARLY
        await chat.send("yes", date=first["date"] + 1)  # before the copy that came back
        assert chat.last_text() == say.EARLY
        assert harness.active(COORDINATOR).values() == {"age": 42}
        await chat.send("yes", date=second["date"])
        assert "[3/22]" in chat.last_text()


class FirstTryFails(RecordingRequest):
    """The next sendMessage, once ``armed``, fails without sending anything; ``began``:
    when (unix seconds)."""

    armed = False
    began = 0

    async def do_request(self, url: str, method: str, *args: object, **kwargs: object) -> tuple:
        if self.armed and url.endswith("/sendMessage"):
            self.armed, self.began = False, int(time.time())
            return await self.fail()
        return await super().do_request(url, method, *args, **kwargs)  # type: ignore[arg-type]

    async def fail(self) -> tuple:
        raise NotImplementedError


class FirstTry429(FirstTryFails):
    """Refused with a 429 (retry after 2 s)."""

    async def fail(self) -> tuple:
        body = {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 2",
            "parameters": {"retry_after": 2},
        }
        return 429, json.dumps(body).encode()


class FirstTryNeverConnects(FirstTryFails):
    """Timed out connecting, after 2.5 s: nothing reached Telegram."""

    async def fail(self) -> tuple:
        await asyncio.sleep(2.5)
        raise TimedOut("connect") from httpx.ConnectTimeout("no connection")


@pytest.mark.parametrize("request_class", [FirstTry429, FirstTryNeverConnects])
async def test_an_answer_typed_while_no_copy_of_the_question_was_sent_is_not_taken(
    tmp_path: Path, catalog: Catalog, request_class: type[FirstTryFails]
) -> None:
    """A 429 or a connect timeout leaves no copy: the question was not on screen before
    the copy returned (e.g. the age typed again while none came)."""
    request = request_class()
    async with harness_on(request, tmp_path, catalog) as harness:
        chat = harness.chat()
        await chat.send("/screen R-1")
        request.armed = True
        await chat.send("42")
        (question,) = [m for m in chat.messages() if "[2/22]" in m["text"]]
        assert question["date"] >= request.began + 2
        await chat.send("yes", date=request.began + 1)
        assert chat.last_text() == say.EARLY
        assert harness.active(COORDINATOR).values() == {"age": 42}


async def test_when_the_inbox_cannot_be_written_the_user_still_hears_it(harness: Harness) -> None:
    intake = Intake(harness.application, harness.bot, harness.db)
    await intake.accept([message(40, "/screen R-4")])
    assert await intake.queues.join(5)
    harness.db.read().execute("PRAGMA query_only = ON")
    assert await intake.accept([message(41, "42")]) == 42  # handled before it is confirmed
    assert harness.chat().last_text() == say.NOT_SAVED


# -- strangers ------------------------------------------------------------------------------


async def test_the_gate_refuses_once_per_period_within_a_budget_and_forgets_the_oldest() -> None:
    request = RecordingRequest()
    now = [0.0]
    gate = StrangerGate(
        RawBotApi("http://api/bot" + TOKEN, request), remember=3, burst=2, clock=lambda: now[0]
    )
    for _ in range(5):
        await gate.refuse_now(Refusal(1, say.REFUSED, chat_id=1))
    assert [p["chat_id"] for _, p in request.calls] == [1]  # once a day
    for user in (2, 3, 4):
        await gate.refuse_now(Refusal(user, say.REFUSED, chat_id=user))
    assert [p["chat_id"] for _, p in request.calls] == [1, 2]  # the budget: dropped, no call
    now[0] += 3  # tokens again
    await gate.refuse_now(Refusal(3, say.REFUSED, chat_id=3))
    await gate.refuse_now(Refusal(4, say.REFUSED, chat_id=4))
    assert len(gate._refused) == 3 and 1 not in gate._refused  # bounded memory
    now[0] += 24 * 3600  # a day later
    await gate.refuse_now(Refusal(3, say.REFUSED, chat_id=3))
    assert [p["chat_id"] for _, p in request.calls] == [1, 2, 3, 4, 3]


async def test_every_press_of_a_stranger_is_answered_the_words_once_a_day() -> None:
    """E.g. a coordinator removed from the allowed users taps old buttons: the Bot API wants
    an answer to every press (else the client spins), the refusal is said once."""
    request = RecordingRequest()
    gate = StrangerGate(RawBotApi("http://api/bot" + TOKEN, request), clock=lambda: 0.0)
    for n in range(3):
        await gate.refuse_now(Refusal(COORDINATOR, say.REFUSED, query_id=f"q{n}"))
    assert request.answers() == [
        {"callback_query_id": "q0", "text": say.REFUSED, "show_alert": True},
        {"callback_query_id": "q1"},
        {"callback_query_id": "q2"},
    ]
    assert [e for e, _ in request.calls] == ["answerCallbackQuery"] * 3  # no chat message
    assert list(gate._refused) == [COORDINATOR]  # remembered once, as before


@pytest.mark.parametrize("user", [COORDINATOR, STRANGER])
def test_a_press_on_an_inline_mode_message_is_answered(user: int) -> None:
    """A callback query with only ``inline_message_id`` (no message, no chat): the Bot
    API still wants it answered, or the client shows a progress bar."""
    raw = {
        "update_id": 7,
        "callback_query": {
            "id": "q-inline",
            "from": {"id": user, "is_bot": False, "first_name": "C"},
            "inline_message_id": "AAAA",
            "chat_instance": "1",
            "data": "v|deadbeef|1|a",
        },
    }
    update = Update.de_json(raw, None)
    found = refusal(update, frozenset({COORDINATOR}))
    expected = say.PRIVATE_ONLY if user == COORDINATOR else say.REFUSED
    assert found == Refusal(user, expected, query_id="q-inline")


def test_an_unreadable_bot_api_answer_is_not_logged_with_its_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 200 answer to sendMessage cut short still holds the text sent; python-telegram-bot
    logs an unreadable answer whole at ERROR before it raises."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging([TOKEN])
    try:
        with pytest.raises(TelegramError):
            BaseRequest.parse_json_payload(b'{"ok":true,"result":{"text":"Smith-Jane-1961')
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert "Smith-Jane-1961" not in capsys.readouterr().err


# -- ordering and redaction ----------------------------------------------------------------


async def test_one_chat_in_order_two_chats_at_once() -> None:
    queues = ChatQueues()
    events: list[str] = []

    def job(name: str, delay: float):
        async def work() -> None:
            events.append(f"{name} start")
            await asyncio.sleep(delay)
            events.append(f"{name} end")

        return work

    queues.submit(7, job("a1", 0.05), update_id=1)  # slow, first
    queues.submit(7, job("a2", 0), update_id=2)  # same chat: waits for a1
    queues.submit(8, job("b1", 0), update_id=3)  # another chat: does not wait
    assert queues.received(7) == 2
    assert await queues.join(5)
    assert events.index("a1 end") < events.index("a2 start")
    assert events.index("b1 end") < events.index("a1 end")
    assert not queues._queues and queues.received(7) is None  # idle chats cost nothing


async def test_join_returns_when_the_last_worker_ended_in_the_same_iteration() -> None:
    """Every shutdown (SIGTERM, a 401 while polling) joins the queues. Since Python 3.12
    gather() of finished tasks does not yield, so a worker that ended just before the join
    kept its done-callback from running and the join spun at 100 % CPU, deaf to its own
    timeout and to signals."""
    queues = ChatQueues()

    async def work() -> None:
        return None

    queues.submit(1, work)
    await asyncio.sleep(0)  # the worker runs to its end; its discard callback is only queued
    assert await queues.join(2)


async def test_join_does_not_wait_on_done_callbacks_to_drop_finished_workers() -> None:
    """The same on any Python: a finished worker whose callback has not run is not waited
    on again and again."""
    queues = ChatQueues()
    finished = asyncio.get_running_loop().create_future()
    finished.set_result(None)
    queues._workers.add(finished)  # type: ignore[arg-type]  # done, no discard callback
    assert await queues.join(2)
    assert not queues._workers


def test_no_log_line_or_trace_shows_a_secret() -> None:
    secret_half = TOKEN.split(":")[1]
    assert redact(f"url /bot{TOKEN}/getMe and {secret_half}", [TOKEN, secret_half]) == (
        "url /bot<secret>/getMe and <secret>"
    )
    formatter = RedactingFormatter("%(message)s", [TOKEN, secret_half])
    try:
        raise ValueError(f"The token `{TOKEN}` was rejected")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "f", 1, "token %s", (TOKEN,), sys.exc_info())
    text = formatter.format(record)
    assert "Traceback" in text and TOKEN not in text and secret_half not in text
