"""kill -9 at random points while coordinators answer, then count what was lost or misplaced.

Several coordinators (one thread each) screen a patient through the real ``screen-bot
run`` process polling a :class:`FakeBotApi`: each answers the question it sees (typed, or
a button when there is one, at random), waits for the bot's next message, and answers
what it sees then, typing the same answer again when nothing came (as people do after a
crash). Meanwhile the bot is killed with SIGKILL at random moments and restarted.

Counted at the end, from the fake's record and the bot's database:

- ``sent``: every typed answer and button press (``resent``: those to a question answered
  before: after no reply, or at an older copy of it whose buttons a kill left on screen);
- ``lost_updates``: updates the bot confirmed to the Bot API but never handled (an update is
  confirmed by the next getUpdates offset; handled ones are marked done in the inbox);
- ``lost_answers``: questions a coordinator answered whose answer is not stored at the end;
- ``misplaced``: stored answers whose question had not been delivered when they were
  stored, or whose value is not what the coordinator gave for that question;
- ``same_second``: of those wrong values, the ones the bot takes by its documented rule
  (README, "What stays open"): an answer typed again to a question answered before, dated
  the same whole second as the question it was taken for. The bot cannot tell it from an
  answer sent at once, so it is counted apart, not as misplaced; a chat whose screening it
  ended (``cut_short``) cannot answer all its questions.

Used by ``tests/test_kill9.py`` (a few kills) and ``benchmarks/reliability.py`` (≥ 20).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bot_process import BotProcess, last_id
from conftest import DIALOGS
from fakebot import FakeBotApi
from screen_bot.answers import AnswerError, parse_text
from screen_bot.engine import stored
from screen_bot.protocol.catalog import Catalog
from screen_bot.words import VERDICT_HEADLINE
from stores import StoreUnderTest
from test_telegram_transcript import ELIGIBLE

PROTOCOL = Catalog(DIALOGS).get()  # the one-protocol copy the bot processes serve
QUESTIONS = PROTOCOL.spec.questions
BUTTONS = {"yes": "Yes", "no": "No"}
FINISH = {"all_hold": "✓ All of these hold", "none_apply": "✓ None of these"}


@dataclass(frozen=True)
class Delivery:
    """A question delivered: when (``time.time()``), its Bot API date (whole seconds)."""

    at: float
    date: int
    variable: str


@dataclass(frozen=True)
class Typed:
    """A message a coordinator typed: when the fake queued it (``time.time()``), its Bot
    API date, and whether it answered a question it had answered before (``retype``: the
    previous question again after no reply, or an older one whose buttons still showed)."""

    at: float
    date: int
    text: str
    retype: bool


class RecordingFake(FakeBotApi):
    """The fake, also recording when each question was delivered and each update queued
    (both under the fake's lock: their times are in the order they happened)."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: dict[int, list[Delivery]] = defaultdict(list)
        self.enqueued: list[int] = []
        self.queued: dict[tuple[int, int], float] = {}  # (chat, message id) -> time.time()

    def _api_sendMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        message = super()._api_sendMessage(p)
        for variable in question_variables(message["text"]):
            delivery = Delivery(time.time(), message["date"], variable)
            self.delivered[message["chat"]["id"]].append(delivery)
        return message

    def _enqueue(self, content: dict[str, Any]) -> None:
        super()._enqueue(content)
        self.enqueued.append(self._updates[-1]["update_id"])
        if message := content.get("message"):
            self.queued[(message["chat"]["id"], message["message_id"])] = time.time()

    def unconfirmed(self) -> set[int]:
        with self._lock:
            return {u["update_id"] for u in self._updates}


def question_variables(text: str) -> list[str]:
    """The question a message asks, or the items of the checklist it shows ([]: none)."""
    found = [q.variable for q in QUESTIONS if q.text in text]
    return found if len(found) == 1 or (found and found[0] in PROTOCOL.checklists) else []


@dataclass
class Tally:
    chats: int = 0
    kills: int = 0
    sent: int = 0
    resent: int = 0
    typed: int = 0
    pressed: int = 0
    answered: int = 0  # distinct questions answered by the coordinators
    stored: int = 0
    lost_updates: int = 0
    lost_answers: int = 0
    misplaced: int = 0
    same_second: int = 0  # wrong answers in the documented same-second window (not misplaced)
    cut_short: list[int] = field(default_factory=list)  # chats a same-second answer ended
    short: list[int] = field(default_factory=list)  # chats not cut short that answered fewer
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    same_second_cases: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lists = ("problems", "same_second_cases")
        return {k: v for k, v in asdict(self).items() if k not in lists}


class Coordinator(threading.Thread):
    """Answers what the bot shows, up to ``questions`` questions, until ``deadline``."""

    def __init__(
        self, fake: RecordingFake, user: int, questions: int, deadline: float, seed: int
    ) -> None:
        super().__init__(daemon=True)
        self.fake, self.user, self.questions, self.deadline = fake, user, questions, deadline
        self.rng = random.Random(seed)
        self.intended: dict[str, str] = {}
        self.typed_log: list[Typed] = []
        self.answered: set[str] = set()  # questions (a checklist: its first item) sent an answer
        self.sent = self.resent = self.typed = self.pressed = 0
        self.reply_timeout = 3.0

    def current(self) -> dict[str, Any] | None:
        """The newest bot message with buttons that asks a question."""
        for message in reversed(self.fake.messages(self.user)):
            if message.get("reply_markup") and question_variables(message["text"]):
                return message
        return None

    def ended(self) -> bool:
        """Whether a verdict came: before every question is answered, only an answer taken
        for another question ends a screening (not eligible), and nothing is left to do."""
        headlines = tuple(VERDICT_HEADLINE.values())
        return any(m["text"].startswith(headlines) for m in self.fake.messages(self.user))

    def type_answer(self, text: str, retype: bool) -> None:
        message = self.fake.send_text(self.user, text)
        at = self.fake.queued[(self.user, message["message_id"])]
        self.typed_log.append(Typed(at, message["date"], text, retype))

    def send(self, text: str) -> bool:
        after = last_id(self.fake, self.user)
        self.fake.send_text(self.user, text)
        return self.wait(after)

    def wait(self, after: int) -> bool:
        try:
            self.fake.wait_for_message(self.user, after=after, timeout=self.reply_timeout)
        except TimeoutError:
            return False
        return True

    def run(self) -> None:
        self.send(f"/screen R-{self.user}")
        while len(self.intended) < self.questions and time.monotonic() < self.deadline:
            if self.ended():  # else /status and stale buttons until the deadline
                return
            question = self.current()
            if question is None:
                self.send("/status")
                continue
            variables = question_variables(question["text"])
            variable = variables[0]
            answer = ELIGIBLE[variable]
            label = BUTTONS.get(answer, answer)
            if len(variables) > 1:  # a checklist: nothing to change, one line or one tap
                answer, label = "0", FINISH[PROTOCOL.checklists[variable].mode]
            self.intended.update({v: ELIGIBLE[v] for v in variables})
            labels = {b["text"] for row in question["reply_markup"]["inline_keyboard"] for b in row}
            after = last_id(self.fake, self.user)
            if self.current() != question:  # a look at the screen just before answering: a
                continue  # question shown meanwhile is read first, as a person would
            again = variable in self.answered  # no reply came, or an older copy still shows
            if label in labels and self.rng.random() < 0.5:
                self.fake.press(self.user, question, label)
                self.pressed += 1
            else:
                self.type_answer(answer, retype=again)
                self.typed += 1
            self.sent += 1
            self.resent += again
            self.answered.add(variable)
            self.wait(after)


def run(
    work: Path,
    *,
    chats: int = 10,
    kills: int = 20,
    questions: int = 30,
    seed: int = 1,
    time_limit: float = 240,
    store: StoreUnderTest | None = None,
) -> Tally:
    """Run the coordinators against the bot while killing it ``kills`` times; count.

    The bot keeps its data in ``store`` (default: the SQLite file in ``work``).
    """
    store = store or StoreUnderTest("sqlite", work)
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # kills cut requests short
    rng = random.Random(seed)
    users = list(range(1001, 1001 + chats))
    tally = Tally(chats=chats)
    started = time.monotonic()
    with RecordingFake() as fake:
        bot = BotProcess(fake, work, ",".join(map(str, users)), store=store)
        bot.start()
        deadline = started + time_limit
        coordinators = [
            Coordinator(fake, u, questions, deadline, rng.randrange(2**32)) for u in users
        ]
        for coordinator in coordinators:
            coordinator.start()
        try:
            for _ in range(kills):
                if not any(c.is_alive() for c in coordinators):
                    break
                time.sleep(rng.uniform(0.2, 1.5))
                bot.kill()
                tally.kills += 1
                bot.start()
            for coordinator in coordinators:
                coordinator.join(max(1.0, deadline - time.monotonic()))
            time.sleep(1.0)  # the last replies
        finally:
            bot.stop()
        tally.seconds = round(time.monotonic() - started, 1)
        count(tally, fake, coordinators, store)
        if any(c.is_alive() for c in coordinators):
            tally.problems.append("a coordinator did not finish in time")
    return tally


def taken_as(variable: str, text: str, on: date) -> Any:
    """What the bot keeps for ``variable`` when it takes ``text`` for it, as JSON reads it
    back; :class:`AnswerError` when the text is no answer to it."""
    return as_json(parse_text(PROTOCOL.questions[variable], text, on))


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(stored(value), default=str))


