"""3. Open sessions: memory per open screening, and transitions Machines, as sessions grow.

Each size runs in a child process of its own (``python -m benchmarks.sessions N``), which
opens N screenings through the engine (screening i answered i % 12 questions, so
5.5 answers on average) and measures them with tracemalloc. Baseline: the same answers
held as one plain dict per screening.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from transitions import Machine

from .common import PYTHON, ROOT, Figure
from .patients import eligible_answers, protocol

DEPTH = 12


def machines() -> int:
    return sum(isinstance(o, Machine) for o in gc.get_objects())


def measure(n: int) -> dict[str, Any]:
    from screen_bot.engine import Engine

    engine = Engine(protocol())
    answers = eligible_answers(engine.protocol)
    warm = engine.start()  # first use: caches and lazy imports are not per-session cost
    engine.answer(warm, answers[engine.protocol.order[0]])
    engine.verdict(warm)

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sessions = []
    for i in range(n):
        session = engine.start(f"R-{i}")
        for _ in range(i % DEPTH):
            engine.answer(session, answers[session.state])
        sessions.append(session)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    open_ = sum(not engine.finished(s) for s in sessions)
    answered = sum(len(s.answers) for s in sessions)
    plain = [{v: a.value for v, a in s.answers.items()} for s in sessions]
    del sessions
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    copy = [dict(d) for d in plain]
    plain_used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del copy
    return {
        "sessions": n,
        "open": open_,
        "answers_per_session": answered / n,
        "bytes_per_session": used / n,
        "plain_bytes_per_session": plain_used / n,
        "machines": machines(),
    }


def run(quick: bool, work: Path) -> tuple[list[Figure], dict[str, Any]]:
    sizes = (50, 200, 1_000) if quick else (1_000, 10_000, 100_000)
    results = []
    for n in sizes:
        out = subprocess.run(
            [PYTHON, "-m", "benchmarks.sessions", str(n)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout))
    figures = []
    for r in results:
        n = r["sessions"]
        figures.append(
            Figure(
                f"sessions.bytes_per_session_{n}",
                f"sessions: memory per open screening, {n:,} open",
                r["bytes_per_session"],
                "bytes",
                "same answers as a plain dict",
                r["plain_bytes_per_session"],
                "value <= 5120",
            )
        )
    smallest, largest = results[0], results[-1]
    figures += [
        Figure(
            "sessions.per_session_growth",
            f"sessions: per-session memory, {largest['sessions']:,} vs {smallest['sessions']:,}",
            largest["bytes_per_session"] / smallest["bytes_per_session"],
            "x",
            aim="value <= 1.1",
        ),
        Figure(
            "sessions.machines",
            f"sessions: transitions Machines with {largest['sessions']:,} open",
            largest["machines"],
            "Machines",
            f"with {smallest['sessions']:,} open",
            smallest["machines"],
            "ratio <= 1",
        ),
    ]
    return figures, {"runs": results, "answered_questions": f"i % {DEPTH}"}


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
