"""The dialog-file schema: what a protocol file in ``dialogs/`` may contain."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..words import INDENT

# The spellings of names and ids, each with how a fix words it and an example.
NAME = r"^[a-z][a-z0-9_]{0,63}$"
PROTOCOL_ID = r"^[a-z0-9][a-z0-9-]{0,39}$"
CRITERION_ID = r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$"
SPELLINGS = {
    NAME: (
        "a lower-case letter, then lower-case letters, digits and _ (at most 64)",
        "lvef_percent",
    ),
    PROTOCOL_ID: (
        "lower-case letters, digits and -, the first a letter or digit (at most 40)",
        "blina-dli",
    ),
    CRITERION_ID: ("a letter, then letters, digits, _, . and - (at most 32)", "I8c"),
}
Identifier = Field(pattern=NAME)
QuestionType = Literal["int", "number", "yes_no", "choice", "date", "date_or_none", "text"]
NUMERIC = ("int", "number")
FIXED = "dialog_file"  # the type of a schema problem that carries its fix (ctx "fix")

# Explicit directional formatting (embeddings, overrides, isolates): shown, each reorders
# the text after it, so a label can read other than it is written.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
UNSHOWN_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")  # controls, lone surrogates, U+2028, U+2029


SURROGATE_FIX = (
    "write the character itself (or its \\U escape, e.g. \\U0001F600 for 😀) instead of a "
    "\\ud800-style escape"
)


def refusal(message: str, fix: str) -> PydanticCustomError:
    """A schema problem with the fix the loader shows under it."""
    return PydanticCustomError(FIXED, message, {"fix": fix})


def character_name(character: str) -> str:
    """``U+202E`` with what it is, for a message about a character that cannot be seen."""
    code = f"U+{ord(character):04X}"
    if character == "\n":
        return f"a line break ({code})"
    if character == "\t":
        return f"a tab ({code})"
    if unicodedata.category(character) == "Cs":
        return f"a lone surrogate ({code}), half of a pair and no character by itself"
    if character in BIDI_CONTROLS:
        return f"the bidi control {code}, which reorders how the text after it is shown"
    if character == "\x1b":
        return f"the control character {code} (ESC), which starts a terminal escape sequence"
    if unicodedata.category(character) == "Cc":
        return f"the control character {code}"
    return f"the invisible character {code} ({unicodedata.name(character, 'unnamed')})"


def unshowable(text: str, *, breaks: bool) -> str | None:
    """The first character of ``text`` a message must not carry as it is: a control
    character (a terminal acts on an escape sequence; a line break or tab only where
    ``breaks``), a bidi control, a lone surrogate (no output can encode it)."""
    if text.isprintable():  # the usual case, at C speed
        return None
    for character in text:
        if breaks and character in "\n\t":
            continue
        if character in BIDI_CONTROLS or unicodedata.category(character) in UNSHOWN_CATEGORIES:
            return character
    return None


def _showable(*, breaks: bool, shown: bool = False) -> Any:
    """The check of a text a message shows (``shown``: to the user, so never blank)."""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # refused as no text by the type's own check
        if shown and not value.strip():
            raise refusal(
                "is blank", "write the text the user is shown (it is empty or only spaces)"
            )
        found = unshowable(value, breaks=breaks)
        if found is None:
            return value
        position = value.index(found) + 1
        if found in "\n\t":
            fix = "write it on one line" if found == "\n" else "write a space instead of the tab"
        elif unicodedata.category(found) == "Cs":
            fix = SURROGATE_FIX
        else:
            fix = (
                "delete it (in a quoted text, its \\x or \\u escape): it is invisible in "
                "most editors and often comes with text pasted from a PDF or a word processor"
            )
        raise refusal(f"character {position} is {character_name(found)}", fix)

    return BeforeValidator(check)


# Texts a message shows: without control characters, bidi controls or lone surrogates; a
# Line is one line, a Text may hold line breaks and tabs; the Shown ones are never blank.
Line = Annotated[str, _showable(breaks=False)]
Text = Annotated[str, _showable(breaks=True)]
ShownLine = Annotated[str, _showable(breaks=False, shown=True)]
ShownText = Annotated[str, _showable(breaks=True, shown=True)]

# A criterion's source, as its reason quotes it and Telegram counts it: with the reason's id,
# label (at most 200), answers and outlook, and the "continued" line of a message after
# the first, it stays within one message (4,096), as a verdict is split between reasons,
# never inside one. The shipped files' longest is 660.
MAX_SOURCE = 2000


def quoted_width(text: str) -> int:
    """``text`` as a reason quotes it, as Telegram counts it: a character past U+FFFF is two
    (UTF-16), a line break carries the indent of the line after it."""
    return len(text) + sum(c > "\uffff" for c in text) + len(INDENT) * text.count("\n")


def _fits_a_message(text: str) -> str:
    width = quoted_width(text)
    if width > MAX_SOURCE:
        counted = (
            ""
            if width == len(text)
            else f" (an emoji counts two, a line break {1 + len(INDENT)}: with its indent)"
        )
        raise refusal(
            f"is {width:,} characters long as a message counts them{counted}; a source is at "
            f"most {MAX_SOURCE:,}, so that its reason stays in one Telegram message",
            "quote the sentence that decides and cite the rest by its place, e.g. "
            "'protocol section 5.1, criterion 3 (see the protocol for the list)'",
        )
    return text


Quote = Annotated[Text, AfterValidator(_fits_a_message)]  # a criterion's source


class _Strict(BaseModel):
    # Built at the first validation, not at import: a bot whose dialog files are kept checked
    # (protocol/cache.py) unpickles them and validates none before its first poll.
    # Every number finite: a limit of .nan refuses every answer, one of .inf breaks the SQL.
    model_config = ConfigDict(
        extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False, strict=True
    )


class AltUnit(_Strict):
    """Another unit a numeric answer may be given in, converted by division."""

    unit: Line = Field(min_length=1, max_length=40)
    divide_by: float = Field(gt=0)


class Question(_Strict):
    variable: str = Identifier
    type: QuestionType
    text: ShownText = Field(min_length=1, max_length=1000)
    help: Text = Field("", max_length=1000)
    min: float | None = None
    max: float | None = None
    # the limit before the check, on the text itself: on "Line | None" it counted "items"
    unit: Annotated[str, Field(max_length=40), _showable(breaks=False)] | None = None
    choices: list[str] | None = Field(None, max_length=60)
    multiple: bool = Field(False, description="choices: a set of them may be chosen")
    ordered: bool = Field(False, description="choices: listed from lowest to highest")
    also_accepts: list[AltUnit] = Field([], max_length=10)
    uln_ratio: bool = Field(False, description="accept 'value/ULN' and convert to a multiple")
    future: bool = Field(False, description="date: a planned date, not before the screening")
    confirm_below: float | None = None
    confirm_above: float | None = None
    confirm_hint: Line = Field("", max_length=200)
    aliases: list[Line] = Field([], max_length=10)
    synonyms: dict[str, str] = Field(
        {}, max_length=30, description="choice: other words for a choice, e.g. {man: male}"
    )
    when: str | None = None

    @field_validator("confirm_below", "confirm_above")
    @classmethod
    def _inside_the_range(cls, limit: float | None, info: ValidationInfo) -> float | None:
        """A plausibility limit strictly inside min and max. An answer warns only when it is
        strictly beyond the limit (15 does not warn under confirm_above: 15), so a limit at
        or past its own end of the range never warns, and one past the other end warns of
        every answer."""
        low, high = info.data.get("min"), info.data.get("max")
        if limit is None or low is None or high is None or low < limit < high:
            return limit  # (min and max missing or crossed are said at the question)
        side = "above" if info.field_name == "confirm_above" else "below"
        range_ = f"min {_number(low)} – max {_number(high)}"
        if (limit >= high) if side == "above" else (limit <= low):
            said = f"no answer is {side} it, so it never asks to confirm"
        else:
            but = " (but the one at it)" if limit in (low, high) else ""
            said = f"every answer{but} is {side} it, so it asks to confirm them all"
        raise refusal(
            f"{info.field_name} {_number(limit)} is not inside {range_}: {said}",
            f"write a limit between min and max (an answer strictly {side} it is asked to "
            f"confirm), or remove {info.field_name}",
        )

    @model_validator(mode="after")
    def _type_fields(self) -> Question:
        numeric = self.type in NUMERIC
        if numeric and (self.min is None or self.max is None):
            raise refusal(
                f"a {self.type} question needs both min and max",
                "add min: and max:, the range a plausible answer lies in (e.g. min: 0 and "
                "max: 120 for an age in years)",
            )
        if numeric and self.min is not None and self.max is not None and self.min > self.max:
            low, high = _number(self.min), _number(self.max)
            raise refusal(
                f"min {low} is greater than max {high}",
                f"swap them (min: {high}, max: {low}) or correct the one mistyped",
            )
        if not numeric:
            wrong = [
                name
                for name in ("min", "max", "confirm_below", "confirm_above")
                if getattr(self, name) is not None
            ]
            if wrong or self.also_accepts or self.uln_ratio:
                extra = wrong + ["also_accepts"] * bool(self.also_accepts)
                named = ", ".join(extra or ["uln_ratio"])
                raise refusal(
                    f"a {self.type} question takes no {named}",
                    f"remove {named} (they are for int and number questions), or correct its type",
                )
        if self.type == "choice":
            self._choices_listed()
        if self.type != "choice" and (self.choices or self.multiple or self.ordered):
            raise refusal(
                f"a {self.type} question takes no choices, multiple or ordered",
                "remove them, or make it type: choice",
            )
        if self.synonyms and self.type != "choice":
            raise refusal(
                "synonyms are for choice questions", "remove synonyms, or make it type: choice"
            )
        wrong = [f"{k}: {v}" for k, v in self.synonyms.items() if v not in (self.choices or [])]
        if wrong:
            raise refusal(
                f"a synonym must name one of the choices: {', '.join(wrong)}",
                "after each synonym's ':' write one of the choices exactly as listed "
                f"({', '.join(repr(c) for c in self.choices or [])}), or add the choice it "
                "names",
            )
        if self.multiple and self.ordered:
            raise refusal(
                "a multi-select question cannot also be ordered",
                "keep multiple: true (a set of choices) or ordered: true (one choice, "
                "compared with < and >), not both",
            )
        if self.future and self.type != "date":
            raise refusal(
                "future: true is for date questions (a planned date)",
                "remove future: true, or make it type: date",
            )
        return self

    def _choices_listed(self) -> None:
        """A choice question's choices: some, each written, none twice."""
        choices = self.choices or []
        message = "a choice question needs a list of distinct, non-empty choices"
        if not choices:
            raise refusal(message, "list its choices, e.g. choices: [female, male]")
        if not all(c.strip() for c in choices):
            raise refusal(message, "remove the empty choice")
        twice = sorted({c for c in choices if choices.count(c) > 1})
        if twice:
            raise refusal(message, f"list each choice once: '{twice[0]}' is listed twice")


