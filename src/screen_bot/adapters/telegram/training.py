"""/learn, /quiz, /progress and /flow: training on a protocol's criteria from the phone.

The quiz is driven by buttons only (no typed text), so it never competes with a
screening for the user's messages. A running quiz lives in memory: it is practice, not
screening data, and its scores are saved after every answer.
"""

from __future__ import annotations

import asyncio
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from ...protocol import Protocol
from ...protocol.catalog import Catalog, ProtocolNotFound
from ...training.flow import GraphUnavailable, png
from ...training.quiz import Answer, Quiz
from ...training.scores import ScoreBook, progress_text
from ...training.walkthrough import step_text, walkthrough
from .bot import answer_query
from .messages import split

Context = ContextTypes.DEFAULT_TYPE
QUIZ_CASES = 20
_LEARN = re.compile(r"^l\|(?P<protocol>[a-z0-9-]{1,40})\|(?P<index>\d{1,4})$")
_QUIZ = re.compile(r"^q\|(?P<quiz>[0-9a-f]{8})\|(?P<position>\d{1,4})\|(?P<code>[enux]|c:.{1,20})$")


class TrainingHandlers:
    def __init__(self, catalog: Catalog, book: ScoreBook) -> None:
        self.catalog, self.book = catalog, book
        self.quizzes: dict[int, Quiz] = {}

    def add_handlers(self, application: Application) -> None:
        private = filters.ChatType.PRIVATE
        for name, callback in {
            "learn": self.learn,
            "quiz": self.quiz,
            "progress": self.progress,
            "flow": self.flow,
        }.items():
            application.add_handler(CommandHandler(name, callback, filters=private))
        application.add_handler(CallbackQueryHandler(self.on_learn, pattern=_LEARN))
        application.add_handler(CallbackQueryHandler(self.on_quiz, pattern=_QUIZ))

    def _protocol_and_rest(self, args: list[str]) -> tuple[Protocol, list[str]]:
        protocol_id = args[0] if args and args[0] in self.catalog.protocols else None
        rest = args[1:] if protocol_id else args
        return self.catalog.get(protocol_id), rest

    # -- walk-through ---------------------------------------------------------------------

    async def learn(self, update: Update, context: Context) -> None:
        """``/learn [protocol] [criterion]``: one criterion at a time, with what decides."""
        try:
            protocol, rest = self._protocol_and_rest(list(context.args or []))
        except ProtocolNotFound as err:
            await update.effective_message.reply_text(f"{err}. /protocols lists them.")
            return
        steps = walkthrough(protocol, rest[0] if rest else None)
        if not steps:
            await update.effective_message.reply_text("No criterion has that id.")
            return
        if rest:  # the named criterion (and its parts), all at once
            for step in steps:
                await update.effective_message.reply_text(step_text(protocol, step))
            return
        await self._send_step(context, update.effective_chat.id, protocol.id, 0)

    async def on_learn(self, update: Update, context: Context) -> None:
        query = update.callback_query
        match = _LEARN.match(query.data or "")
        await answer_query(query)
        if match and match["protocol"] in self.catalog.protocols:
            await self._send_step(
                context, update.effective_chat.id, match["protocol"], int(match["index"])
            )

    async def _send_step(
        self, context: Context, chat_id: int, protocol_id: str, index: int
    ) -> None:
        protocol = self.catalog.get(protocol_id)
        steps = walkthrough(protocol)
        if index >= len(steps):
            await context.bot.send_message(
                chat_id, "That was the last criterion. /quiz to practise on generated cases."
            )
            return
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Next ▶", callback_data=f"l|{protocol_id}|{index + 1}")]]
        )
        parts = split(step_text(protocol, steps[index]))
        for part in parts[:-1]:
            await context.bot.send_message(chat_id, part)
        await context.bot.send_message(chat_id, parts[-1], reply_markup=markup)

    # -- quiz -----------------------------------------------------------------------------

    async def quiz(self, update: Update, context: Context) -> None:
        """``/quiz [protocol] [seed]``: generated cases, answered with buttons, scored."""
        args = list(context.args or [])
        seed = int(args.pop()) if args and args[-1].isdigit() else None
        try:
            protocol, _ = self._protocol_and_rest(args)
        except ProtocolNotFound as err:
            await update.effective_message.reply_text(f"{err}. /protocols lists them.")
            return
        quiz = await asyncio.to_thread(
            Quiz.start, protocol, str(update.effective_user.id), QUIZ_CASES, seed, self.book
        )
        self.quizzes[update.effective_chat.id] = quiz
        await update.effective_message.reply_text(
            f"Quiz on {protocol.id}: {len(quiz.cases)} cases (seed {quiz.seed}). For each, "
            "choose the verdict; for 'not eligible', the criterion that failed."
        )
        await self._send_case(context, update.effective_chat.id, quiz)

    async def _send_case(self, context: Context, chat_id: int, quiz: Quiz) -> None:
        if quiz.finished:
            del self.quizzes[chat_id]
            await context.bot.send_message(
                chat_id, quiz.summary() + " /progress shows your record."
            )
            return
        await context.bot.send_message(
            chat_id, quiz.question(), reply_markup=_verdict_buttons(quiz)
        )

    async def on_quiz(self, update: Update, context: Context) -> None:
        query = update.callback_query
        match = _QUIZ.match(query.data or "")
        chat_id = update.effective_chat.id
        quiz = self.quizzes.get(chat_id)
        if (
            match is None
            or quiz is None
            or quiz.id != match["quiz"]
            or quiz.position != int(match["position"])
        ):
            await answer_query(query, "That case was already answered, or the quiz is over.")
            return
        code = match["code"]
        await answer_query(query)
        if code == "x":
            del self.quizzes[chat_id]
            await query.edit_message_reply_markup(None)
            await context.bot.send_message(chat_id, "Quiz stopped. " + quiz.summary())
            return
        if code == "n":  # ask which criterion failed
            await query.edit_message_reply_markup(_criterion_buttons(quiz))
            return
        answer = {"e": Answer("eligible"), "u": Answer("unresolved")}.get(code) or Answer(
            "not_eligible", code[2:]
        )
        grade = quiz.submit(answer)
        await query.edit_message_reply_markup(None)
        for part in split(grade.feedback):
            await context.bot.send_message(chat_id, part)
        await self._send_case(context, chat_id, quiz)

    async def progress(self, update: Update, context: Context) -> None:
        progress = self.book.progress(str(update.effective_user.id))
        await update.effective_message.reply_text(progress_text(progress))

    # -- flow diagram ---------------------------------------------------------------------

    async def flow(self, update: Update, context: Context) -> None:
        """``/flow [protocol]``: the dialog's state machine as a picture."""
        try:
            protocol, _ = self._protocol_and_rest(list(context.args or []))
            picture = await asyncio.to_thread(png, self.catalog.engine(protocol.id))
        except ProtocolNotFound as err:
            await update.effective_message.reply_text(f"{err}. /protocols lists them.")
            return
        except GraphUnavailable as err:
            await update.effective_message.reply_text(f"The diagram cannot be drawn here: {err}")
            return
        await update.effective_message.reply_document(
            picture,
            filename=f"{protocol.id}-flow.png",
            caption=f"{protocol.id} version {protocol.version}: questions in order, the "
            "conditions that skip them, and the early exits to not eligible.",
        )


def _data(quiz: Quiz, code: str) -> str:
    return f"q|{quiz.id}|{quiz.position}|{code}"


def _verdict_buttons(quiz: Quiz) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Eligible", callback_data=_data(quiz, "e")),
                InlineKeyboardButton("Not eligible…", callback_data=_data(quiz, "n")),
            ],
            [
                InlineKeyboardButton("Unresolved", callback_data=_data(quiz, "u")),
                InlineKeyboardButton("Stop quiz", callback_data=_data(quiz, "x")),
            ],
        ]
    )


def _criterion_buttons(quiz: Quiz) -> InlineKeyboardMarkup:
    ids = list(quiz.protocol.criteria)
    rows = [
        [InlineKeyboardButton(cid, callback_data=_data(quiz, f"c:{cid}")) for cid in ids[i : i + 6]]
        for i in range(0, len(ids), 6)
    ]
    return InlineKeyboardMarkup(rows)
