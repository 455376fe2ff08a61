"""The batch's output is written as bytes where that gives what writing text would."""

from __future__ import annotations

import io
import os

import pytest

from screen_bot.cli.screening import utf8_writer
from screen_bot.heap import keep_freed_memory

ROWS = '{"row":1,"label":"LVEF ≥ 50 %","formula":"(140 − age) × weight kg"}\n{"row":2}\n'


def _written(text: str, encoding: str, through_writer: bool) -> bytes:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding=encoding)  # newlines as sys.stdout's: os.linesep
    out.write("a line written as text first é\n")  # held in the wrapper until flushed
    if through_writer:
        utf8_writer(out)(text.encode())
    else:
        out.write(text)
    out.flush()
    return raw.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "latin-1", "utf-16"])
def test_the_bytes_written_are_those_writing_the_text_would_write(encoding: str) -> None:
    text = (
        ROWS if "16" in encoding or "8" in encoding else ROWS.translate(str.maketrans("≥−×", ">-x"))
    )
    assert _written(text, encoding, True) == _written(text, encoding, False)


def test_text_written_before_stays_before() -> None:
    assert (
        _written(ROWS, "utf-8", True) == "a line written as text first é\n".encode() + ROWS.encode()
    )


def test_keeping_freed_memory_is_set_where_malloc_is_glibcs() -> None:
    try:
        glibc = bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except ValueError:
        glibc = False
    assert keep_freed_memory() is glibc
