"""Who is served, and the refusals for everyone else: once a day each, a few per second.

Only an authorised user in their own private chat (chat id = user id) is served. Anyone
else is refused once per period (a day) per chat; the rest of their updates are dropped
without a Bot API call, except button presses, which are answered without words (the Bot
API requires an answer to every press). Refusals have their own small budget (a token
bucket) and their own connections (:class:`~.botapi.RawBotApi`), outside the rate limiter
the coordinators' replies wait in, and a refusal over budget is dropped, not queued: a
flood of strangers can never delay an authorised user. Nothing about a stranger is stored;
the memory of whom was refused is bounded (the oldest entries go first). What was kept for
a chat (a verdict not sent, a question to show again) goes out only while it is served
(:func:`served`): a user removed from the list gets none of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

from telegram import Update
from telegram.constants import ChatType

from . import messages as say
from .botapi import ApiError, RawBotApi, Unreachable

logger = logging.getLogger(__name__)
DAY = 24 * 3600.0
# The Bot API's user and chat ids have at most 52 significant bits (and a sign)
MAX_ID = 2**52


@dataclass(frozen=True)
class Refusal:
    """Why an update is not served: ``text`` to say once, or "" to drop it silently.

    ``key`` is whom it is remembered for (the chat, or the user for a button); the words
    go to ``chat_id`` as a message, or answer the button press ``query_id``.
    """

    key: int
    text: str
    chat_id: int | None = None
    query_id: str | None = None


def for_another_bot(text: object, username: str | None) -> bool:
    """Whether ``text`` is a command addressed to another bot: ``/command@OtherBot`` is
    how a group picks the bot that answers (``username``: ours, from getMe)."""
    if not isinstance(text, str) or not text.startswith("/") or username is None:
        return False
    _, at, addressee = text.split(maxsplit=1)[0].partition("@")
    return bool(at) and addressee.lower() != username.lower()


def telegram_id(value: object) -> TypeGuard[int]:
    """Whether ``value`` can be a user's or a chat's id as Telegram sends one: an integer
    (not a bool, a float or a string) of at most 52 bits."""
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_ID < value < MAX_ID


def served(chat_id: int, allowed: frozenset[int]) -> bool:
    """Whether words kept for ``chat_id`` (a verdict not sent, a question to send again) may
    be sent there now. Only a user's own private chat is served, and its id is the user's,
    so it is served while that user is authorised: one removed from the list since (who
    left the team, a stolen phone) gets nothing more of what was kept for them."""
    return chat_id in allowed


def refusal(update: Update, allowed: frozenset[int], username: str | None = None) -> Refusal | None:
    """None for an authorised user in their own private chat; else how to refuse (a
    command for another bot than ``username``: silently)."""
    user, chat = update.effective_user, update.effective_chat
    message_or_press = update.message or update.edited_message or update.callback_query
    press = update.callback_query
    if user is not None and chat is None and press is not None:
        # a button of an inline-mode message: never one of ours, but a press needs an answer
        text = say.REFUSED if user.id not in allowed else say.PRIVATE_ONLY
        return Refusal(user.id, text, query_id=press.id)
    if user is None or chat is None or message_or_press is None:
        return Refusal(0, "")  # an update kind we never asked for (channel posts, …)
    private = chat.type == ChatType.PRIVATE
    if user.id in allowed and private and chat.id == user.id:
        return None
    if update.edited_message is not None:  # the message itself was refused (or dropped)
        return Refusal(chat.id, "")
    text = say.REFUSED if user.id not in allowed else say.PRIVATE_ONLY
    if update.callback_query is not None:
        return Refusal(user.id, text, query_id=update.callback_query.id)
    message = update.effective_message
    typed = message.text if message is not None else None
    if for_another_bot(typed, username):
        return Refusal(chat.id, "")
    is_command = bool(typed and typed.startswith("/"))
    return Refusal(chat.id, text if private or is_command else "", chat_id=chat.id)


def plain_stranger(
    item: dict[str, Any], allowed: frozenset[int], username: str | None = None
) -> Refusal | None:
    """The refusal for a raw update plainly from someone not authorised, read without
    parsing it (a flood costs little); None when it needs a closer look (parse it). A
    command for another bot than ``username`` is dropped silently."""
    kinds = ("message", "edited_message", "callback_query")
    kind = next((k for k in kinds if isinstance(item.get(k), dict)), "callback_query")
    body = item.get(kind)
    sender = body.get("from") if isinstance(body, dict) else None
    user_id = sender.get("id") if isinstance(sender, dict) else None
    if not isinstance(body, dict) or not telegram_id(user_id) or user_id in allowed:
        return None
    if kind == "edited_message":
        return Refusal(user_id, "")
    if kind == "callback_query":
        query_id = body.get("id")
        if not isinstance(query_id, str):
            return Refusal(user_id, "")
        return Refusal(user_id, say.REFUSED, query_id=query_id)
    chat = body.get("chat")
    chat = chat if isinstance(chat, dict) else {}
    chat_id = chat.get("id")
    if not telegram_id(chat_id):
        return Refusal(user_id, "")
    text = body.get("text")
    if for_another_bot(text, username):
        return Refusal(chat_id, "")
    say_it = chat.get("type") == "private" or (isinstance(text, str) and text.startswith("/"))
    return Refusal(chat_id, say.REFUSED if say_it else "", chat_id=chat_id)


class StrangerGate:
    """Sends refusals within their own budget; see the module docstring."""

    def __init__(
        self,
        api: RawBotApi,
        *,
        period: float = DAY,
        remember: int = 10_000,
        per_second: float = 1.0,
        burst: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api, self.period, self.remember = api, period, remember
        self.per_second, self.burst, self.clock = per_second, burst, clock
        self._refused: OrderedDict[int, float] = OrderedDict()
        self._tokens, self._filled_at = float(burst), clock()
        self._sending: set[asyncio.Task[None]] = set()
        self.sent = self.dropped = 0

    def refuse(self, why: Refusal) -> None:
        """Refuse in the background (or drop): never waits, never raises."""
        due = self._admit(why)
        if due is not None and len(self._sending) < self.burst:
            task = asyncio.create_task(self._send(due))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def idle(self) -> None:
        """Wait for the refusals being sent."""
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def refuse_now(self, why: Refusal) -> None:
        """Refuse and wait for the Bot API call (or drop)."""
        due = self._admit(why)
        if due is not None:
            await self._send(due)

    def _admit(self, why: Refusal) -> Refusal | None:
        """The call due for this refusal, budget left: the words if not said lately; a
        button press without them (every press must be answered, or its client spins);
        None: nothing to send."""
        now = self.clock()
        last = self._refused.get(why.key)
        said_lately = last is not None and now - last < self.period
        if why.query_id is not None and (said_lately or not why.text):
            why = replace(why, text="")
        elif not why.text or said_lately:
            self.dropped += 1
            return None
        self._tokens = min(self.burst, self._tokens + (now - self._filled_at) * self.per_second)
        self._filled_at = now
        if self._tokens < 1:
            self.dropped += 1
            return None
        self._tokens -= 1
        if why.text:
            self._refused[why.key] = now
            self._refused.move_to_end(why.key)
            while len(self._refused) > self.remember:
                self._refused.popitem(last=False)
        return why

    async def _send(self, why: Refusal) -> None:
        try:
            if why.query_id is not None:
                params: dict[str, Any] = {"callback_query_id": why.query_id}
                if why.text:
                    params |= {"text": say.toast(why.text), "show_alert": True}
                await self.api.call("answerCallbackQuery", params)
            elif why.chat_id is not None:
                await self.api.call("sendMessage", {"chat_id": why.chat_id, "text": why.text})
            self.sent += 1
        except (ApiError, Unreachable) as err:
            logger.info("a refusal was not delivered: %s", type(err).__name__)
