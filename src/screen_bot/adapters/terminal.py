"""The terminal dialog: read a line, call the screening service, print what it returns."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from ..errors import ScreenBotError, StorageFailed
from ..render import CHECKLIST_HINT
from ..results import (
    FIRST_QUESTION,
    GONE,
    NO_CHECK,
    NOT_OPEN,
    PROTOCOL_BROKEN,
    PROTOCOL_CHANGED,
    PROTOCOL_MISSING,
    REFERRAL_TAKEN,
    STALE,
    Asked,
    Choose,
    Finished,
    Invalid,
    Listing,
    Problem,
    Refused,
    Results,
    Resumed,
    Started,
    Unusual,
)
from ..service import TERMINAL, ScreeningService
from ..session import utc_now
from ..words import NOT_KEPT, QUIT_WORDS, quoted, sentence

COMMANDS = (
    "Type the answer, ? if it is not known, 'back' for the previous step, "
    "'restart' to begin again, 'quit' to stop."
)
REFUSALS = {FIRST_QUESTION: "This is the first question."}


class Stopped(Exception):
    """The user quit (or the input ended) before the screening finished."""

    def __init__(self, by_quit: bool) -> None:
        super().__init__(NOT_KEPT)
        self.by_quit = by_quit


def chat(
    service: ScreeningService,
    protocol_id: str | None = None,
    referral: str | None = None,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    check_id: str | None = None,
    resume: str | None = None,
    ttl_hours: float | None = None,
) -> Finished:
    """Run one screening to its verdict (logged by the service before it is shown).

    Without a referral the referral code is asked first (an empty line skips it). With
    ``check_id`` the screening continues the owner's quick check: its values are filled
    in and only what is missing is asked. With ``resume`` (a referral or id) the owner's
    unfinished screening of that name goes on at its current question (one left open by a
    terminal dialog that was killed).

    A screening that cannot start (its referral already has an unfinished screening)
    raises :class:`ScreenBotError` saying what to do. The dialog is bound to its screening:
    every input is addressed to the question it showed (``to``), so it only ever answers
    that question, never another screening's, whichever screening another terminal dialog
    (the same owner: on PostgreSQL, any desk of the site) started or answered meanwhile. One
    that input cannot be taken by (its screening moved on, or ended, in another dialog, or
    expired) raises :class:`ScreenBotError` saying so, and nothing of it was recorded.

    Raises :class:`Stopped` when the user quits or the input ends; the unfinished
    screening is cancelled, so nothing of it is kept. Ctrl-C (KeyboardInterrupt) is an
    interruption, not an answer: the screening is kept for ``--resume``, as a killed dialog
    leaves it, and the KeyboardInterrupt goes on up. ``ttl_hours``: the sessions' lifetime
    (SCREEN_BOT_SESSION_TTL_HOURS), to tell a screening that expired while the dialog
    waited from one that ended elsewhere.
    """
    owner = TERMINAL  # every terminal dialog is one owner (each keeps to its own screening)
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
                        f"{sentence(result.message)} Type it again to confirm, or type the "
                        "corrected value."
                    )
                case Resumed():
                    write(f"Resuming {result.label} at its current question.")
                    write(COMMANDS)
                case Refused() if not shown or result.reason in (PROTOCOL_BROKEN, PROTOCOL_MISSING):
                    # nothing started, or it cannot go on: stop, input would go astray
                    raise ScreenBotError(not_started(result))
                case Refused() if result.reason == REFERRAL_TAKEN:
                    write(
                        f"{result.detail} already has an unfinished screening: type another "
                        f"code, or skip ('screen-bot chat --resume {result.detail}' goes on "
                        "with that one)."
                    )
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

    if resume is not None:
        first = service.resume(owner, resume)
    elif check_id is not None:
        first = service.continue_check(owner, check_id)
    else:
        first = service.start(owner, protocol_id, referral, ask_referral=referral is None)
    finished = show(first)
    if finished is not None:
        return finished
    if not shown:  # never: a start shows a question, a verdict or a refusal (raised above)
        raise ScreenBotError("no screening started")
    while True:
        asked = shown[0]
        changed_at = _changed_at(service, owner, asked)  # for the words, if it goes away
        taken = partial(_taken, service, owner, asked, changed_at, ttl_hours)
        try:
            text = read("> ")
        except KeyboardInterrupt:
            write("")
            if _changed_at(service, owner, asked) is None:
                write(f"{_gone(service, owner, asked, changed_at, ttl_hours)}.")
            else:
                write(f"Interrupted; the screening is kept: {_resume_hint(asked)}.")
            raise
        except EOFError:
            write("")
            taken(service.cancel(owner, to=asked))
            write(NOT_KEPT)
            raise Stopped(by_quit=False) from None
        command = text.strip().lower()
        if command in QUIT_WORDS:
            taken(service.cancel(owner, to=asked))
            write(NOT_KEPT)
            raise Stopped(by_quit=True)
        if command in ("help", "h"):
            write(COMMANDS)
            continue
        try:
            if command == "back":
                results = service.back(owner, to=asked)
            elif command == "restart":
                results = service.restart(owner, to=asked)
            else:
                results = service.answer(owner, text, to=asked)
        except StorageFailed as err:  # the screening stays as the last write that worked left it
            raise StorageFailed(
                f"{err.message} (that input only: the screening is kept as it was before it; "
                f"{_resume_hint(asked)})"
            ) from err
        finished = show(taken(results))
        if finished is not None:
            return finished


def not_started(refused: Refused) -> str:
    """Why no screening started, and what to do, in one line."""
    if refused.reason == REFERRAL_TAKEN:
        return (
            f"{refused.detail} already has an unfinished screening (a terminal dialog that did "
            f"not end): 'screen-bot chat --resume {refused.detail}' goes on with it ('quit' "
            "there drops it)"
        )
    if refused.reason == NO_CHECK:  # the check was made a moment before, in this command
        return (
            "the quick check was replaced by another one (a 'check' at another terminal using "
            "this database) before its screening began; nothing was recorded: run the 'check "
            "--continue' again"
        )
    if refused.reason == NOT_OPEN and refused.records:
        numbers = ", ".join(map(str, refused.records))
        plural = "s" if len(refused.records) > 1 else ""
        return (
            f"no unfinished screening named '{quoted(refused.detail)}': it finished and was "
            f"logged as record{plural} {numbers} ('screen-bot log export' shows the verdict)"
        )
    if refused.reason == NOT_OPEN:
        return f"no unfinished screening named '{quoted(refused.detail)}'"  # as typed: escaped
    if refused.reason == PROTOCOL_CHANGED and not refused.detail:
        return "the protocol file changed since that screening began, so it was removed"
    if refused.reason == PROTOCOL_CHANGED:
        return (
            f"the protocol file changed since screening {refused.detail} began, so it was "
            "removed: 'screen-bot chat' starts it again"
        )
    if refused.reason == PROTOCOL_BROKEN:
        return (
            f"screening {refused.detail} cannot go on: {refused.why}; it is kept: once the "
            f"file is fixed, 'screen-bot chat --resume {refused.detail}' goes on with it (or "
            "ends it, if its protocols changed)"
        )
    if refused.reason == PROTOCOL_MISSING:
        return (
            f"screening {refused.detail} cannot go on: its protocol file is missing (no dialog "
            f"file holds {refused.why} now); it is kept: once the file is back, 'screen-bot "
            f"chat --resume {refused.detail}' goes on with it (or ends it, if the file changed)"
        )
    return refused.reason.replace("_", " ")


def _taken(
    service: ScreeningService,
    owner: int,
    asked: Asked,
    changed_at: datetime | None,
    ttl_hours: float | None,
    results: Results,
) -> Results:
    """The results of input addressed to the question ``asked`` showed; it changed nothing,
    and the dialog stops saying why, when that screening moved on in another terminal dialog
    (``chat --resume`` of it) or is gone."""
    refused = next((r for r in results if isinstance(r, Refused)), None)
    if refused is not None and refused.reason == GONE:
        raise ScreenBotError(_gone(service, owner, asked, changed_at, ttl_hours))
    if refused is not None and refused.reason == STALE:
        label = asked.referral or asked.session_id
        raise ScreenBotError(
            f"screening {label} changed in another terminal dialog while this one waited; "
            f"this input was not taken: 'screen-bot chat --resume {label}' shows its current "
            "question"
        )
    return results


def _gone(
    service: ScreeningService,
    owner: int,
    asked: Asked,
    changed_at: datetime | None,
    ttl_hours: float | None,
) -> str:
    """Why the screening this dialog showed is no longer open; no --resume brings it back.
    ``changed_at``: when it was last changed, as the expiry pass saw it."""
    label = asked.referral or asked.session_id
    records = (
        service.logged_since(owner, asked.referral, changed_at)
        if asked.referral and changed_at is not None
        else []
    )
    if records:
        numbers = ", ".join(map(str, records))
        return (
            f"screening {label} was finished in another terminal dialog and logged as "
            f"record{'s' if len(records) > 1 else ''} {numbers} ('screen-bot log export' shows "
            "the verdict); this input was not taken"
        )
    idle = None if changed_at is None else utc_now() - changed_at
    if ttl_hours is not None and idle is not None and idle >= timedelta(hours=ttl_hours):
        return (
            f"screening {label} expired: it was left open longer than "
            f"SCREEN_BOT_SESSION_TTL_HOURS ({ttl_hours:g} hours) and was removed; nothing "
            "was recorded"
        )
    return (
        f"screening {label} is no longer open (finished or quit in another terminal "
        "dialog?); nothing was recorded"
    )


def _changed_at(service: ScreeningService, owner: int, asked: Asked) -> datetime | None:
    """When the screening this dialog shows was last changed (what expiry goes by); None
    when it is no longer open."""
    (listing,) = service.list_open(owner)
    assert isinstance(listing, Listing)
    found = (o for o in listing.screenings if o.session_id == asked.session_id)
    return next((o.updated_at for o in found), None)


def _resume_hint(asked: Asked) -> str:
    return f"'screen-bot chat --resume {asked.referral or asked.session_id}' goes on with it"
