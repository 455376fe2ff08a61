"""A screening session: the answers given so far, the question on screen, the history."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from .protocol import Protocol

REFERRAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$"


def utc_now() -> datetime:
    return datetime.now(UTC)


class ProtocolChanged(Exception):
    """A stored session was made under another version of its dialog file."""


class Answer(BaseModel):
    value: bool | int | float | str | None
    at: datetime


class Session(BaseModel):
    id: str = Field(default_factory=lambda: secrets.token_hex(4))
    protocol_id: str
    protocol_version: str
    protocol_sha256: str
    referral: str | None = Field(None, pattern=REFERRAL_PATTERN)
    state: str
    answers: dict[str, Answer] = {}
    history: list[str] = []
    step: int = 0
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    def values(self) -> dict[str, Any]:
        return {variable: answer.value for variable, answer in self.answers.items()}

    def check_protocol(self, protocol: Protocol) -> None:
        if (self.protocol_id, self.protocol_sha256) != (protocol.id, protocol.sha256):
            raise ProtocolChanged(
                f"this screening was started under {self.protocol_id} version "
                f"{self.protocol_version} ({self.protocol_sha256[:12]}); the dialog file is now "
                f"{protocol.id} version {protocol.version} ({protocol.sha256[:12]})"
            )
