"""7. Cost growth: batch time per row with 1, 2, 5 and 20 protocols (generated, each 40
criteria), screened alone and all together; engine answer p99 against 40, 200 and 500
criteria (the most a dialog file may have; best of 3 passes). Everything in this process,
CPU time (the curve's shape matters, not the level).
"""

from __future__ import annotations

import io
import time
from datetime import date
from pathlib import Path
from typing import Any

from screen_bot.batch_screen import screen_file
from screen_bot.engine import Engine
from screen_bot.protocol.catalog import Catalog

from .common import Figure, percentile
from .generated import protocol as generated_protocol
from .generated import write_patients, write_protocols

DAY = date(2026, 1, 15)


def per_row_us(data: bytes, chosen: Any, rows: int) -> float:
    """CPU µs per row of screening JSON Lines ``data`` (best of 3)."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _chunk in screen_file(
            io.BufferedReader(io.BytesIO(data)), chosen, "jsonl", "json", False, 1, DAY
        ):
            pass
        best = min(best, time.process_time() - start)
    return best / rows * 1e6


def batch_growth(work: Path, counts: tuple[int, ...], rows: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for count in counts:
        directory = work / f"protocols-{count}"
        write_protocols(directory, count)
        catalog = Catalog(directory)
        every = {v for p in catalog.protocols.values() for v in p.questions}
        patients = work / f"patients-{count}.jsonl"
        write_patients(patients, rows, DAY, every)
        data = patients.read_bytes()
        alone = 0.0
        for p in catalog.protocols.values():  # each alone reads the rows of its own questions
            own = work / f"patients-{count}-{p.id}.jsonl"
            write_patients(own, rows, DAY, set(p.questions))
            alone += per_row_us(own.read_bytes(), p, rows)
        together = per_row_us(data, catalog.protocol_set, rows) if count > 1 else alone
        found[str(count)] = {"alone_sum_us": alone, "all_us": together}
    return found


def engine_growth(work: Path, sizes: tuple[int, ...], screenings: int) -> dict[str, Any]:
    from ruamel.yaml import YAML

    from screen_bot.protocol import load

    found: dict[str, Any] = {}
    for size in sizes:
        path = work / f"engine-{size}.yaml"
        with path.open("w", encoding="utf-8") as out:
            YAML().dump(generated_protocol(0, size), out)
        engine = Engine(load(path))
        _screen(engine, 1)  # warm-up: the first answers to each question are not steps
        # best of 3 passes, as for the batch: a p99 of a few hundred answers is otherwise
        # set by whatever else the machine did during one pass
        passes = [_screen(engine, screenings) for _ in range(3)]
        best = min(passes, key=lambda times: percentile(times, 99))
        found[str(size)] = {
            "questions": len(engine.protocol.order),
            "answers": len(best),
            "p50_us": percentile(best, 50),
            "p99_us": percentile(best, 99),
            "p99_us_each_pass": [percentile(times, 99) for times in passes],
        }
    return found


def _screen(engine: Engine, screenings: int) -> list[float]:
    """Thread CPU µs of every answer of ``screenings`` passing screenings."""
    times = []
    for _ in range(screenings):
        session = engine.start(screened_on=DAY)
        while (question := engine.question(session)) is not None:
            value = _passing(question)
            start = time.thread_time_ns()
            engine.answer(session, value, confirmed=True)
            times.append((time.thread_time_ns() - start) / 1e3)
    return times


def _passing(question: Any) -> Any:
    """An answer meeting the generated rules, so a screening runs to its end."""
    return {"yes_no": False, "choice": "a", "date_or_none": "none", "number": 10}[question.type]


def run(quick: bool, work: Path) -> tuple[list[Figure], dict[str, Any]]:
    counts, rows = ((1, 2, 5), 100) if quick else ((1, 2, 5, 20), 1_000)
    # 500: the most criteria a dialog file may have (protocol/schema.py)
    sizes, screenings = ((40, 200), 2) if quick else ((40, 200, 500), 20)
    batch = batch_growth(work, counts, rows)
    engine = engine_growth(work, sizes, screenings)
    one = batch["1"]["all_us"]
    figures = [
        Figure(
            f"growth.batch_all_{count}",
            f"growth: batch per row, {count} protocols, --protocol all",
            batch[str(count)]["all_us"],
            "µs",
            f"sum of {count} alone",
            batch[str(count)]["alone_sum_us"],
            "ratio <= 1.5" if count > 1 else None,
        )
        for count in counts
    ]
    figures += [
        Figure(
            f"growth.batch_per_protocol_{count}",
            f"growth: batch per row and protocol, {count} protocols (all)",
            batch[str(count)]["all_us"] / count,
            "µs",
            "1 protocol",
            one,
        )
        for count in counts
    ]
    small = engine[str(sizes[0])]["p99_us"]
    figures += [
        Figure(
            f"growth.engine_p99_{size}",
            f"growth: engine answer p99, {size} criteria",
            engine[str(size)]["p99_us"],
            "µs",
            f"{sizes[0]} criteria",
            small,
        )
        for size in sizes
    ]
    return figures, {"batch_us_per_row": batch, "engine": engine, "rows": rows}
