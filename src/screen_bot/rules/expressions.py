"""Safe, three-valued rule expressions.

A dialog file writes rules and conditions as small Python-like expressions
(``14 <= age <= 65``, ``sex == 'female' and pregnant_or_lactating``). They are parsed
with :mod:`ast` and compiled to closures over a whitelist of node types; nothing is
ever passed to ``eval``. ``None`` stands for *unknown*, and ``and``/``or``/``not``
follow Kleene's three-valued logic, so a known part decides whenever it can.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Env = Mapping[str, Any]
Compiled = Callable[[Env], Any]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
COMPARE_SYMBOL: dict[type[ast.cmpop], str] = {
    ast.Lt: "<",
    ast.LtE: "≤",
    ast.Gt: ">",
    ast.GtE: "≥",
    ast.Eq: "=",
    ast.NotEq: "≠",
}
FUNCTIONS = ("known", "unknown")


class ExpressionError(ValueError):
    """A rule or condition that cannot be parsed; ``hint`` says what to write instead."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Comparison:
    """One ``variable <op> constant`` test inside an expression (constant on the right)."""

    variable: str
    op: type[ast.cmpop]
    constant: Any

    def describe(self) -> str:
        return f"{self.variable} {COMPARE_SYMBOL[self.op]} {self.constant}"


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, the names it reads, and its compiled evaluator."""

    text: str
    names: frozenset[str]
    comparisons: tuple[Comparison, ...]
    bare_names: frozenset[str] = field(default=frozenset())
    constants: tuple[tuple[str, Any], ...] = ()
    evaluate: Compiled = field(repr=False, compare=False, default=lambda env: None)


def kleene_and(values: list[Any]) -> bool | None:
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def kleene_or(values: list[Any]) -> bool | None:
    if any(v is True for v in values):
        return True
    if any(v is None for v in values):
        return None
    return False


def parse(text: str) -> Expression:
    """Parse and compile ``text``; raise :class:`ExpressionError` on anything outside the subset."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ExpressionError(
            f"cannot parse {text!r}: {err.msg}",
            'write comparisons joined by and / or / not, e.g. "14 <= age <= 65"',
        ) from None
    collector = _Collector()
    evaluate = collector.compile(tree.body)
    return Expression(
        text=text.strip(),
        names=frozenset(collector.names),
        comparisons=tuple(collector.comparisons),
        bare_names=frozenset(collector.bare_names),
        constants=tuple(collector.constants),
        evaluate=evaluate,
    )


class _Collector:
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.bare_names: set[str] = set()
        self.comparisons: list[Comparison] = []
        self.constants: list[tuple[str, Any]] = []

    def compile(self, node: ast.expr, boolean_context: bool = True) -> Compiled:
        if isinstance(node, ast.BoolOp):
            parts = [self.compile(v) for v in node.values]
            combine = kleene_and if isinstance(node.op, ast.And) else kleene_or
            return lambda env: combine([p(env) for p in parts])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.compile(node.operand)
            return lambda env: None if (v := inner(env)) is None else not v
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name):
            self.names.add(node.id)
            if boolean_context:
                self.bare_names.add(node.id)
            name = node.id
            return lambda env: env.get(name)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | float | str):
            value = node.value
            return lambda env: value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
        ):
            negative = -node.operand.value
            return lambda env: negative
        if isinstance(node, ast.Call):
            return self._call(node)
        raise ExpressionError(
            f"{ast.unparse(node)!r} is not allowed in a rule",
            "use variable names, numbers, 'quoted choices', comparisons (< <= > >= == !=), "
            "and / or / not, known(x) and unknown(x)",
        )

    def _call(self, node: ast.Call) -> Compiled:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in FUNCTIONS
            and len(node.args) == 1
            and not node.keywords
            and isinstance(node.args[0], ast.Name)
        ):
            name = node.args[0].id
            self.names.add(name)
            if node.func.id == "known":
                return lambda env: env.get(name) is not None
            return lambda env: env.get(name) is None
        raise ExpressionError(
            f"{ast.unparse(node)!r} is not allowed in a rule",
            "the only functions are known(variable) and unknown(variable)",
        )

    def _compare(self, node: ast.Compare) -> Compiled:
        operands = [node.left, *node.comparators]
        for op in node.ops:
            if type(op) not in _COMPARE:
                name = {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
                raise ExpressionError(
                    f"operator '{name.get(type(op), type(op).__name__)}' in "
                    f"{ast.unparse(node)!r} is not allowed",
                    "use < <= > >= == != joined by and / or",
                )
        compiled = [self.compile(o, boolean_context=False) for o in operands]
        steps = []
        for index, op in enumerate(node.ops):
            steps.append((index, _COMPARE[type(op)]))
            self._record(operands[index], op, operands[index + 1])

        def evaluate(env: Env) -> bool | None:
            values = [c(env) for c in compiled]
            results: list[Any] = []
            for index, compare in steps:
                left, right = values[index], values[index + 1]
                results.append(None if left is None or right is None else compare(left, right))
            return kleene_and(results)

        return evaluate

    def _record(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> None:
        """Remember ``name op constant`` pairs (normalised so the name is on the left)."""
        flipped = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}
        if isinstance(left, ast.Name) and isinstance(right, ast.Constant):
            pair = (left.id, type(op), right.value)
        elif isinstance(right, ast.Name) and isinstance(left, ast.Constant):
            pair = (right.id, flipped.get(type(op), type(op)), left.value)
        else:
            return
        self.comparisons.append(Comparison(*pair))
        self.constants.append((pair[0], pair[2]))
