"""Everything the bot says: fixed texts, the wording of service results, keyboards, splitting.

Wording shared with the terminal and the exports (verdicts, recoverability, open-item
kinds, the referral rule) comes from :mod:`screen_bot.words`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import BotCommandLimit, CallbackQueryLimit, MessageLimit

from ...answers import is_unknown_text
from ...protocol.schema import Question
from ...render import TICK, format_value, layout, section_title
from ...results import (
    CHECK_CONTINUED,
    FIRST_QUESTION,
    FORGED,
    GONE,
    NO_CHECK,
    NO_OFFER,
    NO_SCREENING,
    NOT_OPEN,
    NOTHING_TICKED,
    OUTDATED,
    PAUSED,
    PROTOCOL_BROKEN,
    PROTOCOL_CHANGED,
    PROTOCOL_MISSING,
    REFERRAL_TAKEN,
    STALE,
    Asked,
    Checked,
    Option,
    Retired,
    Started,
)
from ...storage.ledger import LogRecord
from ...storage.sessions import OpenScreening
from ...words import plural, sentence
from .callback_data import ARGUMENT, Choice, ContinueCheck, Learn, Press, QuizPress, fingerprint

if TYPE_CHECKING:  # the reports are imported at the first /stats (records.py)
    from ...reports import Stats

# the Bot API's limits: a longer text is refused (400)
MAX_MESSAGE = int(MessageLimit.MAX_TEXT_LENGTH)
MAX_CAPTION = int(MessageLimit.CAPTION_LENGTH)
MAX_TOAST = int(CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH)

START = (
    "I pre-screen patients against clinical-trial protocols, one criterion question at a time, "
    "and end with a verdict and its reasons.\n\n"
    "This is a pre-screen, not an eligibility decision: the investigator confirms every result.\n"
    "Never type patient names or other identifiers; use a referral code such as R-0423.\n\n"
)
COMMANDS = [
    ("screen", "start a screening: /screen [protocol or all] [referral code]"),
    ("check", "quick check of known values, e.g. for blina-dli: /check age 40, male, lvef 55"),
    ("status", "where the open screening stands"),
    ("back", "go back one question"),
    ("skip", "answer 'not known yet'"),
    ("cancel", "cancel the open screening, or another: /cancel R-0423"),
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
    ("details", "/details on: criterion ids and variable names beside questions; off"),
    ("help", "how to use me"),
]
HELP = (
    "Answer with the buttons, or type: numbers like 1.2, 1,2, 1.2 mg/dL, 106 µmol/L, "
    "or 45/40 (value/upper limit of normal); ? when it is not known.\n\n"
    + "\n".join(f"/{name} – {text}" for name, text in COMMANDS)
)
REFUSED = "Sorry, this bot is only for the trial team's authorised coordinators."
PRIVATE_ONLY = "I work in private chats only, so that screening data stays between us."
FORWARDED = "I don't take forwarded messages as answers or commands; please type it yourself."
EARLIER_QUESTION = (
    "That reply is to an earlier question, so it was not taken; /back changes an earlier "
    "answer. The current question:"
)
NOT_TEXT = "I read only typed text and the buttons: please type the answer, or tap a button."
NOT_SAVED = (
    "⚠ That was NOT saved: the bot could not write to its database. Nothing changed; "
    "please send it again later (the bot's log says why)."
)
EARLY_RESHOWN = "⚠ Nothing was recorded: this question had not reached you yet. Here it is:"
EARLY = (
    "⚠ Nothing was recorded for that message: it came before the question above was shown. "
    "Answer that question if it was meant for it."
)
NO_SCREENING_TEXT = (
    "No screening is open (an unfinished one expires when left unused). /screen starts one; "
    "/list shows unfinished ones."
)
STALE_TEXT = "That question was already answered."
GONE_TEXT = "That screening is finished, cancelled or expired."
PAUSED_TEXT = "That screening is paused; /resume it first."
FORGED_TEXT = "That button is not valid."
REFUSALS = {
    NO_SCREENING: NO_SCREENING_TEXT,
    STALE: STALE_TEXT,
    GONE: GONE_TEXT,
    PAUSED: PAUSED_TEXT,
    FORGED: FORGED_TEXT,
    FIRST_QUESTION: "This is the first question.",
    PROTOCOL_CHANGED: "The protocol file changed since this screening began, so it cannot go "
    "on safely; it was removed. /screen starts again.",
    NOT_OPEN: "No unfinished screening with that label (an unfinished one expires when left "
    "unused). /list shows them.",
    NO_CHECK: "That quick check was replaced (by a newer /check or /screen) or has expired; "
    "/check again.",
    CHECK_CONTINUED: "That quick check was continued already; /list shows the screenings "
    "open, /check again to start another.",
    NO_OFFER: "That choice was made already, replaced (by a newer /screen or /check) or has "
    "expired; /screen again for another screening.",
    NOTHING_TICKED: "Nothing is ticked: tick the ones that apply, or tap 'None of these'.",
    OUTDATED: "Those buttons were out of date; the list is shown again: tap once more.",
}
NO_PROTOCOLS = "No protocols are installed."
CHOOSE_PROTOCOL = "Several protocols are installed. Which one? (All: one screening against each.)"
CHOICES_CHANGED = "The protocols changed since these buttons were shown; send the command again."
CHOOSE_ONE_PROTOCOL = "Several protocols are installed. Which one?"
ALL_LABEL = "All protocols"
SEE_PROTOCOLS = "{error}. /protocols lists them."
CANCELLED_QUESTION = "Screening cancelled."
WENT_BACK = "↩ Went back."
RESUMED = "Resumed."
NO_OPEN = "No unfinished screenings."
LISTING_TITLE = "Unfinished screenings (/resume LABEL):"
AT_REFERRAL = "at the referral code"  # /list: a screening still waiting for it
BUTTON_LABELS = {
    "yes": "Yes",
    "no": "No",
    "unknown": "Unknown",
    "back": "⬅ Back",
    "done": "✓ Done",
    "never": "None (never)",
    "skip": "Skip (no referral code)",
}
# beside a choice spelled like unknown ("unknown", "not known"): not the same answer
UNKNOWN_BESIDE_A_CHOICE = "? (answer not known)"
FINISH_LABELS = {"none": "✓ None of these", "all": "✓ All of these hold"}
TOGGLES_PER_ROW = 4
CONTINUE = "▶ Continue the screening"
LOG_IT = "▶ Screen and log this"
CHECK_USAGE = (
    "Send the values you know with the command, e.g. for blina-dli:\n"
    "/check age 40, male, lvef 55, qtc 430, alt 1.2, crcl 95\n"
    "or one 'name value' per line after /check. /check all checks every protocol."
)
DETAILS_ON = "Details on: questions show the criteria they decide and the variable names."
DETAILS_OFF = "Details off: questions show progress, the question and one help line."
DETAILS_USAGE = "/details on or /details off"
# /log, /stats, /forget
NO_RECORDS = "You have no finished screenings yet."
NO_STATS = "No screenings are logged yet."
# a read that failed (the database's own words: "could not be read"); nothing was written
LOG_NOT_READ = (
    "⚠ The screening log could not be read just now. Nothing changed; please send /stats "
    "again later (the bot's log says why)."
)
DRAW_THE_CHART = "the site's administrator draws it: screen-bot log stats --chart FILE.png"
STATS_CHART_UNSENT = f"(The chart could not be sent; {DRAW_THE_CHART}.)"
# /learn, /quiz, /progress, /flow
NO_CRITERION = "No criterion has that id."
LAST_CRITERION = "That was the last criterion. /quiz to practise on generated cases."
NEXT = "Next ▶"
QUIZ_OVER = "That case was already answered, or the quiz is over."
QUIZ_PROTOCOL_CHANGED = (
    "The protocol file changed since this quiz began, so it ended; /quiz starts one on the "
    "protocol as it is now."
)
SEED_TOO_LONG = "A quiz seed is a whole number of at most 18 digits, e.g. /quiz 42."
QUIZ_BUTTONS = [
    [("Eligible", "e"), ("Not eligible…", "n")],
    [("Unresolved", "u"), ("Stop quiz", "x")],
]
NO_DIAGRAM = "The diagram cannot be drawn here: {error}"


def bot_commands() -> list[BotCommand]:
    return [BotCommand(name, text[: BotCommandLimit.MAX_DESCRIPTION]) for name, text in COMMANDS]


def refusal(reason: str, detail: str = "", why: str = "") -> str:
    if reason == REFERRAL_TAKEN:
        return (
            f"{detail} already has an unfinished screening: /resume {detail}, or /cancel {detail}."
        )
    if reason == PROTOCOL_BROKEN:
        return (
            f"⚠ Screening {detail} cannot go on: its protocol file is broken ({why}). It is "
            f"kept: once the file is fixed, /resume {detail} goes on with it (or ends it, if "
            f"its protocols changed); /cancel {detail} drops it."
        )
    if reason == PROTOCOL_CHANGED and detail:
        return (
            f"The protocol file changed since screening {detail} began, so it cannot go on "
            "safely; it was removed. /screen starts it again."
        )
    if reason == PROTOCOL_MISSING:
        return (
            f"⚠ Screening {detail} cannot go on: its protocol file is missing (no dialog file "
            f"holds {why} now). It is kept: once the file is back, /resume {detail} goes on "
            f"with it (or ends it, if the file changed); /cancel {detail} drops it."
        )
    return REFUSALS.get(reason, FORGED_TEXT)


def protocols_text(
    found: Sequence[tuple[str, str, str]], broken: Sequence[str] = (), with_all: bool = False
) -> str:
    lines = [f"{pid} (version {version}): {title}" for pid, version, title in found]
    if with_all:
        lines.append("all: every protocol in one screening (/screen all)")
    text = "\n".join(lines) or NO_PROTOCOLS
    if broken:
        text += "\n\nBroken, not offered (fix the file):\n" + "\n".join(f"• {b}" for b in broken)
    return text


def chosen(protocol_id: str) -> str:
    return f"Protocol: {ALL_LABEL if protocol_id == 'all' else protocol_id}"


def choice_keyboard(
    command: str, choices: Sequence[str], argument: str | None = None
) -> InlineKeyboardMarkup:
    """One button per protocol (and 'All protocols'), for ``command`` (s, l, q, f)."""
    offered = fingerprint(choices)
    if argument is not None and not ARGUMENT.match(argument):
        argument = None  # not something a button can carry: the command starts without it
    rows = [
        [
            InlineKeyboardButton(
                ALL_LABEL if pid == "all" else pid,
                callback_data=Choice(command, offered, index, argument or "").encode(),
            )
        ]
        for index, pid in enumerate(choices)
    ]
    return InlineKeyboardMarkup(rows)


def started(result: Started) -> str:
    note = (
        f"Screening {result.label} started against all protocols ({result.protocol_version})."
        if result.protocol_id == "all"
        else f"Screening {result.label} started ({result.protocol_id} version "
        f"{result.protocol_version})."
    )
    if result.paused is not None:
        note += f" The screening {result.paused} is paused: /list, /resume."
    return "\n".join([note, *(f"⚠ {line}" for line in result.left_out)])


def status(answered: int) -> str:
    return f"{plural(answered, 'answer')} so far; we are here."


def went_wrong(progress: tuple[int, int] | None) -> str:
    """The reply to an input a handler failed on; the screening itself is saved."""
    where = (
        f"your screening is safe at question {progress[0]} of {progress[1]} (/status)"
        if progress is not None
        else "your screenings are safe (/list)"
    )
    return f"⚠ Something went wrong with that message; {where}."


def early(reshown: bool) -> str:
    return EARLY_RESHOWN if reshown else EARLY


def invalid(message: str) -> str:
    return f"⚠ {message}"


def unusual(message: str) -> str:
    return f"⚠ {sentence(message)} Tap ✓ if it is right, or type the corrected value."


def cancelled(label: str, active: str | None = None) -> str:
    text = f"Screening {label} cancelled; nothing of it is kept."
    if active is not None:
        text += f" Screening {active} goes on: its question is above."
    return text


def listing(screenings: Sequence[OpenScreening], limit: int = MAX_MESSAGE) -> str:
    """The open screenings, in the order given (the one used last first), in ONE message of
    at most ``limit`` characters as Telegram counts them: those that fit, then how many
    more there are and how to reach them. Never parts: a coordinator with hundreds open
    would get a burst of messages, beyond Telegram's about one a second per chat (and one
    flood refusal holds every send of the bot)."""
    if not screenings:
        return NO_OPEN
    lines = [LISTING_TITLE, *map(_listed, screenings)]
    if _width("\n".join(lines)) <= limit:
        return "\n".join(lines)
    room = limit - 1 - _width(_more_listed(len(screenings)))  # the last line at its longest
    width = _width(LISTING_TITLE)
    shown = 0
    for line in lines[1:]:
        width += 1 + _width(line)
        if width > room:
            break
        shown += 1
    return "\n".join([*lines[: 1 + shown], _more_listed(len(screenings) - shown)])


def _listed(screening: OpenScreening) -> str:
    o = screening
    return (
        f"{'▶ ' if o.active else ''}{o.referral or o.session_id} · {o.protocol_id} · "
        f"{AT_REFERRAL if o.awaiting_referral else f'at {o.state}'} · "
        f"{o.updated_at:%Y-%m-%d %H:%M} UTC"
    )


def _more_listed(count: int) -> str:
    return (
        f"…and {plural(count, 'more unfinished screening')}, used longer ago: "
        "/resume LABEL or /cancel LABEL works for any of them."
    )


def forgotten(count: int) -> str:
    return (
        f"Deleted {plural(count, 'unfinished screening')}. "
        "Finished screenings stay in the site's screening log."
    )


def keyboard(asked: Asked) -> InlineKeyboardMarkup:
    """The buttons of a step: answers (or toggles, in rows), the finishing button, then
    unknown and back. A toggle and "done" carry the ticks shown: they apply to those."""

    shown = tuple(o.state for o in asked.options if o.kind == "toggle")
    unknown_is_a_choice = any(is_unknown_text(c) for c in asked.question.choices or [])

    def button(option: Option) -> InlineKeyboardButton:
        text: str | None = BUTTON_LABELS.get(option.kind)
        if option.kind == "confirm":
            text = f"✓ {option.choice} is right"
        elif option.kind == "choice":
            text = option.choice
        elif option.kind == "toggle":
            text = f"{TICK[option.state]} {option.choice}"
        elif option.kind == "all":
            text = FINISH_LABELS.get(option.choice or "none")
        elif option.kind == "unknown" and unknown_is_a_choice:
            text = UNKNOWN_BESIDE_A_CHOICE
        ticks = shown if option.kind in ("toggle", "done") else None
        data = Press(asked.session_id, asked.step, option.key, ticks).encode()
        return InlineKeyboardButton(text or "?", callback_data=data)

    toggles = [button(o) for o in asked.options if o.kind == "toggle"]
    per_row = TOGGLES_PER_ROW if asked.checklist is not None else 1
    rows = [toggles[i : i + per_row] for i in range(0, len(toggles), per_row)]
    last = ("unknown", "back", "skip")
    answers = [button(o) for o in asked.options if o.kind not in (*last, "toggle")]
    always = [button(o) for o in asked.options if o.kind in last]
    return InlineKeyboardMarkup([row for row in (*rows, answers, always) if row])


def check_keyboard(checked: Checked) -> InlineKeyboardMarkup | None:
    """The button that continues a quick check as a screening (none if nothing was read)."""
    if checked.check_id is None:
        return None
    label = LOG_IT if checked.decided else CONTINUE
    data = ContinueCheck(checked.check_id).encode()
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)]])


def details(on: bool) -> str:
    return DETAILS_ON if on else DETAILS_OFF


def question_message(asked: Asked, notes: Sequence[str] = ()) -> str:
    label = f"{asked.referral} · " if asked.referral else ""
    text = f"{label}{asked.text}"
    return "\n\n".join([*notes, text])


def answered_message(question: Question, value: Any) -> str:
    return f"{question.text}\n→ {format_value(value)}"


def retired_text(retired: Retired) -> str | None:
    """The new text of a retired question message (None: keep it, drop its buttons)."""
    if retired.how == "answered" and retired.answers:
        return "\n".join(f"{TICK[v]} {q.text}" for q, v in retired.answers)
    if retired.how == "answered" and retired.question is not None:
        return answered_message(retired.question, retired.value)
    return {"back": WENT_BACK, "cancelled": CANCELLED_QUESTION}.get(retired.how)


def recent(records: Sequence[LogRecord]) -> str:
    if not records:
        return NO_RECORDS
    lines = [
        f"#{r.number} {r.at:%Y-%m-%d} {r.referral or '–'} {r.protocol.id} "
        f"{r.protocol.version}: {r.verdict}"
        + (f" ({', '.join(x.criterion for x in r.reasons)})" if r.reasons else "")
        for r in records
    ]
    return f"Your last {plural(len(lines), 'screening')}:\n" + "\n".join(lines)


def stats_caption(found: Sequence[Stats]) -> str:
    from ...reports import stats_text

    return "\n".join(stats_text(s).splitlines()[0] for s in found)[:MAX_CAPTION]


def stats_message(found: Sequence[Stats]) -> str:
    from ...reports import stats_text

    return "\n\n".join(stats_text(s) for s in found)


def stats_without_chart(protocols: int, at_most: int) -> str:
    return (
        f"(No chart: a picture here shows {at_most} protocols at most; {DRAW_THE_CHART}, "
        f"all {protocols} of them.)"
    )


def learn_keyboard(protocol_id: str, index: int) -> InlineKeyboardMarkup:
    data = Learn(protocol_id, index).encode()
    return InlineKeyboardMarkup([[InlineKeyboardButton(NEXT, callback_data=data)]])


def quiz_intro(protocol_id: str, cases: int, seed: int) -> str:
    return (
        f"Quiz on {protocol_id}: {plural(cases, 'case')} (seed {seed}). For each, "
        "choose the verdict; for 'not eligible', the criterion that failed."
    )


def quiz_end(summary: str) -> str:
    return summary + " /progress shows your record."


def quiz_stopped(summary: str) -> str:
    return "Quiz stopped. " + summary


def verdict_buttons(quiz_id: str, position: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    text, callback_data=QuizPress(quiz_id, position, code).encode()
                )
                for text, code in row
            ]
            for row in QUIZ_BUTTONS
        ]
    )


def criterion_buttons(quiz_id: str, position: int, ids: Sequence[str]) -> InlineKeyboardMarkup:
    def button(cid: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            cid, callback_data=QuizPress(quiz_id, position, f"c:{cid}").encode()
        )

    return InlineKeyboardMarkup(
        [[button(cid) for cid in ids[i : i + 6]] for i in range(0, len(ids), 6)]
    )


def flow_caption(protocol_id: str, version: str) -> str:
    return (
        f"{protocol_id} version {version}: questions in order, the conditions that skip them, "
        "and the early exits to not eligible."
    )


def parts(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """The messages that send ``text``: :func:`split`, each part after the first opening
    with what it continues ("blina-dli 1.1 verdict, continued (2/3)")."""
    if len(whole := split(text, limit)) == 1:
        return whole
    sections = layout(text)
    titles = [section_title(blocks) for blocks in sections]
    longest = max((_width(title) for title in titles if title), default=0)
    digits = 1
    while True:  # the header's room depends on the count of parts, which depends on it
        most = 10**digits - 1
        room = _width(_continued("x" * longest, most, most)) + 1  # and its line break
        if room > limit // 2:  # a limit too small for headers (not Telegram's)
            return whole
        located = _pack(sections, limit - room)
        if len(str(len(located))) <= digits:
            break
        digits += 1
    count = len(located)
    return [located[0].text] + [
        f"{_continued(titles[part.section], number, count)}\n{part.text}"
        for number, part in enumerate(located[1:], start=2)
    ]


def toast(text: str) -> str:
    """``text`` as a button press's answer may hold it: cut to :data:`MAX_TOAST` characters
    as Telegram counts them (UTF-16 code units), ending with "…" where it was cut."""
    if _width(text) <= MAX_TOAST:
        return text
    return text[: _fitting(text, MAX_TOAST - 1)].rstrip() + "…"


def split(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split into parts of at most ``limit`` characters as Telegram counts them (UTF-16 code
    units: an emoji past U+FFFF is two), keeping whole what fits whole: a section (a
    protocol's verdict), else a block (a reason with its quote and outlook, an open item),
    else a line; only a line too long alone is cut. Only line breaks are lost."""
    return [part.text for part in _pack(layout(text), limit)]


