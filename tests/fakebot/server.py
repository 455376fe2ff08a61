"""A small fake of the Telegram Bot API HTTP server, driven by tests playing the human side.

The server runs on 127.0.0.1 in a background thread with its own asyncio loop; all driver
methods are thread-safe. Behaviour follows https://core.telegram.org/bots/api for the methods
implemented; anything else answers 404 like an unknown method.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from .markup import ParseError, format_text

JsonDict = dict[str, Any]

DEFAULT_TOKEN = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
INLINE_BUTTON_ACTIONS = {
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
}
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# Form and multipart values arrive as strings; these are converted to their Bot API type.
_INT_FIELDS = {
    "chat_id",
    "message_id",
    "offset",
    "limit",
    "timeout",
    "cache_time",
    "max_connections",
    "reply_to_message_id",
    "message_thread_id",
}
_BOOL_FIELDS = {
    "show_alert",
    "disable_notification",
    "protect_content",
    "drop_pending_updates",
    "allow_sending_without_reply",
    "has_spoiler",
    "disable_content_type_detection",
    "show_caption_above_media",
}
_JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "entities",
    "caption_entities",
    "allowed_updates",
    "commands",
    "scope",
    "link_preview_options",
}
_MAX_UPLOAD = 50 * 1024 * 1024


class ApiError(Exception):
    """An unsuccessful Bot API answer."""

    def __init__(
        self,
        code: int,
        description: str,
        retry_after: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.http_status = code if http_status is None else http_status

    def payload(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _utf16_units(text: str) -> int:
    """A text's length as Telegram counts it: a character past U+FFFF (an emoji) is two."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Upload:
    """A file part of a multipart request."""

    file_name: str | None
    mime_type: str | None
    data: bytes


@dataclass
class _Chat:
    info: JsonDict
    next_id: int = 1
    messages: dict[int, JsonDict] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    reply_keyboard: JsonDict | None = None


