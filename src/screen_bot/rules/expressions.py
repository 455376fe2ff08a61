"""Safe, three-valued rule expressions, parsed into a small tree (the IR).

A dialog file writes rules and conditions as small Python-like expressions
(``14 <= age <= 65``, ``sex == 'female' and pregnant_or_lactating``,
``screening_date < last_mi_date + months(12)``, ``'blinatumomab' in prior_therapies``).
They are parsed with :mod:`ast`, checked against a whitelist and size limits, and turned
into the nodes below; nothing is ever passed to ``eval``. ``None`` stands for *unknown*;
``and``/``or``/``not`` follow Kleene's three-valued logic, so a known part decides
whenever it can. :func:`interpret` is the reference meaning of a tree; ``compiled.py``
turns trees into Python functions and ``sql.py`` into SQL, and tests hold them equal.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from itertools import pairwise
from typing import Any

from .dates import NEVER, window_shift

Env = Mapping[str, Any]
Compiled = Callable[[Env], Any]

MAX_CHARACTERS = 2000  # a rule longer than this is not a rule a clinician can check
MAX_DEPTH = 40  # levels of the expression's tree (_check_size)
MAX_NODES = 400  # parts of the expression (_check_size)
WINDOW_UNITS = ("days", "weeks", "months", "years")
MAX_WINDOW = 1200  # months(1200) is a century: more is a typo

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
SYMBOL = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_AST_OPS: dict[type[ast.cmpop], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
FUNCTIONS = ("known", "unknown", "any_of", "none_of", *WINDOW_UNITS)
SCREENING_DATE = "screening_date"
ALLOWED = (
    "variable names, numbers, 'quoted choices', comparisons (< <= > >= == !=), and / or / not, "
    "known(x), unknown(x), 'choice' in x, any_of(x, 'a', 'b'), none_of(x, 'a', 'b'), and "
    "date ± days(n) / weeks(n) / months(n) / years(n)"
)


class ExpressionError(ValueError):
    """A rule or condition that cannot be parsed; ``hint`` says what to write instead."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


# -- the tree -----------------------------------------------------------------------------


class Node:
    """A node of a parsed expression."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Name(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Const(Node):
    value: bool | int | float | str


@dataclass(frozen=True, slots=True)
class Shift(Node):
    """``base ± amount unit``: a date moved by a calendar window."""

    base: Node
    amount: int  # negative for subtraction
    unit: str  # one of WINDOW_UNITS


@dataclass(frozen=True, slots=True)
class Ordinal(Node):
    """An ordered choice's position in its list (made by binding, never written)."""

    name: str
    positions: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    left: Node
    op: str  # a key of COMPARE
    right: Node
    dates: bool = False  # set by binding: both sides are dates (a 'none' date compares false)


@dataclass(frozen=True, slots=True)
class Member(Node):
    """``'item' in collection`` (``negated``: ``not in``) on a multi-select answer."""

    item: str
    collection: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class AnyOf(Node):
    """``any_of(collection, items…)``; ``negated`` is ``none_of``."""

    collection: str
    items: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Known(Node):
    name: str
    negated: bool = False  # unknown(x)


@dataclass(frozen=True, slots=True)
class And(Node):
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or(Node):
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    part: Node


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, And | Or):
        return node.parts
    if isinstance(node, Not):
        return (node.part,)
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, Shift):
        return (node.base,)
    return ()


def walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def names_read(node: Node) -> frozenset[str]:
    found: set[str] = set()
    for n in walk(node):
        if isinstance(n, Name | Ordinal | Known):
            found.add(n.name)
        elif isinstance(n, Member | AnyOf):
            found.add(n.collection)
    return frozenset(found)


