"""Inline-button data: which session and step a press belongs to, and what it answers.

Format ``v|<session id>|<step>|<code>`` (well under Telegram's 64 bytes). A press is
applied only when the session is the chat's live one and still at that step, so an old
button, a finished screening's button or forged data changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PATTERN = re.compile(r"^v\|(?P<session>[0-9a-f]{8})\|(?P<step>\d{1,9})\|(?P<code>[ynub]|c\d{1,2})$")
YES, NO, UNKNOWN, BACK = "y", "n", "u", "b"


@dataclass(frozen=True)
class Press:
    session_id: str
    step: int
    code: str

    def encode(self) -> str:
        return f"v|{self.session_id}|{self.step}|{self.code}"


def decode(data: str | None) -> Press | None:
    match = PATTERN.match(data or "")
    if match is None:
        return None
    return Press(match["session"], int(match["step"]), match["code"])
