"""Training for coordinators: a walk-through of the criteria, a quiz, the dialog's flow.

Every piece returns text or data and does no I/O of its own, so the terminal commands
(``screen-bot learn | quiz | graph``) and the Telegram commands share it.
"""

from .cases import Case, generate_cases
from .flow import GraphUnavailable, image, mermaid, missing_for_images, png
from .quiz import Answer, Grade, Quiz, case_text, grade, parse_answer
from .scores import Progress, ScoreBook, progress_text
from .thresholds import Threshold, thresholds
from .walkthrough import Step, step_text, walkthrough, walkthrough_text

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
