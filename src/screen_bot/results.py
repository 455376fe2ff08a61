"""What the screening service returns: the results a front end shows, in order, and why
a call changed nothing (the reasons a :class:`Refused` carries).

Data only, no transport's words: each adapter renders the kinds it knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .protocol.schema import Checklist, Question
from .storage.sessions import OpenScreening
from .verdict import Verdict

if TYPE_CHECKING:  # imported at the first quick check
    from .quick_check import Judged

# Why nothing changed (an adapter words each one).
NO_SCREENING = "no_screening"
STALE = "stale"  # the button's question was already answered
GONE = "gone"  # finished, cancelled or expired
PAUSED = "paused"  # another screening is active
FORGED = "forged"  # the button does not fit the question
FIRST_QUESTION = "first_question"
REFERRAL_TAKEN = "referral_taken"  # detail: the referral
PROTOCOL_CHANGED = "protocol_changed"  # the dialog file changed; the screening was removed
PROTOCOL_BROKEN = "protocol_broken"  # detail: the label; why: its file is broken (it is kept)
PROTOCOL_MISSING = "protocol_missing"  # detail: the label; why: the protocol ids no file holds
NOT_OPEN = "not_open"  # /resume of a label that is not open
NO_CHECK = "no_check"  # "continue" of a quick check that was replaced or expired
CHECK_CONTINUED = "check_continued"  # "continue" of a quick check continued already
NO_OFFER = "no_offer"  # a pick from a protocol offer already used, replaced or expired
NOTHING_TICKED = "nothing_ticked"  # "done" at a multi-select with no choice ticked
OUTDATED = "outdated"  # a toggle or "done" without the ticks shown (an older keyboard)


class Result:
    """Something to show. Adapters render the kinds they know; new kinds may be added."""


@dataclass(frozen=True)
class Option(Result):
    """A button of the current question: ``key`` goes back in :meth:`ScreeningService.press`."""

    key: str
    kind: Literal[
        "yes",
        "no",
        "choice",
        "unknown",
        "back",
        "confirm",
        "toggle",
        "all",
        "done",
        "never",
        "skip",
    ]
    choice: str | None = None  # a choice's text; for confirm, the value to confirm
    state: bool | None = None  # a toggle's tick: yes, no, or unknown (None)


@dataclass(frozen=True)
class Asked(Result):
    """Show this question (then tell the service which message shows it: ``shown``)."""

    session_id: str
    step: int
    referral: str | None
    question: Question
    progress: tuple[int, int]
    text: str  # the shared wording: progress, question (or checklist), help line
    options: tuple[Option, ...]
    checklist: Checklist | None = None  # a checklist step: its items are ``items``
    items: tuple[Question, ...] = ()


@dataclass(frozen=True)
class Finished(Result):
    """The screening ended: one verdict per protocol screened, best first, logged as
    records ``log_numbers`` under one ``screening_id``."""

    verdicts: tuple[Verdict, ...]
    log_numbers: tuple[int, ...]
    text: str  # the shared wording of the verdicts
    screening_id: str = ""
    delivery: int | None = None  # with outbox=True: pass to ``delivered`` once it was sent

    @property
    def verdict(self) -> Verdict:
        """The verdict (of a one-protocol screening; of a set's, the best)."""
        return self.verdicts[0]


@dataclass(frozen=True)
class Retired(Result):
    """The message that showed a question can no longer be answered: update it.

    ``how``: answered (show ``question`` → ``value``), back, cancelled, or dropped (only
    take its buttons away).
    """

    message_id: int
    how: Literal["answered", "back", "cancelled", "dropped"]
    question: Question | None = None
    value: Any = None
    answers: tuple[tuple[Question, Any], ...] = ()  # a checklist's items and their answers


@dataclass(frozen=True)
class Redrawn(Result):
    """A tick changed: show ``asked`` in place of message ``message_id`` (same step)."""

    message_id: int | None
    asked: Asked


@dataclass(frozen=True)
class Checked(Result):
    """A quick check: ``text`` says what was read and what it decides; ``check_id`` (when
    something was read) lets :meth:`ScreeningService.continue_check` start from it."""

    text: str
    judged: tuple[Judged, ...]
    check_id: str | None
    decided: bool  # nothing is missing: continuing asks nothing (but the referral) and logs it
    left_out: tuple[str, ...] = ()  # the broken files not checked (in ``text`` too)


@dataclass(frozen=True)
class Details(Result):
    """The /details setting, now."""

    on: bool


@dataclass(frozen=True)
class Started(Result):
    label: str
    protocol_id: str
    protocol_version: str
    title: str
    paused: str | None  # the label of the screening this one paused
    left_out: tuple[str, ...] = ()  # the broken files not screened (see Catalog.left_out)


@dataclass(frozen=True)
class Invalid(Result):
    """The typed answer does not fit the question; ``message`` says why (it is asked again)."""

    message: str


@dataclass(frozen=True)
class Unusual(Result):
    """The answer is outside the protocol's plausibility limits: confirm it or correct it.

    Nothing was recorded; the value waits, and the question is asked again with a button
    that confirms it (typing the same value again confirms it too).
    """

    message: str


@dataclass(frozen=True)
class Early(Result):
    """Typed input that arrived before the current question was delivered: nothing changed.

    ``reshown``: the question had never been delivered (a crash between saving the last
    answer and sending it), so it follows, asked again; otherwise it is already on screen.
    """

    reshown: bool


@dataclass(frozen=True)
class Status(Result):
    answered: int


@dataclass(frozen=True)
class Resumed(Result):
    label: str


@dataclass(frozen=True)
class Cancelled(Result):
    """Screening ``label`` was cancelled; ``active``: the active screening, left as it was,
    when the one cancelled was another (a paused one, named)."""

    label: str
    active: str | None = None


@dataclass(frozen=True)
class Listing(Result):
    screenings: tuple[OpenScreening, ...]


@dataclass(frozen=True)
class Forgotten(Result):
    count: int


@dataclass(frozen=True)
class Refused(Result):
    """Nothing changed; ``reason`` is one of the module's reason constants. ``records``:
    for a resume of a screening that already finished, the numbers it was logged as;
    ``why``: for PROTOCOL_BROKEN, the broken file and its first problem; for
    PROTOCOL_MISSING, the protocols no dialog file holds now (comma-separated)."""

    reason: str
    detail: str = ""
    records: tuple[int, ...] = ()
    why: str = ""


@dataclass(frozen=True)
class Choose(Result):
    """Several protocols and none named: offer ``choices`` (ids, and ``all``); the one
    chosen goes to :meth:`ScreeningService.start_offered` with ``offer_id``, and starts the
    screening with this ``referral``."""

    choices: tuple[str, ...]
    referral: str | None
    offer_id: str


@dataclass(frozen=True)
class Problem(Result):
    """An error the user can act on (unknown protocol, a name as referral), in words."""

    message: str


Results = list[Result]