def _number(value: float) -> str:
    """A limit as the file would write it: 200, not 200.0."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else str(value)


class CalculatorUse(_Strict):
    """One way to estimate a derived value; the first whose ``when`` holds is used."""

    calculator: str
    inputs: dict[str, str]
    when: str | None = None


class Derived(_Strict):
    """A value computed from answers: the measured variable if known, else an estimate."""

    name: str = Identifier
    label: ShownLine = Field(min_length=1)
    unit: Line = Field(min_length=1, description="the unit of the value, e.g. mL/min")
    measured: str | None = None
    calculator: str | None = None
    inputs: dict[str, str] | None = None
    calculators: list[CalculatorUse] = Field([], max_length=10)

    @model_validator(mode="after")
    def _one_form(self) -> Derived:
        single = self.calculator is not None or self.inputs is not None
        if single and self.calculators:
            raise refusal(
                "give either calculator + inputs, or calculators: [...], not both",
                "keep calculator + inputs for one estimate, or move them into calculators: "
                "for several",
            )
        if single and (self.calculator is None or self.inputs is None):
            missing = "calculator" if self.calculator is None else "inputs"
            raise refusal(
                "calculator and inputs go together",
                f"add {missing}: (inputs map each of the calculator's inputs to a question, "
                "e.g. {age: age, sex: sex})",
            )
        if not single and not self.calculators:
            raise refusal(
                "a derived value needs calculator + inputs (or calculators)",
                "add calculator: (e.g. cockcroft_gault) and inputs: mapping each of its inputs "
                "to a question",
            )
        return self

    @property
    def uses(self) -> list[CalculatorUse]:
        if self.calculator is not None and self.inputs is not None:
            return [CalculatorUse(calculator=self.calculator, inputs=self.inputs)]
        return list(self.calculators)

    @property
    def sources(self) -> list[str]:
        """Every question the value may be read or estimated from."""
        names = [self.measured] if self.measured else []
        for use in self.uses:
            names += [v for v in use.inputs.values() if v not in names]
        return names


class TableRow(_Strict):
    when: str
    value: float


class Table(_Strict):
    """A value looked up by bands (e.g. a creatinine limit by age and sex)."""

    name: str = Identifier
    label: ShownLine = Field(min_length=1)
    unit: Line = ""
    rows: list[TableRow] = Field(min_length=1, max_length=200)


class Criterion(_Strict):
    id: str = Field(pattern=CRITERION_ID)
    kind: Literal["inclusion", "exclusion"]
    label: ShownLine = Field(min_length=1, max_length=200)
    source: Quote = Field(min_length=1, description="the protocol's own words")
    met_when: str | None = None
    applies_when: str | None = None
    judgment: bool | list[str] = Field(
        False,
        description="true: its open items are the investigator's judgment; a list: only those"
        " on these questions (the rest are missing data)",
    )
    recoverable: Literal["retest", "wait"] | None = None
    confirm_estimate: Annotated[str, Field(min_length=1), _showable(breaks=True)] | None = Field(
        None, description="a failure resting only on an estimate is an open item with this advice"
    )

    @model_validator(mode="after")
    def _one_rule(self) -> Criterion:
        inclusion = self.kind == "inclusion"
        wanted, other = ("met_when", "applies_when") if inclusion else ("applies_when", "met_when")
        given, stray = getattr(self, wanted), getattr(self, other)
        if given is not None and stray is None:
            return self
        if given is None and stray is None:
            fix = f"add {wanted}: <rule>, e.g. {wanted}: 14 <= age <= 65"
        elif given is None:
            kind = "exclusion" if inclusion else "inclusion"
            fix = f"rename {other} to {wanted}, or make it kind: {kind}"
        else:
            fix = f"remove {other}: an {self.kind} has {wanted} only"
        raise refusal(f"an {self.kind} criterion needs {wanted} (and no {other})", fix)

    def judged(self, variable: str) -> bool:
        """Whether an open item of this criterion on ``variable`` is the investigator's
        judgment (else missing data)."""
        if isinstance(self.judgment, bool):
            return self.judgment
        return variable in self.judgment

    @property
    def rule(self) -> str:
        rule = self.met_when if self.kind == "inclusion" else self.applies_when
        assert rule is not None  # _one_rule
        return rule

    @property
    def rule_field(self) -> str:
        return "met_when" if self.kind == "inclusion" else "applies_when"


class Note(_Strict):
    """A question for the sponsor or a reading the file had to choose."""

    text: Text = Field(min_length=1)
    criteria: list[str] = []


class Checklist(_Strict):
    """Consecutive yes/no questions asked as one step: one list, a toggle per item.

    ``none_apply``: the items are things that usually do not apply (rare exclusions); an
    untouched item is "no", and one tap answers "none of these". ``all_hold``: the items
    usually hold (inclusion confirmations); an untouched item is "yes", and one tap
    answers "all of these hold". Each item stays its own answer, read by its own rules.
    """

    name: str = Identifier
    text: ShownText = Field(min_length=1, max_length=300)
    help: Text = Field("", max_length=300)
    mode: Literal["none_apply", "all_hold"]
    items: list[str] = Field(min_length=2, max_length=20)

    @property
    def default(self) -> bool:
        """The answer of an item left untouched."""
        return self.mode == "all_hold"


class DialogFile(_Strict):
    id: str = Field(pattern=PROTOCOL_ID)
    title: ShownLine = Field(min_length=1, max_length=200)
    version: Line = Field(min_length=1, max_length=40)
    source: Text = Field("", description="where the protocol text comes from")
    anchors: list[str] = Field([], description="planned dates that windows may count from")
    notes: list[Note] = []
    questions: list[Question] = Field(min_length=1, max_length=500)
    checklists: list[Checklist] = Field([], max_length=50)
    tables: list[Table] = Field([], max_length=50)
    derived: list[Derived] = Field([], max_length=50)
    criteria: list[Criterion] = Field(min_length=1, max_length=500)
