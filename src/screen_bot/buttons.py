"""The buttons of a step, and the step as it is asked with them.

Each button's key is what a front end sends back to :meth:`ScreeningService.press`; this
module makes the options of a question (or a checklist, a multi-select), the
:class:`Asked` that carries them with the step's wording, and says what an answer
button's key means for a question.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .protocol.schema import Question
from .render import format_value, question_text
from .results import Asked, Option
from .rules.dates import NEVER as NEVER_VALUE
from .words import REFERRAL_RULE

if TYPE_CHECKING:
    from .engine import BaseEngine
    from .session import Session

# Button keys; a choice is "c<index>"; CONFIRM records the unusual value waiting.
YES, NO, UNKNOWN, BACK, CONFIRM = "y", "n", "u", "b", "k"
# A toggle is "t<index>" (a checklist item or a multi-select choice); ALL answers the
# checklist "none of these" / "all of these hold" (a multi-select: none of them); DONE
# answers it as ticked; NEVER answers a date-or-none question "none".
ALL, DONE, NEVER = "a", "d", "o"
REFERRAL_QUESTION = Question(
    variable="referral",
    type="text",
    text="Referral code for this screening?",
    help=f"Type {REFERRAL_RULE}, or skip.",
)


def step_asked(engine: BaseEngine[Any], session: Session, details: bool = False) -> Asked:
    question = engine.question(session)
    assert question is not None  # an open screening always has a current question
    checklist = engine.checklist(session)
    items = engine.step_items(session) if checklist is not None else []
    return Asked(
        session_id=session.id,
        step=session.step,
        referral=session.referral,
        question=question,
        progress=engine.progress(session),
        text=question_text(engine, session, details),
        options=_step_options(engine, session),
        checklist=checklist,
        items=tuple(engine.protocol.questions[v] for v in items),
    )


def referral_asked(session: Session) -> Asked:
    return Asked(
        session_id=session.id,
        step=session.step,
        referral=None,
        question=REFERRAL_QUESTION,
        progress=(0, 0),
        text=f"{REFERRAL_QUESTION.text}\n{REFERRAL_QUESTION.help}",
        options=(Option(UNKNOWN, "skip"),),
    )


def _step_options(engine: BaseEngine[Any], session: Session) -> tuple[Option, ...]:
    """The buttons of the current step: a checklist's or a multi-select's toggles, then
    one button that finishes it (none / all hold while untouched, else done)."""
    always = (Option(UNKNOWN, "unknown"), Option(BACK, "back"))
    checklist = engine.checklist(session)
    if checklist is not None:
        ticks = engine.item_values(session)
        toggles = [
            Option(f"t{i}", "toggle", str(i + 1), state) for i, state in enumerate(ticks.values())
        ]
        untouched = all(v == checklist.default for v in ticks.values())
        mode = "all" if checklist.default else "none"
        finish = Option(ALL, "all", mode) if untouched else Option(DONE, "done")
        return (*toggles, finish, *always)
    question = engine.question(session)
    assert question is not None
    if question.type == "choice" and question.multiple:
        chosen = engine.chosen(session)
        toggles = [
            Option(f"t{i}", "toggle", c, c in chosen) for i, c in enumerate(question.choices or [])
        ]
        finish = Option(DONE, "done") if chosen else Option(ALL, "all", "none")
        return (*toggles, finish, *always)
    return options(question, session)


def options(question: Question, session: Session | None = None) -> tuple[Option, ...]:
    options: list[Option] = []
    pending = session.pending if session is not None else None
    if pending is not None and pending.variable == question.variable:
        options.append(Option(CONFIRM, "confirm", format_value(pending.value)))
    if question.type == "yes_no":
        options += [Option(YES, "yes"), Option(NO, "no")]
    elif question.type == "choice" and not question.multiple:  # a multi-select toggles
        options += [Option(f"c{i}", "choice", c) for i, c in enumerate(question.choices or [])]
    elif question.type == "date_or_none":
        options.append(Option(NEVER, "never"))
    return (*options, Option(UNKNOWN, "unknown"), Option(BACK, "back"))


def button_value(question: Question, key: str) -> tuple[bool, Any]:
    """(valid, value) of a pressed answer button for this question."""
    if key == UNKNOWN:
        return True, None
    if key in (YES, NO):
        return question.type == "yes_no", key == YES
    if key == NEVER:
        return question.type == "date_or_none", NEVER_VALUE
    choices = question.choices or []
    index = int(key[1:]) if key[:1] == "c" and key[1:].isdigit() else len(choices)
    if question.type == "choice" and not question.multiple and index < len(choices):
        return True, choices[index]
    return False, None
