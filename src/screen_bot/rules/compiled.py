"""Bound expression trees compiled to plain Python functions, once per protocol.

Each tree becomes straight-line Python source (one temporary per node, three-valued
``and``/``or``/``not`` spelt out), all trees of a protocol in one module, compiled with
:func:`compile`. Only names checked against ``^[a-z][a-z0-9_]*$`` and constants of the
tree reach the source, each through :func:`repr`; no text of a dialog file is run.
``interpret`` (expressions.py) is the reference these functions are tested against.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any

from .dates import NEVER, remembered_shift
from .expressions import (
    And,
    AnyOf,
    Compare,
    Const,
    Known,
    Member,
    Name,
    Node,
    Not,
    Or,
    Ordinal,
    Shift,
)

Function = Callable[[Mapping[str, Any]], Any]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def compile_all(trees: Mapping[str, Node], label: str = "rules") -> dict[str, Function]:
    """One function per tree, keyed as ``trees`` is; compiled together."""
    return run_module(*compile_module(trees, label))


def compile_module(
    trees: Mapping[str, Node], label: str = "rules"
) -> tuple[CodeType, dict[str, Any], dict[str, str]]:
    """``compile_all``'s module, compiled but not run: its code, the names the code uses
    besides the builtins, and each tree's function (``protocol/cache.py`` keeps them)."""
    namespace = _namespace()
    sources = []
    names = {}
    for index, (key, tree) in enumerate(trees.items()):
        function = f"_f{index}"
        names[key] = function
        sources.append(_Writer(namespace, function).function(tree))
    return compile("\n\n".join(sources) or "pass", f"<{label}>", "exec"), namespace, names


def run_module(
    code: CodeType, namespace: dict[str, Any], names: dict[str, str]
) -> dict[str, Function]:
    """The functions of a module made by ``compile_module``, keyed as its trees were."""
    exec(code, namespace)  # the source is generated from checked trees only (see above)
    return {key: namespace[function] for key, function in names.items()}


def _namespace() -> dict[str, Any]:
    """What generated code may call: the calendar shift and the 'none' date."""
    return {"_shift": remembered_shift, "_NEVER": NEVER}


def compile_statuses(rules: list[tuple[Node, bool]], label: str = "rules") -> Function:
    """One function returning every rule's status ("met", "failed", "unknown") as a tuple.

    ``rules`` holds (tree, exclusion): an exclusion's rule says when it applies, so true
    means failed. Each name is looked up once for all the rules.
    """
    namespace = _namespace()
    namespace["_INCLUSION"] = {True: "met", False: "failed", None: "unknown"}
    namespace["_EXCLUSION"] = {True: "failed", False: "met", None: "unknown"}
    writer = _Writer(namespace, "_together")
    results = [
        f"{'_EXCLUSION' if exclusion else '_INCLUSION'}[{writer.value(tree)}]"
        for tree, exclusion in rules
    ]
    body = "\n".join(f"    {line}" for line in writer.lines)
    source = f"def _together(env):\n    get = env.get\n{body}\n    return ({', '.join(results)},)"
    exec(compile(source, f"<{label}>", "exec"), namespace)  # from checked trees (see above)
    function: Function = namespace["_together"]
    return function


class _Writer:
    def __init__(self, namespace: dict[str, Any], function: str) -> None:
        self.namespace = namespace
        self.function_name = function
        self.lines: list[str] = []
        self.loaded: dict[str, str] = {}
        self.count = 0

    def function(self, tree: Node) -> str:
        result = self.value(tree)
        body = "\n".join(f"    {line}" for line in self.lines)
        return f"def {self.function_name}(env):\n    get = env.get\n{body}\n    return {result}"

    def temp(self, expression: str) -> str:
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"{name} = {expression}")
        return name

    def load(self, name: str) -> str:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a checked name: {name!r}")
        if name not in self.loaded:
            self.loaded[name] = self.temp(f"get({name!r})")
        return self.loaded[name]

    def constant(self, value: object) -> str:
        if isinstance(value, bool | int | float | str):
            return repr(value)
        raise TypeError(f"not a constant: {value!r}")

    def value(self, node: Node) -> str:
        """An expression (a temporary or a literal) holding the node's value."""
        if isinstance(node, Name):
            return self.load(node.name)
        if isinstance(node, Const):
            return self.constant(node.value)
        if isinstance(node, And | Or):
            parts = [self.value(p) for p in node.parts]
            decisive, other = ("False", "True") if isinstance(node, And) else ("True", "False")
            any_decisive = " or ".join(f"{p} is {decisive}" for p in parts)
            any_unknown = " or ".join(f"{p} is None" for p in parts)
            return self.temp(
                f"{decisive} if ({any_decisive}) else (None if ({any_unknown}) else {other})"
            )
        if isinstance(node, Not):
            part = self.value(node.part)
            return self.temp(f"None if {part} is None else not {part}")
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Shift):
            return self.shift(node)
        if isinstance(node, Ordinal):
            table = f"_ord{len(self.namespace)}"
            self.namespace[table] = dict(node.positions)
            raw = self.load(node.name)
            return self.temp(f"None if {raw} is None else {table}[{raw}]")
        if isinstance(node, Member):
            collection = self.load(node.collection)
            test = "not in" if node.negated else "in"
            item = self.constant(node.item)
            return self.temp(f"None if {collection} is None else ({item} {test} {collection})")
        if isinstance(node, AnyOf):
            collection = self.load(node.collection)
            found = " or ".join(f"{self.constant(i)} in {collection}" for i in node.items)
            found = f"not ({found})" if node.negated else f"({found})"
            return self.temp(f"None if {collection} is None else {found}")
        if isinstance(node, Known):
            raw = self.load(node.name)
            return self.temp(f"{raw} is {'' if node.negated else 'not '}None")
        raise TypeError(f"not an expression node: {node!r}")

    def compare(self, node: Compare) -> str:
        left, right = self.value(node.left), self.value(node.right)
        unknown = [
            s for s, n in ((left, node.left), (right, node.right)) if not isinstance(n, Const)
        ]
        test = f"{left} {node.op} {right}"
        if unknown:
            missing = " or ".join(f"{s} is None" for s in unknown)
            test = f"None if ({missing}) else ({test})"
        if node.dates and unknown:  # a 'none' date lies in no window, even beside an unknown
            nevers = " or ".join(f"{s} == _NEVER" for s in unknown)
            test = f"False if ({nevers}) else ({test})"
        return self.temp(test)

    def shift(self, node: Shift) -> str:
        base = self.value(node.base)
        moved = f"_shift({base}, {node.amount}, {node.unit!r})"  # never past the calendar's end
        return self.temp(f"{base} if ({base} is None or {base} == _NEVER) else {moved}")
