"""A trainee's score book: quiz answers kept in the database, and the progress report."""

from __future__ import annotations

from collections import Counter

from ..storage import Store, scores
from ..storage.scores import Progress
from ..words import plural

__all__ = ["Progress", "ScoreBook", "progress_text"]


class ScoreBook:
    """Records quiz answers and reads them back, each call its own transaction."""

    def __init__(self, db: Store) -> None:
        self.db = db

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
        with self.db.transaction() as tx:
            scores.record(
                tx,
                trainee=trainee,
                protocol_id=protocol_id,
                quiz_id=quiz_id,
                expected=expected,
                given=given,
                criteria=criteria,
                correct=correct,
            )

    def misses(self, trainee: str, protocol_id: str) -> Counter[str]:
        return scores.misses(self.db.read(), trainee, protocol_id)

    def progress(self, trainee: str, protocol_id: str | None = None) -> Progress:
        return scores.progress(self.db.read(), trainee, protocol_id)


def progress_text(progress: Progress) -> str:
    scope = f" on {progress.protocol_id}" if progress.protocol_id else ""
    if not progress.answered:
        return f"No quiz answers yet for {progress.trainee}{scope}."
    percent = round(100 * progress.correct / progress.answered)
    lines = [
        f"Quiz progress for {progress.trainee}{scope}: "
        f"{plural(progress.quizzes, 'quiz', 'quizzes')}, "
        f"{progress.correct}/{progress.answered} correct ({percent} %)."
    ]
    if progress.last_quiz:
        lines.append(f"Latest quiz: {progress.last_quiz[0]}/{progress.last_quiz[1]}.")
    if progress.missed:
        missed = ", ".join(f"{cid} ({n})" for cid, n in progress.missed)
        lines.append(f"Most missed: {missed} — these come up more often in your next quiz.")
    return "\n".join(lines)
