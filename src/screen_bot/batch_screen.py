"""Screen the rows of a file, in this process or in several, writing results in row order.

With ``jobs`` > 1 the rows go in chunks to worker processes and come back in order; at most
two chunks per worker are in flight, so memory stays flat however long the file is. Each
good row gives one output (a compact JSON object, or the verdict as text), as UTF-8 bytes
made once where the row is screened, and, with a log, what the screening log keeps; each
bad row gives its problems for standard error.

Against a protocol set (``--protocol all``) a row gives one output object with a verdict
per protocol, best first, and one log record per protocol under one screening id.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import secrets
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal

from .batch import (
    InputFormat,
    Kind,
    Protocols,
    Row,
    Unit,
    jsonl_block_units,
    jsonl_blocks,
    read_units,
    typed,
)
from .protocol import Protocol, load
from .protocol.sets import ProtocolSet
from .verdict import Verdict, row_fields, verdict_json

Output = Literal["json", "text"]
CHUNK = 2_000  # rows per task of a worker
BLOCK = 1 << 21  # bytes of JSON Lines per task of a worker (about 2,000 rows of 1 KB)
_FORK = "fork" in multiprocessing.get_all_start_methods()  # workers inherit what is loaded


@dataclass
class Chunk:
    """What a run of rows gives: output (UTF-8), problems, and what the log would keep."""

    output: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "header: …" / "row N: …"
    bad_rows: int = 0
    # (verdict JSON, answers JSON, screening id): one per protocol screened
    logged: list[tuple[str, str, str]] = field(default_factory=list)


def screen_rows(rows: Iterable[Row], protocol: Protocols, output: Output, log: bool) -> Chunk:
    chunk = Chunk()
    for row in rows:
        if row.errors:
            chunk.bad_rows += 1
            where = "header" if row.number == 0 else f"row {row.number}"
            chunk.problems += [f"{where}: {error}" for error in row.errors]
            continue
        screening_id = secrets.token_hex(8) if log else ""
        if isinstance(protocol, ProtocolSet):
            _screen_against_all(chunk, row, protocol, output, screening_id)
            continue
        fields = row_fields(
            protocol, row.answers, referral=row.referral, screened_on=row.screened_on
        )
        written = verdict_json(fields) if output == "json" or log else b""
        if output == "json":
            chunk.output.append(b'{"row":%d,%s\n' % (row.number, written[1:]))
        else:
            chunk.output.append(shown(row.number, Verdict(**fields), output).encode())
        if log:
            answers = json.dumps(_loggable(protocol, row.answers))
            chunk.logged.append((written.decode(), answers, screening_id))
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
            {"row": row.number, "referral": row.referral, "screened_on": str(row.screened_on)}
        ).encode()
        chunk.output.append(b'%s,"verdicts":[%s]}\n' % (head[:-1], b",".join(written)))
    else:
        from .render import verdicts_text  # text output only: it imports the dialog engine

        label = f" ({row.referral})" if row.referral else ""
        verdicts = [Verdict(**fields) for _, fields, _ in found]
        chunk.output.append(f"--- row {row.number}{label}\n{verdicts_text(verdicts)}\n".encode())
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
    raw: IO[bytes], protocol: Protocols, fmt: InputFormat, output: Output, log: bool, jobs: int
) -> Iterator[Chunk]:
    """Screen every row, ``CHUNK`` rows at a time, in order."""
    # What is loaded now outlives the run: the collector need not scan it again and again
    # for each row's short-lived objects (a few per cent of the time per row).
    gc.freeze()
    try:
        yield from _screen_file(raw, protocol, fmt, output, log, jobs)
    finally:
        gc.unfreeze()


def _screen_file(
    raw: IO[bytes], protocol: Protocols, fmt: InputFormat, output: Output, log: bool, jobs: int
) -> Iterator[Chunk]:
    if jobs > 1 and fmt == "jsonl":
        yield from _screen_blocks(raw, protocol, output, log, jobs)
        return
    found = read_units(raw, protocol, fmt)
    shape = (found.kind, found.header)  # what typing a unit needs besides the unit
    if jobs <= 1:
        while batch := list(islice(found.units, CHUNK)):
            yield screen_units(batch, shape, protocol, output, log)
        return
    # Workers parse, type and screen; only splitting the input into rows stays here.
    with _pool(protocol, jobs) as pool:
        tasks = (
            pool.submit(_screen_in_worker, batch, shape, output, log)
            for batch in iter(lambda: list(islice(found.units, CHUNK)), [])
        )
        yield from _in_order(tasks, jobs)


def _screen_blocks(
    raw: IO[bytes], protocol: Protocols, output: Output, log: bool, jobs: int
) -> Iterator[Chunk]:
    """JSON Lines in blocks of whole lines: the workers split, parse, type and screen them;
    here only the lines are counted (for the row numbers), in C."""
    with _pool(protocol, jobs) as pool:

        def tasks() -> Iterator[Future[Chunk]]:
            number = 1
            for index, block in enumerate(jsonl_blocks(raw, BLOCK)):
                yield pool.submit(_screen_block_in_worker, block, number, index == 0, output, log)
                number += block.count(b"\n")

        yield from _in_order(tasks(), jobs)


def _pool(protocol: Protocols, jobs: int) -> ProcessPoolExecutor:
    if _FORK:  # a forked worker is handed the loaded protocols as they are (no pickling)
        fork = multiprocessing.get_context("fork")
        return ProcessPoolExecutor(jobs, mp_context=fork, initializer=_use, initargs=(protocol,))
    members = protocol.members if isinstance(protocol, ProtocolSet) else (protocol,)
    paths = tuple(m.path for m in members)
    return ProcessPoolExecutor(jobs, initializer=_load, initargs=(paths,))


def _in_order(tasks: Iterator[Future[Chunk]], jobs: int) -> Iterator[Chunk]:
    """Each task's chunk in submission order, with at most two tasks per worker in flight."""
    pending: deque[Future[Chunk]] = deque()
    for task in tasks:
        pending.append(task)
        if len(pending) >= 2 * jobs:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


Shape = tuple[Kind, tuple[str, ...]]


def screen_units(
    units: list[Unit], shape: Shape, protocol: Protocols, output: Output, log: bool
) -> Chunk:
    rows = (typed(unit, *shape, protocol) for unit in units)
    return screen_rows(rows, protocol, output, log)


_worker_protocol: Protocols | None = None


def _load(paths: tuple[Path, ...]) -> None:
    loaded = tuple(load(path) for path in paths)
    _use(loaded[0] if len(loaded) == 1 else ProtocolSet(loaded))


def _use(protocol: Protocols) -> None:
    global _worker_protocol
    _worker_protocol = protocol
    gc.freeze()  # as in screen_file: the worker's protocols live as long as it does


def _screen_in_worker(units: list[Unit], shape: Shape, output: Output, log: bool) -> Chunk:
    assert _worker_protocol is not None  # set by the pool's initializer
    return _joined(screen_units(units, shape, _worker_protocol, output, log))


def _screen_block_in_worker(
    block: bytes, first_number: int, first: bool, output: Output, log: bool
) -> Chunk:
    assert _worker_protocol is not None  # set by the pool's initializer
    units = list(jsonl_block_units(block, first_number, first))
    return _joined(screen_units(units, ("jsonl", ()), _worker_protocol, output, log))


def _joined(chunk: Chunk) -> Chunk:
    """The chunk with its output as one bytes object: one to send back, not thousands."""
    chunk.output = [b"".join(chunk.output)]
    return chunk
