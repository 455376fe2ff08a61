"""Tests of the fake Bot API server, partly driven by a real python-telegram-bot Application."""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from fakebot import FakeBotApi

USER = 4242
GROUP = -1001234
HTTP = httpx.Client(timeout=5)  # one client: building an SSL context per request is slow


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


def call(fake: FakeBotApi, method: str, **kwargs: object) -> httpx.Response:
    return HTTP.post(f"{fake.base_url}{fake.token}/{method}", **kwargs)  # type: ignore[arg-type]


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def keyboard(*data: str) -> dict:
    return {"inline_keyboard": [[{"text": d, "callback_data": d} for d in data]]}


async def test_ptb_application_round_trip(fake: FakeBotApi) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        buttons = [
            InlineKeyboardButton("Yes", callback_data="answer:yes"),
            InlineKeyboardButton("No", callback_data="answer:no"),
        ]
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "Eligible?", reply_markup=InlineKeyboardMarkup([buttons])
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer("Recorded")
        await query.edit_message_text(f"You answered {query.data.split(':')[1]}")

    app = (
        Application.builder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_button))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            fake.send_text(USER, "/start")
            prompt = await fake.wait_for_message_async(USER, timeout=5)
            assert prompt["text"] == "Eligible?"
            assert prompt["from"]["is_bot"] is True
            assert prompt["chat"] == {"id": USER, "first_name": "Coord", "type": "private"}
            with pytest.raises(AssertionError, match=r"\['Yes', 'No'\]"):
                fake.press(USER, prompt, "Maybe")
            query_id = fake.press(USER, prompt, "Yes")
            await fake.wait_until_async(lambda: "edit_date" in fake.messages(USER)[-1], timeout=5)
        finally:
            await app.updater.stop()
            await app.stop()

    [edited] = [m for m in fake.messages(USER) if m["message_id"] == prompt["message_id"]]
    assert edited["text"] == "You answered yes"
    assert "reply_markup" not in edited
    assert fake.answered_callbacks[query_id]["text"] == "Recorded"
    assert fake.pending_updates == 0  # PTB confirmed everything on stop
    methods = [c["method"] for c in fake.calls()]
    assert methods[:2] == ["getMe", "deleteWebhook"]
    assert {"sendMessage", "answerCallbackQuery", "editMessageText"} <= set(methods)
    assert all(c["ok"] for c in fake.calls() if c["method"] != "getUpdates")


def test_get_updates_long_poll_waits_for_timeout(fake: FakeBotApi) -> None:
    started = time.monotonic()
    response = call(fake, "getUpdates", data={"timeout": "1"})
    elapsed = time.monotonic() - started
    assert response.json() == {"ok": True, "result": []}
    assert 0.9 <= elapsed < 2.0


def test_get_updates_long_poll_returns_when_update_arrives(fake: FakeBotApi) -> None:
    timer = threading.Timer(0.2, fake.send_text, (USER, "hello"))
    timer.start()
    started = time.monotonic()
    response = call(fake, "getUpdates", json={"timeout": 5})
    assert time.monotonic() - started < 2.0
    [update] = response.json()["result"]
    assert update["message"]["text"] == "hello"
    assert update["message"]["from"] == {"id": USER, "is_bot": False, "first_name": "Coord"}
    assert isinstance(update["message"]["date"], int)


def test_offset_confirms_updates_and_limit(fake: FakeBotApi) -> None:
    for text in ("one", "two", "three"):
        fake.send_text(USER, text)
    updates = call(fake, "getUpdates").json()["result"]
    ids = [u["update_id"] for u in updates]
    assert [u["message"]["text"] for u in updates] == ["one", "two", "three"]
    assert ids == list(range(ids[0], ids[0] + 3))
    assert [m["message_id"] for m in (u["message"] for u in updates)] == [1, 2, 3]
    assert fake.pending_updates == 3  # returned but not yet confirmed

    again = call(fake, "getUpdates", data={"offset": str(ids[1]), "limit": "1"}).json()
    assert [u["update_id"] for u in again["result"]] == [ids[1]]
    assert fake.pending_updates == 2
    assert call(fake, "getUpdates", json={"offset": ids[2] + 1}).json()["result"] == []
    assert fake.pending_updates == 0


def test_newer_get_updates_terminates_the_older_one(fake: FakeBotApi) -> None:
    url = f"{fake.base_url}{fake.token}/getUpdates"
    results: list[httpx.Response] = []
    first = threading.Thread(
        target=lambda: results.append(httpx.post(url, data={"timeout": "5"}, timeout=10))
    )
    first.start()
    fake.wait_until(lambda: any(c["params"] for c in fake.calls("getUpdates")), timeout=5)
    assert HTTP.post(url, data={"timeout": "0"}).json() == {"ok": True, "result": []}
    first.join(5)
    assert results[0].status_code == 409
    assert results[0].json()["description"].startswith("Conflict: terminated by other getUpdates")


