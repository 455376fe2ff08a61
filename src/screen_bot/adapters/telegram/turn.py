"""The preamble every handler shares, once: which chat and user an update is from."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes

from .messages import parts, toast

logger = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE
App = Application[Any, Any, Any, Any, Any, Any]
Handlers = TypeVar("Handlers")


@dataclass(frozen=True)
class Turn:
    """One update from a known chat and user."""

    update: Update
    context: Context
    chat_id: int
    user_id: int

    @property
    def args(self) -> list[str]:
        return list(self.context.args or [])

    @property
    def sent_at(self) -> int | None:
        """When the user sent the message (unix seconds, the Bot API's clock)."""
        message = self.update.effective_message
        return int(message.date.timestamp()) if message is not None else None

    async def say(self, text: str) -> None:
        """Send ``text`` to the chat, split into messages Telegram accepts."""
        await send_parts(self.context.bot, self.chat_id, text)


async def send_parts(
    bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
) -> Message:
    """Send ``text`` split into messages Telegram accepts, ``markup`` under the last part;
    return that last message (the one a press comes from, to edit later)."""
    texts = parts(text)
    for part in texts[:-1]:
        await bot.send_message(chat_id, part)
    return await bot.send_message(chat_id, texts[-1], reply_markup=markup)


def turn(
    handler: Callable[[Handlers, Turn], Awaitable[None]],
) -> Callable[[Handlers, Update, Context], Coroutine[Any, Any, None]]:
    """Make ``handler(self, turn)`` a python-telegram-bot callback ``(update, context)``."""

    @functools.wraps(handler)
    async def callback(self: Handlers, update: Update, context: Context) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:  # e.g. a channel post: not ours
            return
        await handler(self, Turn(update, context, chat.id, user.id))

    return callback


async def answer_query(query: CallbackQuery, text: str | None = None) -> None:
    """Answer a button press at once (``text`` cut to what Telegram takes); a failure to
    answer must not stop the dialog."""
    try:
        await query.answer(toast(text) if text else text, show_alert=False)
    except TelegramError as err:
        logger.info("answerCallbackQuery failed: %s", type(err).__name__)


async def edit_pressed(
    query: CallbackQuery, text: str | None = None, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Show ``text`` (None: keep the text) and ``markup`` in the message a button was pressed
    in. Cosmetic: what the press did is kept, so a failed edit only gets logged."""
    try:
        if text is None:
            await query.edit_message_reply_markup(markup)
        else:
            await query.edit_message_text(text, reply_markup=markup)
    except TelegramError as err:
        logger.info("edit of a pressed message skipped: %s", type(err).__name__)


async def answer_and_edit(
    query: CallbackQuery, text: str | None = None, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Answer a press beside the edit of its message: one round trip, not two."""
    await asyncio.gather(answer_query(query), edit_pressed(query, text, markup))