# -- parsed expressions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One ``variable <op> constant`` test inside an expression (the name on the left)."""

    variable: str
    op: str
    constant: Any

    def describe(self) -> str:
        return f"{self.variable} {SYMBOL[self.op]} {self.constant}"


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, its tree, the names it reads, and an evaluator.

    ``evaluate`` is the reference interpreter until a protocol binds and compiles it.
    """

    text: str
    node: Node
    evaluate: Compiled = field(repr=False, compare=False)

    @cached_property  # read for every criterion at every step an engine prepares
    def names(self) -> frozenset[str]:
        return names_read(self.node)

    @property
    def bare_names(self) -> frozenset[str]:
        """Names used as yes/no on their own (``pregnant`` in ``sex == 'female' and pregnant``)."""
        return frozenset(_bare_names(self.node))

    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        """``name op constant`` comparisons (normalised so the name is on the left)."""
        found = []
        for n in walk(self.node):
            if not isinstance(n, Compare):
                continue
            left, right, op = n.left, n.right, n.op
            if isinstance(left, Const) and isinstance(right, Name | Ordinal):
                left, right, op = right, left, FLIPPED[op]
            if isinstance(left, Name) and isinstance(right, Const):
                found.append(Comparison(left.name, op, right.value))
        return tuple(found)

    @property
    def constants(self) -> tuple[tuple[str, Any], ...]:
        pairs = [(c.variable, c.constant) for c in self.comparisons]
        for n in walk(self.node):
            if isinstance(n, Member):
                pairs.append((n.collection, n.item))
            elif isinstance(n, AnyOf):
                pairs += [(n.collection, item) for item in n.items]
        return tuple(pairs)


def _bare_names(node: Node) -> Iterator[str]:
    if isinstance(node, Name):
        yield node.name
    elif isinstance(node, And | Or):
        for part in node.parts:
            yield from _bare_names(part)
    elif isinstance(node, Not):
        yield from _bare_names(node.part)


def parse(text: str) -> Expression:
    """Parse ``text``; raise :class:`ExpressionError` on anything outside the subset."""
    node = parse_node(text)
    return Expression(text.strip(), node, lambda env: interpret(node, env))


def parse_node(text: str) -> Node:
    # A folded YAML scalar keeps some line breaks; a rule is one expression, on one line.
    source = " ".join(text.split("\n")).strip()
    if len(source) > MAX_CHARACTERS:
        raise ExpressionError(
            f"the expression is {len(source)} characters long (at most {MAX_CHARACTERS})",
            "split the criterion into parts (e.g. E3a, E3b) or simplify it",
        )
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        raise ExpressionError(
            f"cannot parse {_short(source)!r}: {err.msg}", _syntax_hint(source)
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(
            "the expression is too deeply nested to read", "simplify it"
        ) from None
    _check_size(tree.body)
    return _Converter().convert(tree.body)


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _compares_quoted_values(operands: list[ast.expr]) -> bool:
    """Whether a chain compares a quoted value with another value next to it (sex == 'a' ==
    'b' compares 'a' with 'b'); a range of an ordered choice, 'CNS2' < cns_status <= 'CNS3',
    compares each value with the answer and is meant."""
    return any(
        isinstance(left, ast.Constant)
        and isinstance(right, ast.Constant)
        and (_is_text(left) or _is_text(right))
        for left, right in pairwise(operands)
    )


def _unchained(node: ast.Compare) -> str:
    """A chain of comparisons as the comparisons it means, joined by 'and'; a link between
    two values compares the chain's one variable instead of the value next to it elsewhere
    (sex == 'a' == 'b': sex == 'a' and sex == 'b'; 'a' == 'b' == sex: 'a' == sex and ...)."""
    operands = [node.left, *node.comparators]
    names = {operand.id for operand in operands if isinstance(operand, ast.Name)}
    links = []
    for index, op in enumerate(node.ops):
        left, right = operands[index], operands[index + 1]
        if len(names) == 1 and isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            name = ast.Name(next(iter(names)))
            after = operands[index + 2] if index + 2 < len(operands) else None
            left, right = (left, name) if isinstance(after, ast.Name) else (name, right)
        links.append(ast.unparse(ast.Compare(left, [op], [right])))
    return _short(" and ".join(links))


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _syntax_hint(text: str) -> str:
    if re.search(r"(?<![<>=!])=(?!=)", text):
        return "use == to compare (a single = assigns), e.g. sex == 'female'"
    if re.search(r"\b(AND|OR|NOT|&&|\|\|)\b|&&|\|\|", text):
        return "write and / or / not in lower case"
    return 'write comparisons joined by and / or / not, e.g. "14 <= age <= 65"'


def _check_size(root: ast.expr) -> None:
    """Bound the tree before converting it (recursion on a hostile tree would crash).

    A part is a node of the expression as written (a name, number, quoted choice,
    comparison, and/or/not, call, date ± window), a level one step down from such a node:
    Python's operator and context nodes (``Gt``, ``Load``) are no part a rule writer sees,
    so they are walked (nothing under them escapes the bound) but not counted. The whole
    tree is walked (2,000 characters keep it small), so the message gives its size.
    """
    parts, deepest = 0, 0
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        parts += isinstance(node, ast.expr)
        deepest = max(deepest, depth)
        stack.extend(
            (child, depth + isinstance(child, ast.expr)) for child in ast.iter_child_nodes(node)
        )
    if deepest > MAX_DEPTH:
        raise ExpressionError(
            f"the expression is too deeply nested: {deepest} levels > {MAX_DEPTH}",
            "split the criterion into parts (e.g. E3a, E3b) or simplify it",
        )
    if parts > MAX_NODES:
        raise ExpressionError(
            f"the expression has too many parts: {parts:,} > {MAX_NODES} (names, numbers, "
            "choices, comparisons, and/or/not)",
            "split the criterion into parts (e.g. E3a, E3b) or simplify it",
        )


class _Converter:
    def convert(self, node: ast.expr) -> Node:
        if isinstance(node, ast.BoolOp):
            parts = tuple(self.convert(v) for v in node.values)
            return And(parts) if isinstance(node.op, ast.And) else Or(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self.convert(node.operand))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name):
            return Name(node.id)
        if isinstance(node, ast.Constant):
            return self._constant(node.value, node)
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
            and not isinstance(node.operand.value, bool)
        ):
            return self._constant(-node.operand.value, node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            return self._shift(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise ExpressionError(f"{_short(ast.unparse(node))!r} is not allowed in a rule", ALLOWED)

    @staticmethod
    def _constant(value: object, node: ast.expr) -> Const:
        if isinstance(value, bool | str):
            return Const(value)
        if isinstance(value, int | float):
            fix = "write a threshold of at most 15 digits, e.g. 1000 or 0.5"
            if isinstance(value, float) and value != value or abs(value) == float("inf"):
                # ast reads 1e999 as infinity, which it would show as 1e309: say it plainly
                raise ExpressionError("a number in the expression is too large to be finite", fix)
            if isinstance(value, int) and abs(value) > 10**15:
                raise ExpressionError(f"{_short(ast.unparse(node))!r} is too large a number", fix)
            return Const(value)
        raise ExpressionError(f"{_short(ast.unparse(node))!r} is not allowed in a rule", ALLOWED)

    def _compare(self, node: ast.Compare) -> Node:
        operands = [node.left, *node.comparators]
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn):
            return self._member(node.left, node.comparators[0], isinstance(node.ops[0], ast.NotIn))
        parts: list[Node] = []
        for index, op in enumerate(node.ops):
            symbol = _AST_OPS.get(type(op))
            if symbol is None:
                word = {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
                raise ExpressionError(
                    f"operator '{word.get(type(op), type(op).__name__)}' in "
                    f"{_short(ast.unparse(node))!r} is not allowed here",
                    "use < <= > >= == != (chains such as 14 <= age <= 65), or "
                    "'choice' in variable on its own",
                )
            parts.append(
                Compare(self.convert(operands[index]), symbol, self.convert(operands[index + 1]))
            )
        if len(parts) > 1 and _compares_quoted_values(operands):
            raise ExpressionError(
                f"{_short(ast.unparse(node))!r} chains comparisons of a choice",
                f"compare one value at a time: {_unchained(node)}",
            )
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _member(self, item: ast.expr, collection: ast.expr, negated: bool) -> Member:
        if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
            raise ExpressionError(
                f"the left of 'in' must be a 'quoted choice', not {_short(ast.unparse(item))!r}",
                "write e.g. 'blinatumomab' in prior_therapies",
            )
        if not isinstance(collection, ast.Name):
            raise ExpressionError(
                f"the right of 'in' must be a multi-select answer, not "
                f"{_short(ast.unparse(collection))!r}",
                "write e.g. 'blinatumomab' in prior_therapies",
            )
        return Member(item.value, collection.id, negated)

    def _shift(self, node: ast.BinOp) -> Shift:
        window = node.right
        if not (
            isinstance(window, ast.Call)
            and isinstance(window.func, ast.Name)
            and window.func.id in WINDOW_UNITS
        ):
            fix = "write e.g. transplant_date + months(2); there is no other arithmetic"
            meant = _window_meant(window)
            if meant is not None:  # a unit's typo: mnths(3), month(3), wekks(8)
                written = _short(ast.unparse(ast.BinOp(node.left, node.op, meant)))
                fix = f"did you mean {ast.unparse(meant.func)}? write {written}"
            raise ExpressionError(
                f"{_short(ast.unparse(node))!r}: only a window can be added to or subtracted "
                "from a date",
                fix,
            )
        amount = self._window_amount(window)
        base = self.convert(node.left)
        return Shift(base, amount if isinstance(node.op, ast.Add) else -amount, window.func.id)

    @staticmethod
    def _window_amount(call: ast.Call) -> int:
        assert isinstance(call.func, ast.Name)
        arg = call.args[0] if len(call.args) == 1 and not call.keywords else None
        if not (
            isinstance(arg, ast.Constant)
            and isinstance(arg.value, int)
            and not isinstance(arg.value, bool)
            and 0 <= arg.value <= MAX_WINDOW
        ):
            raise ExpressionError(
                f"{_short(ast.unparse(call))!r}: a window takes one whole number "
                f"from 0 to {MAX_WINDOW}",
                f"write e.g. {call.func.id}(2)",
            )
        return arg.value

    def _call(self, node: ast.Call) -> Node:
        func = node.func.id if isinstance(node.func, ast.Name) else None
        if func in WINDOW_UNITS:
            raise ExpressionError(
                f"{_short(ast.unparse(node))!r} is a window on its own",
                f"add it to a date, e.g. transplant_date + {func}(2)",
            )
        if func in ("known", "unknown"):
            if len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Name):
                return Known(node.args[0].id, negated=func == "unknown")
            raise ExpressionError(
                f"{_short(ast.unparse(node))!r}: {func}() takes one variable name",
                f"write e.g. {func}(crcl_ml_min)",
            )
        if func in ("any_of", "none_of"):
            args = node.args
            if (
                len(args) >= 2
                and not node.keywords
                and isinstance(args[0], ast.Name)
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args[1:])
            ):
                items = tuple(a.value for a in args[1:])  # type: ignore[attr-defined]
                return AnyOf(args[0].id, items, negated=func == "none_of")
            raise ExpressionError(
                f"{_short(ast.unparse(node))!r}: {func}() takes a multi-select answer and "
                "one or more 'quoted choices'",
                f"write e.g. {func}(prior_therapies, 'gene_therapy', 'blinatumomab')",
            )
        raise ExpressionError(
            f"{_short(ast.unparse(node))!r} is not allowed in a rule",
            f"the only functions are {', '.join(FUNCTIONS)}",
        )


# -- meaning --------------------------------------------------------------------------------


def _window_meant(node: ast.expr) -> ast.Call | None:
    """The window a call such as ``mnths(3)`` likely meant (``months(3)``), or None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    close = difflib.get_close_matches(node.func.id.lower(), WINDOW_UNITS, n=1)
    return ast.Call(ast.Name(close[0]), node.args, []) if close else None


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