def in_same_second(
    variable: str, value: Any, typed: Sequence[Typed], delivered: Iterable[Delivery], on: date
) -> tuple[Typed, Delivery] | None:
    """The retype (and the delivery of ``variable``'s question it was taken for) that the
    wrong ``value`` stored for ``variable`` came from by the bot's documented rule; None:
    misplaced.

    The bot takes typed input for the question on screen unless the input is dated a
    whole second or more before the question (the Bot API's dates, whole seconds), or it
    had the input when it began sending the question (by update id: ``service._on_shown``).
    Input in the same second that came in after it began is taken: a client that answers
    at once looks the same. Only the date can be checked from here: the bot's moment is
    inside the bot, before its send waits its turn (a stress run saw input queued up to
    0.85 s before the question reached the fake taken, as the rule allows). So: an answer
    typed again to a question answered before (``Typed.retype``; a first answer is never
    excused, so an answer applied twice still counts as misplaced), dated the second of a
    delivery of ``variable``'s question, reading as ``value`` for ``variable``.
    """
    for shown in delivered:
        if shown.variable != variable:
            continue
        for sent in typed:
            if not sent.retype or sent.date != shown.date:
                continue
            try:
                if taken_as(variable, sent.text, on) == value:
                    return sent, shown
            except AnswerError:
                continue
    return None


