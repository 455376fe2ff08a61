"""What kind of value each name holds, the type checks on a rule, and binding.

A dialog file's checker gives every name a :class:`Kind`; :func:`check` reports a rule
that compares things that cannot be compared (a number with a choice, two quantities in
different units, an unordered choice with ``<``), and :func:`bind` rewrites a checked tree
into the form the evaluators run (ordered choices become positions, date comparisons are
marked so a ``none`` date compares false).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from .expressions import And as AndNode
from .expressions import (
    AnyOf,
    Compare,
    Const,
    Known,
    Member,
    Name,
    Node,
    Not,
    Ordinal,
    Shift,
    render,
)
from .expressions import Or as OrNode
from .units import same_unit

Base = Literal["yes_no", "number", "choice", "set", "date", "text"]
ORDERING = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class Kind:
    base: Base
    unit: str = ""
    choices: tuple[str, ...] = ()
    ordered: bool = False
    never: bool = False  # a date that may be 'none' (the event never happened)
    label: str = ""  # how the value is described in messages: "a yes/no answer", …

    def describe(self) -> str:
        if self.label:
            return self.label
        return {
            "yes_no": "a yes/no answer",
            "number": "a number" + (f" in {self.unit}" if self.unit else ""),
            "choice": "an ordered choice" if self.ordered else "a choice",
            "set": "a multi-select answer",
            "date": "a date",
            "text": "a text answer",
        }[self.base]


@dataclass(frozen=True)
class TypeProblem:
    message: str
    fix: str


Kinds = Mapping[str, Kind]
_CONST_KIND = {bool: "yes_no", int: "number", float: "number", str: "choice"}


def check(node: Node, kinds: Kinds) -> list[TypeProblem]:
    """Every type problem in the condition ``node`` (names missing from ``kinds`` are
    skipped)."""
    return _Checker(kinds).check(node)


class _Checker:
    def __init__(self, kinds: Kinds) -> None:
        self.kinds = kinds
        self.problems: list[TypeProblem] = []

    def problem(self, message: str, fix: str) -> None:
        self.problems.append(TypeProblem(message, fix))

    def check(self, node: Node) -> list[TypeProblem]:
        self._boolean(node)
        return self.problems

    def _boolean(self, node: Node) -> None:
        if isinstance(node, AndNode | OrNode):
            for part in node.parts:
                self._boolean(part)
        elif isinstance(node, Not):
            self._boolean(node.part)
        elif isinstance(node, Compare):
            self._compare(node)
        elif isinstance(node, Member | AnyOf):
            self._collection(node)
        elif isinstance(node, Known):
            self._value(Name(node.name))  # refuses a text answer: not even known() reads one
        elif isinstance(node, Name):
            kind = self.kinds.get(node.name)
            if kind is not None and kind.base != "yes_no":
                self.problem(
                    f"'{node.name}' is {kind.describe()} used as yes/no",
                    f"compare it, e.g. '{node.name} == ...' or '{node.name} >= ...'"
                    if kind.base in ("number", "choice", "date")
                    else "a rule cannot read it on its own",
                )
        elif isinstance(node, Const):
            if not isinstance(node.value, bool):
                self.problem(f"{render(node)} is not a condition", "compare it with a variable")
        else:
            self.problem(f"'{render(node)}' is not a condition", "compare it with something")

    def _value(self, node: Node) -> Kind | None:
        """The kind of a value node (None when unknown or already reported)."""
        if isinstance(node, Name):
            kind = self.kinds.get(node.name)
            if kind is not None and kind.base == "text":
                self.problem(
                    f"'{node.name}' is a text answer, which no rule may read",
                    "text answers are kept for the coordinator only; ask a yes/no, "
                    "choice or number question for what the rule needs",
                )
                return None
            return kind
        if isinstance(node, Const):
            return Kind(_CONST_KIND[type(node.value)])  # type: ignore[arg-type]
        if isinstance(node, Shift):
            base = self._value(node.base)
            if base is not None and base.base != "date":
                self.problem(
                    f"'{render(node)}': a window is added to a date, not to {base.describe()}",
                    "write e.g. transplant_date + months(2)",
                )
                return None
            return Kind("date")
        self.problem(f"'{render(node)}' is not a value", "compare values, e.g. age >= 18")
        return None

    def _compare(self, node: Compare) -> None:
        left, right = self._value(node.left), self._value(node.right)
        if left is None or right is None:
            return
        text = render(node)
        name = _name_of(node.left) or _name_of(node.right) or text
        if left.base == "set" or right.base == "set":
            self.problem(
                f"'{text}' compares {name}, a multi-select answer",
                f"write 'choice' in {name}, or any_of({name}, 'a', 'b')",
            )
        elif left.base == "date" or right.base == "date":
            if left.base != right.base:
                self.problem(
                    f"'{text}' compares a date with {_other(left, right).describe()}",
                    "compare a date with another date or with screening_date, e.g. "
                    "screening_date >= transplant_date + months(2)",
                )
        elif left.base == "number" and right.base == "number":
            both_named = isinstance(node.left, Name) and isinstance(node.right, Name)
            if both_named and not same_unit(left.unit, right.unit):
                self.problem(
                    f"'{text}' compares {left.unit or 'a plain number'} with "
                    f"{right.unit or 'a plain number'}",
                    "compare values in the same unit (convert one with a derived value)",
                )
        elif "choice" in (left.base, right.base):
            self._choice(node, left, right)
        elif "yes_no" in (left.base, right.base):
            if left.base != right.base or node.op not in ("==", "!="):
                self.problem(
                    f"'{text}': {name} is yes/no",
                    f"write '{name}' or 'not {name}'",
                )
        else:
            self.problem(f"'{text}' compares {left.describe()} with {right.describe()}", "")

    def _choice(self, node: Compare, left: Kind, right: Kind) -> None:
        text = render(node)
        if isinstance(node.left, Const) and isinstance(node.right, Const):
            self.problem(
                f"{text!r} compares two fixed values, no question's answer",
                "compare a choice question with a value, e.g. sex == 'female'",
            )
            return
        if isinstance(node.left, Const) or isinstance(node.right, Const):
            name_node, const_node = (
                (node.left, node.right)
                if isinstance(node.right, Const)
                else (node.right, node.left)
            )
            kind = left if name_node is node.left else right
            value = const_node.value  # type: ignore[attr-defined]
            name = _name_of(name_node) or text
            if kind.base != "choice":
                what = "a number" if kind.base == "number" else kind.describe()
                self.problem(
                    f"'{name}' is {what} but is compared with {value!r}",
                    "compare it with a number" if kind.base == "number" else f"write '{name}'",
                )
                return
            if _choice_constant(kind, value) is None:
                self.problem(
                    f"{value!r} is not a choice of '{name}'", f"use one of {list(kind.choices)}"
                )
                return
            if node.op in ORDERING and not kind.ordered:
                self.problem(
                    f"'{text}' orders a choice answer",
                    f"compare '{name}' with == or !=, or mark its choices ordered: true",
                )
            return
        if left.choices != right.choices:
            self.problem(
                f"'{text}' compares choices of different lists", "compare with a 'quoted choice'"
            )
        elif node.op in ORDERING and not left.ordered:
            self.problem(f"'{text}' orders a choice answer", "mark its choices ordered: true")

    def _collection(self, node: Member | AnyOf) -> None:
        kind = self.kinds.get(node.collection)
        if kind is None:
            return
        example = f"'{kind.choices[0] if kind.choices else 'a'}' in {node.collection}"
        if kind.base != "set":
            self.problem(
                f"'{render(node)}' needs a multi-select answer, and '{node.collection}' is "
                f"{kind.describe()}",
                f"compare it instead, e.g. {node.collection} == ..."
                if kind.base == "choice"
                else "use a question with choices and multiple: true",
            )
            return
        items = (node.item,) if isinstance(node, Member) else node.items
        for item in items:
            if item not in kind.choices:
                self.problem(
                    f"{item!r} is not a choice of '{node.collection}'",
                    f"use one of {list(kind.choices)}, e.g. {example}",
                )


def _name_of(node: Node) -> str | None:
    return node.name if isinstance(node, Name) else None


def _other(left: Kind, right: Kind) -> Kind:
    return right if left.base == "date" else left


def _choice_constant(kind: Kind, value: object) -> str | None:
    """The choice a constant names: the text itself, or a whole number of an ordered list."""
    if isinstance(value, str) and value in kind.choices:
        return value
    whole = isinstance(value, int) and not isinstance(value, bool)
    if kind.ordered and whole and str(value) in kind.choices:
        return str(value)
    return None


def bind(node: Node, kinds: Kinds) -> Node:
    """The checked tree in the form the evaluators run."""
    if isinstance(node, AndNode):
        return AndNode(tuple(bind(p, kinds) for p in node.parts))
    if isinstance(node, OrNode):
        return OrNode(tuple(bind(p, kinds) for p in node.parts))
    if isinstance(node, Not):
        return Not(bind(node.part, kinds))
    if isinstance(node, Compare):
        return _bind_compare(node, kinds)
    return node


def _bind_compare(node: Compare, kinds: Kinds) -> Compare:
    sides = []
    dates = False
    for side in (node.left, node.right):
        kind = kinds.get(side.name) if isinstance(side, Name) else None
        if kind is not None and kind.base == "date" or isinstance(side, Shift):
            dates = True
        sides.append(kind)
    left, right = node.left, node.right
    ordered = next((k for k in sides if k is not None and k.base == "choice" and k.ordered), None)
    if ordered is not None and node.op in ORDERING:
        positions = tuple((c, i) for i, c in enumerate(ordered.choices))
        left, right = (_position(s, ordered, positions) for s in (left, right))
    elif ordered is not None:  # == / != on an ordered choice: a number constant names a choice
        left, right = (_named_choice(s, ordered) for s in (left, right))
    return replace(node, left=left, right=right, dates=dates)


def _position(side: Node, kind: Kind, positions: tuple[tuple[str, int], ...]) -> Node:
    if isinstance(side, Name):
        return Ordinal(side.name, positions)
    if isinstance(side, Const):
        choice = _choice_constant(kind, side.value)
        return Const(dict(positions)[choice]) if choice is not None else side
    return side


def _named_choice(side: Node, kind: Kind) -> Node:
    if isinstance(side, Const):
        choice = _choice_constant(kind, side.value)
        return Const(choice) if choice is not None else side
    return side
