"""The quiz in a terminal: questions on stdout, answers from ``input()``."""

from __future__ import annotations

from collections.abc import Callable

from ..words import plural
from .quiz import PROMPT, Answer, Quiz, not_a_criterion, parse_answer

STOP_WORDS = frozenset({"q", "quit", "exit", "stop"})


def run_quiz(
    quiz: Quiz,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
) -> int:
    """Ask every case, give feedback at once, print the score; return the number answered."""
    write(
        f"Quiz on {quiz.protocol.id}: {plural(len(quiz.cases), 'case')} (seed {quiz.seed}). "
        f"For each case answer {PROMPT}; q stops."
    )
    while not quiz.finished:
        write("")
        write(quiz.question())
        answer = _ask(quiz, read, write)
        if answer is None:
            break
        write(quiz.submit(answer).feedback)
    write("")
    write(quiz.summary())
    return quiz.position


def _ask(quiz: Quiz, read: Callable[[str], str], write: Callable[[str], None]) -> Answer | None:
    while True:
        try:
            text = read("Your verdict? ")
        except EOFError:
            return None
        if text.strip().lower() in STOP_WORDS:
            return None
        answer = parse_answer(text)
        if answer is None:
            write(f"Please answer {PROMPT} (e.g. 'not eligible I8e').")
            continue
        if answer.verdict == "not_eligible" and answer.criterion is None:
            try:
                criterion = read("Which criterion failed? ").strip()
            except EOFError:
                return None
            if criterion.lower() in STOP_WORDS:
                return None
            answer = Answer("not_eligible", criterion or None)
        problem = not_a_criterion(quiz.protocol, answer.criterion)
        if problem is not None:  # a typo, not an answer: not scored, the same case again
            write(f"{problem}; the same case again.")
            continue
        return answer
