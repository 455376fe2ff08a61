"""Quiz scores per trainee (table ``quiz_scores``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from .db import Tx, schema

schema(
    "quiz_scores",
    sqlite=[
        (
            """CREATE TABLE IF NOT EXISTS quiz_scores (
    id INTEGER PRIMARY KEY,
    trainee TEXT NOT NULL,            -- Telegram user id, or "cli"
    protocol_id TEXT NOT NULL,
    quiz_id TEXT NOT NULL,
    answered_at TEXT NOT NULL,        -- ISO 8601 UTC
    expected TEXT NOT NULL,
    given TEXT NOT NULL,
    criteria TEXT NOT NULL,           -- the case's criteria, space-separated
    correct INTEGER NOT NULL
)""",
            "CREATE INDEX IF NOT EXISTS quiz_scores_trainee ON quiz_scores (trainee, protocol_id)",
        )
    ],
    postgres=[
        (
            """CREATE TABLE quiz_scores (
    id BIGSERIAL PRIMARY KEY,
    trainee TEXT NOT NULL,
    protocol_id TEXT NOT NULL,
    quiz_id TEXT NOT NULL,
    answered_at TEXT NOT NULL,
    expected TEXT NOT NULL,
    given TEXT NOT NULL,
    criteria TEXT NOT NULL,
    correct INTEGER NOT NULL
)""",
            "CREATE INDEX quiz_scores_trainee ON quiz_scores (trainee, protocol_id)",
        )
    ],
)


@dataclass(frozen=True)
class Progress:
    trainee: str
    protocol_id: str | None
    quizzes: int
    answered: int
    correct: int
    last_quiz: tuple[int, int] | None  # (correct, answered) of the latest quiz
    missed: tuple[tuple[str, int], ...]  # criteria most often missed, with counts


def record(
    tx: Tx,
    *,
    trainee: str,
    protocol_id: str,
    quiz_id: str,
    expected: str,
    given: str,
    criteria: list[str],
    correct: bool,
) -> None:
    tx.execute(
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


def misses(tx: Tx, trainee: str, protocol_id: str) -> Counter[str]:
    """How often each criterion was part of a case the trainee got wrong."""
    rows = tx.all(
        "SELECT criteria FROM quiz_scores WHERE trainee = ? AND protocol_id = ? AND correct = 0",
        (str(trainee), protocol_id),
    )
    return Counter(c for (criteria,) in rows for c in criteria.split())


def progress(tx: Tx, trainee: str, protocol_id: str | None = None) -> Progress:
    where = "trainee = ?" + (" AND protocol_id = ?" if protocol_id else "")
    params: tuple[str, ...] = (str(trainee), protocol_id) if protocol_id else (str(trainee),)
    quizzes, answered, correct = tx.one(
        "SELECT COUNT(DISTINCT quiz_id), COUNT(*), COALESCE(SUM(correct), 0)"
        f" FROM quiz_scores WHERE {where}",
        params,
    )
    last = tx.one(
        f"SELECT SUM(correct), COUNT(*) FROM quiz_scores WHERE {where} AND quiz_id ="
        f" (SELECT quiz_id FROM quiz_scores WHERE {where} ORDER BY id DESC LIMIT 1)",
        params + params,
    )
    wrong = tx.all(f"SELECT criteria FROM quiz_scores WHERE {where} AND correct = 0", params)
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
