"""Screen the rows of a file, in this process or in several, writing results in row order.

With ``jobs`` > 1 the rows go in chunks to ``jobs - 1`` worker processes, and this process
screens a chunk itself whenever they all are busy; the chunks come back in order, and only
a few per process are held, so memory stays flat however long the file is. Each good row
gives one output (a compact JSON object, or the verdict as text), as UTF-8 bytes made once
where the row is screened, and, with a log, what the screening log keeps; each bad row
gives its problems for standard error.

Against a protocol set (``--protocol all``) a row gives one output object with a verdict
per protocol, best first, and one log record per protocol under one screening id.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import secrets
import signal
import stat
import sys
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from itertools import accumulate, islice
from pathlib import Path
from typing import IO, Any, Literal

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

from .batch import (
    REFERRAL_KEY,
    ROW_KEYS,
    SCREENED_ON_KEY,
    InputFormat,
    Kind,
    Protocols,
    Row,
    Unit,
    given_day,
    jsonl_block_units,
    jsonl_blocks,
    leave_out,
    left_out_of,
    orjson_object,
    read_units,
    typed,
)
from .errors import BadInput, BadReferral
from .protocol import Protocol, load
from .protocol.sets import LeftOut, ProtocolSet
from .referrals import check_referral
from .rules import whole_row
from .verdict import Verdict, parts_fields, row_fields, verdict_json

Output = Literal["json", "text"]
Work = tuple[Any, ...]  # the arguments of a screen function after the protocol
CHUNK = 2_000  # rows per task of a worker
BLOCK = 1 << 20  # bytes of JSON Lines per task of a worker (about 1,000 rows of 1 KB)
LAST_BLOCK = 1 << 16  # the smallest, at the end of a file
# Works in flight per worker: a worker's result is seen here up to a few ms late (the pool's
# thread waits for the GIL), and with two the worker then often ran out of work.
IN_FLIGHT = 3
HELD = 4  # works held at most per process (in flight, or done and waiting for their turn)
RESULTS_PIPE = 1 << 20  # bytes; Linux's most for a user (/proc/sys/fs/pipe-max-size)
_FORK = "fork" in multiprocessing.get_all_start_methods()  # workers inherit what is loaded
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class FileChanged(BadInput):
    """A block a worker read again is not the block whose lines were counted here: the file
    was written to while it was read."""


@dataclass
class Chunk:
    """What a run of rows gives: output (UTF-8), problems, and what the log would keep."""

    output: list[bytes] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # the number of the row of each output
    # where each output ends, once they are joined into one (a worker's, sent back)
    ends: list[int] | None = None
    problems: list[str] = field(default_factory=list)  # "header: …" / "row N: …"
    bad_rows: int = 0
    # (verdict JSON, answers JSON, screening id): one per protocol screened
    logged: list[tuple[str, str, str]] = field(default_factory=list)
    last_row: int = 0  # the number of its last row, good or bad (0: none)

    def output_ends(self) -> list[int]:
        """Where each row's output ends in the output joined."""
        return self.ends if self.ends is not None else list(accumulate(map(len, self.output)))


def screen_rows(
    rows: Iterable[Row], protocol: Protocols, output: Output, log: bool, chunk: Chunk | None = None
) -> Chunk:
    """What ``rows`` give, added to ``chunk`` (a new one by default)."""
    chunk = chunk if chunk is not None else Chunk()
    protocols = protocol if isinstance(protocol, ProtocolSet) else None
    one = protocol if isinstance(protocol, Protocol) else None
    as_json = output == "json"
    add, numbered = chunk.output.append, chunk.rows.append
    row = None
    for row in rows:
        if row.notes:
            chunk.problems += [f"header: {note}" for note in row.notes]
        if row.errors:
            chunk.bad_rows += 1
            where = "header" if row.number == 0 else f"row {row.number}"
            chunk.problems += [f"{where}: {error}" for error in row.errors]
            continue
        screening_id = secrets.token_hex(8) if log else ""
        if protocols is not None:
            _screen_against_all(chunk, row, protocols, output, screening_id)
            continue
        assert one is not None  # a protocol, or a set (above)
        fields = row_fields(one, row.answers, referral=row.referral, screened_on=row.screened_on)
        written = verdict_json(fields) if as_json or log else b""
        if as_json:
            add(b'{"row":%d,%s\n' % (row.number, written[1:]))
        else:
            add(shown(row.number, Verdict(**fields), output).encode())
        numbered(row.number)
        if log:
            answers = json.dumps(_loggable(one, row.answers))
            chunk.logged.append((written.decode(), answers, screening_id))
    if row is not None:
        chunk.last_row = row.number
    return chunk