def test_injected_429_has_bot_api_shape(fake: FakeBotApi) -> None:
    fake.add_chat(USER)
    fake.fail_next("sendMessage", 429, retry_after=7)
    response = call(fake, "sendMessage", json={"chat_id": USER, "text": "hi"})
    assert response.status_code == 429
    assert response.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert call(fake, "sendMessage", json={"chat_id": USER, "text": "hi"}).json()["ok"] is True
    assert [m["text"] for m in fake.messages(USER)] == ["hi"]


def test_injected_5xx_and_delay(fake: FakeBotApi) -> None:
    fake.fail_next("getMe", 502)
    response = call(fake, "getMe")
    assert response.status_code == 502
    assert response.json() == {"ok": False, "error_code": 502, "description": "Bad Gateway"}
    me = call(fake, "getMe").json()["result"]
    assert me["is_bot"] is True and me["username"] == "screen_test_bot"
    assert me["id"] == int(fake.token.split(":")[0])

    fake.add_chat(USER)
    fake.delay_next("sendMessage", 0.5)
    with pytest.raises(httpx.ReadTimeout):
        HTTP.post(
            f"{fake.base_url}{fake.token}/sendMessage",
            data={"chat_id": str(USER), "text": "late"},
            timeout=0.1,
        )
    # As on Telegram, the request still takes effect after the client gave up.
    assert fake.wait_for_message(USER, timeout=5)["text"] == "late"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_ptb_sees_retry_after_and_bad_request(fake: FakeBotApi) -> None:
    fake.add_chat(USER)
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.file_url) as bot:
        fake.fail_next("sendMessage", 429, retry_after=3)
        with pytest.raises(RetryAfter):
            await bot.send_message(USER, "x")
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(999, "x")
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(USER, "x" * 4097)


def test_message_text_length(fake: FakeBotApi) -> None:
    fake.add_chat(USER)
    too_long = call(fake, "sendMessage", data={"chat_id": str(USER), "text": "a" * 4097})
    assert too_long.status_code == 400
    assert too_long.json() == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: message is too long",
    }
    empty = call(fake, "sendMessage", data={"chat_id": str(USER), "text": "  \n "})
    assert empty.json()["description"] == "Bad Request: message text is empty"
    assert call(fake, "sendMessage", data={"chat_id": str(USER), "text": "a" * 4096}).is_success


def test_callback_data_limit(fake: FakeBotApi) -> None:
    fake.add_chat(USER)

    def send(data: str) -> httpx.Response:
        # Form encoding, with reply_markup JSON-encoded inside it, as PTB sends it.
        markup = json.dumps({"inline_keyboard": [[{"text": "B", "callback_data": data}]]})
        return call(
            fake, "sendMessage", data={"chat_id": str(USER), "text": "t", "reply_markup": markup}
        )

    assert send("x" * 64).json()["result"]["reply_markup"] == {
        "inline_keyboard": [[{"text": "B", "callback_data": "x" * 64}]]
    }
    for data in ("x" * 65, "é" * 33, ""):
        response = send(data)
        assert response.status_code == 400
        assert response.json()["description"] == "Bad Request: BUTTON_DATA_INVALID"
    no_action = {"inline_keyboard": [[{"text": "B"}]]}
    response = call(
        fake, "sendMessage", json={"chat_id": USER, "text": "t", "reply_markup": no_action}
    )
    assert "Text buttons are unallowed" in response.json()["description"]


def test_callback_answer_text_limit(fake: FakeBotApi) -> None:
    """answerCallbackQuery's text is "0-200 characters" as Telegram counts them (UTF-16 code
    units: an emoji past U+FFFF is two); longer is refused and the query stays unanswered."""
    fake.add_chat(USER)
    sent = call(
        fake, "sendMessage", json={"chat_id": USER, "text": "Q", "reply_markup": keyboard("a")}
    ).json()["result"]
    query_id = fake.press_button(USER, sent["message_id"], "a")
    for text in ("x" * 201, "x" * 199 + "\U0001f600"):
        answer = {"callback_query_id": query_id, "text": text}
        response = call(fake, "answerCallbackQuery", json=answer)
        assert response.status_code == 400
        assert response.json()["description"] == "Bad Request: MESSAGE_TOO_LONG"
    assert query_id not in fake.answered_callbacks
    answer = {"callback_query_id": query_id, "text": "x" * 198 + "\U0001f600"}
    assert call(fake, "answerCallbackQuery", json=answer).json()["result"] is True