def count(
    tally: Tally, fake: RecordingFake, coordinators: list[Coordinator], store: StoreUnderTest
) -> None:
    done = {row[0] for row in store.rows("SELECT update_id FROM inbox WHERE done = 1")}
    bodies = dict(store.rows("SELECT owner, body FROM open_sessions WHERE active = 1"))
    lost = set(fake.enqueued) - done - fake.unconfirmed()
    tally.lost_updates = len(lost)
    if lost:
        tally.problems.append(f"updates confirmed but never handled: {sorted(lost)[:10]}")
    from screen_bot.session import Session

    def wrong(c: Coordinator, variable: str, value: Any, on: date, problem: str) -> bool:
        """Count a stored value that is not what ``c`` meant: same second (True) or not."""
        window = in_same_second(variable, value, c.typed_log, fake.delivered[c.user], on)
        if window is None:
            tally.misplaced += 1
            tally.problems.append(problem)
            return False
        sent, shown = window
        tally.same_second += 1
        tally.same_second_cases.append(
            f"{problem}: {sent.text!r} typed again {sent.at - shown.at:+.3f} s from the question"
            f" (both dated {shown.date})"
        )
        return True

    for c in coordinators:
        tally.sent += c.sent
        tally.resent += c.resent
        tally.typed += c.typed
        tally.pressed += c.pressed
        tally.answered += len(c.intended)
        if c.user not in bodies:
            finished = store.rows(
                "SELECT verdict, answers FROM screening_log WHERE coordinator = ?", (str(c.user),)
            )
            if not finished:
                tally.lost_answers += len(c.intended)
                tally.problems.append(f"chat {c.user}: no open screening")
                continue
            # It ended: an answer taken for the wrong question can end one (not eligible).
            on = datetime.now(UTC).date()
            for verdict, logged in finished:
                for variable, value in json.loads(logged).items():
                    tally.stored += 1
                    typed = c.intended.get(variable)
                    if typed is not None and value == taken_as(variable, typed, on):
                        continue
                    problem = f"chat {c.user}: {variable} = {value!r}, meant {typed} ({verdict})"
                    if wrong(c, variable, value, on, problem) and c.user not in tally.cut_short:
                        tally.cut_short.append(c.user)
        else:
            session = Session.model_validate_json(bodies[c.user])
            first_delivery: dict[str, float] = {}
            for delivery in fake.delivered[c.user]:
                first_delivery.setdefault(delivery.variable, delivery.at)
            on = session.screened_on
            for variable, answer in session.answers.items():
                tally.stored += 1
                typed = c.intended.get(variable)
                shown = first_delivery.get(variable)
                when = answer.at.astimezone(UTC).timestamp()
                value = as_json(answer.value)
                if typed is None or value != taken_as(variable, typed, on):
                    problem = f"chat {c.user}: {variable} = {answer.value!r}, meant {typed}"
                    wrong(c, variable, value, on, problem)
                elif shown is None or when < shown:
                    tally.misplaced += 1
                    tally.problems.append(
                        f"chat {c.user}: {variable} stored at {datetime.fromtimestamp(when, UTC)} "
                        f"before its question was delivered ({shown})"
                    )
            # Every question answered but the one still waiting for its reply is stored.
            in_checklist = PROTOCOL.checklists.get(session.state)
            waiting = set(in_checklist.items) if in_checklist else {session.state}
            missing = [v for v in c.intended if v not in session.answers and v not in waiting]
            tally.lost_answers += len(missing)
            if missing:
                tally.problems.append(f"chat {c.user}: answered but not stored: {missing}")
        if len(c.intended) < c.questions and c.user not in tally.cut_short:
            tally.short.append(c.user)