def is_never(value: object) -> bool:
    """The answer 'none' of a date-or-none question (the event never happened)."""
    return isinstance(value, str) and value == NEVER


def interpret(node: Node, env: Env, to_come: Container[str] = ()) -> Any:
    """The reference meaning of a tree on ``env`` (missing names are unknown).

    ``to_come`` names answers not given yet that may still be given: ``known()`` and
    ``unknown()`` of them are unknown (of any other missing name, false and true).
    """
    if isinstance(node, Name):
        return env.get(node.name)
    if isinstance(node, Const):
        return node.value
    if isinstance(node, And):
        return kleene_and([interpret(p, env, to_come) for p in node.parts])
    if isinstance(node, Or):
        return kleene_or([interpret(p, env, to_come) for p in node.parts])
    if isinstance(node, Not):
        value = interpret(node.part, env, to_come)
        return None if value is None else not value
    if isinstance(node, Compare):
        left, right = interpret(node.left, env, to_come), interpret(node.right, env, to_come)
        # An event that never happened lies in no window, whatever the other side is.
        never = is_never(left) or is_never(right)
        if never and (node.dates or isinstance(left, date) or isinstance(right, date)):
            return False
        if left is None or right is None:
            return None
        return COMPARE[node.op](left, right)
    if isinstance(node, Shift):
        base = interpret(node.base, env)
        if base is None or is_never(base):
            return base
        return window_shift(base, node.amount, node.unit)  # type: ignore[arg-type]
    if isinstance(node, Ordinal):
        value = env.get(node.name)
        return None if value is None else dict(node.positions)[value]
    if isinstance(node, Member):
        collection = env.get(node.collection)
        if collection is None:
            return None
        return (node.item in collection) != node.negated
    if isinstance(node, AnyOf):
        collection = env.get(node.collection)
        if collection is None:
            return None
        return any(item in collection for item in node.items) != node.negated
    if isinstance(node, Known):
        if node.name in to_come:
            return None
        return (env.get(node.name) is not None) != node.negated
    raise TypeError(f"not an expression node: {node!r}")


