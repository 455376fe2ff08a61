"""A screening session: the answers given so far, the question on screen, the history."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field

from .protocol import Protocol

REFERRAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$"


def utc_now() -> datetime:
    return datetime.now(UTC)


class ProtocolChanged(Exception):
    """A stored session was made under another version of its dialog file."""


Value = bool | int | float | str | list[str] | None


class Answer(BaseModel):
    # Dates are kept as ISO text and multi-select answers as lists; the engine types them.
    value: Value
    at: datetime
    group: str | None = None  # the checklist it was answered in (one step; back undoes it)
    filled: bool = False  # taken from a quick check, not asked


class Draft(BaseModel):
    """A checklist or multi-select step being ticked: kept so taps survive a restart.

    Valid only while the session is at ``step`` (any answer or back moves it on).
    """

    step: int
    items: dict[str, bool | None] = {}  # checklist: the items changed from the default
    chosen: list[str] = []  # multi-select: the choices ticked


class Pending(BaseModel):
    """An unusual value waiting for the user to confirm it (or to type another)."""

    variable: str
    value: int | float
    filled: bool = False  # from a quick check: the user did not type it


class Refusal(BaseModel):
    """A pre-filled value its question refused when the dialog reached it (a planned date
    that has passed since the quick check), and why: the question is asked instead."""

    variable: str
    value: Value
    reason: str


class Session(BaseModel):
    id: str = Field(default_factory=lambda: secrets.token_hex(4))
    protocol_id: str
    protocol_version: str
    protocol_sha256: str
    # an ``all`` screening: the ids of the protocols it began with (its version text cannot
    # tell them: a protocol's version may hold " + "); None for one protocol, and for an
    # ``all`` screening stored before this was kept
    protocol_members: list[str] | None = None
    referral: str | None = Field(None, pattern=REFERRAL_PATTERN)
    state: str
    screened_on: date = Field(default_factory=lambda: utc_now().date())
    pending: Pending | None = None
    awaiting_referral: bool = False  # the referral code is asked before question 1
    prefilled: dict[str, Value] = {}  # quick-check answers, applied when their question comes
    draft: Draft | None = None
    answers: dict[str, Answer] = {}
    history: list[str] = []
    step: int = 0
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    # set by the engine's fill, said once by the service; never stored (a field, not a
    # private attribute: those cost every session a dict of its own, ~180 bytes)
    refused: Refusal | None = Field(default=None, exclude=True)

    def refuse(self, refusal: Refusal) -> None:
        self.refused = refusal

    def take_refusal(self) -> Refusal | None:
        """The pre-filled value refused since the last call (see :class:`Refusal`), once."""
        refused, self.refused = self.refused, None
        return refused

    def values(self) -> dict[str, Any]:
        return {variable: answer.value for variable, answer in self.answers.items()}

    def check_protocol(self, protocol: Protocol) -> None:
        if (self.protocol_id, self.protocol_sha256) != (protocol.id, protocol.sha256):
            raise ProtocolChanged(
                f"this screening was started under {self.protocol_id} version "
                f"{self.protocol_version} ({self.protocol_sha256[:12]}); the dialog file is now "
                f"{protocol.id} version {protocol.version} ({protocol.sha256[:12]})"
            )
