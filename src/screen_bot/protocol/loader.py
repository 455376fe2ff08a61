"""Load a dialog file, validate it beyond its schema, and compile its expressions.

Every problem is reported with the file, the line and what to change; loading either
returns a :class:`Protocol` or raises :class:`DialogFileError` listing all problems.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from ..errors import ScreenBotError
from ..rules.calculators import CALCULATORS
from ..rules.expressions import Expression, ExpressionError, parse
from .schema import Criterion, Derived, DialogFile, Question


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str
    fix: str = ""

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.message}" + (f"\n    fix: {self.fix}" if self.fix else "")


class DialogFileError(ScreenBotError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Protocol:
    """A validated protocol with its rules compiled; shared, read-only."""

    spec: DialogFile
    path: Path
    sha256: str
    when: dict[str, Expression]
    rules: dict[str, Expression]

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        return self.spec.version

    @cached_property
    def questions(self) -> dict[str, Question]:
        return {q.variable: q for q in self.spec.questions}

    @cached_property
    def order(self) -> list[str]:
        return [q.variable for q in self.spec.questions]

    @cached_property
    def criteria(self) -> dict[str, Criterion]:
        return {c.id: c for c in self.spec.criteria}

    @cached_property
    def derived(self) -> dict[str, Derived]:
        return {d.name: d for d in self.spec.derived}

    def inputs_of(self, name: str) -> list[str]:
        """The answered variables a name stands for (a derived value expands to its inputs)."""
        if name in self.derived:
            d = self.derived[name]
            return ([d.measured] if d.measured else []) + list(d.inputs.values())
        return [name]

    @cached_property
    def criteria_reading(self) -> dict[str, list[str]]:
        """For each variable, the criterion ids whose rule reads it, directly or derived."""
        reading: dict[str, list[str]] = {v: [] for v in self.order}
        for cid, expr in self.rules.items():
            for name in expr.names:
                for variable in self.inputs_of(name):
                    if cid not in reading[variable]:
                        reading[variable].append(cid)
        return reading


def load(path: str | Path) -> Protocol:
    """Load and check one dialog file; raise :class:`DialogFileError` with every problem."""
    path = Path(path)
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DialogFileError(
            [Problem(shown, None, f"cannot read the file: {err.strerror}", "check the path")]
        ) from None
    try:
        data = YAML(typ="rt").load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DialogFileError(
            [Problem(shown, None, "the file is not UTF-8 text", "save it as UTF-8")]
        ) from None
    except MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise DialogFileError(
            [
                Problem(
                    shown,
                    line,
                    f"YAML syntax: {err.problem}",
                    "fix the indentation or quoting on that line",
                )
            ]
        ) from None
    if not isinstance(data, dict):
        raise DialogFileError(
            [
                Problem(
                    shown,
                    1,
                    "the file must be a YAML mapping",
                    "start with 'id:', 'title:', 'version:'",
                )
            ]
        )
    try:
        spec = DialogFile.model_validate(data)
    except ValidationError as err:
        raise DialogFileError([_schema_problem(shown, data, e) for e in err.errors()]) from None
    checker = _Checker(shown, data, spec)
    protocol = checker.run(path, hashlib.sha256(raw).hexdigest())
    if checker.problems:
        raise DialogFileError(checker.problems)
    return protocol


def _line_of(data: Any, loc: Iterable[Any]) -> int | None:
    """The 1-based line of the node at ``loc`` in a ruamel round-trip document."""
    line = None
    node = data
    for key in loc:
        try:
            if isinstance(node, dict) and key in node:
                line = cast(Any, node).lc.key(key)[0] + 1  # ruamel line info
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                line = cast(Any, node).lc.item(key)[0] + 1
            else:
                break
            node = node[key]
        except (AttributeError, KeyError, TypeError, IndexError):
            break
    if line is None and hasattr(data, "lc"):
        line = data.lc.line + 1
    return line


def _schema_problem(file: str, data: Any, error: Any) -> Problem:
    loc = tuple(error["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    kind = error["type"]
    if kind == "missing":
        fix = f"add '{loc[-1]}:'"
    elif kind == "extra_forbidden":
        fix = f"remove '{loc[-1]}' or correct its spelling"
    elif kind == "literal_error":
        fix = f"use one of {error['ctx']['expected']}"
    elif kind == "string_pattern_mismatch":
        fix = "use lower-case letters, digits and _ (criterion ids: letters and digits, e.g. I8c)"
    else:
        fix = "correct the value"
    message = error["msg"].removeprefix("Value error, ")
    return Problem(file, _line_of(data, loc), f"{where}: {message}", fix)


class _Checker:
    """The checks a schema cannot express: names, order, reachability, choices."""

    def __init__(self, file: str, data: Any, spec: DialogFile) -> None:
        self.file, self.data, self.spec = file, data, spec
        self.problems: list[Problem] = []
        self.variables = {q.variable: q for q in spec.questions}

    def problem(self, loc: tuple[Any, ...], message: str, fix: str) -> None:
        self.problems.append(Problem(self.file, _line_of(self.data, loc), message, fix))

    def run(self, path: Path, sha256: str) -> Protocol:
        self._duplicates()
        self._derived()
        when = self._conditions()
        rules = self._rules()
        self._unused(rules, when)
        return Protocol(self.spec, path, sha256, when, rules)

    def _duplicates(self) -> None:
        for field, items, key in (
            ("questions", self.spec.questions, "variable"),
            ("criteria", self.spec.criteria, "id"),
            ("derived", self.spec.derived, "name"),
        ):
            seen: set[str] = set()
            for index, item in enumerate(items):
                value = getattr(item, key)
                if value in seen:
                    self.problem(
                        (field, index, key),
                        f"duplicate {key} '{value}'",
                        f"give each {key} in '{field}' a distinct value",
                    )
                seen.add(value)
        for index, d in enumerate(self.spec.derived):
            if d.name in self.variables:
                self.problem(
                    ("derived", index, "name"),
                    f"'{d.name}' is also a question",
                    "give the derived value a name of its own",
                )

    def _derived(self) -> None:
        for index, d in enumerate(self.spec.derived):
            calculator = CALCULATORS.get(d.calculator)
            if calculator is None:
                self.problem(
                    ("derived", index, "calculator"),
                    f"unknown calculator '{d.calculator}'",
                    f"use one of {sorted(CALCULATORS)}",
                )
                continue
            if set(d.inputs) != set(calculator.parameters):
                self.problem(
                    ("derived", index, "inputs"),
                    f"calculator '{d.calculator}' takes {list(calculator.parameters)}",
                    "name exactly these inputs, each mapped to a question variable",
                )
            for param, variable in d.inputs.items():
                if variable not in self.variables:
                    self.problem(
                        ("derived", index, "inputs", param),
                        f"input '{variable}' is not a question",
                        self._suggest(variable),
                    )
            if d.measured and d.measured not in self.variables:
                self.problem(
                    ("derived", index, "measured"),
                    f"'{d.measured}' is not a question",
                    self._suggest(d.measured),
                )

    def _conditions(self) -> dict[str, Expression]:
        compiled: dict[str, Expression] = {}
        asked_before: list[str] = []
        for index, q in enumerate(self.spec.questions):
            if q.when is not None:
                expr = self._parse(("questions", index, "when"), q.when)
                if expr is not None:
                    later = [n for n in expr.names if n not in asked_before]
                    for name in sorted(later):
                        msg, fix = self._misplaced(q.variable, name)
                        self.problem(("questions", index, "when"), msg, fix)
                    if not later:
                        self._types(("questions", index, "when"), expr)
                        if not self._satisfiable(expr):
                            self.problem(
                                ("questions", index, "when"),
                                f"'{q.variable}' is never asked: '{q.when}' is never true",
                                "correct the condition or remove the question",
                            )
                        compiled[q.variable] = expr
            asked_before.append(q.variable)
        return compiled

    def _misplaced(self, variable: str, name: str) -> tuple[str, str]:
        """Why a condition of ``variable`` may not read ``name``, and what to do instead."""
        prefix = f"condition of '{variable}' reads"
        if name == variable:
            return f"{prefix} its own answer", "a condition reads only questions asked before it"
        if name in self.variables:
            return (
                f"{prefix} '{name}', asked after it",
                f"move '{variable}' after '{name}', or drop '{name}' from when",
            )
        derived = {d.name: d for d in self.spec.derived}
        if name in derived:
            sources = [derived[name].measured, *derived[name].inputs.values()]
            return (
                f"{prefix} the derived value '{name}'",
                f"read the questions it comes from instead: {', '.join(filter(None, sources))}",
            )
        return f"{prefix} unknown name '{name}'", self._suggest(name)

    def _rules(self) -> dict[str, Expression]:
        compiled: dict[str, Expression] = {}
        known = set(self.variables) | {d.name for d in self.spec.derived}
        for index, c in enumerate(self.spec.criteria):
            field = "met_when" if c.kind == "inclusion" else "applies_when"
            expr = self._parse(("criteria", index, field), c.rule)
            if expr is None:
                continue
            unknown = sorted(expr.names - known)
            for name in unknown:
                self.problem(
                    ("criteria", index, field),
                    f"rule of {c.id} reads '{name}', which is neither question nor derived",
                    self._suggest(name),
                )
            if not unknown:
                self._types(("criteria", index, field), expr)
                compiled[c.id] = expr
        return compiled

    def _unused(self, rules: dict[str, Expression], when: dict[str, Expression]) -> None:
        read: set[str] = set()
        for expr in itertools.chain(rules.values(), when.values()):
            read |= expr.names
        for d in self.spec.derived:
            if d.name in read:
                read |= set(d.inputs.values()) | ({d.measured} if d.measured else set())
        for index, q in enumerate(self.spec.questions):
            if q.variable not in read:
                self.problem(
                    ("questions", index, "variable"),
                    f"question '{q.variable}' is read by no rule, condition or derived",
                    "use it in a criterion's rule or remove the question",
                )

    def _parse(self, loc: tuple[Any, ...], text: str) -> Expression | None:
        try:
            return parse(text)
        except ExpressionError as err:
            self.problem(loc, str(err), err.hint)
            return None

    def _types(self, loc: tuple[Any, ...], expr: Expression) -> None:
        """Choice constants must be valid choices; bare names must be yes/no answers."""
        for name in expr.bare_names:
            q = self.variables.get(name)
            if q is not None and q.type != "yes_no":
                self.problem(
                    loc,
                    f"'{name}' is a {q.type.replace('_', '/')} answer used as yes/no",
                    f"compare it, e.g. '{name} == ...' or '{name} >= ...'",
                )
        for comparison in expr.comparisons:
            q = self.variables.get(comparison.variable)
            if (
                q is not None
                and q.type in ("choice", "yes_no")
                and comparison.op not in (ast.Eq, ast.NotEq)
            ):
                self.problem(
                    loc,
                    f"'{comparison.describe()}' orders a {q.type} answer",
                    f"compare '{comparison.variable}' with == or !=",
                )
        for name, constant in expr.constants:
            q = self.variables.get(name)
            if q is None:
                continue
            if q.type == "choice" and constant not in (q.choices or []):
                self.problem(
                    loc, f"'{constant}' is not a choice of '{name}'", f"use one of {q.choices}"
                )
            elif q.type in ("int", "number") and (
                isinstance(constant, bool) or not isinstance(constant, int | float)
            ):
                self.problem(
                    loc,
                    f"'{name}' is a number but is compared with {constant!r}",
                    "compare it with a number",
                )
            elif q.type == "yes_no" and not isinstance(constant, bool):
                self.problem(
                    loc,
                    f"'{name}' is yes/no but is compared with {constant!r}",
                    f"write '{name}' or 'not {name}'",
                )

    def _satisfiable(self, expr: Expression) -> bool:
        """True when some answers (known or unknown) make the condition true."""
        domains = [self._domain(name, expr) for name in sorted(expr.names)]
        names = sorted(expr.names)
        for values in itertools.product(*domains):
            if expr.evaluate(dict(zip(names, values, strict=True))) is True:
                return True
        return False

    def _domain(self, name: str, expr: Expression) -> list[Any]:
        q = self.variables[name]
        if q.type == "yes_no":
            return [True, False, None]
        if q.type == "choice":
            return [*(q.choices or []), None]
        low, high = q.min, q.max
        assert low is not None and high is not None  # the schema requires both
        marks = sorted({low, high} | {c for n, c in expr.constants if n == name})
        points = {m + d for m in marks for d in (-1, 0, 1)}
        if q.type == "number":  # between any two thresholds, e.g. 59.5 < x < 60
            points |= {(a + b) / 2 for a, b in itertools.pairwise(marks)}
        return [*sorted(p for p in points if low <= p <= high), None]

    def _suggest(self, name: str) -> str:
        names = list(self.variables) + [d.name for d in self.spec.derived]
        close = difflib.get_close_matches(name, names, n=1)
        return f"did you mean '{close[0]}'?" if close else "define it as a question first"


def iter_dialog_files(directory: Path) -> Iterator[Path]:
    yield from sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
