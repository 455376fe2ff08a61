"""Handlers of the screening bot. Dialog state lives in our SQLite store, never in PTB.

Every change is saved before the reply that shows it. Updates run concurrently across
chats; a lock per chat keeps one chat's updates in order.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from telegram import CallbackQuery, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from ...answers import AnswerError, parse_text
from ...engine import Engine, loggable_answers
from ...protocol.catalog import Catalog, ProtocolNotFound
from ...protocol.schema import Question
from ...render import verdict_text
from ...session import REFERRAL_PATTERN, ProtocolChanged, Session, utc_now
from ...settings import Settings
from ...store import Store
from ...verdict import Verdict
from . import messages as say
from .callback_data import BACK, NO, UNKNOWN, YES, decode

logger = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE
EXPIRY_EVERY_SECONDS = 600
_REFERRAL = re.compile(REFERRAL_PATTERN)


class ScreeningBot:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        store: Store,
        on_verdict: Callable[..., Any] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.on_verdict = on_verdict  # e.g. the screening log's append
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._expiry: asyncio.Task[None] | None = None

    # -- wiring ---------------------------------------------------------------------------

    def add_handlers(self, application: Application) -> None:
        application.add_handler(TypeHandler(Update, self.guard), group=-1)
        private = filters.ChatType.PRIVATE
        commands = {
            "start": self.start,
            "help": self.help,
            "protocols": self.protocols,
            "screen": self.screen,
            "status": self.status,
            "back": self.back,
            "skip": self.skip,
            "cancel": self.cancel,
            "list": self.list_open,
            "resume": self.resume,
        }
        for name, callback in commands.items():
            application.add_handler(CommandHandler(name, callback, filters=private))
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_handler(
            MessageHandler(private & filters.TEXT & ~filters.COMMAND, self.on_text)
        )
        application.add_handler(MessageHandler(private & filters.COMMAND, self.help))
        application.add_error_handler(self.on_error)

    async def post_init(self, application: Application) -> None:
        try:
            await application.bot.set_my_commands(say.bot_commands())
        except TelegramError as err:
            logger.warning("setMyCommands failed: %s", type(err).__name__)
        self.expire()
        self._expiry = asyncio.create_task(self._expire_regularly())

    async def post_shutdown(self, application: Application) -> None:
        if self._expiry is not None:
            self._expiry.cancel()

    def expire(self) -> int:
        removed = self.store.expire(utc_now() - timedelta(hours=self.settings.session_ttl_hours))
        if removed:
            logger.info("expired %d unfinished screenings", removed)
        return removed

    async def _expire_regularly(self) -> None:
        every = min(EXPIRY_EVERY_SECONDS, self.settings.session_ttl_hours * 3600)
        while True:
            await asyncio.sleep(every)
            self.expire()

    async def on_error(self, update: object, context: Context) -> None:
        # Type and update id only: a message text or the token must never reach the logs.
        update_id = update.update_id if isinstance(update, Update) else None
        logger.error("update %s failed: %s", update_id, type(context.error).__name__)

    # -- access ---------------------------------------------------------------------------

    async def guard(self, update: Update, context: Context) -> None:
        """Authorised users in private chats only; others get one refusal, nothing stored."""
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None:
            raise ApplicationHandlerStop
        refusal = None
        if user.id not in self.settings.allowed_users:
            refusal = say.REFUSED
        elif chat.type != ChatType.PRIVATE:
            refusal = say.PRIVATE_ONLY
        if refusal is None:
            return
        if update.callback_query is not None:
            await answer_query(update.callback_query, refusal, show_alert=True)
        elif update.effective_message is not None and (
            chat.type == ChatType.PRIVATE or _is_command(update.effective_message)
        ):
            await update.effective_message.reply_text(refusal)
        raise ApplicationHandlerStop

    # -- commands -------------------------------------------------------------------------

    async def start(self, update: Update, context: Context) -> None:
        await _reply(update, say.START + say.HELP)

    async def help(self, update: Update, context: Context) -> None:
        await _reply(update, say.HELP)

    async def protocols(self, update: Update, context: Context) -> None:
        lines = [
            f"{p.id} (version {p.version}): {p.spec.title}" for p in self.catalog.protocols.values()
        ]
        await _reply(update, "\n".join(lines) or "No protocols are installed.")

    async def screen(self, update: Update, context: Context) -> None:
        """``/screen [protocol] [referral-label]``: start a screening; pause the open one."""
        args = list(context.args or [])
        protocol_id = args.pop(0) if args and args[0] in self.catalog.protocols else None
        if len(args) > 1 or (args and not _REFERRAL.match(args[0])):
            await _reply(
                update,
                "The referral label must be one short code such as R-0423 "
                "(letters, digits, . _ / -), never a name.",
            )
            return
        label = args[0] if args else None
        chat_id = update.effective_chat.id
        async with self._locks[chat_id]:
            try:
                engine = self.catalog.engine(protocol_id)
            except ProtocolNotFound as err:
                await _reply(update, f"{err}. /protocols lists them.")
                return
            open_ = self.store.list(chat_id)
            if label and any(o.referral == label for o in open_):
                await _reply(
                    update,
                    f"{label} already has an unfinished screening: "
                    f"/resume {label}, or /cancel it after resuming.",
                )
                return
            paused = next((o for o in open_ if o.active), None)
            session = engine.start(label)
            self.store.save(chat_id, session, activate=True)
            if paused is not None:
                await self._drop_buttons(context, chat_id, paused.session_id)
            note = (
                f"Screening {label or session.id} started ({engine.protocol.id} version "
                f"{engine.protocol.version})."
            )
            if paused is not None:
                note += (
                    f" The screening {paused.referral or paused.session_id} is paused: "
                    "/list, /resume."
                )
            await self._ask(context, chat_id, engine, session, note)

    async def status(self, update: Update, context: Context) -> None:
        chat_id = update.effective_chat.id
        async with self._locks[chat_id]:
            loaded = await self._active(update, context)
            if loaded:
                engine, session = loaded
                await self._drop_buttons(context, chat_id, session.id)
                answered = len(session.history)
                await self._ask(
                    context,
                    chat_id,
                    engine,
                    session,
                    f"{answered} answer{'' if answered == 1 else 's'} so far; we are here.",
                )

    async def back(self, update: Update, context: Context) -> None:
        chat_id = update.effective_chat.id
        async with self._locks[chat_id]:
            loaded = await self._active(update, context)
            if loaded:
                await self._go_back(context, chat_id, *loaded)

    async def skip(self, update: Update, context: Context) -> None:
        chat_id = update.effective_chat.id
        async with self._locks[chat_id]:
            loaded = await self._active(update, context)
            if loaded:
                await self._answer(
                    context, chat_id, *loaded, None, self.store.message(chat_id, loaded[1].id)
                )

    async def cancel(self, update: Update, context: Context) -> None:
        chat_id = update.effective_chat.id
        async with self._locks[chat_id]:
            loaded = await self._active(update, context)
            if loaded:
                _, session = loaded
                message_id = self.store.message(chat_id, session.id)
                self.store.delete(chat_id, session.id)
                await self._edit(context, chat_id, message_id, "Screening cancelled.")
                await _reply(
                    update,
                    f"Screening {session.referral or session.id} cancelled; nothing of it is kept.",
                )

    async def list_open(self, update: Update, context: Context) -> None:
        open_ = self.store.list(update.effective_chat.id)
        if not open_:
            await _reply(update, "No unfinished screenings.")
            return
        lines = [
            f"{'▶ ' if o.active else ''}{o.referral or o.session_id} · {o.protocol_id} · "
            f"at {o.state} · {o.updated_at:%Y-%m-%d %H:%M} UTC"
            for o in open_
        ]
        await _reply(update, "Unfinished screenings (/resume LABEL):\n" + "\n".join(lines))

    async def resume(self, update: Update, context: Context) -> None:
        chat_id = update.effective_chat.id
        wanted = (context.args or [""])[0]
        async with self._locks[chat_id]:
            match = next(
                (
                    o
                    for o in self.store.list(chat_id)
                    if wanted and wanted in (o.referral, o.session_id)
                ),
                None,
            )
            if match is None:
                await _reply(update, "No unfinished screening with that label. /list shows them.")
                return
            current = self.store.active(chat_id)
            if current is not None and current.id != match.session_id:
                await self._drop_buttons(context, chat_id, current.id)
            self.store.activate(chat_id, match.session_id)
            loaded = await self._active(update, context)
            if loaded:
                await self._ask(context, chat_id, *loaded, note="Resumed.")

    # -- answers --------------------------------------------------------------------------

    async def on_text(self, update: Update, context: Context) -> None:
        chat_id = update.effective_chat.id
        async with self._locks[chat_id]:
            loaded = await self._active(update, context)
            if not loaded:
                return
            engine, session = loaded
            question = engine.question(session)
            assert question is not None  # finished screenings are never left open
            try:
                value = parse_text(question, update.effective_message.text or "")
            except AnswerError as err:
                await self._drop_buttons(context, chat_id, session.id)
                await self._ask(context, chat_id, engine, session, f"⚠ {err}")
                return
            await self._answer(
                context, chat_id, engine, session, value, self.store.message(chat_id, session.id)
            )

    async def on_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        press = decode(query.data)
        if press is None:
            await answer_query(query, say.FORGED)
            return
        chat_id = update.effective_chat.id
        async with self._locks[chat_id]:
            session = self.store.get(chat_id, press.session_id)
            active = self.store.active(chat_id)
            problem = None
            if session is None:
                problem = say.GONE
            elif active is None or active.id != session.id:
                problem = say.PAUSED
            elif session.step != press.step:
                problem = say.STALE
            if problem is not None:
                await answer_query(query, problem)
                if problem == say.GONE and query.message is not None:
                    await self._edit(context, chat_id, query.message.message_id, None)
                return
            engine = self._engine_for(session)
            question = engine.question(session) if engine else None
            if engine is None or question is None:
                await answer_query(query, say.GONE)
                return
            if press.code == BACK:
                await answer_query(query)
                await self._go_back(context, chat_id, engine, session)
                return
            valid, value = _button_value(question, press.code)
            if not valid:
                await answer_query(query, say.FORGED)
                return
            await answer_query(query)
            message_id = query.message.message_id if query.message else None
            await self._answer(context, chat_id, engine, session, value, message_id)

    # -- steps ----------------------------------------------------------------------------

    async def _answer(
        self,
        context: Context,
        chat_id: int,
        engine: Engine,
        session: Session,
        value: Any,
        message_id: int | None,
    ) -> None:
        """Record the answer, save, show it in place of the question, then ask on."""
        question = engine.question(session)
        assert question is not None
        unusual = engine.answer(session, value)
        if unusual:
            self.store.save(chat_id, session)
            await self._drop_buttons(context, chat_id, session.id)
            await self._ask(
                context, chat_id, engine, session, f"⚠ {unusual}. Type it again to confirm."
            )
            return
        verdict = self._persist(chat_id, engine, session)
        await self._edit(
            context, chat_id, message_id, say.answered_message(engine, question, value)
        )
        if verdict is None:
            await self._ask(context, chat_id, engine, session)
        else:
            for part in say.split(verdict_text(verdict)):
                await context.bot.send_message(chat_id, part)

    async def _go_back(
        self, context: Context, chat_id: int, engine: Engine, session: Session
    ) -> None:
        message_id = self.store.message(chat_id, session.id)
        if not engine.back(session):
            await context.bot.send_message(chat_id, "This is the first question.")
            return
        self.store.save(chat_id, session)
        await self._edit(context, chat_id, message_id, "↩ Went back.")
        await self._ask(context, chat_id, engine, session)

    def _persist(self, chat_id: int, engine: Engine, session: Session) -> Verdict | None:
        """Save an open session; log a finished one (and drop it) and return its verdict."""
        if not engine.finished(session):
            self.store.save(chat_id, session)
            return None
        verdict = engine.verdict(session)
        if self.on_verdict is not None:
            self.on_verdict(
                verdict,
                channel="telegram",
                coordinator=str(chat_id),
                answers=loggable_answers(engine.protocol, session.values()),
            )
        self.store.delete(chat_id, session.id)
        return verdict

    async def _ask(
        self, context: Context, chat_id: int, engine: Engine, session: Session, note: str = ""
    ) -> None:
        question = engine.question(session)
        assert question is not None
        sent = await context.bot.send_message(
            chat_id,
            say.question_message(engine, session, note),
            reply_markup=say.keyboard(session, question),
        )
        self.store.set_message(chat_id, session.id, sent.message_id)

    async def _active(self, update: Update, context: Context) -> tuple[Engine, Session] | None:
        """The chat's open screening and its engine, or a reply saying why there is none."""
        session = self.store.active(update.effective_chat.id)
        if session is None:
            await _reply(update, say.NO_SCREENING)
            return None
        engine = self._engine_for(session)
        if engine is None:
            self.store.delete(update.effective_chat.id, session.id)
            await _reply(
                update,
                "The protocol file changed since this screening began, so it "
                "cannot go on safely; it was removed. /screen starts again.",
            )
            return None
        return engine, session

    def _engine_for(self, session: Session) -> Engine | None:
        try:
            engine = self.catalog.engine(session.protocol_id)
            session.check_protocol(engine.protocol)
        except (ProtocolNotFound, ProtocolChanged):
            return None
        return engine

    async def _drop_buttons(self, context: Context, chat_id: int, session_id: str) -> None:
        await self._edit(context, chat_id, self.store.message(chat_id, session_id), None)

    async def _edit(
        self, context: Context, chat_id: int, message_id: int | None, text: str | None
    ) -> None:
        """Show ``text`` in place of a question message, without buttons (None: only drop them)."""
        if message_id is None:
            return
        try:
            if text is None:
                await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
            else:
                await context.bot.edit_message_text(text, chat_id, message_id, reply_markup=None)
        except TelegramError as err:  # cosmetic: the answer is saved, the dialog goes on
            logger.info("edit of message %s skipped: %s", message_id, type(err).__name__)


def _button_value(question: Question, code: str) -> tuple[bool, Any]:
    """(valid, value) of a pressed answer button for this question."""
    if code == UNKNOWN:
        return True, None
    if code in (YES, NO):
        return question.type == "yes_no", code == YES
    choices = question.choices or []
    index = int(code[1:])
    return question.type == "choice" and index < len(choices), (
        choices[index] if index < len(choices) else None
    )


async def answer_query(query: CallbackQuery, text: str | None = None, **kwargs: Any) -> None:
    """Answer a button press at once; a failure to answer must not stop the dialog."""
    try:
        await query.answer(text, **kwargs)
    except TelegramError as err:
        logger.info("answerCallbackQuery failed: %s", type(err).__name__)


def _is_command(message: Message) -> bool:
    return bool(message.text and message.text.startswith("/"))


async def _reply(update: Update, text: str) -> None:
    for part in say.split(text):
        await update.effective_message.reply_text(part)
