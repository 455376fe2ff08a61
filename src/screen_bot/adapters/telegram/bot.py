"""Handlers of the screening bot: parse the update, call the screening service, show its result.

Dialog state lives in the service's store, never in python-telegram-bot. The service
saves before it returns, so every reply shows a saved state. One chat's updates run one
after the other (``ordering.py``), which keeps its replies in order. Each question sent
is reported back to the service with its step and the chat's newest update at that
moment, and typed input carries its update id, so an answer is applied only to a
question that was delivered before it arrived (see :mod:`screen_bot.service`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from telegram import Bot, CallbackQuery, Message, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from ... import traces
from ...errors import StorageFailed
from ...protocol.catalog import Catalog, changes
from ...results import (
    Asked,
    Cancelled,
    Checked,
    Choose,
    Details,
    Early,
    Finished,
    Forgotten,
    Invalid,
    Listing,
    Problem,
    Redrawn,
    Refused,
    Results,
    Resumed,
    Retired,
    Started,
    Status,
    Unusual,
)
from ...service import ScreeningService
from ...settings import Settings
from . import messages as say
from .callback_data import (
    CHECK_PREFIX,
    OTHER_PREFIX,
    SCREEN_CHOICE_PREFIX,
    SCREEN_PREFIX,
    decode,
    decode_check,
)
from .choosing import pick, split_protocol
from .gate import StrangerGate, refusal, served
from .turn import App, Context, Turn, answer_and_edit, answer_query, send_parts, turn

logger = logging.getLogger(__name__)
EXPIRY_EVERY_SECONDS = 600
EXPIRY_RETRY_SECONDS = 60  # after a failed pass (the database busy, a connection dropped)
COMMANDS_WAIT_SECONDS = 5  # at shutdown, how long a setMyCommands still in flight may take


class ScreeningBot:
    def __init__(self, settings: Settings, service: ScreeningService, gate: StrangerGate) -> None:
        self.settings = settings
        self.service = service
        self.gate = gate
        # The newest update received for a chat (the intake's queues tell; None: only this one).
        self.received: Callable[[int], int | None] = lambda chat_id: None
        self._expiry: asyncio.Task[None] | None = None
        self._commands: asyncio.Task[None] | None = None

    # -- wiring ---------------------------------------------------------------------------

    def add_handlers(self, application: App) -> None:
        application.add_handler(TypeHandler(Update, self.guard), group=-1)
        private = filters.ChatType.PRIVATE
        commands = {
            "start": self.start,
            "help": self.help,
            "protocols": self.protocols,
            "screen": self.screen,
            "check": self.check,
            "details": self.details,
            "status": self.status,
            "back": self.back,
            "skip": self.skip,
            "cancel": self.cancel,
            "list": self.list_open,
            "resume": self.resume,
        }
        for name, callback in commands.items():
            application.add_handler(CommandHandler(name, callback, filters=private))
        application.add_handler(CallbackQueryHandler(self.on_button, pattern=SCREEN_PREFIX))
        application.add_handler(
            CallbackQueryHandler(self.on_protocol_chosen, pattern=SCREEN_CHOICE_PREFIX)
        )
        application.add_handler(CallbackQueryHandler(self.on_continue, pattern=CHECK_PREFIX))
        application.add_handler(CallbackQueryHandler(self.on_other_button, pattern=OTHER_PREFIX))
        application.add_handler(
            MessageHandler(private & filters.TEXT & ~filters.COMMAND, self.on_text)
        )
        not_text = ~filters.TEXT & ~filters.StatusUpdate.ALL  # photo, voice, sticker, file…
        application.add_handler(
            MessageHandler(filters.UpdateType.MESSAGE & private & not_text, self.on_not_text)
        )
        application.add_error_handler(self.on_error)

    def add_fallback(self, application: App) -> None:
        """Unknown commands get the help: add this after every other handler set."""
        private = filters.ChatType.PRIVATE
        application.add_handler(MessageHandler(private & filters.COMMAND, self.unknown))

    async def post_init(self, application: App) -> None:
        """Publish the command list (meanwhile: the start does not wait for the Bot API's
        answer), expire old screenings now and every few minutes."""
        self._commands = asyncio.create_task(self._publish_commands(application))
        self.expire()
        self._expiry = asyncio.create_task(self._expire_regularly())

    async def post_shutdown(self, application: App) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self._commands is not None:  # a stop right after the start lets it be answered
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._commands), COMMANDS_WAIT_SECONDS)
            self._commands.cancel()

    async def _publish_commands(self, application: App) -> None:
        try:
            await application.bot.set_my_commands(say.bot_commands())
        except TelegramError as err:  # the menu is a convenience: the bot works without it
            logger.warning("setMyCommands failed: %s", type(err).__name__)

    def expire(self) -> int:
        lifetime = timedelta(hours=self.settings.session_ttl_hours)
        traces.expire(self.settings.data_dir, lifetime)
        removed = self.service.expire(lifetime)
        if removed:
            logger.info("expired %d unfinished screenings", removed)
        return removed

    async def _expire_regularly(self) -> None:
        """Expire every few minutes until cancelled; a pass that fails is logged (the task
        would otherwise end unseen, and nothing expire until a restart) and tried sooner."""
        every = min(EXPIRY_EVERY_SECONDS, self.settings.session_ttl_hours * 3600)
        wait = every
        while True:
            await asyncio.sleep(wait)
            try:
                self.expire()
            except Exception as err:  # noqa: BLE001 - the next pass tries again
                wait = min(EXPIRY_RETRY_SECONDS, every)
                why = err if isinstance(err, StorageFailed) else type(err).__name__
                logger.error("expiry failed, tried again in %.0f s: %s", wait, why)
            else:
                wait = every

    async def on_error(self, update: object, context: Context) -> None:
        """Tell the user in a line, and log the error's type and the update id only."""
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        if isinstance(error, StorageFailed):  # its message names the file and SQLite's reason
            logger.error("update %s: nothing saved: %s", update_id, error)
        else:
            logger.error("update %s failed: %s", update_id, type(error).__name__)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        chat_id = update.effective_chat.id
        try:
            if isinstance(error, StorageFailed):
                text = say.NOT_SAVED
            else:
                text = say.went_wrong(self.service.where(chat_id))
        except Exception:  # noqa: BLE001 - the database may be what failed
            text = say.went_wrong(None)
        try:
            if update.callback_query is not None:
                # The press may have been answered before the error (a second answer is
                # refused), so the words go to the chat; the answer stops a spinner left.
                await answer_query(update.callback_query)
            await context.bot.send_message(chat_id, text)
        except Exception as err:  # noqa: BLE001 - one line, not python-telegram-bot's traceback
            # (a relay's malformed answer fails as a KeyError, not as a TelegramError)
            level = _send_failure_level(err)
            logger.log(
                level, "update %s: the error reply failed: %s", update_id, type(err).__name__
            )

    def serves(self, chat_id: int) -> bool:
        """Whether what was kept for the chat may be sent there now (see ``gate.served``)."""
        return served(chat_id, self.settings.allowed_users)

    async def deliver(self, chat_id: int, delivery: int, text: str, sent: int, bot: Bot) -> bool:
        """Send a verdict kept in the outbox (a crash came first, or its send failed) from
        its first message not sent yet (after ``sent``), then forget it; whether it went
        out. A send that fails again is logged as the first one (:meth:`_send_kept`). Nothing
        to a chat no longer served: the verdict stays unsent until it expires."""
        return self.serves(chat_id) and await self._send_kept(bot, chat_id, delivery, text, sent)

    async def _send_kept(
        self, bot: Bot, chat_id: int, delivery: int, text: str, sent: int = 0
    ) -> bool:
        """Send a verdict kept in the outbox; whether it went out. A failed send is only
        logged (:func:`_log_unsent`): the outbox keeps the rest for the chat's next update
        and the sweep, and nothing went wrong with the user's message."""
        try:
            await self._send_verdict(bot, chat_id, delivery, text, sent)
        except TelegramError as err:
            _log_unsent("a verdict", err)
            return False
        return True

    async def _send_verdict(
        self, bot: Bot, chat_id: int, delivery: int, text: str, sent: int = 0
    ) -> None:
        """Send the verdict's messages after the first ``sent``, each counted in the outbox
        once it went out (the parts of a text are always the same), then forget it."""
        texts = say.parts(text)
        for number in range(sent, len(texts)):
            await bot.send_message(chat_id, texts[number])
            if number + 1 < len(texts):
                self._note(self.service.sent, delivery, number + 1)
        self._note(self.service.delivered, delivery)

    async def reshow(self, chat_id: int, bot: Bot) -> None:
        """Send the active screening's current question again if its send failed (an
        outage, a user who blocked the bot, a stop in the middle of the send). Nothing to a
        chat no longer served: the screening waits unseen until it expires."""
        if not self.serves(chat_id):
            return
        self.notice_dialog_changes()  # a question of a file changed since is not sent
        before = self.received(chat_id) or 0
        for result in self.service.unshown(chat_id):
            if isinstance(result, Retired):
                await _edit(bot, chat_id, result.message_id, say.retired_text(result))
            elif isinstance(result, Asked):
                text = say.question_message(result)
                try:
                    await self._send_question(bot, chat_id, result, text, before)
                except TelegramError as err:  # still to send: tried again
                    _log_unsent("a question", err)
            elif isinstance(result, Refused):  # its protocol file changed (removed) or broke
                text = say.refusal(result.reason, result.detail, result.why)
                await bot.send_message(chat_id, text)

    async def _send_question(
        self, bot: Bot, chat_id: int, asked: Asked, text: str, before: int
    ) -> None:
        """Send a question and tell the service it was shown, after update ``before``, at the
        returned copy's date. A send retried after a timeout may have left an earlier copy:
        input typed at that one is refused (and asked again) rather than taken, since the
        timed-out call may as well have shown nothing (a re-typed earlier answer would then
        be taken for this question)."""
        sent = await send_parts(bot, chat_id, text, say.keyboard(asked))
        at = int(sent.date.timestamp())
        self._note(
            self.service.shown, chat_id, asked.session_id, sent.message_id, asked.step, before, at
        )

    @staticmethod
    def _note(record: Callable[..., None], *args: object) -> None:
        """Record a delivery; if the database refuses, the delivery stands (the change the
        user asked for was saved): at worst the question or verdict is sent again later."""
        try:
            record(*args)
        except StorageFailed as err:
            logger.error("a delivery was not recorded: %s", err)

    # -- access ---------------------------------------------------------------------------

    async def guard(self, update: Update, context: Context) -> None:
        """Authorised users in their own private chat only; no forwarded input, no edits.

        Strangers are refused once a day (the gate), and nothing about them is stored.
        """
        why = refusal(update, self.settings.allowed_users, context.bot.username)
        if why is not None:
            await self.gate.refuse_now(why)
            raise ApplicationHandlerStop
        if update.edited_message is not None:  # not asked for; never applied, nothing said
            raise ApplicationHandlerStop
        message = update.message
        # a Bot API before 7.0 (or a relay) tells a forward by forward_date, which
        # python-telegram-bot 22 keeps in api_kwargs and not in forward_origin
        if message is not None and (
            message.forward_origin is not None or "forward_date" in message.api_kwargs
        ):
            await message.reply_text(say.FORWARDED)
            raise ApplicationHandlerStop
        self.notice_dialog_changes()  # the update is handled by the files as they are now

    def notice_dialog_changes(self) -> None:
        """Read the dialog files again if one was added, changed or removed since they were
        read: looked at before every update is handled (a stat of each file, no reading),
        so an edit saved before an answer arrives applies to that answer. Nothing made
        from the old catalog is kept (its engines, its set of every protocol, its lists);
        open screenings then meet the files as after a restart: a changed file ends
        theirs, a broken one pauses it (``ScreeningService._engine_for``)."""
        old = self.service.catalog
        if not old.changed():
            return
        new = Catalog(old.directories, cache=old.cache)
        broken = list(new.broken())  # read now (files checked before are taken from the cache)
        self.service.catalog = new
        logger.log(
            logging.WARNING if broken or not new.protocols else logging.INFO,
            "dialog files changed (%s): %d protocol(s)%s",
            ", ".join(changes(old.stamp, new.stamp)) or "listed again",
            len(new.protocols),
            f"; broken: {', '.join(broken)}" if broken else "",
        )

    # -- commands -------------------------------------------------------------------------

    @turn
    async def start(self, t: Turn) -> None:
        """/start: what the bot does, and the commands."""
        await t.say(say.START + say.HELP)

    @turn
    async def help(self, t: Turn) -> None:
        """/help: how to answer, and the commands."""
        await t.say(say.HELP)

    @turn
    async def unknown(self, t: Turn) -> None:
        """A command no handler knows: the help."""
        await t.say(say.HELP)

    @turn
    async def protocols(self, t: Turn) -> None:
        """/protocols: the protocols installed."""
        with_all = "all" in self.service.choices()
        await t.say(say.protocols_text(self.service.protocols(), self.service.broken(), with_all))

    @turn
    async def screen(self, t: Turn) -> None:
        """/screen [protocol|all] [referral]: start a screening; the open one is paused.
        Without a referral code, it is asked first (or skipped)."""
        named = [*self.service.choices(), *self.service.broken_ids()]  # broken: told so
        protocol_id, args = split_protocol(t.args, named)
        referral = " ".join(args) if args else None  # "John Smith" is refused as one label
        start = self.service.start(t.chat_id, protocol_id, referral, ask_referral=True)
        await self.show(t, start)

    @turn
    async def check(self, t: Turn) -> None:
        """/check [protocol|all] values…: a quick check of the values known (one message)."""
        message = t.update.effective_message
        words = (message.text or "" if message is not None else "").split(maxsplit=1)
        rest = words[1] if len(words) > 1 else ""
        first = rest.split(maxsplit=1)
        protocol_id = None
        named = [*self.service.choices(), *self.service.broken_ids()]  # broken: told so
        if first and (first[0] in named or first[0] == "all"):
            protocol_id, rest = first[0], first[1] if len(first) > 1 else ""
            if protocol_id not in named:  # all of one protocol: that one
                protocol_id = None
        if not rest.strip():
            await t.say(say.CHECK_USAGE)
            return
        await self.show(t, self.service.check(t.chat_id, rest, protocol_id))

    @turn
    async def on_continue(self, t: Turn) -> None:
        """The button under a quick check: start the screening with its values filled in."""
        query = t.update.callback_query
        if query is None:
            return
        press = decode_check(query.data)
        if press is None:
            await answer_query(query, say.FORGED_TEXT)
            return
        results = self.service.continue_check(t.chat_id, press.check_id)
        if query.message is not None and not isinstance(results[0], Refused):
            await _edit(t.context.bot, t.chat_id, query.message.message_id, None)
        await self.show(t, results, query)

    @turn
    async def details(self, t: Turn) -> None:
        """/details on|off: criterion ids and variable names beside each question."""
        wanted = (t.args or [""])[0].lower()
        if wanted in ("on", "off"):
            await self.show(t, self.service.set_details(t.chat_id, wanted == "on"))
        else:
            on = self.service.show_details(t.chat_id)
            await t.say(f"{say.details(on)}\n{say.DETAILS_USAGE}")

    @turn
    async def on_protocol_chosen(self, t: Turn) -> None:
        """A protocol button of /screen: start the screening with it, once (the button
        carries its offer's one-time key; a second tap, or an old offer's, is refused)."""
        query = t.update.callback_query
        found = await pick(t, self.service.choices())
        if found is None or query is None:
            return
        choice, picked = found
        results = self.service.start_offered(t.chat_id, choice.argument, picked)
        if isinstance(results[0], Refused):
            await self.show(t, results, query)
            return
        await answer_and_edit(query, say.chosen(picked))
        await self.show(t, results)

    @turn
    async def status(self, t: Turn) -> None:
        """/status: the open screening's question again, with how far it is."""
        await self.show(t, self.service.status(t.chat_id))

    @turn
    async def back(self, t: Turn) -> None:
        """/back: the previous question again, its answer forgotten."""
        await self.show(t, self.service.back(t.chat_id, t.update.update_id, t.sent_at))

    @turn
    async def skip(self, t: Turn) -> None:
        """/skip: answer the current question 'unknown'."""
        await self.show(t, self.service.skip(t.chat_id, t.update.update_id, t.sent_at))

    @turn
    async def cancel(self, t: Turn) -> None:
        """/cancel [LABEL]: drop the active screening, or the one named (only that one);
        nothing of it is kept."""
        await self.show(t, self.service.cancel(t.chat_id, " ".join(t.args or [])))

    @turn
    async def list_open(self, t: Turn) -> None:
        """/list: this chat's unfinished screenings."""
        await self.show(t, self.service.list_open(t.chat_id))

    @turn
    async def resume(self, t: Turn) -> None:
        """/resume LABEL: continue an unfinished screening."""
        await self.show(t, self.service.resume(t.chat_id, (t.args or [""])[0]))

    # -- answers --------------------------------------------------------------------------

    @turn
    async def on_text(self, t: Turn) -> None:
        """A typed answer to the current question (not a reply to an earlier one)."""
        message = t.update.effective_message
        text = message.text if message is not None else None
        if message is not None and self._replies_to_earlier_question(t.chat_id, message):
            again = [r for r in self.service.status(t.chat_id) if not isinstance(r, Status)]
            await self.show(t, [Invalid(say.EARLIER_QUESTION), *again])
            return
        answer = self.service.answer(t.chat_id, text or "", t.update.update_id, t.sent_at)
        await self.show(t, answer)

    def _replies_to_earlier_question(self, chat_id: int, message: Message) -> bool:
        """Whether ``message`` is a reply to one of ours older than the current question
        (an answer meant for a question already answered). A message replied to without
        ``from`` (optional in the Bot API; a relay or an emulator may leave it out) is
        taken for ours: in a private chat it may be, and a reply refused asks again, where
        one taken may answer the wrong question."""
        to = message.reply_to_message
        if to is None or (to.from_user is not None and not to.from_user.is_bot):
            return False
        current = self.service.question_message(chat_id)
        return current is not None and to.message_id < current

    @turn
    async def on_not_text(self, t: Turn) -> None:
        """A photo, voice message, sticker, file, contact…: not an answer; say so."""
        await t.say(say.NOT_TEXT)

    @turn
    async def on_button(self, t: Turn) -> None:
        """A screening button: applied only to the question it was shown with."""
        query = t.update.callback_query
        if query is None:
            return
        press = decode(query.data)
        if press is None:
            await answer_query(query, say.FORGED_TEXT)
            return
        shown_in = query.message.message_id if query.message is not None else None
        results = self.service.press(
            t.chat_id, press.session_id, press.step, press.key, shown_in, press.ticks
        )
        await self.show(t, results, query)

    async def on_other_button(self, update: Update, context: Context) -> None:
        """Button data of no scheme of ours: refused, nothing changes."""
        if update.callback_query is not None:
            await answer_query(update.callback_query, say.FORGED_TEXT)

    # -- showing results ------------------------------------------------------------------

    async def show(self, t: Turn, results: Results, query: CallbackQuery | None = None) -> None:
        """Render the service's results in order. A button press is answered at once: with
        the refusal before anything else; else beside the edit of the message pressed when
        that comes first (the question retired, a checklist's ticks redrawn), one round
        trip less a tap. Anything after them waits until both are done."""
        if query is not None:
            first = results[0] if results else None
            if isinstance(first, Refused):
                text = say.refusal(first.reason, first.detail, first.why)
                await answer_query(query, text)
                if say.toast(text) != text:  # cut to fit: the whole of it in the chat too
                    await t.say(text)
                results = results[1:]
            elif isinstance(first, Retired) or (
                isinstance(first, Redrawn) and first.message_id is not None
            ):
                await asyncio.gather(answer_query(query), self._render(t, results[:1]))
                results = results[1:]
            else:
                await answer_query(query)
        await self._render(t, results)

    async def _render(self, t: Turn, results: Results) -> None:
        bot = t.context.bot
        notes: list[str] = []
        for result in results:
            match result:
                case Retired():
                    await _edit(bot, t.chat_id, result.message_id, say.retired_text(result))
                case Started():
                    notes.append(say.started(result))
                case Status():
                    notes.append(say.status(result.answered))
                case Resumed():
                    notes.append(say.RESUMED)
                case Invalid():
                    notes.append(say.invalid(result.message))
                case Unusual():
                    notes.append(say.unusual(result.message))
                case Early():
                    notes.append(say.early(result.reshown))
                case Asked():
                    # Input received before the send cannot have been meant for this question
                    # (what arrives during the call may have been typed after seeing it).
                    before = max(self.received(t.chat_id) or 0, t.update.update_id)
                    text = say.question_message(result, notes)
                    if notes and len(say.parts(text)) > 1:  # split as a redraw will
                        await t.say("\n\n".join(notes))
                        text = say.question_message(result)
                    await self._send_question(bot, t.chat_id, result, text, before)
                    notes = []
                case Redrawn():
                    if result.message_id is None:
                        asked = result.asked
                        await send_parts(
                            bot, t.chat_id, say.question_message(asked), say.keyboard(asked)
                        )
                    else:
                        await _redraw(bot, t.chat_id, result.message_id, result.asked)
                case Checked():
                    await send_parts(bot, t.chat_id, result.text, say.check_keyboard(result))
                case Details():
                    await t.say(say.details(result.on))
                case Finished():
                    if notes:  # (a screening that ended at once: "started" comes first)
                        await t.say("\n\n".join(notes))
                        notes = []
                    if result.delivery is None:
                        await t.say(result.text)
                    else:
                        await self._send_kept(bot, t.chat_id, result.delivery, result.text)
                case Cancelled():
                    await t.say(say.cancelled(result.label, result.active))
                case Listing():
                    await t.say(say.listing(result.screenings))
                case Forgotten():
                    await t.say(say.forgotten(result.count))
                case Refused():
                    await t.say(say.refusal(result.reason, result.detail, result.why))
                case Problem():
                    await t.say(result.message)
                case Choose():
                    await bot.send_message(
                        t.chat_id,
                        say.CHOOSE_PROTOCOL,
                        reply_markup=say.choice_keyboard("s", result.choices, result.offer_id),
                    )
                case _:
                    logger.warning("no wording for %s", type(result).__name__)
        if notes:
            await t.say("\n\n".join(notes))