def _coerce(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            what = "reply keyboard markup" if name == "reply_markup" else name
            raise _bad(f"can't parse {what} JSON object") from None
    if name in _INT_FIELDS and isinstance(value, str):
        if re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        if name == "chat_id":
            return value  # a @username: resolves to "chat not found" here
        raise _bad(f"wrong parameter {name} in request")
    if name in _BOOL_FIELDS and isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG image."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:
                i += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


class FakeBotApi:
    """Fake Bot API server plus the driver used by tests to act as Telegram users."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        bot_username: str | None = "screen_test_bot",
        *,
        bot_first_name: str = "Screen Test Bot",
        privacy_mode: bool = False,
    ) -> None:
        """``bot_username`` None: getMe answers without one (the Bot API's User has it as
        optional)."""
        self.token = token
        self.bot_username = bot_username
        self.privacy_mode = privacy_mode
        self.bot_user: JsonDict = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_first_name,
        }
        if bot_username is not None:
            self.bot_user["username"] = bot_username
        # getUpdates answers at once whatever its timeout (short polling, as a relay may)
        self.short_polling = False
        self.port = 0
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._chats: dict[int, _Chat] = {}
        self._updates: list[JsonDict] = []
        self._update_ids = itertools.count(1000)
        self._query_ids = itertools.count(4_000_000_000_000_000_001)
        self._file_ids = itertools.count(1)
        self._paths = itertools.count(0)
        self._waiters: list[asyncio.Future[None]] = []
        self._poll_generation = 0
        self._closing = False
        self._queries: dict[str, JsonDict] = {}
        self._answered: dict[str, JsonDict] = {}
        self._calls: list[JsonDict] = []
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._webhook: JsonDict = {}
        self._failures: dict[str, list[ApiError]] = {}
        self._delays: dict[str, list[float]] = {}
        self._files: dict[str, JsonDict] = {}
        self._uploads: list[JsonDict] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._methods: dict[str, str] = {
            name.lower(): name
            for name in (
                "getMe",
                "getUpdates",
                "setWebhook",
                "deleteWebhook",
                "getWebhookInfo",
                "logOut",
                "close",
                "setMyCommands",
                "getMyCommands",
                "deleteMyCommands",
                "sendMessage",
                "editMessageText",
                "editMessageCaption",
                "editMessageReplyMarkup",
                "answerCallbackQuery",
                "sendPhoto",
                "sendDocument",
                "sendChatAction",
                "deleteMessage",
                "getFile",
            )
        }

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def start(self) -> None:
        """Serves on 127.0.0.1 on a free port in a background thread."""
        if self._thread is not None:
            raise RuntimeError("FakeBotApi already started")
        self._closing = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                app = web.Application(client_max_size=_MAX_UPLOAD + 1024 * 1024)
                app.router.add_route("*", "/{tail:.*}", self._handle)
                self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
                self._stopping = asyncio.Event()
                loop.run_until_complete(self._runner.setup())
                loop.run_until_complete(web.SockSite(self._runner, sock).start())
            except BaseException as exc:  # noqa: BLE001 - raised by the thread waiting on ready
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fake-bot-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise RuntimeError("FakeBotApi failed to start") from failure[0]

    def stop(self) -> None:
        """Ends pending long polls and delayed calls, then shuts the server down."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with self._lock:
            self._closing = True
            self._wake_waiters()
        if self._stopping is not None:
            loop.call_soon_threadsafe(self._stopping.set)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> FakeBotApi:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- user side ---------------------------------------------------------------------------

    def add_chat(
        self,
        chat_id: int,
        *,
        chat_type: str | None = None,
        first_name: str = "Coord",
        title: str | None = None,
    ) -> JsonDict:
        """Makes a chat known without a message (e.g. a user who started the bot earlier)."""
        chat_type = chat_type or ("private" if chat_id > 0 else "group")
        user = {"id": chat_id, "is_bot": False, "first_name": first_name}
        with self._lock:
            return dict(self._ensure_chat(user, chat_id, chat_type, title).info)

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Coord",
        username: str | None = None,
        reply_to: int | None = None,
    ) -> JsonDict:
        """Enqueues an Update with the user's text Message and returns that Message."""
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        clean, entities = format_text(text)
        if not clean:
            raise ValueError("Telegram clients do not send empty messages")
        with self._cond:
            chat = self._ensure_chat(user, chat_id, chat_type, None)
            content: JsonDict = {"text": clean}
            if entities:
                content["entities"] = entities
            if reply_to is not None:
                target = self._message(chat, reply_to)
                if target is None:
                    raise AssertionError(f"no message {reply_to} in chat {chat.info['id']}")
                content = {"reply_to_message": _without_reply(target), **content}
            message = self._new_message(chat, user, content)
            if self._delivered(chat, message):
                self._enqueue({"message": message})
            return copy.deepcopy(message)

    def press_button(
        self,
        user_id: int,
        message_id: int,
        data: str,
        *,
        chat_id: int | None = None,
        first_name: str = "Coord",
    ) -> str:
        """Enqueues a callback_query Update (any data, even forged); returns the query id."""
        chat_id = user_id if chat_id is None else chat_id
        with self._cond:
            chat = self._chats.get(chat_id)
            message = self._message(chat, message_id) if chat else None
            if message is None:
                raise AssertionError(f"no message {message_id} in chat {chat_id}")
            query_id = str(next(self._query_ids))
            query = {
                "id": query_id,
                "from": {"id": user_id, "is_bot": False, "first_name": first_name},
                "message": copy.deepcopy(message),
                "chat_instance": str((chat_id * 2654435761) % 2**63),
                "data": data,
            }
            self._queries[query_id] = query
            self._enqueue({"callback_query": query})
            return query_id

    def send_update(self, content: JsonDict) -> int:
        """Enqueues an update with any content, even one no client would send; returns its id.

        ``content`` is the update without its ``update_id`` (e.g. ``{"message": {...}}``).
        """
        with self._cond:
            self._enqueue(content)
            return int(self._updates[-1]["update_id"])

    def next_update_id(self, update_id: int) -> None:
        """The next update gets this id, and those after it the ids above (each bot's ids
        rise on their own, with gaps: two bots' may overlap)."""
        with self._cond:
            self._update_ids = itertools.count(update_id)

    def press(self, user_id: int, message: JsonDict, button_text: str) -> str:
        """Presses the inline button labelled `button_text` in the message's current keyboard."""
        chat_id, message_id = message["chat"]["id"], message["message_id"]
        with self._lock:
            chat = self._chats.get(chat_id)
            current = self._message(chat, message_id) if chat else None
            if current is None:
                raise AssertionError(f"message {message_id} is gone from chat {chat_id}")
            rows = current.get("reply_markup", {}).get("inline_keyboard", [])
            buttons = [button for row in rows for button in row]
        matches = [b for b in buttons if b["text"] == button_text]
        if not matches:
            labels = [b["text"] for b in buttons]
            raise AssertionError(
                f"no button {button_text!r} in message {message_id}; buttons: {labels}"
            )
        if "callback_data" not in matches[0]:
            raise AssertionError(f"button {button_text!r} is not a callback button: {matches[0]}")
        return self.press_button(user_id, message_id, matches[0]["callback_data"], chat_id=chat_id)

    # --- bot side observation ----------------------------------------------------------------

    def messages(self, chat_id: int) -> list[JsonDict]:
        """Current state of every bot message in the chat (after edits, minus deletions)."""
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return []
            return [
                copy.deepcopy(m)
                for mid, m in chat.messages.items()
                if mid not in chat.deleted and m["from"]["id"] == self.bot_user["id"]
            ]

    def reply_keyboard(self, chat_id: int) -> JsonDict | None:
        """The ReplyKeyboardMarkup the bot last showed in the chat, if not removed."""
        with self._lock:
            chat = self._chats.get(chat_id)
            return copy.deepcopy(chat.reply_keyboard) if chat else None

    def transcript(self, chat_id: int) -> str:
        """The chat as readable lines, user and bot messages, for failure messages."""
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return f"(no chat {chat_id})"
            lines = []
            for mid, m in chat.messages.items():
                who = "bot" if m["from"]["id"] == self.bot_user["id"] else m["from"]["id"]
                body = m.get("text") or m.get("caption") or _media_kind(m)
                rows = m.get("reply_markup", {}).get("inline_keyboard", [])
                buttons = [[b["text"] for b in row] for row in rows]
                flags = " (deleted)" if mid in chat.deleted else ""
                flags += " (edited)" if "edit_date" in m else ""
                lines.append(f"#{mid} {who}{flags}: {body!r}" + (f" {buttons}" if buttons else ""))
            return "\n".join(lines) or "(empty)"

    def wait_for_message(
        self,
        chat_id: int,
        *,
        after: int = 0,
        timeout: float = 10.0,
        predicate: Callable[[JsonDict], bool] | None = None,
    ) -> JsonDict:
        """Waits for a bot message with message_id > after (matching predicate) in the chat."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages(chat_id):
                    if message["message_id"] > after and (predicate is None or predicate(message)):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no new bot message in chat {chat_id} after #{after} within {timeout}s;"
                        f" transcript:\n{self.transcript(chat_id)}"
                    )
                self._cond.wait(remaining)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Waits until predicate() is true; it is re-checked after every state change."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s")
                self._cond.wait(remaining)

    async def wait_for_message_async(self, chat_id: int, **kwargs: Any) -> JsonDict:
        """wait_for_message for a test whose event loop also runs the bot."""
        return await asyncio.to_thread(self.wait_for_message, chat_id, **kwargs)

    async def wait_until_async(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await asyncio.to_thread(self.wait_until, predicate, timeout)

    @property
    def answered_callbacks(self) -> dict[str, JsonDict]:
        with self._lock:
            return copy.deepcopy(self._answered)

    def calls(self, method: str | None = None) -> list[JsonDict]:
        """Every API call so far as {"method", "params", "ok", "error_code"?, "description"?}."""
        with self._lock:
            return [
                copy.deepcopy(c)
                for c in self._calls
                if method is None or c["method"].lower() == method.lower()
            ]

    @property
    def uploads(self) -> list[JsonDict]:
        """Files the bot sent: chat_id, message_id, method, file_name, mime_type, data, caption."""
        with self._lock:
            return copy.deepcopy(self._uploads)

    @property
    def my_commands(self) -> list[JsonDict]:
        return self.commands()

    def commands(self, scope: JsonDict | None = None, language_code: str = "") -> list[JsonDict]:
        with self._lock:
            return copy.deepcopy(self._commands.get(_scope_key(scope, language_code), []))

    @property
    def webhook_url(self) -> str:
        with self._lock:
            return str(self._webhook.get("url", ""))

    @property
    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)

    # --- fault injection ---------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        times: int = 1,
        http_status: int | None = None,
    ) -> None:
        """The next `times` calls of `method` get this error (429 carries retry_after), with
        HTTP status `http_status` if given, else `error_code` (the Bot API defines the outcome
        by the body's ``ok``, whatever the status)."""
        if error_code == 429:
            retry_after = 1 if retry_after is None else retry_after
            description = description or f"Too Many Requests: retry after {retry_after}"
        description = description or _DEFAULT_DESCRIPTIONS.get(error_code, "Error")
        with self._lock:
            errors = self._failures.setdefault(method.lower(), [])
            errors.extend(
                ApiError(error_code, description, retry_after, http_status) for _ in range(times)
            )

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `method` hang `seconds` first, then proceed as usual."""
        with self._lock:
            self._delays.setdefault(method.lower(), []).extend([seconds] * times)

    # --- internals: state --------------------------------------------------------------------

    def _ensure_chat(
        self, user: JsonDict, chat_id: int | None, chat_type: str, title: str | None
    ) -> _Chat:
        if chat_type == "private":
            if chat_id not in (None, user["id"]):
                raise ValueError("a private chat's id is the user's id")
            chat_id = user["id"]
            info = {"id": chat_id, "first_name": user["first_name"], "type": "private"}
            if "username" in user:
                info["username"] = user["username"]
        elif chat_type in ("group", "supergroup"):
            if chat_id is None or chat_id >= 0:
                raise ValueError("group chats have negative ids")
            info = {"id": chat_id, "title": title or f"Test group {-chat_id}", "type": chat_type}
        else:
            raise ValueError(f"unsupported chat type {chat_type!r}")
        assert chat_id is not None
        if chat_id not in self._chats:
            self._chats[chat_id] = _Chat(info)
        return self._chats[chat_id]

    def _message(self, chat: _Chat | None, message_id: int) -> JsonDict | None:
        if chat is None or message_id in chat.deleted:
            return None
        return chat.messages.get(message_id)

    def _new_message(self, chat: _Chat, sender: JsonDict, content: JsonDict) -> JsonDict:
        message_id = chat.next_id
        chat.next_id += 1
        message = {
            "message_id": message_id,
            "from": dict(sender),
            "chat": dict(chat.info),
            "date": int(time.time()),
            **content,
        }
        chat.messages[message_id] = message
        self._cond.notify_all()
        return message

    def _delivered(self, chat: _Chat, message: JsonDict) -> bool:
        """Whether the bot gets this message (group privacy mode, simplified)."""
        if chat.info["type"] == "private" or not self.privacy_mode:
            return True
        reply = message.get("reply_to_message")
        if reply and reply["from"]["id"] == self.bot_user["id"]:
            return True
        text = message["text"]
        for entity in message.get("entities", []):
            if entity["type"] == "bot_command" and entity["offset"] == 0:
                _, _, target = text[: entity["length"]].partition("@")
                return not target or target.lower() == (self.bot_username or "").lower()
        return self.bot_username is not None and f"@{self.bot_username.lower()}" in text.lower()

    def _enqueue(self, content: JsonDict) -> None:
        self._updates.append({"update_id": next(self._update_ids), **copy.deepcopy(content)})
        self._wake_waiters()
        self._cond.notify_all()

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        if self._loop is None:
            return
        for waiter in waiters:
            self._loop.call_soon_threadsafe(_resolve, waiter)

    # --- internals: HTTP ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if m := re.fullmatch(r"/file/bot([^/]*)/(.+)", path):
            return self._download(m.group(1), m.group(2))
        m = re.fullmatch(r"/bot([^/]*)/([^/]*)", path)
        if m is None:
            return _json(ApiError(404, "Not Found").payload(), 404)
        if m.group(1) != self.token:
            return _json(ApiError(401, "Unauthorized").payload(), 401)
        method = self._methods.get(m.group(2).lower())
        if method is None:
            return _json(ApiError(404, "Not Found").payload(), 404)
        record: JsonDict = {"method": method, "params": {}}
        with self._cond:
            self._calls.append(record)
            delay = _pop(self._delays, method.lower())
            self._cond.notify_all()
        try:
            params = await _read_params(request)
            with self._cond:
                record["params"] = _loggable(params)
                self._cond.notify_all()
            if delay:
                await self._sleep(delay)
            with self._lock:
                failure = _pop(self._failures, method.lower())
            if failure is not None:
                raise failure
            if method == "getUpdates":
                result = await self._get_updates(params)
            else:
                with self._lock:
                    result = getattr(self, f"_api_{method}")(params)
            body: JsonDict = {"ok": True, "result": result}
            status = 200
        except ApiError as error:
            body, status = error.payload(), error.http_status
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # Malformed parameters the fake does not model precisely, or a bug in the fake.
            body = ApiError(500, f"Internal Server Error: fake Bot API: {exc!r}").payload()
            status = 500
        with self._cond:
            record["ok"] = body["ok"]
            if not body["ok"]:
                record["error_code"] = body["error_code"]
                record["description"] = body["description"]
            self._cond.notify_all()
        return _json(body, status)

    async def _sleep(self, seconds: float) -> None:
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _download(self, token: str, file_path: str) -> web.StreamResponse:
        if token != self.token:
            return _json(ApiError(401, "Unauthorized").payload(), 401)
        with self._lock:
            found = next((f for f in self._files.values() if f["file_path"] == file_path), None)
        if found is None:
            return _json(ApiError(404, "Not Found").payload(), 404)
        return web.Response(body=found["data"], content_type="application/octet-stream")

    # --- Bot API methods (called with the lock held, except getUpdates) ----------------------

    def _api_getMe(self, p: JsonDict) -> JsonDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, p: JsonDict) -> list[JsonDict]:
        assert self._loop is not None
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        timeout = 0.0 if self.short_polling else max(float(p.get("timeout") or 0), 0.0)
        deadline = self._loop.time() + timeout
        with self._cond:
            if self._webhook.get("url"):
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            # A newer getUpdates terminates any older one still waiting.
            self._poll_generation += 1
            generation = self._poll_generation
            self._wake_waiters()
            offset = p.get("offset")
            if offset:
                if offset < 0:
                    self._updates = self._updates[offset:]
                else:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                self._cond.notify_all()
        while True:
            with self._lock:
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                batch = copy.deepcopy(self._updates[:limit])
                remaining = deadline - self._loop.time()
                if batch or remaining <= 0 or self._closing:
                    return batch
                waiter: asyncio.Future[None] = self._loop.create_future()
                self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)

    def _api_setWebhook(self, p: JsonDict) -> bool:
        url = str(p.get("url") or "")
        if url:
            m = re.match(r"https://[^/:]+(?::(\d+))?(?:/|$)", url)
            if m is None:
                raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
            if m.group(1) and m.group(1) not in ("80", "88", "443", "8443"):
                raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        self._webhook = {k: v for k, v in p.items() if not isinstance(v, Upload)} if url else {}
        if url:
            self._webhook["certificate"] = isinstance(p.get("certificate"), Upload)
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_deleteWebhook(self, p: JsonDict) -> bool:
        self._webhook = {}
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_getWebhookInfo(self, p: JsonDict) -> JsonDict:
        info: JsonDict = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": bool(self._webhook.get("certificate")),
            "pending_update_count": len(self._updates),
        }
        if info["url"]:
            info["max_connections"] = int(self._webhook.get("max_connections") or 40)
            if self._webhook.get("allowed_updates"):
                info["allowed_updates"] = self._webhook["allowed_updates"]
        return info

    def _api_logOut(self, p: JsonDict) -> bool:
        return True

    def _api_close(self, p: JsonDict) -> bool:
        return True

    def _api_setMyCommands(self, p: JsonDict) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise _bad("commands is empty" if commands is None else "can't parse commands")
        if len(commands) > 100:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        for c in commands:
            if not isinstance(c, dict) or not re.fullmatch(
                r"[a-z0-9_]{1,32}", c.get("command", "")
            ):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", "")).strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        key = _scope_key(p.get("scope"), p.get("language_code") or "")
        if commands:
            self._commands[key] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        else:
            self._commands.pop(key, None)
        return True

    def _api_getMyCommands(self, p: JsonDict) -> list[JsonDict]:
        key = _scope_key(p.get("scope"), p.get("language_code") or "")
        return copy.deepcopy(self._commands.get(key, []))

    def _api_deleteMyCommands(self, p: JsonDict) -> bool:
        self._commands.pop(_scope_key(p.get("scope"), p.get("language_code") or ""), None)
        return True

    def _api_sendMessage(self, p: JsonDict) -> JsonDict:
        chat = self._chat_for_send(p)
        text, entities = _formatted(p, "text", "entities")
        if not text:
            raise _bad("message text is empty")
        if len(text) > 4096:
            raise _bad("message is too long")
        content: JsonDict = {"text": text}
        if entities:
            content["entities"] = entities
        return self._send(chat, p, content)

    def _api_sendPhoto(self, p: JsonDict) -> JsonDict:
        chat = self._chat_for_send(p)
        caption = self._caption(p)
        upload, stored = self._file_param(p, "photo")
        if stored is not None:
            if "photo" not in stored:
                raise _bad("wrong file identifier/HTTP URL specified")
            return self._send(chat, p, {"photo": stored["photo"], **caption}, stored)
        if len(upload.data) > 10 * 1024 * 1024:
            raise ApiError(413, "Request Entity Too Large")
        size = _image_size(upload.data)
        if size is None:
            raise _bad("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10000 or max(width, height) > 20 * min(width, height):
            raise _bad("PHOTO_INVALID_DIMENSIONS")
        n = next(self._file_ids)
        sizes: list[JsonDict] = []
        for side in (90, 320, 800, 1280):
            scale = min(1.0, side / max(width, height))
            sizes.append(
                {
                    "file_id": f"AgACAgIAAxkDAAI{n:06d}s{side}",
                    "file_unique_id": f"AQAD{n:06d}s{side}",
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                }
            )
            if scale == 1.0:
                break
        sizes[-1]["file_size"] = len(upload.data)
        stored = self._store_file(
            sizes[-1]["file_id"], sizes[-1]["file_unique_id"], upload, "photos"
        )
        stored["photo"] = sizes
        for extra in sizes[:-1]:
            self._files[extra["file_id"]] = stored
        return self._send(chat, p, {"photo": sizes, **caption}, stored)

    def _api_sendDocument(self, p: JsonDict) -> JsonDict:
        chat = self._chat_for_send(p)
        caption = self._caption(p)
        upload, stored = self._file_param(p, "document")
        if stored is None:
            n = next(self._file_ids)
            stored = self._store_file(
                f"BQACAgIAAxkDAAI{n:06d}", f"AgAD{n:06d}", upload, "documents"
            )
        if "document" not in stored:
            raise _bad("wrong file identifier/HTTP URL specified")
        return self._send(chat, p, {"document": stored["document"], **caption}, stored)

    def _api_getFile(self, p: JsonDict) -> JsonDict:
        stored = self._files.get(str(p.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        return {
            "file_id": p["file_id"],
            "file_unique_id": stored["file_unique_id"],
            "file_size": len(stored["data"]),
            "file_path": stored["file_path"],
        }

    def _api_editMessageText(self, p: JsonDict) -> JsonDict:
        _, message = self._message_to_edit(p)
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        text, entities = _formatted(p, "text", "entities")
        if not text:
            raise _bad("message text is empty")
        if len(text) > 4096:
            raise _bad("MESSAGE_TOO_LONG")
        markup = self._inline_markup(p.get("reply_markup"), inline_only=True)
        if (text, entities, markup) == (
            message["text"],
            message.get("entities", []),
            message.get("reply_markup"),
        ):
            raise _bad(NOT_MODIFIED)
        return self._apply_edit(message, {"text": text, "entities": entities}, markup)

    def _api_editMessageCaption(self, p: JsonDict) -> JsonDict:
        _, message = self._message_to_edit(p)
        if "photo" not in message and "document" not in message:
            raise _bad("there is no caption in the message to edit")
        caption = self._caption(p)
        markup = self._inline_markup(p.get("reply_markup"), inline_only=True)
        if (caption.get("caption"), caption.get("caption_entities", []), markup) == (
            message.get("caption"),
            message.get("caption_entities", []),
            message.get("reply_markup"),
        ):
            raise _bad(NOT_MODIFIED)
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
        }
        return self._apply_edit(message, changes, markup)

    def _api_editMessageReplyMarkup(self, p: JsonDict) -> JsonDict:
        _, message = self._message_to_edit(p)
        markup = self._inline_markup(p.get("reply_markup"), inline_only=True)
        if markup == message.get("reply_markup"):
            raise _bad(NOT_MODIFIED)
        return self._apply_edit(message, {}, markup)

    def _api_answerCallbackQuery(self, p: JsonDict) -> bool:
        query_id = str(p.get("callback_query_id") or "")
        if query_id not in self._queries or query_id in self._answered:
            raise _bad(QUERY_INVALID)
        if _utf16_units(str(p.get("text") or "")) > 200:  # the Bot API's "0-200 characters"
            raise _bad("MESSAGE_TOO_LONG")
        self._answered[query_id] = {k: v for k, v in p.items() if k != "callback_query_id"}
        return True

    def _api_sendChatAction(self, p: JsonDict) -> bool:
        self._chat_for_send(p)
        if p.get("action") not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    def _api_deleteMessage(self, p: JsonDict) -> bool:
        chat = self._chat_for_send(p)
        message_id = p.get("message_id")
        message = self._message(chat, message_id) if isinstance(message_id, int) else None
        if message is None:
            raise _bad("message to delete not found")
        own = message["from"]["id"] == self.bot_user["id"]
        if not own and chat.info["type"] != "private":
            raise _bad("message can't be deleted")
        chat.deleted.add(message["message_id"])
        return True

    # --- helpers for the methods ---------------------------------------------------------

    def _chat_for_send(self, p: JsonDict) -> _Chat:
        chat_id = p.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _message_to_edit(self, p: JsonDict) -> tuple[_Chat, JsonDict]:
        if p.get("inline_message_id"):
            raise _bad("message to edit not found")  # inline mode is not faked
        chat = self._chat_for_send(p)
        message_id = p.get("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        message = self._message(chat, message_id)
        if message is None:
            raise _bad("message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise _bad("message can't be edited")
        return chat, message

    def _apply_edit(
        self, message: JsonDict, changes: JsonDict, markup: JsonDict | None
    ) -> JsonDict:
        for key, value in {**changes, "reply_markup": markup}.items():
            if value:
                message[key] = value
            else:
                message.pop(key, None)
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _caption(self, p: JsonDict) -> JsonDict:
        caption, entities = _formatted(p, "caption", "caption_entities")
        if len(caption) > 1024:
            raise _bad("message caption is too long")
        result: JsonDict = {"caption": caption} if caption else {}
        if entities:
            result["caption_entities"] = entities
        return result

    def _file_param(self, p: JsonDict, name: str) -> tuple[Upload, JsonDict | None]:
        """The uploaded file, or the stored one a file_id refers to."""
        value = p.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.get(value.removeprefix("attach://"))
        if isinstance(value, Upload):
            if not value.data:
                raise _bad("file must be non-empty")
            return value, None
        if isinstance(value, str) and value:
            if re.match(r"https?://", value):
                raise _bad("failed to get HTTP URL content")  # the fake has no internet
            stored = self._files.get(value)
            if stored is None:
                raise _bad("wrong file identifier/HTTP URL specified")
            return Upload(stored["file_name"], stored["mime_type"], stored["data"]), stored
        raise _bad(f"there is no {name} in the request")

    def _store_file(self, file_id: str, unique_id: str, upload: Upload, folder: str) -> JsonDict:
        suffix = (
            (upload.file_name or "").rpartition(".")[2] if "." in (upload.file_name or "") else ""
        )
        stored: JsonDict = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_name": upload.file_name,
            "mime_type": upload.mime_type,
            "data": upload.data,
            "file_path": f"{folder}/file_{next(self._paths)}" + (f".{suffix}" if suffix else ""),
        }
        if folder == "documents":
            document: JsonDict = {"file_id": file_id, "file_unique_id": unique_id}
            if upload.file_name:
                document["file_name"] = upload.file_name
            if upload.mime_type:
                document["mime_type"] = upload.mime_type
            document["file_size"] = len(upload.data)
            stored["document"] = document
        self._files[file_id] = stored
        return stored

    def _send(
        self, chat: _Chat, p: JsonDict, content: JsonDict, file: JsonDict | None = None
    ) -> JsonDict:
        markup = self._inline_markup(p.get("reply_markup"), inline_only=False)
        reply = self._reply_target(chat, p)
        if reply is not None:
            content = {"reply_to_message": _without_reply(reply), **content}
        if markup is not None:
            content["reply_markup"] = markup
        keyboard = p.get("reply_markup") or {}
        if "keyboard" in keyboard:
            chat.reply_keyboard = copy.deepcopy(keyboard)
        elif keyboard.get("remove_keyboard"):
            chat.reply_keyboard = None
        message = self._new_message(chat, self.bot_user, content)
        if file is not None:
            self._uploads.append(
                {
                    "chat_id": chat.info["id"],
                    "message_id": message["message_id"],
                    "method": "sendPhoto" if "photo" in content else "sendDocument",
                    "file_name": file["file_name"],
                    "mime_type": file["mime_type"],
                    "data": file["data"],
                    "caption": content.get("caption"),
                }
            )
        return copy.deepcopy(message)

    def _reply_target(self, chat: _Chat, p: JsonDict) -> JsonDict | None:
        params = p.get("reply_parameters")
        if params is None and p.get("reply_to_message_id"):
            params = {
                "message_id": p["reply_to_message_id"],
                "allow_sending_without_reply": p.get("allow_sending_without_reply", False),
            }
        if not params:
            return None
        target = self._message(chat, int(params.get("message_id", 0)))
        if target is None and not params.get("allow_sending_without_reply"):
            raise _bad("message to be replied not found")
        return target

    def _inline_markup(self, markup: Any, *, inline_only: bool) -> JsonDict | None:
        """Validates reply_markup; returns the inline keyboard to attach to the message."""
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if inline_only:
                raise _bad("inline keyboard expected")
            if not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
                raise _bad('can\'t find field "inline_keyboard"')
            return None
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
        buttons = [button for row in rows for button in row]
        if len(buttons) > 100:
            raise _bad("reply markup is too long")
        for button in buttons:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise _bad(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            actions = INLINE_BUTTON_ACTIONS & button.keys()
            if not actions:
                raise _bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the "
                    "inline keyboard"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                    raise _bad("BUTTON_DATA_INVALID")
            if "url" in button and not button["url"]:
                raise _bad("BUTTON_URL_INVALID")
        kept = [copy.deepcopy(row) for row in rows if row]
        return {"inline_keyboard": kept} if kept else None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _pop(queue: dict[str, list[Any]], key: str) -> Any:
    items = queue.get(key)
    return items.pop(0) if items else None


def _scope_key(scope: JsonDict | None, language_code: str) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code


def _without_reply(message: JsonDict) -> JsonDict:
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}


def _media_kind(message: JsonDict) -> str:
    return next((k for k in ("photo", "document") if k in message), "(no text)")


def _formatted(p: JsonDict, text_key: str, entities_key: str) -> tuple[str, list[JsonDict]]:
    raw = p.get(text_key)
    raw = "" if raw is None else str(raw)
    entities = p.get(entities_key)
    if entities is not None and not isinstance(entities, list):
        raise _bad(f"can't parse {entities_key} JSON object")
    try:
        return format_text(raw, p.get("parse_mode") or None, entities)
    except ParseError as error:
        raise _bad(f"can't parse entities: {error}") from None
    except ValueError as error:
        raise _bad(str(error)) from None


def _json(body: JsonDict, status: int) -> web.Response:
    return web.json_response(body, status=status)


def _loggable(params: JsonDict) -> JsonDict:
    return {
        k: {"file_name": v.file_name, "mime_type": v.mime_type, "size": len(v.data)}
        if isinstance(v, Upload)
        else v
        for k, v in params.items()
    }


async def _read_params(request: web.Request) -> JsonDict:
    """Query string plus a JSON, urlencoded or multipart body, typed like the Bot API."""
    raw: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad("can't parse JSON") from None
            if not isinstance(body, dict):
                raise _bad("can't parse JSON")
            raw.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    raw[key] = Upload(value.filename, value.content_type, value.file.read())
                elif isinstance(value, bytes | bytearray):
                    raw[key] = Upload(None, None, bytes(value))
                else:
                    raw[key] = value
    return {key: _coerce(key, value) for key, value in raw.items()}
