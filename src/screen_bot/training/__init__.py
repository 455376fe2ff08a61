"""Training for coordinators: a walk-through of the criteria, a quiz, the dialog's flow.

Every piece returns text or data and does no I/O of its own, so the terminal commands
(``screen-bot learn | quiz | graph``) and the Telegram commands share it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cases import Case, generate_cases
    from .flow import GraphUnavailable, image, mermaid, missing_for_images, png
    from .quiz import Answer, Grade, Quiz, case_text, grade, parse_answer
    from .scores import Progress, ScoreBook, progress_text
    from .thresholds import Threshold, thresholds
    from .walkthrough import Step, step_text, walkthrough, walkthrough_text

# Each name is imported from its module at its first use (PEP 562): the bot registers its
# training commands at start-up, and only /quiz, /learn or /flow needs their modules.
_MODULES = {
    "Case": "cases",
    "generate_cases": "cases",
    "GraphUnavailable": "flow",
    "image": "flow",
    "mermaid": "flow",
    "missing_for_images": "flow",
    "png": "flow",
    "Answer": "quiz",
    "Grade": "quiz",
    "Quiz": "quiz",
    "case_text": "quiz",
    "grade": "quiz",
    "parse_answer": "quiz",
    "Progress": "scores",
    "ScoreBook": "scores",
    "progress_text": "scores",
    "Threshold": "thresholds",
    "thresholds": "thresholds",
    "Step": "walkthrough",
    "step_text": "walkthrough",
    "walkthrough": "walkthrough",
    "walkthrough_text": "walkthrough",
}

__all__ = [
    "Answer",
    "Case",
    "Grade",
    "GraphUnavailable",
    "Progress",
    "Quiz",
    "ScoreBook",
    "Step",
    "Threshold",
    "case_text",
    "generate_cases",
    "grade",
    "image",
    "mermaid",
    "missing_for_images",
    "parse_answer",
    "png",
    "progress_text",
    "step_text",
    "thresholds",
    "walkthrough",
    "walkthrough_text",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