@dataclass
class _Part:
    text: str
    section: int  # the section of the text it begins in
    width: int = 0  # of text, kept rather than counted again at each piece


def _pack(sections: list[list[str]], limit: int) -> list[_Part]:
    parts: list[_Part] = []

    def place(piece: str, glue: str, section: int) -> bool:
        """Put ``piece`` after the last part (joined by ``glue``) or else in a part of its
        own; False if it fits in neither."""
        width = _width(piece)
        if parts and parts[-1].width + len(glue) + width <= limit:
            parts[-1].text += glue + piece
            parts[-1].width += len(glue) + width
        elif parts and not piece:
            pass  # an empty line where a part ends: only its line break is lost
        elif width <= limit:
            parts.append(_Part(piece, section, width))
        else:
            return False
        return True

    for index, blocks in enumerate(sections):
        glue = "\n\n" if index else ""
        if place("\n".join(blocks), glue, index):
            continue
        for number, block in enumerate(blocks):
            block_glue = "\n" if number else glue
            if place(block, block_glue, index):
                continue
            for count, line in enumerate(block.split("\n")):
                if place(line, "\n" if count else block_glue, index):
                    continue
                while line:
                    cut = _fitting(line, limit)
                    parts.append(_Part(line[:cut], index, _width(line[:cut])))
                    line = line[cut:]
    return parts or [_Part("", 0)]


def _continued(title: str | None, number: int, count: int) -> str:
    return f"{title}, continued ({number}/{count})" if title else f"Continued ({number}/{count})"


def _width(text: str) -> int:
    return len(text) + sum(1 for c in text if c > "\uffff")


def _fitting(line: str, limit: int) -> int:
    """How many of ``line``'s characters fit in ``limit`` UTF-16 code units."""
    width = 0
    for index, character in enumerate(line):
        width += 2 if character > "\uffff" else 1
        if width > limit:
            return index
    return len(line)