def _screen_against_all(
    chunk: Chunk, row: Row, protocols: ProtocolSet, output: Output, screening_id: str
) -> None:
    """One row against every protocol of the set: one output, a log entry per protocol."""
    from .set_engine import fields_of_each  # with the dialog engine: only for a set

    found = fields_of_each(
        protocols, row.answers, referral=row.referral, screened_on=row.screened_on
    )
    written = [verdict_json(f) for _, f, _ in found] if output == "json" or screening_id else []
    if output == "json":
        head = json.dumps(
            {"row": row.number, "referral": row.referral, "screened_on": str(row.screened_on)},
            separators=(",", ":"),  # compact, as each verdict in it and a single protocol's
        ).encode()
        chunk.output.append(b'%s,"verdicts":[%s]}\n' % (head[:-1], b",".join(written)))
    else:
        from .render import verdicts_text  # text output only: it imports the dialog engine

        label = f" ({row.referral})" if row.referral else ""
        verdicts = [Verdict(**fields) for _, fields, _ in found]
        chunk.output.append(f"--- row {row.number}{label}\n{verdicts_text(verdicts)}\n".encode())
    chunk.rows.append(row.number)
    if screening_id:
        chunk.logged += [
            (text.decode(), json.dumps(_loggable(member, own)), screening_id)
            for text, (member, _, own) in zip(written, found, strict=True)
        ]


def _loggable(protocol: Protocol, answers: dict[str, Any]) -> dict[str, Any]:
    """``engine.loggable_answers``: the dialog engine's modules are imported only for a log."""
    from .engine import loggable_answers

    return loggable_answers(protocol, answers)


def shown(number: int, verdict: Verdict, output: Output) -> str:
    """A row's output: compact JSON (pydantic-core's, the row number first), or text."""
    if output == "json":
        return f'{{"row":{number},{verdict.model_dump_json()[1:]}\n'
    from .render import verdict_text  # text output only: it imports the dialog engine

    label = f" ({verdict.referral})" if verdict.referral else ""
    return f"--- row {number}{label}\n{verdict_text(verdict)}\n"


def screen_file(
    raw: IO[bytes],
    protocol: Protocols,
    fmt: InputFormat,
    output: Output,
    log: bool,
    jobs: int,
    day: date,
    pool: ProcessPoolExecutor | None = None,
) -> Generator[Chunk, None, None]:
    """Screen every row, ``CHUNK`` rows at a time, in order; ``day`` (the run's today) is
    the screening date of every row without one, in every process. ``pool``: the run's
    :func:`workers`, started by the caller (else the run starts its own)."""
    # What is loaded now outlives the run: the collector need not scan it again and again
    # for each row's short-lived objects (a few per cent of the time per row). It is on
    # during the run, also where start-up ran without it (``cli/entry.py``), and left as it
    # was after.
    gc.freeze()
    was_on = gc.isenabled()
    gc.enable()
    try:
        with nullcontext(pool) if pool is not None else workers(protocol, jobs) as started:
            yield from _screen_file(raw, protocol, fmt, output, log, jobs, day, started)
    finally:
        if not was_on:
            gc.disable()
        gc.unfreeze()


