"""What the bot says: fixed texts, keyboards and message splitting."""

from __future__ import annotations

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup

from ...engine import Engine
from ...protocol.schema import Question
from ...render import format_value, question_text
from ...session import Session
from .callback_data import BACK, NO, UNKNOWN, YES, Press

MAX_MESSAGE = 4096

START = (
    "I pre-screen patients against clinical-trial protocols, one criterion question at a time, "
    "and end with a verdict and its reasons.\n\n"
    "This is a pre-screen, not an eligibility decision: the investigator confirms every result.\n"
    "Never type patient names or other identifiers; use a referral code such as R-0423.\n\n"
)
COMMANDS = [
    ("screen", "start a screening: /screen [protocol] [referral code]"),
    ("status", "where the open screening stands"),
    ("back", "go back one question"),
    ("skip", "answer 'not known yet'"),
    ("cancel", "cancel the open screening"),
    ("list", "your unfinished screenings"),
    ("resume", "continue one: /resume R-0423"),
    ("protocols", "the protocols I know"),
    ("log", "your recent finished screenings"),
    ("stats", "screening counts and failures by criterion, as a chart"),
    ("forget", "delete your unfinished screenings"),
    ("learn", "walk through a protocol's criteria: /learn [criterion]"),
    ("quiz", "practise on generated cases"),
    ("progress", "your quiz record"),
    ("flow", "the screening flow as a picture"),
    ("help", "how to use me"),
]
HELP = (
    "Answer with the buttons, or type: numbers like 1.2, 1,2, 1.2 mg/dL, 106 µmol/L, "
    "or 45/40 (value/upper limit of normal); ? when it is not known.\n\n"
    + "\n".join(f"/{name} – {text}" for name, text in COMMANDS)
)
REFUSED = "Sorry, this bot is only for the trial team's authorised coordinators."
PRIVATE_ONLY = "I work in private chats only, so that screening data stays between us."
NO_SCREENING = "No screening is open. /screen starts one; /list shows unfinished ones."
STALE = "That question was already answered."
GONE = "That screening is finished, cancelled or expired."
PAUSED = "That screening is paused; /resume it first."
FORGED = "That button is not valid."


def bot_commands() -> list[BotCommand]:
    return [BotCommand(name, text[:256]) for name, text in COMMANDS]


def keyboard(session: Session, question: Question) -> InlineKeyboardMarkup:
    def button(text: str, code: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            text, callback_data=Press(session.id, session.step, code).encode()
        )

    rows: list[list[InlineKeyboardButton]] = []
    if question.type == "yes_no":
        rows.append([button("Yes", YES), button("No", NO)])
    elif question.type == "choice":
        rows.append([button(c, f"c{i}") for i, c in enumerate(question.choices or [])])
    rows.append([button("Unknown", UNKNOWN), button("⬅ Back", BACK)])
    return InlineKeyboardMarkup(rows)


def question_message(engine: Engine, session: Session, note: str = "") -> str:
    label = f"{session.referral} · " if session.referral else ""
    text = f"{label}{question_text(engine, session)}"
    return f"{note}\n\n{text}" if note else text


def answered_message(engine: Engine, question: Question, value: object) -> str:
    return f"{question.text}\n→ {format_value(value)}"


def split(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split at line breaks into parts of at most ``limit`` characters."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current or not parts:
        parts.append(current)
    return parts
