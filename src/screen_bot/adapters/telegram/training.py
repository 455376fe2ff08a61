"""/learn, /quiz, /progress and /flow: training on a protocol's criteria from the phone.

The quiz is driven by buttons only (no typed text), so it never competes with a
screening for the user's messages. A running quiz lives in memory: it is practice, not
screening data, and its scores are saved after every answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from ...errors import ScreenBotError
from ...protocol import Protocol
from ...protocol.catalog import Catalog, ProtocolChoiceNeeded
from ...training.scores import ScoreBook, progress_text
from . import messages as say
from .callback_data import (
    LEARN_PREFIX,
    QUIZ_PREFIX,
    TRAINING_CHOICE_PREFIX,
    decode_learn,
    decode_quiz,
)
from .choosing import chosen, split_protocol
from .turn import App, Turn, answer_and_edit, answer_query, edit_pressed, send_parts, turn

if TYPE_CHECKING:  # the quiz, the walk-through and the flow are imported at their first use
    from ...training.quiz import Quiz

QUIZ_CASES = 20
MAX_SEED_DIGITS = 18


class TrainingHandlers:
    def __init__(self, catalog: Callable[[], Catalog], book: ScoreBook) -> None:
        """``catalog``: the protocols as they are now (the bot reads the dialog files again
        when they change)."""
        self._catalog, self.book = catalog, book
        self.quizzes: dict[int, Quiz] = {}

    @property
    def catalog(self) -> Catalog:
        return self._catalog()

    def add_handlers(self, application: App) -> None:
        private = filters.ChatType.PRIVATE
        for name, callback in {
            "learn": self.learn,
            "quiz": self.quiz,
            "progress": self.progress,
            "flow": self.flow,
        }.items():
            application.add_handler(CommandHandler(name, callback, filters=private))
        application.add_handler(CallbackQueryHandler(self.on_learn, pattern=LEARN_PREFIX))
        application.add_handler(CallbackQueryHandler(self.on_quiz, pattern=QUIZ_PREFIX))
        application.add_handler(
            CallbackQueryHandler(self.on_protocol_chosen, pattern=TRAINING_CHOICE_PREFIX)
        )

    async def _protocol_and_rest(
        self, t: Turn, command: str, args: list[str], argument: str = ""
    ) -> tuple[Protocol, list[str]] | None:
        """The protocol the words name (or the only one) and the other words; None when the
        user was asked to choose (buttons) or told the protocol is unknown."""
        named = [*self.catalog.choices(with_all=False), *self.catalog.broken_ids()]
        protocol_id, rest = split_protocol(args, named)  # a broken one's id: told so
        try:
            return self.catalog.get(protocol_id), rest
        except ProtocolChoiceNeeded as several:
            await t.context.bot.send_message(
                t.chat_id,
                say.CHOOSE_ONE_PROTOCOL,
                reply_markup=say.choice_keyboard(command, several.choices, argument or None),
            )
        except ScreenBotError as err:
            await t.say(say.SEE_PROTOCOLS.format(error=err))
        return None

    @turn
    async def on_protocol_chosen(self, t: Turn) -> None:
        """A protocol button of /learn, /quiz or /flow: run the command with it."""
        found = await chosen(t, self.catalog.choices(with_all=False))
        if found is None:
            return
        choice, picked = found
        words = [picked, choice.argument] if choice.argument else [picked]
        run = {"l": self._learn, "q": self._quiz, "f": self._flow}[choice.command]
        await run(t, words)

    # -- walk-through ---------------------------------------------------------------------

    @turn
    async def learn(self, t: Turn) -> None:
        """/learn [protocol] [criterion]: one criterion at a time, with what decides."""
        await self._learn(t, t.args)

    async def _learn(self, t: Turn, args: list[str]) -> None:
        found = await self._protocol_and_rest(t, "l", args, args[-1] if args else "")
        if found is None:
            return
        protocol, rest = found
        from ...training.walkthrough import step_text, walkthrough

        # pure computation on the loaded protocol: off the event loop, as /quiz's generation
        steps = await asyncio.to_thread(walkthrough, protocol, rest[0] if rest else None)
        if not steps:
            await t.say(say.NO_CRITERION)
            return
        if rest:  # the named criterion (and its parts), all at once
            for step in steps:
                await t.say(step_text(protocol, step))
            return
        await self._send_step(t, protocol.id, 0)

    @turn
    async def on_learn(self, t: Turn) -> None:
        """The walk-through's Next button."""
        query = t.update.callback_query
        if query is None:
            return
        press = decode_learn(query.data)
        await answer_query(query)
        if press is not None and press.protocol_id in self.catalog.protocols:
            await self._send_step(t, press.protocol_id, press.index)

    async def _send_step(self, t: Turn, protocol_id: str, index: int) -> None:
        from ...training.walkthrough import step_text, walkthrough

        protocol = self.catalog.get(protocol_id)
        steps = await asyncio.to_thread(walkthrough, protocol)
        if index >= len(steps):
            await t.say(say.LAST_CRITERION)
            return
        markup = say.learn_keyboard(protocol_id, index + 1)
        await send_parts(t.context.bot, t.chat_id, step_text(protocol, steps[index]), markup)

    # -- quiz -----------------------------------------------------------------------------

    @turn
    async def quiz(self, t: Turn) -> None:
        """/quiz [protocol] [seed]: generated cases, answered with buttons, scored."""
        await self._quiz(t, t.args)

    async def _quiz(self, t: Turn, args: list[str]) -> None:
        numeric = bool(args) and args[-1].isascii() and args[-1].isdigit()
        if numeric and len(args[-1]) > MAX_SEED_DIGITS:
            await t.say(say.SEED_TOO_LONG)
            return
        seed = int(args.pop()) if numeric else None
        found = await self._protocol_and_rest(t, "q", args, "" if seed is None else str(seed))
        if found is None:
            return
        protocol, _ = found
        from ...training.quiz import Quiz

        trainee = str(t.user_id)
        weak = self.book.misses(trainee, protocol.id)  # here: the database is this thread's
        quiz = await asyncio.to_thread(
            Quiz.start, protocol, trainee, QUIZ_CASES, seed, self.book, weak
        )
        self.quizzes[t.chat_id] = quiz
        await t.say(say.quiz_intro(protocol.id, len(quiz.cases), quiz.seed))
        await self._send_case(t, quiz)

    async def _send_case(self, t: Turn, quiz: Quiz) -> None:
        if quiz.finished:
            del self.quizzes[t.chat_id]
            await t.say(say.quiz_end(quiz.summary()))
            return
        markup = say.verdict_buttons(quiz.id, quiz.position)
        await send_parts(t.context.bot, t.chat_id, quiz.question(), markup)

    @turn
    async def on_quiz(self, t: Turn) -> None:
        """A quiz button: a verdict, 'not eligible…' (then a criterion), or stop."""
        query = t.update.callback_query
        if query is None:
            return
        press = decode_quiz(query.data)
        quiz = self.quizzes.get(t.chat_id)
        if (
            press is None
            or quiz is None
            or (quiz.id, quiz.position)
            != (
                press.quiz_id,
                press.position,
            )
        ):
            await answer_query(query, say.QUIZ_OVER)
            return
        now = self.catalog.protocols.get(quiz.protocol.id)
        if now is None or now.sha256 != quiz.protocol.sha256:  # its cases and answers are old
            del self.quizzes[t.chat_id]
            await answer_and_edit(query)
            await t.say(say.QUIZ_PROTOCOL_CHANGED)
            return
        if press.code == "x":
            del self.quizzes[t.chat_id]
            await answer_and_edit(query)
            await t.say(say.quiz_stopped(quiz.summary()))
            return
        if press.code == "n":  # ask which criterion failed
            ids = list(quiz.protocol.criteria)
            await answer_and_edit(query, markup=say.criterion_buttons(quiz.id, quiz.position, ids))
            return
        from ...training.quiz import Answer

        verdicts = {"e": Answer("eligible"), "u": Answer("unresolved")}
        answer = verdicts.get(press.code) or Answer("not_eligible", press.code[2:])
        await answer_query(query)  # at once: grading writes the score first
        grade = quiz.submit(answer)
        await edit_pressed(query)
        await t.say(grade.feedback)
        await self._send_case(t, quiz)

    @turn
    async def progress(self, t: Turn) -> None:
        """/progress: the user's quiz record."""
        await t.say(progress_text(self.book.progress(str(t.user_id))))

    # -- flow diagram ---------------------------------------------------------------------

    @turn
    async def flow(self, t: Turn) -> None:
        """/flow [protocol]: the dialog's state machine as a picture."""
        await self._flow(t, t.args)

    async def _flow(self, t: Turn, args: list[str]) -> None:
        found = await self._protocol_and_rest(t, "f", args)
        if found is None:
            return
        protocol, _ = found
        from ...training.flow import GraphUnavailable, png

        try:
            picture = await asyncio.to_thread(png, self.catalog.engine(protocol.id))
        except GraphUnavailable as err:
            await t.say(say.NO_DIAGRAM.format(error=err))
            return
        await t.context.bot.send_document(
            t.chat_id,
            picture,
            filename=f"{protocol.id}-flow.png",
            caption=say.flow_caption(protocol.id, protocol.version),
        )
