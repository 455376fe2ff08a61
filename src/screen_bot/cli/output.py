"""A command's output file: a path the user typed, so a failure to write it is theirs to fix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ScreenBotError


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """An OSError while writing ``path`` (no such directory, a directory, no space) becomes
    one line for the user, exit 2."""
    if path.is_dir():  # (checked first: ``FILE.part`` beside "." or "/" has no name)
        raise ScreenBotError(f"cannot write {path}: it is a directory")
    try:
        yield
    except OSError as err:
        raise ScreenBotError(f"cannot write {path}: {err.strerror or err}") from None


def is_special(path: Path) -> bool:
    """A device or a pipe (``/dev/stdout``, a FIFO): written as it is, never replaced."""
    return path.exists() and not path.is_file() and not path.is_dir()
