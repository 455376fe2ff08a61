"""Offline harness for the Telegram adapter: no network, ever.

``RecordingRequest`` stands in for PTB's HTTP layer (like PTB's own ``OfflineRequest``,
but answering the few methods the bot uses so a whole dialog can run, and refusing what
the Bot API refuses: a message over 4,096 UTF-16 units, a photo whose width + height is
over 10,000 px or whose sides differ more than 20 times), and ``Chat``
builds ``Update`` objects and feeds them to ``application.process_update``.
"""

from __future__ import annotations

import itertools
import json
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

BOT_USER = {"id": 999, "is_bot": True, "first_name": "Screen", "username": "screen_test_bot"}
# Telegram's update ids only grow, across chats and restarts: one counter for every Chat.
_IDS = itertools.count(1)


class RecordingRequest(BaseRequest):
    """Answers Bot API calls from memory and records them; anything else fails the test."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.uploads: list[tuple[str, dict[str, Any]]] = []
        self.photo_sizes: list[tuple[int, int]] = []  # of every sendPhoto, taken or refused
        self._ids = itertools.count(1000)
        self.failing: dict[str, int] = {}  # method -> how many calls still end in a 400
        self.failure = (400, "Bad Request: refused")  # the error those calls end in
        # which calls ``failing`` counts, by their parameters (the others go through)
        self.failing_when: Callable[[dict[str, Any]], bool] = lambda params: True
        self._answered: set[str] = set()

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        self.calls.append((endpoint, params))
        if self.failing.get(endpoint) and self.failing_when(params):
            self.failing[endpoint] -= 1
            code, description = self.failure
            body = {"ok": False, "error_code": code, "description": description}
            return code, json.dumps(body).encode()
        if endpoint == "sendPhoto" and request_data is not None:
            width, height = png_size(request_data.multipart_data["photo"][1])
            self.photo_sizes.append((width, height))
            if width + height > 10_000 or max(width, height) > 20 * min(width, height):
                body = {"ok": False, "description": "Bad Request: PHOTO_INVALID_DIMENSIONS"}
                return 400, json.dumps(body).encode()
        text = str(params.get("text", ""))  # the Bot API counts UTF-16 code units
        if len(text.encode("utf-16-le")) // 2 > 4096:  # as the Bot API: no longer message
            return 400, json.dumps({"ok": False, "description": "message is too long"}).encode()
        if endpoint == "answerCallbackQuery":  # the Bot API takes one answer per query
            query_id = str(params["callback_query_id"])
            if query_id in self._answered:
                body = {"ok": False, "description": "Bad Request: query is too old"}
                return 400, json.dumps(body).encode()
            self._answered.add(query_id)
        result = self._answer(endpoint, params)
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def _answer(self, endpoint: str, params: dict[str, Any]) -> Any:
        if endpoint == "getMe":
            return BOT_USER
        if endpoint == "sendMessage":
            chat_id = int(params["chat_id"])
            message = {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": params["text"],
            }
            if "reply_markup" in params:
                message["reply_markup"] = params["reply_markup"]
            self.messages[(chat_id, message["message_id"])] = message
            return message
        if endpoint in ("sendPhoto", "sendDocument"):
            self.uploads.append((endpoint, params))
            return self._answer("sendMessage", {**params, "text": params.get("caption", "")})
        if endpoint in ("editMessageText", "editMessageReplyMarkup"):
            key = (int(params["chat_id"]), int(params["message_id"]))
            message = dict(self.messages[key])
            message.pop("reply_markup", None)
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            if "text" in params:
                message["text"] = params["text"]
            message["edit_date"] = int(time.time())
            self.messages[key] = message
            return message
        if endpoint in ("answerCallbackQuery", "setMyCommands", "deleteWebhook"):
            return True
        raise AssertionError(f"unexpected Bot API call {endpoint} {params}")

    def sent(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for (c, _), m in sorted(self.messages.items()) if c == chat_id]

    def answers(self) -> list[dict[str, Any]]:
        return [p for e, p in self.calls if e == "answerCallbackQuery"]


def png_size(png: Any) -> tuple[int, int]:
    """A PNG's width and height (its IHDR chunk)."""
    data = png if isinstance(png, bytes) else png.read()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@dataclass
class Chat:
    """A coordinator in a private chat, typing and pressing buttons."""

    application: Application
    request: RecordingRequest
    user_id: int
    chat_type: str = "private"
    chat_id: int | None = None
    _ids: itertools.count = field(default_factory=lambda: _IDS)

    @property
    def chat(self) -> dict[str, Any]:
        return {"id": self.chat_id or self.user_id, "type": self.chat_type}

    def _user(self) -> dict[str, Any]:
        return {"id": self.user_id, "is_bot": False, "first_name": "Coord"}

    async def send(
        self, text: str, reply_to: dict[str, Any] | None = None, date: int | None = None
    ) -> None:
        """Type ``text`` (as a reply to message ``reply_to``: a swipe-reply; at ``date``,
        unix seconds: now unless given)."""
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()) if date is None else date,
            "chat": self.chat,
            "from": self._user(),
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        await self._process({"update_id": next(self._ids), "message": message})

    async def press(self, message: dict[str, Any], data: str) -> None:
        query = {
            "id": str(next(self._ids)),
            "from": self._user(),
            "chat_instance": "ci-1",
            "message": message,
            "data": data,
        }
        await self._process({"update_id": next(self._ids), "callback_query": query})

    async def tap(self, label: str) -> None:
        """Press the button labelled ``label`` on the newest message that has buttons."""
        message = self.last_with_buttons()
        for row in message["reply_markup"]["inline_keyboard"]:
            for button in row:
                if button["text"] == label:
                    await self.press(message, button["callback_data"])
                    return
        raise AssertionError(f"no button {label!r} in {message['reply_markup']}")

    async def _process(self, data: dict[str, Any]) -> None:
        await self.application.process_update(Update.de_json(data, self.application.bot))

    def messages(self) -> list[dict[str, Any]]:
        return self.request.sent(self.chat_id or self.user_id)

    def last_text(self) -> str:
        return self.messages()[-1]["text"]

    def last_with_buttons(self) -> dict[str, Any]:
        with_buttons = [m for m in self.messages() if m.get("reply_markup")]
        assert with_buttons, "no message with buttons"
        return with_buttons[-1]
