"""A command's output file: a path the user typed, so a failure to write it is theirs to fix."""

from __future__ import annotations

import codecs
import errno
import os
import select
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from itertools import accumulate, pairwise
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO

from ..errors import BadInput, ScreenBotError, StorageFailed


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


class OutputCut(Exception):
    """Standard output stopped taking a chunk of rows: ``whole`` of them went out whole (and
    perhaps a part of the next one); ``error`` says why."""

    def __init__(self, whole: int, error: OSError) -> None:
        super().__init__(whole, error)
        self.whole, self.error = whole, error


# write(data, ends): rows' output as UTF-8, row i's ending at ends()[i] (asked for if needed)
RowsWriter = Callable[[bytes, Callable[[], Sequence[int]]], None]


def rows_writer(out: TextIO) -> RowsWriter:
    """Writes rows' output to ``out``, the bytes ``out.write`` would write for their text, all
    of them or :class:`OutputCut` saying how many rows went out whole.

    To a file descriptor (POSIX) the bytes go with ``os.write`` (what ``out`` holds is
    flushed first), once a chunk, again for what a partial write left: each write's count is
    kept, where a raw stream's (``PYTHONUNBUFFERED``) is dropped by its caller and a
    buffered one that fails part-way says nothing of what it did write. A stream with no
    file descriptor (in memory) is written as it is."""
    codec = _codec(getattr(out, "encoding", None) or "")
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # (io.UnsupportedOperation is both)
        fd = -1
    if os.name != "posix" or fd < 0 or not codec:
        return _stream_writer(out, as_is=codec == "utf-8" and os.linesep == "\n")
    as_is = codec == "utf-8"  # else each row is encoded as out would encode it
    encoder: codecs.IncrementalEncoder | None = None

    def write(data: bytes, ends: Callable[[], Sequence[int]]) -> None:
        nonlocal encoder
        out.flush()
        if as_is:
            sent, error = _write_all(fd, data)
            if error is not None:
                raise OutputCut(bisect_right(ends(), sent), error)
            return
        if encoder is None:
            encoder = codecs.getincrementalencoder(codec)(getattr(out, "errors", "strict"))
            with suppress(OSError, ValueError):  # a byte-order mark only at the start, as
                if out.seekable() and out.tell():  # out itself would write one
                    encoder.setstate(0)
        rows = [encoder.encode(data[start:end].decode()) for start, end in pairwise([0, *ends()])]
        sent, error = _write_all(fd, b"".join(rows))
        if error is not None:
            raise OutputCut(bisect_right(list(accumulate(map(len, rows))), sent), error)

    return write


def _write_all(fd: int, data: bytes) -> tuple[int, OSError | None]:
    """``data`` written to ``fd`` (one write, unless it takes part of it): how many bytes
    went out, and the error that stopped the rest, if one did."""
    sent, view = 0, memoryview(data)
    while sent < len(data):
        try:
            sent += os.write(fd, view[sent:])
        except BlockingIOError:  # a non-blocking output (its opener's choice): wait for room
            select.select([], [fd], [])
        except OSError as err:
            return sent, err
    return sent, None


def _stream_writer(out: TextIO, as_is: bool) -> RowsWriter:
    buffer: BinaryIO | None = getattr(out, "buffer", None)

    def write(data: bytes, ends: Callable[[], Sequence[int]]) -> None:
        if not data:
            return
        try:
            if buffer is not None and as_is:
                out.flush()
                buffer.write(data)
            else:
                out.write(data.decode())
            out.flush()
        except OSError as err:  # how much of it went out is not known: none is counted
            raise OutputCut(0, err) from None

    return write


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return ""


def output_stopped(written_to: int, log: bool, error: OSError | None = None) -> BadInput:
    """Standard output was closed before the run's end (or from the start: ``>&-``, when
    Python's ``sys.stdout`` is None), or a write to it failed with ``error`` (a full disk):
    it stops, saying where."""
    if sys.stdout is not None:
        with suppress(OSError, ValueError):  # Python's last flush would fail again at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if error is None or isinstance(error, BrokenPipeError):
        what = "standard output was closed"
    elif error.errno == errno.ENOSPC:
        what = "the disk holding standard output is full (free some space)"
    else:
        what = f"standard output could not be written ({error.strerror or error})"
    logged = " and logged" if log else ""
    done = f"rows up to {written_to} were written{logged}; " if written_to else ""
    unlogged = ", nothing from it on is logged" if log else ""
    return BadInput(f"{what}: {done}screening stopped at row {written_to + 1}{unlogged}")


def log_stopped(
    failed: StorageFailed, logged_to: int, written_to: int, stopped_at: int | None
) -> StorageFailed:
    """A transaction of ``screen --log`` failed (``failed``: a full disk under the database,
    a lost server): the transactions before it were saved, so the line says where, as
    :func:`output_stopped` does: the rows written and logged, those written but not
    logged, and the row screening stopped at (None: the input had all been screened)."""
    what = failed.message.replace("; nothing was saved", "")  # (only that transaction)
    done = [f"rows up to {logged_to} were written and logged"] if logged_to else []
    if written_to > logged_to:
        done.append(f"rows {logged_to + 1} to {written_to} were written but not logged")
    if stopped_at is not None:
        done.append(f"screening stopped at row {stopped_at}, nothing from it on is logged")
    return StorageFailed("; ".join([what, *done]))