def _screen_file(
    raw: IO[bytes],
    protocol: Protocols,
    fmt: InputFormat,
    output: Output,
    log: bool,
    jobs: int,
    day: date,
    pool: ProcessPoolExecutor | None,
) -> Iterator[Chunk]:
    if pool is not None and fmt == "jsonl":
        yield from _screen_blocks(raw, protocol, output, log, jobs, day, pool)
        return
    found = read_units(raw, protocol, fmt)
    shape = (found.kind, found.header, day)  # what typing a unit needs besides the unit
    if pool is None:
        while batch := list(islice(found.units, CHUNK)):
            yield screen_units(batch, shape, protocol, output, log)
        return
    # Workers parse, type and screen; only splitting the input into rows stays here.
    batches = iter(lambda: list(islice(found.units, CHUNK)), [])
    works = (_as_is((batch, shape, output, log)) for batch in batches)
    yield from _shared(pool, jobs, protocol, _screen_units_of, works)


def _screen_blocks(
    raw: IO[bytes],
    protocol: Protocols,
    output: Output,
    log: bool,
    jobs: int,
    day: date,
    pool: ProcessPoolExecutor,
) -> Iterator[Chunk]:
    """JSON Lines in blocks of whole lines: the workers (and this process) split, parse, type
    and screen them; here only the lines are counted (for the row numbers), in C. A forked
    worker reads a block of a regular file itself (os.pread), given where it is and the
    CRC-32 of the bytes counted here (the file may be rewritten meanwhile; reckoned only for
    a block sent), unless the block is not the file's bytes (a line over MAX_LINE, cut): no
    copying through a pipe."""
    size = _block_size(raw, jobs)
    fd = raw.fileno() if _FORK and not isinstance(size, int) and hasattr(raw, "peek") else -1

    def works() -> Iterator[tuple[Work, Callable[[], Work]]]:
        number = 1
        start = raw.tell() if fd >= 0 else 0
        for index, block in enumerate(jsonl_blocks(raw, size)):
            here = (block, number, index == 0, output, log, day)
            end = raw.tell() if fd >= 0 else 0
            if fd >= 0 and end - start == len(block):
                yield here, partial(_to_reread, fd, start, here)
            else:
                yield _as_is(here)
            start = end
            number += block.count(b"\n")

    yield from _shared(pool, jobs, protocol, screen_block, works())


def _as_is(work: Work) -> tuple[Work, Callable[[], Work]]:
    return work, lambda: work


def _to_reread(fd: int, start: int, work: Work) -> Work:
    """A block's work as a worker reads it from the file itself."""
    block = work[0]
    return ((fd, start, len(block), zlib.crc32(block)), *work[1:])


