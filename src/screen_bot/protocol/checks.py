"""The checks a schema cannot express: names, order, types, units, reachability, traps.

The checker gives every name a :class:`Kind`, parses every expression, reports each
problem at its line with a fix, and builds the :class:`Protocol` with its expressions
bound and compiled. Checks that depend on a part that already failed are skipped, so one
mistake does not cascade into false reports. Whether a condition can be true, or a rule
left open on a question never asked, is searched in :mod:`.search`.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml.nodes import Node as YamlNode

from ..answers import ALWAYS_UNKNOWN, MULTIPLE_SEPARATORS, UNKNOWN_WORDS, typed_form
from ..rules.calculators import CALCULATORS, SEXES
from ..rules.compiled import compile_all
from ..rules.expressions import (
    FLIPPED,
    SCREENING_DATE,
    Compare,
    Expression,
    ExpressionError,
    Name,
    Node,
    Not,
    Shift,
    names_read,
    parse_node,
    render,
    walk,
)
from ..rules.types import Kind, bind, check
from ..rules.units import same_unit
from ..words import TERMINAL_COMMANDS, printable
from .loader import Problem, line_of
from .model import Estimate, Protocol, name_key
from .schema import NUMERIC, DialogFile, Question, character_name
from .search import (
    CALENDAR_UNITS,
    MAX_TOTAL_COMBINATIONS,
    AnswerSearch,
    dates_searched_exactly,
)
from .sets import ALL

# A rule comparing more than this is not searched for deciding alike for everyone. Real
# rules compare up to ~6; it was set when the search made every answer's candidates before
# its budget was paid (a file of 500 rules of 75 comparisons each took 16 s instead of 2.7).
MAX_SEARCHED_COMPARISONS = 16

# characters no typed answer holds: controls (line breaks, tabs), format characters (zero
# width, bidi), lone surrogates, the line and paragraph separators; but the zero-width
# non-joiner and joiner, which keyboards type inside Persian or Indic words and emoji
UNTYPED = ("Cc", "Cf", "Cs", "Zl", "Zp")
TYPED_FORMAT = {"\u200c", "\u200d"}


def _untyped(c: str) -> bool:
    return unicodedata.category(c) in UNTYPED and c not in TYPED_FORMAT


# batch rows' own keys beside the variables (batch.py's REFERRAL_KEY and SCREENED_ON_KEY)
BATCH_KEYS = {"referral": "referral code", "screened_on": "screening date"}
RENAME = {"questions": "variable", "derived": "derived value", "tables": "table"}


class Checker:
    def __init__(self, file: str, tree: YamlNode, spec: DialogFile) -> None:
        self.file, self.tree, self.spec = file, tree, spec
        self.problems: list[Problem] = []
        self.questions = {q.variable: q for q in spec.questions}
        self.derived = {d.name: d for d in spec.derived}
        self.tables = {t.name: t for t in spec.tables}
        self.kinds = self._kinds()
        self.trees: dict[str, Node] = {}  # key -> bound tree, for one compile at the end
        self.texts: dict[str, str] = {}
        self.search = AnswerSearch(
            self.kinds, self.questions, self.tables, budget=MAX_TOTAL_COMBINATIONS
        )

    def problem(self, loc: tuple[Any, ...], message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.file, line_of(self.tree, loc), message, fix))

    def run(self, path: Path, sha256: str) -> Protocol | None:
        if self.spec.id == ALL:
            self.problem(
                ("id",),
                f"the id '{ALL}' is reserved: --protocol {ALL} names every protocol together",
                "give the protocol its own id, e.g. the trial's short name",
            )
        self._duplicates()
        self._choice_words()
        self._anchors()
        self._notes()
        estimates = self._derived()
        tables = self._tables()
        when = self._conditions()
        self._checklists(when)
        rules = self._rules()
        if self.problems:  # later checks read all of the above: avoid a cascade
            return None
        self._unused(rules, when, tables, estimates)
        self._unasked_reads(rules, when)
        self._impossible_rules(rules)
        if self.problems:
            return None
        functions = compile_all(self.trees, f"rules of {self.spec.id}")

        def expression(key: str) -> Expression:
            return Expression(self.texts[key], self.trees[key], functions[key])

        return Protocol(
            spec=self.spec,
            path=path,
            sha256=sha256,
            kinds=self.kinds,
            when={v: expression(k) for v, k in when.items()},
            rules={c: expression(k) for c, k in rules.items()},
            tables={
                name: tuple((expression(k), value) for k, value in rows)
                for name, rows in tables.items()
            },
            estimates={
                name: tuple(Estimate(use, expression(k) if k else None) for use, k in uses)
                for name, uses in estimates.items()
            },
            lines={
                q.variable: line_of(self.tree, ("questions", i, "variable"))
                for i, q in enumerate(self.spec.questions)
            },
        )

    # -- names ---------------------------------------------------------------------------

    def _kinds(self) -> dict[str, Kind]:
        kinds: dict[str, Kind] = {SCREENING_DATE: Kind("date", label="the screening date")}
        for q in self.spec.questions:
            kinds[q.variable] = question_kind(q)
        for t in self.spec.tables:
            kinds.setdefault(t.name, Kind("number", unit=t.unit))
        for d in self.spec.derived:
            kinds.setdefault(d.name, Kind("number", unit=d.unit))
        return kinds

    def _duplicates(self) -> None:
        first: dict[str, tuple[str, tuple[Any, ...]]] = {}
        named = [
            ("questions", "variable", [q.variable for q in self.spec.questions]),
            ("derived", "name", [d.name for d in self.spec.derived]),
            ("tables", "name", [t.name for t in self.spec.tables]),
        ]
        for field, key, values in named:
            for index, value in enumerate(values):
                loc = (field, index, key)
                if value == SCREENING_DATE:
                    self.problem(loc, f"'{value}' is a built-in name", "choose another name")
                elif value in BATCH_KEYS:
                    self.problem(
                        loc,
                        f"'{value}' is reserved: a batch row's '{value}' key or column is "
                        f"its {BATCH_KEYS[value]}, not an answer",
                        f"rename the {RENAME[field]}, e.g. '{value}_answer'",
                    )
                elif value in first:
                    other_field, other_loc = first[value]
                    self.problem(
                        loc,
                        f"'{value}' is defined twice (also in {other_field} at line "
                        f"{line_of(self.tree, other_loc)})",
                        "give each question, derived value and table its own name",
                    )
                else:
                    first[value] = (field, loc)
        seen: dict[str, int] = {}
        for index, c in enumerate(self.spec.criteria):
            loc = ("criteria", index, "id")
            if c.id in seen:
                other = line_of(self.tree, ("criteria", seen[c.id], "id"))
                self.problem(
                    loc,
                    f"duplicate id '{c.id}' (also at line {other})",
                    "give each criterion a distinct id",
                )
            else:
                seen[c.id] = index
        aliases: dict[str, str] = {}
        for index, q in enumerate(self.spec.questions):
            for alias in q.aliases:
                key = name_key(alias)
                taken = aliases.get(key) or (
                    key if key in self.questions and key != q.variable else None
                )
                if taken:
                    self.problem(
                        ("questions", index, "aliases"),
                        f"alias '{alias}' also names '{taken}'",
                        "give each alias to one question only",
                    )
                aliases[key] = q.variable

    def _choice_words(self) -> None:
        """Choices and synonyms that every way of answering reads alike: the dialog and a
        quick check match them by typed form (case aside, synonyms first, some words
        reserved), a batch row by the exact choice."""
        for index, q in enumerate(self.spec.questions):
            where = ("questions", index)
            seen: dict[str, str] = {}
            for position, word in enumerate(q.choices or []):
                loc: tuple[Any, ...] = (*where, "choices", position)
                if not self._written_as_typed(loc, q, word, "choice"):
                    continue
                self._typable(loc, q, word, "choice")
                key = _case_free(word)
                if key in seen:
                    self.problem(
                        loc,
                        f"choices '{seen[key]}' and '{word}' differ only in case or spacing: a "
                        "typed answer cannot tell them apart",
                        "keep one of them (or make them different words)",
                    )
                seen.setdefault(key, word)
            synonyms: dict[str, str] = {}
            for word, meant in q.synonyms.items():
                loc = (*where, "synonyms", word)
                if not self._written_as_typed(loc, q, word, "synonym"):
                    continue
                self._typable(loc, q, word, "synonym")
                key = _case_free(word)
                if key in seen and seen[key] != meant:
                    self.problem(
                        loc,
                        f"synonym '{word}' is the choice '{seen[key]}': typed, it would mean "
                        f"'{meant}', while a batch row's '{seen[key]}' means '{seen[key]}'",
                        f"remove the synonym '{word}'",
                    )
                elif key in synonyms:
                    self.problem(
                        loc,
                        f"synonyms '{synonyms[key]}' and '{word}' differ only in case or "
                        "spacing: a typed answer cannot tell them apart",
                        "keep one of them",
                    )
                synonyms.setdefault(key, word)

    def _written_as_typed(self, loc: tuple[Any, ...], q: Question, word: str, what: str) -> bool:
        """Whether a choice or synonym is written as a typed answer reads it: single spaces,
        none at its ends, and no character no one types (a control character or line break,
        an invisible format character such as a zero-width space or a bidi control, a lone
        surrogate). Otherwise no typed answer selects it (and one that looks the same
        selects another): reported, with the word to write."""
        odd = next((c for c in word if _untyped(c)), None)
        written = " ".join("".join(c for c in word if c.isspace() or not _untyped(c)).split())
        if odd is None and word == written:
            return True
        if odd is not None:
            why = f"holds {character_name(odd)}: no typed answer holds it"
        else:
            why = "is spaced as no typed answer is read: with single spaces, none at its ends"
        others = {_case_free(c): c for c in q.choices or [] if c != word}
        if not written:
            fix = f"remove the {what}"
        elif _case_free(written) in others:
            fix = f"remove the {what}: written plainly, it is '{others[_case_free(written)]}'"
        else:
            fix = f"write it as '{written}' (and so in the rules that name it)"
        self.problem(loc, f"{what} '{printable(word)}' {why}", fix)
        return False

    def _typable(self, loc: tuple[Any, ...], q: Question, word: str, what: str) -> None:
        """A choice or synonym that is typed as itself: no reserved word, no separator.
        (A choice may be a word for unknown, "unknown" say: typed, it is the choice; "?"
        is always unknown, and a synonym may be no word for unknown.)"""
        typed = typed_form(word)
        unknown = UNKNOWN_WORDS if what == "synonym" else ALWAYS_UNKNOWN
        if typed in unknown | TERMINAL_COMMANDS or typed.startswith("/"):
            if what == "synonym":
                fix = f"remove the synonym '{word}'"
            elif typed.startswith("/"):  # Telegram: a command
                fix = f"write it without the leading '/', e.g. '{typed.lstrip('/')}'"
            else:
                fix = f"name the choice in other words, e.g. '{word} result'"
            meaning = "unknown" if typed in unknown else "a command"
            self.problem(
                loc,
                f"{what} '{word}' is a word the dialog reserves: typed, it is read as "
                f"{meaning}, not as this {what}",
                fix,
            )
        if q.multiple and any(mark in word for mark in MULTIPLE_SEPARATORS):
            self.problem(
                loc,
                f"{what} '{word}' of a multi-select question holds a comma, semicolon or "
                "line break, which separate the choices of its answers",
                "write it without them, e.g. 'chemo and radiation'",
            )

    def _anchors(self) -> None:
        for index, anchor in enumerate(self.spec.anchors):
            q = self.questions.get(anchor)
            if q is None or q.type != "date" or not q.future:
                self.problem(
                    ("anchors", index),
                    f"anchor '{anchor}' must be a date question with future: true",
                    self._suggest(anchor, self.questions)
                    if q is None
                    else f"give '{anchor}' type: date and future: true",
                )

    def _notes(self) -> None:
        ids = {c.id for c in self.spec.criteria}
        for index, note in enumerate(self.spec.notes):
            for cid in note.criteria:
                if cid not in ids:
                    close = difflib.get_close_matches(cid, list(ids), n=1)
                    self.problem(
                        ("notes", index, "criteria"),
                        f"note names criterion '{cid}', which does not exist",
                        f"did you mean '{close[0]}'?" if close else "use a criterion id",
                    )

    def _checklists(self, when: dict[str, str]) -> None:
        """Checklist items: yes/no questions, consecutive, each in one checklist, and asked
        or not by conditions decided before the checklist is shown."""
        order = [q.variable for q in self.spec.questions]
        owner: dict[str, str] = {}
        names: set[str] = set()
        for index, checklist in enumerate(self.spec.checklists):
            loc = ("checklists", index)
            if checklist.name in names:
                self.problem(
                    (*loc, "name"),
                    f"two checklists are named '{checklist.name}'",
                    "give each checklist its own name",
                )
            names.add(checklist.name)
            good = True
            for position, item in enumerate(checklist.items):
                where = (*loc, "items", position)
                q = self.questions.get(item)
                if q is None:
                    self.problem(where, *self._not_a_question(item, f"checklist item '{item}'"))
                    good = False
                elif q.type != "yes_no":
                    self.problem(
                        where,
                        f"checklist item '{item}' is a {q.type} question",
                        "a checklist holds yes/no questions only; ask it on its own",
                    )
                    good = False
                elif item in owner:
                    self.problem(
                        where,
                        f"'{item}' is already in checklist '{owner[item]}'",
                        "put each question in one checklist at most",
                    )
                    good = False
                else:
                    owner[item] = checklist.name
            if not good:
                continue
            places = [order.index(item) for item in checklist.items]
            if places != list(range(places[0], places[0] + len(places))):
                wanted = ", ".join(sorted(checklist.items, key=order.index))
                self.problem(
                    (*loc, "items"),
                    f"the items of checklist '{checklist.name}' are not consecutive questions "
                    "in this order",
                    "list them in the order of the questions, and move the questions so "
                    f"that they follow each other: {wanted}",
                )
                continue
            for item in checklist.items:
                key = when.get(item)
                read = _names(self.trees[key]) & set(checklist.items) if key else set()
                if read:
                    self.problem(
                        ("questions", order.index(item), "when"),
                        f"the condition of '{item}' reads {', '.join(sorted(read))}, in the "
                        f"same checklist '{checklist.name}'",
                        "a checklist is answered at once: its items' conditions may read only "
                        "questions asked before it; take the item out of the checklist",
                    )

    # -- derived values and tables ---------------------------------------------------------

    def _derived(self) -> dict[str, list[tuple[Any, str | None]]]:
        found: dict[str, list[tuple[Any, str | None]]] = {}
        for index, d in enumerate(self.spec.derived):
            single = d.calculator is not None
            uses = []
            for position, use in enumerate(d.uses):
                loc: tuple[Any, ...] = (
                    ("derived", index) if single else ("derived", index, "calculators", position)
                )
                key = None
                if use.when is not None:
                    key = self._expression(
                        f"estimate:{d.name}:{position}",
                        (*loc, "when"),
                        use.when,
                        self._questions_only,
                    )
                self._calculator(d.name, d.unit, use.calculator, use.inputs, loc)
                uses.append((use, key))
            if d.measured is not None:
                q = self.questions.get(d.measured)
                if d.measured == d.name:
                    self.problem(
                        ("derived", index, "measured"),
                        f"'{d.name}' is measured by itself",
                        f"name the question that measures it (a number question in {d.unit}), "
                        "or remove measured",
                    )
                elif q is None:
                    self.problem(
                        ("derived", index, "measured"),
                        *self._not_a_question(d.measured, f"'{d.measured}'"),
                    )
                elif q.type not in NUMERIC or not same_unit(q.unit, d.unit):
                    self.problem(
                        ("derived", index, "measured"),
                        f"'{d.measured}' is {q.unit or 'not a number'} but '{d.name}' is in "
                        f"{d.unit}",
                        "measure and estimate in the same unit",
                    )
            found[d.name] = uses
        return found

    def _calculator(
        self, name: str, unit: str, calculator_name: str, inputs: dict[str, str], loc: tuple
    ) -> None:
        calculator = CALCULATORS.get(calculator_name)
        if calculator is None:
            self.problem(
                (*loc, "calculator"),
                f"unknown calculator '{calculator_name}'",
                f"use one of {sorted(CALCULATORS)}",
            )
            return
        if not same_unit(calculator.unit, unit):
            fitting = sorted(n for n, c in CALCULATORS.items() if same_unit(c.unit, unit))
            self.problem(
                (*loc, "calculator"),
                f"'{calculator_name}' gives {calculator.unit}, but '{name}' is declared in {unit}",
                (f"use {' or '.join(fitting)}, or " if fitting else "")
                + f"declare '{name}' in {calculator.unit} and write its thresholds for that unit",
            )
        if set(inputs) != set(calculator.parameters):
            self.problem(
                (*loc, "inputs"),
                f"calculator '{calculator_name}' takes {list(calculator.parameters)}",
                "name exactly these inputs, each mapped to a question variable",
            )
        for param, variable in inputs.items():
            q = self.questions.get(variable)
            if q is None:
                self.problem(
                    (*loc, "inputs", param), *self._not_a_question(variable, f"input '{variable}'")
                )
                continue
            wrong_kind = self._input_kind(calculator_name, param, q)
            if wrong_kind is not None:
                self.problem((*loc, "inputs", param), *wrong_kind)
                continue
            wanted = calculator.parameter_units.get(param)
            if wanted and not same_unit(q.unit, wanted):
                self.problem(
                    (*loc, "inputs", param),
                    f"'{calculator_name}' takes {param} in {wanted}, but '{variable}' is in "
                    f"{q.unit or 'no unit'}",
                    self._input_unit_fix(param, wanted, q),
                )

    def _input_unit_fix(self, param: str, wanted: str, q: Question) -> str:
        """What to do when question ``q``, mapped to ``param``, is not in its unit: a
        question in the unit another input takes (an age in years for a height) is the
        wrong question; else it may be the right one in another unit."""
        fitting = sorted(
            (v != param, v)
            for v, other in self.questions.items()
            if other.type in NUMERIC and same_unit(other.unit, wanted)
        )
        candidate = fitting[0][1] if fitting else None
        taken_elsewhere = {
            unit
            for c in CALCULATORS.values()
            for unit in c.parameter_units.values()
            if unit and not same_unit(unit, wanted)
        }
        if any(same_unit(q.unit, unit) for unit in taken_elsewhere):
            return f"map {param} to a question in {wanted}" + (
                f", e.g. {param}: {candidate}" if candidate else " (add one)"
            )
        return f"give '{q.variable}' unit: {wanted} (also_accepts converts other units)" + (
            f", or map {param} to '{candidate}'" if candidate else ""
        )

    @staticmethod
    def _input_kind(calculator: str, param: str, q: Question) -> tuple[str, str] | None:
        """Why question ``q`` cannot feed ``param`` (see calculators.py), with the fix."""
        if param == "sex":  # the one parameter that is not a number
            # other choices beside them (e.g. 'other') leave the estimate unknown, as an
            # unknown sex does
            if q.type == "choice" and not q.multiple and set(SEXES) <= set(q.choices or []):
                return None
            given = f"is a {q.type} question"
            if q.type == "choice":
                several = " (several may be chosen)" if q.multiple else ""
                given = f"has choices [{', '.join(q.choices or [])}]{several}"
            return (
                f"'{calculator}' takes sex as the choice 'female' or 'male', but "
                f"'{q.variable}' {given}",
                f"give '{q.variable}' type: choice and choices: [female, male] (synonyms keep "
                "other words, e.g. {f: female, m: male})",
            )
        if q.type in NUMERIC:
            return None
        return (
            f"'{calculator}' takes {param} as a number, but '{q.variable}' is a {q.type} question",
            f"map {param} to a number question (type: int or number)",
        )

    def _tables(self) -> dict[str, list[tuple[str, float]]]:
        found: dict[str, list[tuple[str, float]]] = {}
        for index, t in enumerate(self.spec.tables):
            rows = []
            for position, row in enumerate(t.rows):
                key = self._expression(
                    f"table:{t.name}:{position}",
                    ("tables", index, "rows", position, "when"),
                    row.when,
                    self._not_tables,
                )
                if key is not None:
                    rows.append((key, row.value))
            found[t.name] = rows
        return found

    # -- expressions -----------------------------------------------------------------------

    def _expression(self, key: str, loc: tuple[Any, ...], text: str, allowed: Any) -> str | None:
        """Parse, name-check, type-check and bind one expression; return its key or None."""
        try:
            node = parse_node(text)
        except ExpressionError as err:
            self.problem(loc, str(err), err.hint)
            return None
        bad = False
        for name in sorted(_names(node)):
            why = allowed(name)
            if why is not None:
                self.problem(loc, why[0], why[1])
                bad = True
        if bad:
            return None
        type_problems = check(node, self.kinds)
        for p in type_problems:
            self.problem(loc, p.message, p.fix)
        if type_problems:
            return None
        self.trees[key] = bind(node, self.kinds)
        self.texts[key] = text.strip()
        for compare, rewritten in _clock_side_windows(self.trees[key]):
            self.problem(
                loc,
                f"'{render(compare)}' counts a calendar window from the screening date: at "
                "month ends it gives another verdict than the window counted from the event",
                f"write the window on the event's side: '{rewritten}'"
                if rewritten
                else "count the window from the event's date, e.g. "
                "screening_date < last_mi_date + months(12)",
            )
        return key

    def _questions_only(self, name: str) -> tuple[str, str] | None:
        if name in self.questions or name == SCREENING_DATE:
            return None
        return self._unknown_name(name, "a calculator's condition reads only questions")

    def _not_tables(self, name: str) -> tuple[str, str] | None:
        if name in self.questions or name in self.derived or name == SCREENING_DATE:
            return None
        return self._unknown_name(name, "a table row reads questions and derived values")

    def _any_name(self, name: str) -> tuple[str, str] | None:
        if name in self.kinds:
            return None
        return self._unknown_name(name, "")

    def _unknown_name(self, name: str, rule: str) -> tuple[str, str]:
        if name in self.kinds:
            return (f"'{name}' cannot be read here", rule)
        for q in self.spec.questions:
            for choice in q.choices or []:
                if choice.lower() == name.lower():
                    return (
                        f"'{name}' is neither a question nor a derived value",
                        f"put it in quotes: '{choice}' is a choice of '{q.variable}'",
                    )
        if name.lower() in ("today", "now"):
            return (f"'{name}' is not a name here", "use screening_date")
        if name.lower() in ("true", "false", "yes", "no"):
            return (
                f"'{name}' is not a name here",
                "write the yes/no variable alone (or with not), or True / False",
            )
        return (f"'{name}' is neither a question nor a derived value", self._suggest(name))

    def _conditions(self) -> dict[str, str]:
        compiled: dict[str, str] = {}
        asked_before: set[str] = set()
        for index, q in enumerate(self.spec.questions):
            loc = ("questions", index, "when")
            if q.when is not None:

                def earlier(name: str, variable: str = q.variable) -> tuple[str, str] | None:
                    if name in asked_before or name == SCREENING_DATE:
                        return None
                    if name in self.tables and self._table_inputs(name) <= asked_before:
                        return None
                    return self._misplaced(variable, name)

                key = self._expression(f"when:{q.variable}", loc, q.when, earlier)
                if key is not None:
                    if self.search.can_be_true(self.trees[key]) is False:
                        self.problem(
                            loc,
                            f"'{q.variable}' is never asked: '{q.when}' is never true",
                            "correct the condition or remove the question",
                        )
                    compiled[q.variable] = key
            asked_before.add(q.variable)
        return compiled

    def _misplaced(self, variable: str, name: str) -> tuple[str, str]:
        """Why a condition of ``variable`` may not read ``name``, and what to do instead."""
        prefix = f"condition of '{variable}' reads"
        if name == variable:
            return f"{prefix} its own answer", "a condition reads only questions asked before it"
        if name in self.questions:
            return (
                f"{prefix} '{name}', asked after it",
                f"move '{variable}' after '{name}', or drop '{name}' from when",
            )
        if name in self.derived:
            # rules have no arithmetic: a formula cannot be rewritten from its inputs; and
            # a condition reads only questions asked before it (so never its own)
            before = self._asked_before(variable)
            sources = [s for s in self.derived[name].sources if s in before]
            instead = f"ask '{variable}' of everyone (remove its when)"
            if sources:
                instead = (
                    f"write the condition on what '{name}' is computed from "
                    f"({', '.join(sources)}) where that needs no arithmetic, or {instead}"
                )
            return (
                f"{prefix} the derived value '{name}': a condition cannot read a derived value",
                instead,
            )
        if name in self.tables:
            later = sorted(self._table_inputs(name) - self._asked_before(variable))
            return (
                f"{prefix} the table '{name}', which reads {', '.join(later)}, asked after it",
                f"ask {', '.join(later)} before '{variable}'",
            )
        return self._unknown_name(name, "")

    def _asked_before(self, variable: str) -> set[str]:
        """The questions the file lists before ``variable``."""
        order = [q.variable for q in self.spec.questions]
        return set(order[: order.index(variable)])

    def _table_inputs(self, name: str) -> set[str]:
        """The questions a table's rows read (through derived values, their sources)."""
        found: set[str] = set()
        for row in self.tables[name].rows:
            try:
                read = _names(parse_node(row.when))
            except ExpressionError:
                continue  # reported where the row is checked
            for n in read:
                found |= set(self.derived[n].sources) if n in self.derived else {n}
        # A name that is no question (the table itself, a typo) is reported at its row.
        return found & self.questions.keys()

    def _rules(self) -> dict[str, str]:
        compiled: dict[str, str] = {}
        for index, c in enumerate(self.spec.criteria):
            loc = ("criteria", index, c.rule_field)
            key = self._expression(f"rule:{c.id}", loc, c.rule, self._any_name)
            if key is None:
                continue
            compiled[c.id] = key
            self._unanchored(loc, self.trees[key])
            if isinstance(c.judgment, list):
                asked = sorted(_names(self.trees[key]) & self.questions.keys())
                for name in c.judgment:
                    if name not in asked:
                        self.problem(
                            ("criteria", index, "judgment"),
                            f"{c.id}'s judgment names '{name}', not a question its rule reads",
                            f"name questions of its rule: {', '.join(asked)}",
                        )
            if c.confirm_estimate is not None:
                estimated = [n for n in _names(self.trees[key]) if n in self.derived]
                if not estimated:
                    self.problem(
                        ("criteria", index, "confirm_estimate"),
                        f"{c.id} has confirm_estimate but its rule reads no derived value",
                        "remove confirm_estimate, or read the derived value (e.g. crcl)",
                    )
        return compiled

    def _unanchored(self, loc: tuple[Any, ...], tree: Node) -> None:
        """A planned date (future: true) compared with another answer's date, where neither
        side is the screening date or an anchor. A failed rule gets the first day it would
        pass only by moving its clocks, the screening date and the anchors: without the
        planned date among them the verdict says only "may pass later"."""
        if any(anchor not in self.questions for anchor in self.spec.anchors):
            return  # a misspelled anchor is said at its line (the one meant here, likely)
        clocks = {SCREENING_DATE, *self.spec.anchors}
        for n in walk(tree):
            if not (isinstance(n, Compare) and n.dates) or names_read(n) & clocks:
                continue
            bare = [s for s in (n.left, n.right) if not isinstance(s, Shift)]  # no window
            planned = [
                name
                for side in [*bare, n.left, n.right]
                for name in sorted(names_read(side))
                if name in self.questions and self.questions[name].future
            ]
            if not planned:
                continue
            name = planned[0]  # the side without a window first: the window counts to it
            anchors = ", ".join([*self.spec.anchors, name])
            self.problem(
                loc,
                f"'{render(n)}' compares the planned date '{name}' with another answer's "
                f"date, but '{name}' is not in anchors: a failed criterion would not get the "
                f"date it passes from ('met when {name} is on or after …')",
                f"add {name} to anchors: (anchors: [{anchors}])",
            )

    # -- whole-file checks -----------------------------------------------------------------

    def _unused(
        self,
        rules: dict[str, str],
        when: dict[str, str],
        tables: dict[str, list[tuple[str, float]]],
        estimates: dict[str, list[tuple[Any, str | None]]],
    ) -> None:
        read: set[str] = set()
        keys = [*rules.values(), *when.values()]
        keys += [k for rows in tables.values() for k, _ in rows]
        keys += [k for uses in estimates.values() for _, k in uses if k]
        for key in keys:
            read |= _names(self.trees[key])
        for d in self.spec.derived:
            if d.name in read:
                read |= set(d.sources)
        for index, q in enumerate(self.spec.questions):
            if q.variable not in read and q.type != "text":
                self.problem(
                    ("questions", index, "variable"),
                    f"question '{q.variable}' is read by no rule, condition or derived value",
                    "use it in a criterion's rule or remove the question",
                )

    def _unasked_reads(self, rules: dict[str, str], when: dict[str, str]) -> None:
        """A rule reading a question that may not be asked must be decided without it."""
        for index, c in enumerate(self.spec.criteria):
            tree = self.trees[rules[c.id]]
            if any(n in self.derived or n in self.tables for n in _names(tree)):
                continue  # estimated values: left to the engine's guarantee
            for variable in sorted(_names(tree) & set(when)):
                condition = self.trees[when[variable]]
                example = self.search.open_when_unasked(tree, variable, condition)
                if example is None:
                    continue
                shown = ", ".join(f"{k} = {_shown(v)}" for k, v in example.items())
                guard = render(condition)
                self.problem(
                    ("criteria", index, c.rule_field),
                    f"rule of {c.id} reads '{variable}', which is not asked when "
                    f"'{guard}' does not hold (e.g. {shown}); the rule then stays open with "
                    "nothing left to ask",
                    f"make the rule decide without '{variable}' when it is not asked, e.g. "
                    f"start it with '({guard}) and …' for an exclusion, or "
                    f"'not ({guard}) or …' for an inclusion",
                )

    def _impossible_rules(self, rules: dict[str, str]) -> None:
        """An inclusion no answers can meet, an exclusion none can meet, or one every known
        answer meets: limits in another unit than the question's, a window's sign slipped,
        bounds crossed. Searched after the checks above, which share the search's budget;
        said only where the search is certain (see :func:`dates_searched_exactly`). A rule
        reading no answer ('True', '1 > 2') is refused whichever way it decides. An
        inclusion every answer within the limits meets is not refused (a protocol may hold
        one, such as ``known(x) or unknown(x)`` to ask x of everyone, or a range its
        question's limits repeat), nor a comparison inside a rule that decides alike
        (fillers such as ``age <= 120`` against ``max: 120``)."""
        for index, c in enumerate(self.spec.criteria):
            tree = self.trees[rules[c.id]]
            if not _names(tree):
                self._constant_rule(index, c.id, c.kind, self.texts[rules[c.id]], tree)
        for index, c in enumerate(self.spec.criteria):
            if self.search.budget <= 0:
                return  # the searches would only fall back to "possible" now
            tree = self.trees[rules[c.id]]
            if not _names(tree):
                continue  # said above
            compared = sum(isinstance(n, Compare) for n in walk(tree))
            if compared > MAX_SEARCHED_COMPARISONS or not dates_searched_exactly(tree):
                continue
            if not self.search.can_be_true(tree):
                never = "be met" if c.kind == "inclusion" else "apply"
                message = f"{c.id} can never {never}: no answers{self._limits(tree)} meet"
            elif c.kind == "exclusion" and not self.search.can_be_true(Not(tree)):
                message = (
                    f"{c.id} excludes every patient: every known answer{self._limits(tree)} meets"
                )
            else:
                continue
            self.problem(
                ("criteria", index, c.rule_field),
                f"{message} '{self.texts[rules[c.id]]}'",
                _bounds_fix(tree),
            )

    def _constant_rule(self, index: int, cid: str, kind: str, text: str, tree: Node) -> None:
        holds = self.search.can_be_true(tree)  # no answer read: evaluated once
        if kind == "inclusion":
            decided = "every patient meets it" if holds else "no patient meets it"
        else:
            decided = "it excludes every patient" if holds else "it excludes no one"
        field = "met_when" if kind == "inclusion" else "applies_when"
        self.problem(
            ("criteria", index, field),
            f"the rule of {cid} reads no answer: {decided} ('{text}')",
            f"write the condition the protocol states as a rule on the answers it reads, e.g. "
            f"{field}: 14 <= age <= 65 (or remove the criterion)",
        )

    def _limits(self, tree: Node) -> str:
        """The ranges of the answers ``tree`` reads, for a message: ' within … (age 0–120)'."""
        shown = []
        for name in sorted(_names(tree)):
            q = self.questions.get(name)
            if q is None:
                continue
            if q.min is not None and q.max is not None:
                unit = f" {q.unit}" if q.unit else ""
                shown.append(f"{name} {_shown(q.min)}–{_shown(q.max)}{unit}")
            elif q.type in ("date", "date_or_none"):
                side = "before" if q.future else "after"
                shown.append(f"{name} not {side} the screening date")
        return f" within the questions' limits ({'; '.join(shown)})" if shown else ""

    def _suggest(self, name: str, among: Iterable[str] | None = None) -> str:
        """'did you mean' a name close to ``name`` (never ``name`` itself), of ``among`` (by
        default every name a rule may read)."""
        names = [n for n in (self.kinds if among is None else among) if n != name]
        close = difflib.get_close_matches(name, names, n=1)
        return f"did you mean '{close[0]}'?" if close else "define it as a question first"

    def _not_a_question(self, name: str, named: str) -> tuple[str, str]:
        """Why ``name``, given where a question is named (``named``: "input 'x'"), is none,
        and the fix: a derived value or a table is said to be one, with what it reads."""
        if name in self.derived:
            sources = ", ".join(s for s in self.derived[name].sources if s != name)
            return (
                f"{named} is a derived value, not a question",
                f"name a question instead: '{name}' is computed from {sources}",
            )
        if name in self.tables:
            read = ", ".join(sorted(self._table_inputs(name))) or "no question"
            return (
                f"{named} is a table, not a question",
                f"name a question instead: the table '{name}' reads {read}",
            )
        return (f"{named} is not a question", self._suggest(name, self.questions))


