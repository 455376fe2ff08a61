"""The terminal dialog: one question at a time, with progress, help, back and quit."""

from __future__ import annotations

from collections.abc import Callable

from ..answers import AnswerError
from ..engine import Engine
from ..render import question_text, verdict_text
from ..session import Session
from ..verdict import Verdict

COMMANDS = (
    "Type the answer, ? if it is not known, 'back' for the previous question, "
    "'restart' to begin again, 'quit' to stop."
)


def chat(
    engine: Engine,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    referral: str | None = None,
    on_verdict: Callable[[Verdict, Session], None] | None = None,
) -> Verdict | None:
    """Run one screening; return its verdict, or None when the user quits.

    ``on_verdict`` (e.g. the screening log) runs before the verdict is shown.
    """
    session: Session = engine.start(referral)
    write(f"{engine.protocol.spec.title} (version {engine.protocol.version})")
    write("Pre-screen only: the investigator confirms eligibility. Never type patient names.")
    write(COMMANDS)
    while not engine.finished(session):
        write("")
        write(question_text(engine, session))
        try:
            text = read("> ")
        except (EOFError, KeyboardInterrupt):
            write("\nStopped; this screening was not finished and is not kept.")
            return None
        command = text.strip().lower()
        if command in ("quit", "exit", "q"):
            write("Stopped; this screening was not finished and is not kept.")
            return None
        if command == "back":
            if not engine.back(session):
                write("This is the first question.")
            continue
        if command == "restart":
            engine.restart(session)
            continue
        if command in ("help", "h"):
            write(COMMANDS)
            continue
        try:
            unusual = engine.answer_text(session, text)
        except AnswerError as err:
            write(str(err))
            continue
        if unusual:
            write(f"{unusual}. Type it again to confirm, or type the corrected value.")
    verdict = engine.verdict(session)
    if on_verdict is not None:
        on_verdict(verdict, session)
    write("")
    write(verdict_text(verdict))
    return verdict