def render(node: Node) -> str:
    """The tree written back as an expression (for messages and diagrams)."""
    if isinstance(node, Name | Ordinal):
        return node.name
    if isinstance(node, Const):
        return repr(node.value) if isinstance(node.value, str) else str(node.value)
    if isinstance(node, And | Or):
        word = " and " if isinstance(node, And) else " or "
        return word.join(_grouped(p) for p in node.parts)
    if isinstance(node, Not):
        return f"not {_grouped(node.part)}"
    if isinstance(node, Compare):
        return f"{render(node.left)} {node.op} {render(node.right)}"
    if isinstance(node, Shift):
        sign = "+" if node.amount >= 0 else "-"
        return f"{render(node.base)} {sign} {node.unit}({abs(node.amount)})"
    if isinstance(node, Member):
        return f"{node.item!r} {'not in' if node.negated else 'in'} {node.collection}"
    if isinstance(node, AnyOf):
        items = ", ".join(repr(i) for i in node.items)
        return f"{'none_of' if node.negated else 'any_of'}({node.collection}, {items})"
    if isinstance(node, Known):
        return f"{'unknown' if node.negated else 'known'}({node.name})"
    raise TypeError(f"not an expression node: {node!r}")


def _grouped(node: Node) -> str:
    text = render(node)
    return f"({text})" if isinstance(node, And | Or) else text
