"""Answering a dialog step by step in tests: a checklist step is typed as one line.

A checklist line lists the exceptions to the checklist's default ("2 5", "3?" for
unknown, "0" for none), the way a coordinator types it in the terminal or the bot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from screen_bot.engine import BaseEngine
from screen_bot.protocol.schema import Checklist
from screen_bot.session import Session

TRUE_WORDS = {"yes", "y", "true"}
FALSE_WORDS = {"no", "n", "false"}


def truth(value: Any) -> bool | None:
    """A yes/no answer given as a value or as typed text (None: unknown)."""
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def skip_step(engine: BaseEngine[Any], session: Session, now: datetime | None = None) -> None:
    """Answer the current step 'unknown' (every item of a checklist), as the service's skip
    (its /skip and ? button) does."""
    if engine.checklist(session) is not None:
        engine.answer_items(session, dict.fromkeys(engine.step_items(session)), now)
    else:
        engine.answer(session, None, now)


def checklist_line(checklist: Checklist, items: list[str], answers: Mapping[str, Any]) -> str:
    """The typed answer of a checklist step: the numbers of the exceptions, or 0."""
    exceptions = []
    for number, variable in enumerate(items, start=1):
        value = truth(answers.get(variable))
        if value is None:
            exceptions.append(f"{number}?")
        elif value != checklist.default:
            exceptions.append(str(number))
    return " ".join(exceptions) or "0"


def step_line(
    engine: BaseEngine[Any],
    session: Session,
    answers: Mapping[str, Any],
    text_of: Callable[[Any], str] = str,
) -> str:
    """What the user types at the session's current step."""
    checklist = engine.checklist(session)
    if checklist is not None:
        return checklist_line(checklist, engine.step_items(session), answers)
    return text_of(answers.get(session.state))


def lines_for(
    engine: BaseEngine[Any],
    answers: Mapping[str, Any],
    text_of: Callable[[Any], str],
    screened_on: date | None = None,
) -> list[tuple[list[str], str]]:
    """Every step of a screening with these answers: (its variables, the line typed)."""
    session = engine.start(screened_on=screened_on)
    found = []
    while not engine.finished(session):
        items = engine.step_items(session)
        line = step_line(engine, session, answers, text_of)
        found.append((items, line))
        if engine.checklist(session) is not None:
            engine.answer_items(session, {v: truth(answers.get(v)) for v in items})
        elif engine.answer_text(session, line):
            engine.confirm(session)
    return found