def _log_unsent(what: str, err: TelegramError) -> None:
    """Log a send that failed and is kept to send again (:func:`_send_failure_level`)."""
    level = _send_failure_level(err)
    logger.log(level, "%s was not sent, kept to send again: %s", what, type(err).__name__)


def _send_failure_level(err: Exception) -> int:
    """A warning where a failed send is expected and waited out (a user who blocked the
    bot; an outage: a connection error, a timeout, a 5xx; a flood limit), an ERROR where
    the bot, its setup or the relay is at fault (a request refused as built, 400; a token
    refused; an answer that does not parse): that one fails at every try."""
    expected = isinstance(err, Forbidden | NetworkError | RetryAfter)
    if isinstance(err, BadRequest):  # a NetworkError in python-telegram-bot, but final
        expected = False
    return logging.WARNING if expected else logging.ERROR


async def _edit(bot: Bot, chat_id: int, message_id: int, text: str | None) -> None:
    """Show ``text`` in place of a question message, without buttons (None: only drop them)."""
    if text is not None:  # a long question was sent in parts: this is the last one
        text = say.parts(text)[-1]
    try:
        if text is None:
            await bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
        else:
            await bot.edit_message_text(text, chat_id, message_id, reply_markup=None)
    except TelegramError as err:  # cosmetic: the answer is saved, the dialog goes on
        logger.info("edit of message %s skipped: %s", message_id, type(err).__name__)


async def _redraw(bot: Bot, chat_id: int, message_id: int, asked: Asked) -> None:
    """Show a step again in its own message, with its ticks as they are now (a step sent
    in parts: its last part, the one with the buttons; the ticks are on them too)."""
    text = say.parts(say.question_message(asked))[-1]
    try:
        await bot.edit_message_text(text, chat_id, message_id, reply_markup=say.keyboard(asked))
    except TelegramError as err:  # the message keeps its ticks, and its buttons apply to them
        logger.info("redraw of message %s skipped: %s", message_id, type(err).__name__)
