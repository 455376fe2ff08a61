"""2. Dialog step: latency of ``Engine.answer``, alone and with ``the session save`` after it.

Baselines, measured interleaved with each step: a bare ``transitions`` trigger on a plain
model (what the engine stands on) and a bare SQLite commit of the same session JSON with
the store's settings (WAL, synchronous=FULL). Wall and thread-CPU times are both kept:
CPU time leaves out the moments another process had the core.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from transitions import Machine

from screen_bot.engine import Engine
from screen_bot.service import DEFAULT_LIFETIME
from screen_bot.session import Session
from screen_bot.storage import Database, sessions

from .common import Figure, percentile
from .patients import patients, protocol


class Plain:
    """A bare transitions model."""

    def __init__(self, state: str) -> None:
        self.state = state


def bare_machine(order: list[str]) -> Machine:
    transitions = [
        {"trigger": "next", "source": a, "dest": b}
        for a, b in zip(order, [*order[1:], "done"], strict=True)
    ]
    return Machine(
        model=None,
        states=[*order, "done"],
        transitions=transitions,
        initial=order[0],
        send_event=True,
        auto_transitions=False,
    )


def steps(engine: Engine, screenings: int) -> Iterator[tuple[Session, Any]]:
    """(session, answer) for every answer of full screenings of generated patients."""
    for _, record in patients(screenings, seed=3):
        session = engine.start(record["referral"])
        while (question := engine.question(session)) is not None:
            yield session, record.get(question.variable)


def timed(action: Callable[[], Any]) -> tuple[float, float]:
    """(wall µs, thread CPU µs) of one call."""
    cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
    action()
    return (time.perf_counter_ns() - wall) / 1e3, (time.thread_time_ns() - cpu) / 1e3


def run(quick: bool, work: Path) -> tuple[list[Figure], dict[str, Any]]:
    screenings, durable = (20, 5) if quick else (400, 60)
    engine = Engine(protocol())
    machine = bare_machine(engine.protocol.order)
    for session, value in steps(engine, 2):  # warm-up: first calls are not steps
        engine.answer(session, value)
    engine_wall, engine_cpu, bare_wall, bare_cpu = [], [], [], []
    final_cpu, other_cpu = [], []
    for session, value in steps(engine, screenings):
        plain = Plain(session.state)
        wall, cpu = timed(lambda: engine.answer(session, value))  # noqa: B023
        engine_wall.append(wall)
        engine_cpu.append(cpu)
        # the answer that decides the verdict evaluates every rule
        (final_cpu if engine.finished(session) else other_cpu).append(cpu)
        wall, cpu = timed(lambda: machine.events["next"].trigger(plain))  # noqa: B023
        bare_wall.append(wall)
        bare_cpu.append(cpu)

    store = Database(work / "store.sqlite3")
    db = sqlite3.connect(work / "bare.sqlite3", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=5000"):
        db.execute(f"PRAGMA {pragma}")  # the store's settings (storage/db.py)
    db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, body TEXT NOT NULL)")

    def commit(session: Session) -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT OR REPLACE INTO t VALUES (?, ?)", (session.id, session.model_dump_json())
        )
        db.execute("COMMIT")

    def answer_and_save(session: Session, value: Any) -> None:
        engine.answer(session, value)
        with store.transaction() as tx:
            sessions.save(tx, 1, session, lifetime=DEFAULT_LIFETIME)

    saved_ms, commit_ms = [], []
    for session, value in steps(engine, durable):
        saved_ms.append(timed(lambda: answer_and_save(session, value))[0] / 1e3)  # noqa: B023
        commit_ms.append(timed(lambda: commit(session))[0] / 1e3)  # noqa: B023
    store.close()
    db.close()

    bare = "bare transitions trigger"
    sqlite = "bare SQLite commit, same JSON"
    figures = [
        Figure(
            "dialog.engine_p50_us",
            "dialog: engine answer p50",
            percentile(engine_wall, 50),
            "µs",
            bare,
            percentile(bare_wall, 50),
        ),
        Figure(
            "dialog.engine_p99_us",
            "dialog: engine answer p99",
            percentile(engine_wall, 99),
            "µs",
            bare,
            percentile(bare_wall, 99),
            "ratio <= 3",
        ),
        Figure(
            "dialog.engine_cpu_p99_us",
            "dialog: engine answer p99, CPU time",
            percentile(engine_cpu, 99),
            "µs",
            bare,
            percentile(bare_cpu, 99),
            "ratio <= 3",
        ),
        Figure(
            "dialog.store_p50_ms",
            "dialog: answer + the session save p50",
            percentile(saved_ms, 50),
            "ms",
            sqlite,
            percentile(commit_ms, 50),
        ),
        Figure(
            "dialog.store_p99_ms",
            "dialog: answer + the session save p99",
            percentile(saved_ms, 99),
            "ms",
            sqlite,
            percentile(commit_ms, 99),
        ),
    ]
    details = {
        "screenings": screenings,
        "answers": len(engine_wall),
        "durable_screenings": durable,
        "durable_answers": len(saved_ms),
        "final_answers": len(final_cpu),
        "final_answer_cpu_p50_us": percentile(final_cpu, 50),
        "other_answers_cpu_p99_us": percentile(other_cpu, 99),
        "engine_max_us": max(engine_wall),
        "engine_over_1ms": sum(w > 1000 for w in engine_wall),
        "bare_over_1ms": sum(w > 1000 for w in bare_wall),
    }
    return figures, details