def test_edit_answer_and_delete_errors(fake: FakeBotApi) -> None:
    fake.add_chat(USER)
    sent = call(
        fake, "sendMessage", json={"chat_id": USER, "text": "Q", "reply_markup": keyboard("a")}
    ).json()["result"]
    same = {"chat_id": USER, "message_id": sent["message_id"], "text": "Q"}
    unchanged = call(fake, "editMessageText", json={**same, "reply_markup": keyboard("a")})
    assert unchanged.json()["description"].startswith("Bad Request: message is not modified: ")
    missing = call(fake, "editMessageText", json={**same, "message_id": 99})
    assert missing.json()["description"] == "Bad Request: message to edit not found"

    edited = call(fake, "editMessageReplyMarkup", json={**same, "reply_markup": keyboard("b")})
    assert edited.json()["result"]["reply_markup"] == keyboard("b")
    assert isinstance(edited.json()["result"]["edit_date"], int)

    query_id = fake.press_button(USER, sent["message_id"], "forged:data")
    update = call(fake, "getUpdates").json()["result"][-1]["callback_query"]
    assert update["data"] == "forged:data"
    assert update["message"]["reply_markup"] == keyboard("b")
    assert set(update) == {"id", "from", "message", "chat_instance", "data"}
    answer = {"callback_query_id": query_id}
    assert call(fake, "answerCallbackQuery", json=answer).json() == {"ok": True, "result": True}
    for bad in (answer, {"callback_query_id": "123"}):
        response = call(fake, "answerCallbackQuery", json=bad)
        assert response.json()["description"] == (
            "Bad Request: query is too old and response timeout expired or query ID is invalid"
        )

    assert call(fake, "deleteMessage", json=same).json()["result"] is True
    assert fake.messages(USER) == []
    gone = call(fake, "deleteMessage", json=same).json()
    assert gone["description"] == "Bad Request: message to delete not found"


def test_parse_mode_html(fake: FakeBotApi) -> None:
    fake.add_chat(USER)
    params = {"chat_id": USER, "parse_mode": "HTML"}
    sent = call(fake, "sendMessage", json={**params, "text": "<b>Trial</b> &lt;3 😀 <i>ok</i>"})
    message = sent.json()["result"]
    assert message["text"] == "Trial <3 😀 ok"
    # Offsets count UTF-16 code units: the emoji takes two.
    assert message["entities"] == [
        {"offset": 0, "length": 5, "type": "bold"},
        {"offset": 12, "length": 2, "type": "italic"},
    ]
    broken = call(fake, "sendMessage", json={**params, "text": "a <foo> b"})
    assert broken.status_code == 400
    assert broken.json()["description"].startswith("Bad Request: can't parse entities:")


def test_unknown_token_and_method(fake: FakeBotApi) -> None:
    wrong = HTTP.post(f"{fake.base_url}999:nope/getMe")
    assert wrong.status_code == 401
    assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    unknown = call(fake, "sendTelepathy")
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert HTTP.get(f"{fake.base_url}{fake.token}/GETME").json()["ok"] is True


def test_group_command_entity_and_commands(fake: FakeBotApi) -> None:
    fake.send_text(USER, "/start@screen_test_bot now", chat_id=GROUP, chat_type="group")
    [update] = call(fake, "getUpdates").json()["result"]
    message = update["message"]
    assert message["chat"] == {"id": GROUP, "title": f"Test group {-GROUP}", "type": "group"}
    assert message["entities"] == [{"offset": 0, "length": 22, "type": "bot_command"}]

    commands = [{"command": "start", "description": "Begin screening"}]
    assert call(fake, "setMyCommands", json={"commands": commands}).json()["result"] is True
    assert fake.my_commands == commands
    assert call(fake, "getMyCommands").json()["result"] == commands
    bad = call(fake, "setMyCommands", json={"commands": [{"command": "Start", "description": "x"}]})
    assert bad.json()["description"] == "Bad Request: BOT_COMMAND_INVALID"


def test_group_privacy_mode() -> None:
    fake = FakeBotApi(privacy_mode=True)  # the driver works without a running server
    for text in ("hello all", "/start@other_bot", "/start", "/help@screen_test_bot"):
        fake.send_text(USER, text, chat_id=GROUP, chat_type="group")
    assert fake.pending_updates == 2


async def test_ptb_uploads_photo_and_document(fake: FakeBotApi) -> None:
    fake.add_chat(USER)
    image = png(640, 480)
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.file_url) as bot:
        photo = await bot.send_photo(USER, photo=image, caption="Enrolment chart")
        assert (photo.photo[-1].width, photo.photo[-1].height) == (640, 480)
        assert photo.caption == "Enrolment chart"
        telegram_file = await bot.get_file(photo.photo[-1].file_id)
        assert bytes(await telegram_file.download_as_bytearray()) == image
        document = await bot.send_document(USER, document=b"id,ok\n1,yes\n", filename="r.csv")
        assert document.document is not None and document.document.file_name == "r.csv"
        with pytest.raises(BadRequest, match="(?i)image_process_failed"):
            await bot.send_photo(USER, photo=b"not an image")
    uploads = fake.uploads
    assert [(u["method"], u["data"], u["caption"]) for u in uploads] == [
        ("sendPhoto", image, "Enrolment chart"),
        ("sendDocument", b"id,ok\n1,yes\n", None),
    ]
    assert uploads[1]["file_name"] == "r.csv"
    assert fake.calls("sendPhoto")[0]["params"]["photo"]["size"] == len(image)


async def test_async_wait_times_out_with_transcript(fake: FakeBotApi) -> None:
    fake.send_text(USER, "anyone there?")
    with pytest.raises(TimeoutError, match="anyone there"):
        await fake.wait_for_message_async(USER, timeout=0.2)
