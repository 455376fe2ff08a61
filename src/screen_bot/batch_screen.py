"""Screen the rows of a file, in this process or in several, writing results in row order.

With ``jobs`` > 1 the rows go in chunks to worker processes and come back in order; at most
two chunks per worker are in flight, so memory stays flat however long the file is. Each
good row gives one output (a compact JSON object, or the verdict as text) and, with a log,
what the screening log keeps; each bad row gives its problems for standard error.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Literal

from .batch import InputFormat, Kind, Row, Unit, read_units, typed
from .engine import loggable_answers
from .protocol import Protocol, load
from .render import verdict_text
from .verdict import Verdict, build

Output = Literal["json", "text"]
CHUNK = 2_000  # rows per task of a worker
_FORK = "fork" in multiprocessing.get_all_start_methods()  # workers inherit what is loaded


@dataclass
class Chunk:
    """What a run of rows gives: output text, problems, and what the log would keep."""

    text: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "header: …" / "row N: …"
    bad_rows: int = 0
    logged: list[tuple[str, str]] = field(default_factory=list)  # (verdict JSON, answers JSON)


def screen_rows(rows: Iterable[Row], protocol: Protocol, output: Output, log: bool) -> Chunk:
    chunk = Chunk()
    for row in rows:
        if row.errors:
            chunk.bad_rows += 1
            where = "header" if row.number == 0 else f"row {row.number}"
            chunk.problems += [f"{where}: {error}" for error in row.errors]
            continue
        verdict = build(protocol, row.answers, referral=row.referral, screened_on=row.screened_on)
        chunk.text.append(shown(row.number, verdict, output))
        if log:
            answers = json.dumps(loggable_answers(protocol, row.answers))
            chunk.logged.append((verdict.model_dump_json(), answers))
    return chunk


def shown(number: int, verdict: Verdict, output: Output) -> str:
    """A row's output: compact JSON (pydantic-core's, the row number first), or text."""
    if output == "json":
        return f'{{"row":{number},{verdict.model_dump_json()[1:]}\n'
    label = f" ({verdict.referral})" if verdict.referral else ""
    return f"--- row {number}{label}\n{verdict_text(verdict)}\n"


def screen_file(
    raw: IO[bytes], protocol: Protocol, fmt: InputFormat, output: Output, log: bool, jobs: int
) -> Iterator[Chunk]:
    """Screen every row, ``CHUNK`` rows at a time, in order."""
    found = read_units(raw, protocol, fmt)
    shape = (found.kind, found.header)  # what typing a unit needs besides the unit
    if jobs <= 1:
        while batch := list(islice(found.units, CHUNK)):
            yield screen_units(batch, shape, protocol, output, log)
        return
    # Workers parse, type and screen; only splitting the input into rows stays here.
    context = multiprocessing.get_context("fork") if _FORK else None
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_load, initargs=(protocol.path,)
    ) as pool:
        pending: deque[Future[Chunk]] = deque()
        while batch := list(islice(found.units, CHUNK)):
            pending.append(pool.submit(_screen_in_worker, batch, shape, output, log))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


Shape = tuple[Kind, tuple[str, ...]]


def screen_units(
    units: list[Unit], shape: Shape, protocol: Protocol, output: Output, log: bool
) -> Chunk:
    rows = (typed(unit, *shape, protocol) for unit in units)
    return screen_rows(rows, protocol, output, log)


_worker_protocol: Protocol | None = None


def _load(path: Path) -> None:
    global _worker_protocol
    _worker_protocol = load(path)


def _screen_in_worker(units: list[Unit], shape: Shape, output: Output, log: bool) -> Chunk:
    assert _worker_protocol is not None  # set by the pool's initializer
    return screen_units(units, shape, _worker_protocol, output, log)
