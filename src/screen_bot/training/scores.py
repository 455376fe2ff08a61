"""Quiz scores per trainee, in their own SQLite table ``quiz_scores``."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS quiz_scores (
    id INTEGER PRIMARY KEY,
    trainee TEXT NOT NULL,            -- Telegram user id, or "cli"
    protocol_id TEXT NOT NULL,
    quiz_id TEXT NOT NULL,
    answered_at TEXT NOT NULL,        -- ISO 8601 UTC
    expected TEXT NOT NULL,
    given TEXT NOT NULL,
    criteria TEXT NOT NULL,           -- the case's criteria, space-separated
    correct INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quiz_scores_trainee ON quiz_scores (trainee, protocol_id);
"""


@dataclass(frozen=True)
class Progress:
    trainee: str
    protocol_id: str | None
    quizzes: int
    answered: int
    correct: int
    last_quiz: tuple[int, int] | None  # (correct, answered) of the latest quiz
    missed: tuple[tuple[str, int], ...]  # criteria most often missed, with counts


class ScoreBook:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection for one unit of work, committed on success; the file is owner-only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        with closing(sqlite3.connect(self.path, timeout=5)) as db:
            db.executescript(SCHEMA)
            with db:
                yield db

    def record(
        self,
        *,
        trainee: str,
        protocol_id: str,
        quiz_id: str,
        expected: str,
        given: str,
        criteria: list[str],
        correct: bool,
    ) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO quiz_scores (trainee, protocol_id, quiz_id, answered_at, expected,"
                " given, criteria, correct) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(trainee),
                    protocol_id,
                    quiz_id,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    expected,
                    given,
                    " ".join(criteria),
                    int(correct),
                ),
            )

    def misses(self, trainee: str, protocol_id: str) -> Counter[str]:
        """How often each criterion was part of a case the trainee got wrong."""
        with self._db() as db:
            rows = db.execute(
                "SELECT criteria FROM quiz_scores WHERE trainee = ? AND protocol_id = ?"
                " AND correct = 0",
                (str(trainee), protocol_id),
            ).fetchall()
        return Counter(c for (criteria,) in rows for c in criteria.split())

    def progress(self, trainee: str, protocol_id: str | None = None) -> Progress:
        where = "trainee = ?" + (" AND protocol_id = ?" if protocol_id else "")
        params = (str(trainee), protocol_id) if protocol_id else (str(trainee),)
        with self._db() as db:
            quizzes, answered, correct = db.execute(
                f"SELECT COUNT(DISTINCT quiz_id), COUNT(*), COALESCE(SUM(correct), 0)"
                f" FROM quiz_scores WHERE {where}",
                params,
            ).fetchone()
            last = db.execute(
                f"SELECT SUM(correct), COUNT(*) FROM quiz_scores WHERE {where} AND quiz_id ="
                f" (SELECT quiz_id FROM quiz_scores WHERE {where} ORDER BY id DESC LIMIT 1)",
                params + params,
            ).fetchone()
            wrong = db.execute(
                f"SELECT criteria FROM quiz_scores WHERE {where} AND correct = 0", params
            ).fetchall()
        missed = Counter(c for (criteria,) in wrong for c in criteria.split())
        return Progress(
            trainee=str(trainee),
            protocol_id=protocol_id,
            quizzes=quizzes,
            answered=answered,
            correct=correct,
            last_quiz=(last[0], last[1]) if last and last[1] else None,
            missed=tuple(missed.most_common(5)),
        )


def progress_text(progress: Progress) -> str:
    scope = f" on {progress.protocol_id}" if progress.protocol_id else ""
    if not progress.answered:
        return f"No quiz answers yet for {progress.trainee}{scope}."
    percent = round(100 * progress.correct / progress.answered)
    lines = [
        f"Quiz progress for {progress.trainee}{scope}: {progress.quizzes} "
        f"{'quiz' if progress.quizzes == 1 else 'quizzes'}, "
        f"{progress.correct}/{progress.answered} correct ({percent} %)."
    ]
    if progress.last_quiz:
        lines.append(f"Latest quiz: {progress.last_quiz[0]}/{progress.last_quiz[1]}.")
    if progress.missed:
        missed = ", ".join(f"{cid} ({n})" for cid, n in progress.missed)
        lines.append(f"Most missed: {missed} — these come up more often in your next quiz.")
    return "\n".join(lines)
