"""Secrets out of text: the bot token (and its secret half) never reach a log, a trace or
the screen, whatever library wrote the text."""

from __future__ import annotations

import logging
from collections.abc import Iterable

HIDDEN = "<secret>"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced (longest first, so a part never leaks alone)."""
    # (a secret of under 4 characters would blank ordinary words of every message)
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose output (message, arguments and traceback) holds no secret."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)