def question_kind(q: Question) -> Kind:
    if q.type in NUMERIC:
        return Kind("number", unit=q.unit or "")
    if q.type == "choice":
        base = "set" if q.multiple else "choice"
        return Kind(base, choices=tuple(q.choices or ()), ordered=q.ordered)  # type: ignore[arg-type]
    if q.type in ("date", "date_or_none"):
        return Kind("date", never=q.type == "date_or_none")
    return Kind(q.type)  # type: ignore[arg-type]


def _clock_side_windows(node: Node) -> Iterator[tuple[Compare, str | None]]:
    """Comparisons adding calendar months or years to the screening date, each with the
    window moved to the other side (None when that side counts from the screening date too).
    Days and weeks may stay there: moved, they meet the same days."""
    for n in walk(node):
        if not isinstance(n, Compare):
            continue
        for clock, other, op in ((n.left, n.right, n.op), (n.right, n.left, FLIPPED[n.op])):
            windows = []
            while isinstance(clock, Shift):
                windows.append(clock)  # the last added first
                clock = clock.base
            if not (isinstance(clock, Name) and clock.name == SCREENING_DATE):
                continue
            if not any(w.unit in CALENDAR_UNITS for w in windows):
                continue
            if SCREENING_DATE in names_read(other):
                yield n, None
            else:
                for w in windows:
                    other = Shift(other, -w.amount, w.unit)
                yield n, f"{SCREENING_DATE} {op} {render(other)}"
            break  # one report for the comparison


def _bounds_fix(tree: Node) -> str:
    """The fix for a rule (or a part of one) that decides alike for every answer."""
    dated = any(isinstance(n, Shift) for n in walk(tree))
    return (
        "check the bounds and units of each threshold against the question's min, max "
        "and unit (a limit in another unit?)"
        + (
            " and the sign of each window (an event's date + days(n) is n days after it)"
            if dated
            else ""
        )
    )


def _case_free(word: str) -> str:
    return " ".join(word.lower().split())


def _names(node: Node) -> set[str]:
    from ..rules.expressions import names_read

    return set(names_read(node))


def _shown(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


__all__ = ["Checker"]
