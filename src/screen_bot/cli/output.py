"""A command's output file: a path the user typed, so a failure to write it is theirs to fix."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from ..errors import BadInput, ScreenBotError


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


@contextmanager
def owner_only(path: Path, mode: str = "w", **how: Any) -> Iterator[IO[Any]]:
    """``path`` opened for writing (``mode`` and ``how`` as for ``open``) for a file of
    screening data: written as ``FILE.part``, created readable by its owner only (0600),
    and moved over ``path`` once whole, so no half file is left and a looser file there is
    replaced by a tight one. A device or a pipe is written as it is."""
    with writing(path):
        if is_special(path):
            with path.open(mode, **how) as stream:
                yield stream
            return
        partial = path.with_name(path.name + ".part")
        try:
            partial.unlink(missing_ok=True)  # a new file, so it is created owner-only
            handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(handle, mode, **how) as stream:
                yield stream
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)


def output_closed(written_to: int, log: bool) -> BadInput:
    """Standard output was closed before the run's end (or from the start: ``>&-``, when
    Python's ``sys.stdout`` is None): it stops, saying where."""
    if sys.stdout is not None:
        with suppress(OSError, ValueError):  # Python's last flush would fail again at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    logged = " and logged" if log else ""
    done = f"rows up to {written_to} were written{logged}; " if written_to else ""
    unlogged = ", nothing from it on is logged" if log else ""
    return BadInput(
        f"standard output was closed: {done}screening stopped at row {written_to + 1}{unlogged}"
    )
