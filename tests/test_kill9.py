"""kill -9 at random points while ten coordinators answer: nothing lost, nothing misplaced.

A few kills here; ``python -m benchmarks.reliability`` runs the ≥ 20-kill measurement the
README reports. On both stores (the SQLite file, a PostgreSQL database).
"""

from __future__ import annotations

from pathlib import Path

from chaos import run
from stores import StoreUnderTest


def test_random_kills_lose_and_misplace_no_answer(tmp_path: Path, store: StoreUnderTest) -> None:
    tally = run(tmp_path, chats=10, kills=4, questions=30, seed=7, store=store)
    assert tally.kills == 4
    assert tally.answered >= 10 * 30  # questions (a checklist's items each count)
    assert tally.sent >= 10 * 10  # steps: a checklist is one message or tap
    assert (tally.lost_updates, tally.lost_answers, tally.misplaced) == (0, 0, 0), tally.problems
    assert tally.stored >= 10 * 19, tally.problems  # all but each chat's last step (≤ 11)
    assert not tally.problems