def _block_size(raw: IO[bytes], jobs: int) -> int | Callable[[], int]:
    """BLOCK bytes a block; for a regular file, smaller ones over its last ``HELD * jobs``
    blocks, so that the processes run out of work together (a worker's last works are
    short, and this process does not wait long for them)."""
    try:
        found = os.fstat(raw.fileno())
    except (AttributeError, OSError, ValueError):  # no file underneath (e.g. io.BytesIO)
        return BLOCK
    if not stat.S_ISREG(found.st_mode):
        return BLOCK
    end = found.st_size

    def size() -> int:
        return max(LAST_BLOCK, min(BLOCK, (end - raw.tell()) // (HELD * jobs)))

    return size


@contextmanager
def workers(protocol: Protocols, jobs: int) -> Iterator[ProcessPoolExecutor | None]:
    """The ``jobs - 1`` worker processes of a run of ``jobs`` (None for one), started now.

    A run that logs starts them before it opens its store: a worker forked later would hold
    a copy of the store's connection (PostgreSQL's socket), and so keep the run's session,
    with its transaction and the write lock, open on the server after the run is killed."""
    if jobs <= 1:
        yield None
        return
    with _pool(protocol, jobs - 1) as pool:
        # A fork pool forks all its workers at its first task; a spawned worker (no fork)
        # inherits no descriptor of this process's, so it may start later.
        pool.submit(os.getpid)
        yield pool


def _pool(protocol: Protocols, jobs: int) -> ProcessPoolExecutor:
    parent = os.getpid()
    if _FORK:  # a forked worker is handed the loaded protocols as they are (no pickling)
        fork = multiprocessing.get_context("fork")
        initargs: tuple[Any, ...] = (parent, protocol)
        pool = ProcessPoolExecutor(jobs, mp_context=fork, initializer=_use, initargs=initargs)
    else:
        members = protocol.members if isinstance(protocol, ProtocolSet) else (protocol,)
        paths = tuple(m.path for m in members)
        initargs = (parent, paths, left_out_of(protocol))
        pool = ProcessPoolExecutor(jobs, initializer=_load, initargs=initargs)
    _widen_results_pipe(pool)
    return pool


def _widen_results_pipe(pool: ProcessPoolExecutor) -> None:
    """Let a worker's result (a block's output, about 0.7 MB) fit in the pipe (Linux).

    The pool's thread that reads results needs the GIL for each 64 KB read of a pipe of
    the default size; this process holds it while it screens, passing it on every 5 ms,
    so a worker stayed blocked writing its result for tens of ms. The pipe is the pool's
    (a private attribute): where it is not there, or cannot grow, nothing changes."""
    reader = getattr(getattr(pool, "_result_queue", None), "_reader", None)
    widen = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if reader is None or widen is None:
        return
    with suppress(OSError):
        fcntl.fcntl(reader.fileno(), widen, RESULTS_PIPE)


def _shared(
    pool: ProcessPoolExecutor,
    jobs: int,
    protocol: Protocols,
    screen: Callable[..., Chunk],
    works: Iterator[tuple[Work, Callable[[], Work]]],
) -> Iterator[Chunk]:
    """``screen(protocol, *work)`` of each work, in the works' order, by the pool's
    ``jobs - 1`` workers or by this process, ``jobs`` processes in all; ``works`` gives each
    work as screened here and how to make it to send to a worker (the same, or lighter). The
    workers are kept fed (``IN_FLIGHT`` works each); whenever they all are busy and the
    oldest work is not done, this process screens the next work itself instead of waiting
    (it also writes the output, so it takes fewer). At most ``HELD * jobs`` works are held:
    memory stays flat."""
    workers, held = jobs - 1, HELD * jobs
    pending: deque[Future[Chunk] | Chunk] = deque()
    for work, sent in works:
        while pending and _ready(pending[0]):
            yield _result(pending.popleft())
        busy = sum(isinstance(p, Future) and not p.done() for p in pending)
        if busy < IN_FLIGHT * workers and len(pending) < held:
            pending.append(pool.submit(_in_worker, screen, *sent()))
        elif len(pending) < held:
            pending.append(screen(protocol, *work))
        else:  # all held already: wait for the oldest, then hand this work on
            yield _result(pending.popleft())
            pending.append(pool.submit(_in_worker, screen, *sent()))
    while pending:
        yield _result(pending.popleft())


def _ready(item: Future[Chunk] | Chunk) -> bool:
    return not isinstance(item, Future) or item.done()


def _result(item: Future[Chunk] | Chunk) -> Chunk:
    return item.result() if isinstance(item, Future) else item


Shape = tuple[Kind, tuple[str, ...], date]  # the file's kind and CSV header, the run's day


def screen_units(
    units: list[Unit], shape: Shape, protocol: Protocols, output: Output, log: bool
) -> Chunk:
    kind, header, day = shape
    if kind == "jsonl" and output == "json" and not log and isinstance(protocol, Protocol):
        checks = whole_row.record_checks(protocol, ROW_KEYS)
        if checks is not None:
            return _screen_lines(units, protocol, checks, day)
    rows = (typed(unit, kind, header, protocol, day) for unit in units)
    return screen_rows(rows, protocol, output, log)


def _screen_lines(units: list[Unit], protocol: Protocol, checks: whole_row.Row, day: date) -> Chunk:
    """:func:`screen_rows` of JSON Lines units typed, to JSON without a log: a line
    :func:`line_fields` takes is screened straight from orjson's reading; any other goes
    the general way (a test holds both to the same output)."""
    chunk = Chunk()
    add, numbered = chunk.output.append, chunk.rows.append
    for unit in units:
        fields = None if unit.problems else line_fields(unit.payload, protocol, checks, day)
        if fields is None:
            screen_rows((typed(unit, "jsonl", (), protocol, day),), protocol, "json", False, chunk)
        else:
            add(b'{"row":%d,%s\n' % (unit.number, verdict_json(fields)[1:]))
            numbered(unit.number)
    if units:
        chunk.last_row = units[-1].number
    return chunk


def line_fields(
    text: str, protocol: Protocol, checks: whole_row.Row, day: date
) -> dict[str, Any] | None:
    """The verdict's fields of a JSON Lines line, as :func:`~.batch.typed` and
    :func:`~.verdict.row_fields` give them, when orjson reads it (:func:`orjson_object`), its
    referral and screening date are good and ``checks`` (``whole_row.record_checks``) take
    the record as read: then its typing is the generated row typing's, under which orjson's
    reading is json's (see :func:`~.batch.typed_fast`). Else None."""
    record = orjson_object(text)
    if record is None:
        return None
    referral, given = record.get(REFERRAL_KEY), record.get(SCREENED_ON_KEY)
    if referral is not None:
        if type(referral) is not str:
            return None
        try:
            check_referral(referral)
        except BadReferral:
            return None
    screened_on = day if given is None else given_day(given)
    if screened_on is None:
        return None
    parts = checks(record, screened_on)
    if parts is None:
        return None
    return parts_fields(protocol, checks, parts, referral, screened_on)


_worker_protocol: Protocols | None = None


def _load(parent: int, paths: tuple[Path, ...], left_out: LeftOut) -> None:
    loaded = tuple(load(path) for path in paths)
    protocol = loaded[0] if len(loaded) == 1 else ProtocolSet(loaded)
    leave_out(protocol, left_out)
    _use(parent, protocol)


def _use(parent: int, protocol: Protocols) -> None:
    global _worker_protocol
    _end_with(parent)
    _worker_protocol = protocol
    gc.freeze()  # as in screen_file: the worker's protocols live as long as it does


def _end_with(parent: int) -> None:
    """Linux: this worker is killed when ``parent`` (the process that started it) ends, by
    SIGKILL too; by itself it would not notice (it holds both ends of the pool's pipes) and
    would run on for ever. (The signal comes when the thread that forked it ends: the run's
    main thread.) Elsewhere (no prctl) nothing is done: a killed run's workers stay."""
    if sys.platform != "linux":
        return
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # it ended before the signal was asked for
        os._exit(1)


def _in_worker(screen: Callable[..., Chunk], *work: Any) -> Chunk:
    assert _worker_protocol is not None  # set by the pool's initializer
    chunk = screen(_worker_protocol, *work)
    chunk.ends = chunk.output_ends()
    chunk.output = [b"".join(chunk.output)]  # one bytes object to send back, not thousands
    return chunk


def _screen_units_of(
    protocol: Protocols, units: list[Unit], shape: Shape, output: Output, log: bool
) -> Chunk:
    return screen_units(units, shape, protocol, output, log)


def _pread(fd: int, offset: int, length: int) -> bytes:
    parts = []
    while length > 0 and (part := os.pread(fd, length, offset)):
        parts.append(part)
        offset += len(part)
        length -= len(part)
    return b"".join(parts)


def screen_block(
    protocol: Protocols,
    block: bytes | tuple[int, int, int, int],
    first_number: int,
    first: bool,
    output: Output,
    log: bool,
    day: date,
) -> Chunk:
    """The rows of one of :func:`jsonl_blocks`'s blocks, numbered from ``first_number``;
    given as (file descriptor, offset, length, CRC-32), it is read from the file."""
    if isinstance(block, tuple):
        fd, offset, length, crc = block
        block = _pread(fd, offset, length)
        if zlib.crc32(block) != crc:
            raise FileChanged(
                f"the file changed while it was read: rows from {first_number} on were not "
                "screened (screen a copy that nothing writes to)"
            )
    units = list(jsonl_block_units(block, first_number, first))
    return screen_units(units, ("jsonl", (), day), protocol, output, log)
