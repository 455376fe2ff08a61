"""The terminal dialog: read a line, call the screening service, print what it returns."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ScreenBotError
from ..render import CHECKLIST_HINT
from ..service import (
    FIRST_QUESTION,
    NO_CHECK,
    REFERRAL_TAKEN,
    TERMINAL,
    Asked,
    Choose,
    Finished,
    Invalid,
    Problem,
    Refused,
    Results,
    ScreeningService,
    Started,
    Unusual,
)
from ..words import NOT_KEPT

COMMANDS = (
    "Type the answer, ? if it is not known, 'back' for the previous step, "
    "'restart' to begin again, 'quit' to stop."
)
QUIT_WORDS = frozenset({"quit", "exit", "q"})
REFUSALS = {FIRST_QUESTION: "This is the first question."}


class Stopped(Exception):
    """The user quit (or the input ended) before the screening finished."""

    def __init__(self, by_quit: bool) -> None:
        super().__init__(NOT_KEPT)
        self.by_quit = by_quit


CONFIRM_HINT = "Type it again to confirm, or type the corrected value."


def chat(
    service: ScreeningService,
    protocol_id: str | None = None,
    referral: str | None = None,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    owner: int = TERMINAL,
    check_id: str | None = None,
) -> Finished:
    """Run one screening to its verdict (logged by the service before it is shown).

    Without a referral the referral code is asked first (an empty line skips it). With
    ``check_id`` the screening continues the owner's quick check: its values are filled
    in and only what is missing is asked.

    Raises :class:`Stopped` when the user quits or the input ends; the unfinished
    screening is cancelled, so nothing of it is kept.
    """
    shown: list[Asked] = []

    def show(results: Results) -> Finished | None:
        for result in results:
            match result:
                case Started():
                    write(f"{result.title} (version {result.protocol_version})")
                    write(
                        "Pre-screen only: the investigator confirms eligibility. "
                        "Never type patient names."
                    )
                    write(COMMANDS)
                case Asked():
                    shown[:] = [result]
                    write("")
                    write(result.text)
                    if result.checklist is not None and result.checklist.help:
                        write(CHECKLIST_HINT[result.checklist.mode])
                case Invalid():
                    write(result.message)
                case Unusual():
                    write(
                        f"{result.message}. Type it again to confirm, or type the corrected value."
                    )
                case Refused() if result.reason == REFERRAL_TAKEN:
                    write(f"{result.detail} already has an unfinished screening.")
                case Refused() if result.reason == NO_CHECK:
                    raise ScreenBotError("no quick check to continue")
                case Refused():
                    write(REFUSALS.get(result.reason, f"({result.reason.replace('_', ' ')})"))
                    if shown:
                        write("")
                        write(shown[0].text)
                case Problem():
                    raise ScreenBotError(result.message)
                case Choose():  # the command line asks before it starts (cli.options.choose)
                    choices = ", ".join(result.choices)
                    raise ScreenBotError(
                        f"several protocols: choose one with --protocol ({choices})"
                    )
                case Finished():
                    write("")
                    write(result.text)
                    return result
        return None

    if check_id is not None:
        first = service.continue_check(owner, check_id)
    else:
        first = service.start(owner, protocol_id, referral, ask_referral=referral is None)
    finished = show(first)
    if finished is not None:
        return finished
    while True:
        try:
            text = read("> ")
        except (EOFError, KeyboardInterrupt):
            write("")
            _stop(service, owner, write)
            raise Stopped(by_quit=False) from None
        command = text.strip().lower()
        if command in QUIT_WORDS:
            _stop(service, owner, write)
            raise Stopped(by_quit=True)
        if command in ("help", "h"):
            write(COMMANDS)
            continue
        if command == "back":
            results = service.back(owner)
        elif command == "restart":
            results = service.restart(owner)
        else:
            results = service.answer(owner, text)
        finished = show(results)
        if finished is not None:
            return finished


def _stop(service: ScreeningService, owner: int, write: Callable[[str], None]) -> None:
    service.cancel(owner)
    write(NOT_KEPT)
