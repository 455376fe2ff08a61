"""Every inline-button scheme of the bot, with its encoding and decoding (≤ 64 bytes).

- screening ``v|<session id>|<step>|<key>``: a press is applied only when the session is
  the chat's live one and still at that step, so an old button, a finished screening's
  button or forged data changes nothing. A checklist's or multi-select's toggles ``t<n>``
  keep the step, and they and its "done" ``d`` end in ``|<ticks>``: the ticks the message
  shows, so a press applies to what its message showed even when a redraw failed or a
  late one put older ticks back (data without them, from before this scheme, is refused
  and the step shown again);
- quick check ``k|<check id>``: continue the screening from the chat's latest check (an
  older check's button is refused);
- walk-through ``l|<protocol id>|<index>``: the next criterion;
- quiz ``q|<quiz id>|<position>|<code>``: a verdict (e, n, u), stop (x) or ``c:<criterion>``;
- protocol choice ``p|<command>|<list>|<index>|<argument>``: several protocols and none
  named, the user picks one for /screen (s), /learn (l), /quiz (q) or /flow (f); ``list`` is
  a fingerprint of the protocols offered (a press after they changed is refused) and
  ``argument`` what the command was given besides (a criterion, a seed); for /screen the
  offer's one-time key (the service keeps the offer with its referral: one pick of it
  starts one screening, as the quick check's ``k`` does).

Each handler is registered with its scheme's ``*_PREFIX`` (and one handler with
``OTHER_PREFIX`` refuses data of no scheme), so the order they are added in does not matter.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

SCREEN_PATTERN = re.compile(
    r"^v\|(?P<session>[0-9a-f]{8})\|(?P<step>\d{1,9})\|(?:(?P<key>[ynubkao]|c\d{1,2})"
    r"|(?P<ticking>d|t\d{1,2})(?:\|(?P<ticks>\d{1,2}\.[0-9a-f]{1,24}))?)$"
)
# Ticks as one base-3 number: an item's digit is 0 (no / not chosen), 1 (yes / chosen) or
# 2 (unknown); "<count>.<hex>": 60 choices take 24 hex digits, 64 bytes in all at most.
TICK_DIGITS: dict[bool | None, int] = {False: 0, True: 1, None: 2}
DIGIT_TICKS: tuple[bool | None, ...] = (False, True, None)
LEARN_PATTERN = re.compile(r"^l\|(?P<protocol>[a-z0-9-]{1,40})\|(?P<index>\d{1,4})$")
CRITERION = r"[A-Za-z][A-Za-z0-9_.-]{0,31}"  # a criterion id, as the dialog schema has it
QUIZ_PATTERN = re.compile(
    rf"^q\|(?P<quiz>[0-9a-f]{{8}})\|(?P<position>\d{{1,4}})\|(?P<code>[enux]|c:{CRITERION})$"
)
CHOICE_PATTERN = re.compile(
    r"^p\|(?P<command>[slqf])\|(?P<offered>[0-9a-f]{4})\|(?P<index>\d{1,2})"
    r"\|(?P<argument>[A-Za-z0-9._/-]{0,32})$"
)
CHECK_PATTERN = re.compile(r"^k\|(?P<check>[0-9a-f]{8})$")
ARGUMENT = re.compile(r"^[A-Za-z0-9._/-]{0,32}$")  # what a protocol button may carry along
# Handlers are registered by prefix: each decodes (and refuses) its own scheme's data,
# and data of no scheme at all goes to OTHER_PREFIX's handler, which refuses it.
SCREEN_PREFIX = re.compile(r"^v\|")
LEARN_PREFIX = re.compile(r"^l\|")
QUIZ_PREFIX = re.compile(r"^q\|")
SCREEN_CHOICE_PREFIX = re.compile(r"^p\|s\|")
TRAINING_CHOICE_PREFIX = re.compile(r"^p\|[lqf]\|")
CHECK_PREFIX = re.compile(r"^k\|")
OTHER_PREFIX = re.compile(r"^(?![vlqpk]\|)")


@dataclass(frozen=True)
class Press:
    """A screening button: the session and step it belongs to, and the answer key; a
    toggle's or "done"'s also the ticks its message shows (one per item or choice)."""

    session_id: str
    step: int
    key: str
    ticks: tuple[bool | None, ...] | None = None

    def encode(self) -> str:
        data = f"v|{self.session_id}|{self.step}|{self.key}"
        return data if self.ticks is None else f"{data}|{encode_ticks(self.ticks)}"


def encode_ticks(ticks: Sequence[bool | None]) -> str:
    number = sum(TICK_DIGITS[tick] * 3**i for i, tick in enumerate(ticks))
    return f"{len(ticks)}.{number:x}"


def decode_ticks(text: str) -> tuple[bool | None, ...] | None:
    count, _, digits = text.partition(".")
    number = int(digits, 16)
    if number >= 3 ** int(count):  # more digits than items: not data the bot sent
        return None
    return tuple(DIGIT_TICKS[number // 3**i % 3] for i in range(int(count)))


@dataclass(frozen=True)
class ContinueCheck:
    """Continue the screening from quick check ``check_id``."""

    check_id: str

    def encode(self) -> str:
        return f"k|{self.check_id}"


def decode_check(data: str | None) -> ContinueCheck | None:
    match = CHECK_PATTERN.match(data or "")
    return ContinueCheck(match["check"]) if match else None


@dataclass(frozen=True)
class Learn:
    protocol_id: str
    index: int

    def encode(self) -> str:
        return f"l|{self.protocol_id}|{self.index}"


@dataclass(frozen=True)
class QuizPress:
    quiz_id: str
    position: int
    code: str  # e, n, u, x, or c:<criterion>

    def encode(self) -> str:
        return f"q|{self.quiz_id}|{self.position}|{self.code}"


@dataclass(frozen=True)
class Choice:
    """The protocol picked (``choices[index]``) for ``command``, with the command's argument."""

    command: str  # s: /screen, l: /learn, q: /quiz, f: /flow
    offered: str  # fingerprint of the choices shown
    index: int
    argument: str = ""

    def encode(self) -> str:
        return f"p|{self.command}|{self.offered}|{self.index}|{self.argument}"

    def picked(self, choices: Sequence[str]) -> str | None:
        """The protocol id chosen, or None when the choices offered are not these any more."""
        if self.offered != fingerprint(choices) or self.index >= len(choices):
            return None
        return choices[self.index]


def fingerprint(choices: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(choices).encode()).hexdigest()[:4]


def decode_choice(data: str | None) -> Choice | None:
    match = CHOICE_PATTERN.match(data or "")
    if match is None:
        return None
    return Choice(match["command"], match["offered"], int(match["index"]), match["argument"])


def decode(data: str | None) -> Press | None:
    match = SCREEN_PATTERN.match(data or "")
    if match is None:
        return None
    if match["key"] is not None:
        return Press(match["session"], int(match["step"]), match["key"])
    press = Press(match["session"], int(match["step"]), match["ticking"])
    if match["ticks"] is None:  # a keyboard sent before the ticks were carried
        return press
    ticks = decode_ticks(match["ticks"])
    return None if ticks is None else replace(press, ticks=ticks)


def decode_learn(data: str | None) -> Learn | None:
    match = LEARN_PATTERN.match(data or "")
    return Learn(match["protocol"], int(match["index"])) if match else None


def decode_quiz(data: str | None) -> QuizPress | None:
    match = QUIZ_PATTERN.match(data or "")
    return QuizPress(match["quiz"], int(match["position"]), match["code"]) if match else None
