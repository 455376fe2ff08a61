"""The checks a schema cannot express: names, order, types, units, reachability, traps.

The checker gives every name a :class:`Kind`, parses every expression, reports each
problem at its line with a fix, and builds the :class:`Protocol` with its expressions
bound and compiled. Checks that depend on a part that already failed are skipped, so one
mistake does not cascade into false reports. Every search over answer combinations is
bounded: past :data:`MAX_COMBINATIONS` (or once one file's searches together have tried
:data:`MAX_TOTAL_COMBINATIONS`, a combination of a long expression counting for more) it
falls back to a linear over-approximation.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml.nodes import Node as YamlNode

from ..answers import MULTIPLE_SEPARATORS, UNKNOWN_WORDS, typed_form
from ..rules.calculators import CALCULATORS, SEXES
from ..rules.compiled import compile_all
from ..rules.dates import EARLIEST_YEAR, NEVER, window_shift
from ..rules.expressions import (
    SCREENING_DATE,
    And,
    AnyOf,
    Compare,
    Const,
    Expression,
    ExpressionError,
    Known,
    Member,
    Name,
    Node,
    Not,
    Or,
    Ordinal,
    Shift,
    interpret,
    parse_node,
    render,
    walk,
)
from ..rules.types import Kind, bind, check
from ..rules.units import same_unit
from ..words import TERMINAL_COMMANDS
from .loader import Problem, line_of
from .model import Estimate, Protocol, name_key
from .schema import NUMERIC, DialogFile, Question
from .sets import ALL

MAX_COMBINATIONS = 20_000
# Per file: 500 criteria each reading questions asked conditionally could otherwise make
# thousands of searches of MAX_COMBINATIONS each (minutes). Real files use a few thousand.
MAX_TOTAL_COMBINATIONS = 100_000
NODES_PER_COST = 10  # a combination tried costs one more per this many expression nodes read
EXAMPLE_DAY = date(2026, 1, 15)  # a screening date for searching answer combinations


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
        self.budget = MAX_TOTAL_COMBINATIONS  # answer combinations left to search
        # by the id of an expression's tree (kept alive with it): what is worked out once
        self._edges: dict[tuple[str, int, bool], tuple[Node, set[date]]] = {}
        self._compared: dict[int, tuple[Node, list[tuple[DateSide, DateSide]]]] = {}

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

    def _typable(self, loc: tuple[Any, ...], q: Question, word: str, what: str) -> None:
        """A choice or synonym that is typed as itself: no reserved word, no separator."""
        typed = typed_form(word)
        if typed in UNKNOWN_WORDS | TERMINAL_COMMANDS or typed.startswith("/"):
            if what == "synonym":
                fix = f"remove the synonym '{word}'"
            elif typed.startswith("/"):  # Telegram: a command
                fix = f"write it without the leading '/', e.g. '{typed.lstrip('/')}'"
            else:
                fix = f"name the choice in other words, e.g. '{word} result'"
            meaning = "unknown" if typed in UNKNOWN_WORDS else "a command"
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
                    self._suggest(anchor)
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
                    self.problem(
                        where, f"checklist item '{item}' is not a question", self._suggest(item)
                    )
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
                if q is None:
                    self.problem(
                        ("derived", index, "measured"),
                        f"'{d.measured}' is not a question",
                        self._suggest(d.measured),
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
                    (*loc, "inputs", param),
                    f"input '{variable}' is not a question",
                    self._suggest(variable),
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
                    f"give '{variable}' unit: {wanted} (also_accepts converts other units)",
                )

    @staticmethod
    def _input_kind(calculator: str, param: str, q: Question) -> tuple[str, str] | None:
        """Why question ``q`` cannot feed ``param`` (see calculators.py), with the fix."""
        if param == "sex":  # the one parameter that is not a number
            if q.type == "choice" and not q.multiple and sorted(q.choices or []) == list(SEXES):
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
                    if self._can_be_true(self.trees[key]) is False:
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
            sources = self.derived[name].sources
            return (
                f"{prefix} the derived value '{name}'",
                f"read the questions it comes from instead: {', '.join(sources)}",
            )
        if name in self.tables:
            later = sorted(
                self._table_inputs(name)
                - {
                    q.variable
                    for q in self.spec.questions[
                        : self.spec.questions.index(self.questions[variable])
                    ]
                }
            )
            return (
                f"{prefix} the table '{name}', which reads {', '.join(later)}, asked after it",
                f"ask {', '.join(later)} before '{variable}'",
            )
        return self._unknown_name(name, "")

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
            for variable in sorted(_names(tree) & set(when)):
                condition = self.trees[when[variable]]
                example = self._open_when_unasked(tree, variable, condition)
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

    def _open_when_unasked(
        self, rule: Node, variable: str, condition: Node
    ) -> dict[str, Any] | None:
        """Known answers under which ``variable`` is not asked and ``rule`` stays unknown."""
        read, guarded = _names(rule), _names(condition)
        # the condition's answers first: once it is decided, the rule is searched alone
        names = sorted(
            (read | guarded) - {variable, SCREENING_DATE}, key=lambda n: (n not in guarded, n)
        )
        names = [n for n in names if n in self.questions]  # derived/tables follow from these
        if any(n in self.derived or n in self.tables for n in read):
            return None  # estimated values: left to the engine's guarantee

        later = frozenset(names)  # each searched with known answers only

        def unasked_and_open(env: dict[str, Any], complete: bool) -> bool | None:
            asked = _may(condition, env, later)
            if not asked & FALSE:
                return False  # asked, whatever the rest is
            open_ = _may(rule, env, later)  # env holds the variable as unknown
            if not open_ & UNKNOWN:
                return False  # decided without it, whatever the rest is
            if asked == FALSE and open_ == UNKNOWN:
                return True  # whatever the rest is
            return False if complete else None

        domains = [self._domain(n, [rule, condition], unknown=False) for n in names]
        found = self._search(names, domains, unasked_and_open, [condition, rule], {variable: None})
        if not isinstance(found, dict):
            return None  # not found, or cannot be searched: the engine still lists an open item
        return {n: found[n] for n in names if n in guarded or found[n] is not None}

    # -- satisfiability ------------------------------------------------------------------

    def _can_be_true(self, node: Node) -> bool:
        """Whether some answers (known or unknown) make the expression true."""
        names = sorted(_names(node) - {SCREENING_DATE})

        def true(env: dict[str, Any], complete: bool) -> bool | None:
            values = _may(node, env)
            if values == TRUE:
                return True
            return False if complete or not values & TRUE else None

        domains = [self._domain(n, [node], unknown=True) for n in names]
        found = self._search(names, domains, true, [node])
        if found is TOO_LARGE:
            return True in _possible(node)  # linear, never wrongly says "never"
        return found is not None

    def _search(
        self,
        names: list[str],
        domains: list[list[Any]],
        wanted: Callable[[dict[str, Any], bool], bool | None],
        read: list[Node],
        given: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None | object:
        """Answers to ``names`` (from ``domains``) that ``wanted`` accepts; None if there are
        none, TOO_LARGE past the limits. ``wanted`` sees some answers chosen (the others
        absent; ``complete`` when none is): True accepts them whatever the rest are, False
        rejects them whatever the rest are (the search goes no deeper), None chooses the
        next (with all chosen, rejects). Each set of answers tried is paid from the budget,
        more in long expressions (``read``: what ``wanted`` evaluates)."""
        cost = 1 + sum(1 for node in read for _ in walk(node)) // NODES_PER_COST
        limit = min(MAX_COMBINATIONS, self.budget) // cost
        tried = 0
        env: dict[str, Any] = {SCREENING_DATE: EXAMPLE_DAY, **(given or {})}

        def deeper(index: int) -> dict[str, Any] | None:
            nonlocal tried
            tried += 1
            if tried > limit:
                raise _TooLarge
            verdict = wanted(env, index == len(names))
            if verdict is not None or index == len(names):
                if not verdict:
                    return None
                return {n: env.get(n, domains[i][0]) for i, n in enumerate(names)}
            for value in domains[index]:
                env[names[index]] = value
                found = deeper(index + 1)
                if found is not None:
                    return found
            del env[names[index]]
            return None

        if any(not domain for domain in domains):
            return None
        try:
            return deeper(0)
        except _TooLarge:
            return TOO_LARGE
        finally:
            self.budget -= min(tried, limit) * cost

    def _domain(self, name: str, nodes: list[Node], unknown: bool) -> list[Any]:
        kind = self.kinds[name]
        values: list[Any]
        if kind.base == "yes_no":
            values = [True, False]
        elif kind.base == "choice":
            values = list(kind.choices)
        elif kind.base == "set":
            values = _sets(name, kind.choices, nodes)
        elif kind.base == "date":
            values = [*self._dates(name, nodes), *([NEVER] if kind.never else [])]
        elif kind.base == "number":
            values = self._numbers(name, nodes)
        else:
            values = [""]
        return [*values, None] if unknown else values

    def _dates(self, name: str, nodes: list[Node], others: bool = True) -> list[date]:
        """Days a little before, on and after each day where a comparison of ``name``
        changes (the window ends counted from the other side's candidates), and a few
        spread days; all of them days an answer may be."""
        q = self.questions.get(name)
        ahead = q is not None and q.future
        sign = 1 if ahead else -1
        days = {EXAMPLE_DAY + timedelta(days=sign * d) for d in (0, 1, 40, 400, 4000)}
        for node in nodes:
            days |= self._date_edges(name, node, others)
        return sorted(
            d
            for d in days
            if d.year >= EARLIEST_YEAR and (d >= EXAMPLE_DAY if ahead else d <= EXAMPLE_DAY)
        )

    def _date_edges(self, name: str, node: Node, others: bool) -> set[date]:
        """The days around which ``node``'s comparisons of ``name`` change (kept: a
        condition is read again with each rule that reads its question)."""
        key = (name, id(node), others)
        if key in self._edges:
            return self._edges[key][1]
        edges: set[date] = set()
        theirs_memo: dict[str, list[date]] = {}
        if id(node) not in self._compared:
            self._compared[id(node)] = (node, _date_comparisons(node))
        for (me, mine), (base, shifts) in self._compared[id(node)][1]:
            if me != name:
                continue
            if base == SCREENING_DATE:
                starts: list[date] = [EXAMPLE_DAY]
            elif others:
                if base not in theirs_memo:
                    theirs_memo[base] = self._dates(base, [node], others=False)
                starts = theirs_memo[base]
            else:
                continue
            for start in starts:
                edge = _shifted(_shifted(start, shifts), [(-a, u) for a, u in reversed(mine)])
                if isinstance(edge, date) and date.min < edge < date.max:
                    edges |= {edge - timedelta(days=1), edge, edge + timedelta(days=1)}
        self._edges[key] = (node, edges)
        return edges

    def _numbers(self, name: str, nodes: list[Node]) -> list[float]:
        q = self.questions.get(name)
        low, high = (q.min, q.max) if q is not None else (None, None)
        marks = {c for node in nodes for c in _constants_of(node, name)}
        marks |= {m for m in (low, high) if m is not None}
        for other in {o for node in nodes for o in _compared_names(node, name)}:
            marks |= {c for node in nodes for c in _constants_of(node, other)}
            theirs = self.questions.get(other)
            if theirs is not None:
                marks |= {m for m in (theirs.min, theirs.max) if m is not None}
            if other in self.tables:
                marks |= {row.value for row in self.tables[other].rows}
        if not marks:
            marks = {0.0}
        points = {m + d for m in marks for d in (-1, 0, 1)}
        ordered = sorted(marks)
        points |= {(a + b) / 2 for a, b in itertools.pairwise(ordered)}
        if q is not None and q.type == "int":
            points = {float(int(p)) for p in points}
        return sorted(
            p for p in points if (low is None or p >= low) and (high is None or p <= high)
        )

    def _suggest(self, name: str) -> str:
        names = list(self.kinds)
        close = difflib.get_close_matches(name, names, n=1)
        return f"did you mean '{close[0]}'?" if close else "define it as a question first"


def question_kind(q: Question) -> Kind:
    if q.type in NUMERIC:
        return Kind("number", unit=q.unit or "")
    if q.type == "choice":
        base = "set" if q.multiple else "choice"
        return Kind(base, choices=tuple(q.choices or ()), ordered=q.ordered)  # type: ignore[arg-type]
    if q.type in ("date", "date_or_none"):
        return Kind("date", never=q.type == "date_or_none")
    return Kind(q.type)  # type: ignore[arg-type]


TOO_LARGE = object()  # a search that would pass its limits


class _TooLarge(Exception):
    pass


TRUE, FALSE, UNKNOWN = 1, 2, 4  # the values an expression may still take, as bits
ANY = TRUE | FALSE | UNKNOWN


def _may(node: Node, env: dict[str, Any], known_later: frozenset[str] = frozenset()) -> int:
    """The values ``node`` may take when the answers absent from ``env`` are not chosen yet
    (an over-approximation, exact once every answer it reads is chosen): a search whose
    wanted value is not among them goes no deeper. ``known_later``: answers that will be
    chosen known (a comparison of known answers is never unknown)."""
    if isinstance(node, And | Or):
        decisive, other = (TRUE, FALSE) if isinstance(node, Or) else (FALSE, TRUE)
        may_decide, always_other, may_be_unknown = False, True, False
        for part in node.parts:
            values = _may(part, env, known_later)
            if values == decisive:
                return decisive
            may_decide = may_decide or bool(values & decisive)
            always_other = always_other and bool(values & other)
            may_be_unknown = may_be_unknown or bool(values & UNKNOWN)
        return (
            (decisive if may_decide else 0)
            | (other if always_other else 0)
            | (UNKNOWN if may_be_unknown else 0)
        )
    if isinstance(node, Not):
        values = _may(node.part, env, known_later)
        return (TRUE if values & FALSE else 0) | (FALSE if values & TRUE else 0) | values & UNKNOWN
    missing = [name for name in _leaf_reads(node) if name not in env]
    if missing:  # known() is never unknown
        known = isinstance(node, Known) or all(name in known_later for name in missing)
        return TRUE | FALSE if known else ANY
    value = interpret(node, env)
    return TRUE if value is True else FALSE if value is False else UNKNOWN


def _leaf_reads(node: Node) -> list[str]:
    """The answers a comparison, a name, known() or a membership reads."""
    if isinstance(node, Compare):
        return _leaf_reads(node.left) + _leaf_reads(node.right)
    if isinstance(node, Shift):
        return _leaf_reads(node.base)
    if isinstance(node, Name | Ordinal | Known):
        return [node.name]
    if isinstance(node, Member | AnyOf):
        return [node.collection]
    return []


def _case_free(word: str) -> str:
    return " ".join(word.lower().split())


def _names(node: Node) -> set[str]:
    from ..rules.expressions import names_read

    return set(names_read(node))


def _constants_of(node: Node, name: str) -> Iterator[float]:
    for n in walk(node):
        if isinstance(n, Compare):
            for a, b in ((n.left, n.right), (n.right, n.left)):
                number = isinstance(b, Const) and type(b.value) in (int, float)
                if isinstance(a, Name) and a.name == name and number:
                    yield float(b.value)  # type: ignore[attr-defined]


MAX_SUBSETS_OF = 8  # choices a rule names, whose every subset is tried


def _sets(name: str, choices: tuple[str, ...], nodes: list[Node]) -> list[tuple[str, ...]]:
    """Answers to a multi-select question: every subset of the choices the expressions
    name (the others change nothing they read), or, past MAX_SUBSETS_OF, the empty set,
    each choice alone and all of them."""
    named: set[str] = set()
    for node in nodes:
        for n in walk(node):
            if isinstance(n, Member) and n.collection == name:
                named.add(n.item)
            elif isinstance(n, AnyOf) and n.collection == name:
                named |= set(n.items)
    read = [c for c in choices if c in named]
    if len(read) > MAX_SUBSETS_OF:
        return [(), *((c,) for c in choices), choices]
    return [
        tuple(c for c, keep in zip(read, picks, strict=True) if keep)
        for picks in itertools.product((False, True), repeat=len(read))
    ]


DateSide = tuple[str, list[tuple[int, str]]]  # a date name and the windows added to it


def _date_side(node: Node) -> DateSide | None:
    shifts: list[tuple[int, str]] = []
    while isinstance(node, Shift):
        shifts.insert(0, (node.amount, node.unit))
        node = node.base
    return (node.name, shifts) if isinstance(node, Name) else None


def _date_comparisons(node: Node) -> list[tuple[DateSide, DateSide]]:
    """Each comparison of two dates, both ways round: (this side, the other side)."""
    found = []
    for n in walk(node):
        if isinstance(n, Compare):
            sides = (_date_side(n.left), _date_side(n.right))
            for mine, theirs in (sides, sides[::-1]):
                if mine and theirs and mine[0] != theirs[0]:
                    found.append((mine, theirs))
    return found


def _shifted(day: Any, shifts: list[tuple[int, str]]) -> Any:
    for amount, unit in shifts:
        if not isinstance(day, date):
            return day
        day = window_shift(day, amount, unit)  # type: ignore[arg-type]
    return day


def _compared_names(node: Node, name: str) -> Iterator[str]:
    """The names compared with ``name`` directly (``weight_kg > limit``)."""
    for n in walk(node):
        if isinstance(n, Compare) and isinstance(n.left, Name) and isinstance(n.right, Name):
            if n.left.name == name and n.right.name != name:
                yield n.right.name
            elif n.right.name == name and n.left.name != name:
                yield n.left.name


def _possible(node: Node) -> set[bool | None]:
    """An over-approximation of the values a condition can take (linear in its size)."""
    if isinstance(node, Const):
        return {node.value} if isinstance(node.value, bool) else {True, False, None}
    if isinstance(node, Known):
        return {True, False}
    if isinstance(node, Not):
        return {None if v is None else not v for v in _possible(node.part)}
    if isinstance(node, And | Or):
        parts = [_possible(p) for p in node.parts]
        decisive, other = (False, True) if isinstance(node, And) else (True, False)
        found: set[bool | None] = set()
        if any(decisive in p for p in parts):
            found.add(decisive)
        if all(other in p for p in parts):
            found.add(other)
        if any(None in p for p in parts) and all(p - {decisive} for p in parts):
            found.add(None)
        return found
    return {True, False, None}


def _shown(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


__all__ = ["Checker", "question_kind", "And", "Or", "Not"]
