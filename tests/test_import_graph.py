"""The import graph of ``src/``: no cycles, and adapters that know nothing of storage or engine."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "screen_bot"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in (SRC / PACKAGE).rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(name: str, top_level_only: bool) -> set[str]:
    """The screen_bot modules ``name`` imports (module level, or anywhere in it)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes: list[ast.AST] = []
    if top_level_only:
        stack = list(tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, ast.If) and not _is_type_checking(node):
                stack += node.body + node.orelse
            elif isinstance(node, ast.Try):
                stack += node.body + node.orelse + node.finalbody
            else:
                nodes.append(node)
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
    return {m for m in found if m in MODULES and m != name}


def cycles(graph: dict[str, set[str]] | None = None) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    if graph is None:
        graph = {m: imports(m, top_level_only=True) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_walker_sees_the_imports_it_must() -> None:
    assert "screen_bot.service" in imports("screen_bot.adapters.terminal", True)
    assert "screen_bot.storage" in imports("screen_bot.service", True)
    assert "screen_bot.storage.ledger" in imports("screen_bot.service", True)
    assert "screen_bot.engine" in imports("screen_bot.protocol.catalog", True)
    assert len(MODULES) > 40


def test_no_import_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles() == []


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    heavy = ("telegram", "matplotlib", "graphviz", "transitions", "ruamel", "pydantic", "duckdb")
    code = f"import sys, screen_bot.cli.app; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_telegram_handlers_and_the_terminal_reach_storage_only_through_the_service() -> None:
    """The modules that handle a user's turn (not all of an adapter: the Telegram intake,
    app, messages and records modules queue updates and word stored records, and DESIGN
    forbids adapters criteria and SQL, not storage; see the next test)."""
    for adapter in ("screen_bot.adapters.telegram.bot", "screen_bot.adapters.terminal"):
        everything = imports(adapter, top_level_only=False)
        assert "screen_bot.service" in everything, adapter
        forbidden = {
            m for m in everything if m.startswith(("screen_bot.storage", "screen_bot.engine"))
        }
        assert forbidden == set(), adapter


def test_the_results_the_adapters_render_are_data_only() -> None:
    """``results`` is what the service returns, imported by every adapter: it holds data,
    so it imports neither the service that makes it nor the engine or rules behind it."""
    everything = imports("screen_bot.results", top_level_only=False)
    assert "screen_bot.protocol.schema" in everything  # the walk sees its imports
    forbidden = {
        m
        for m in everything
        if m.startswith(("screen_bot.service", "screen_bot.engine", "screen_bot.rules"))
    }
    assert forbidden == set()


# The DuckDB batch back end runs the compiled SQL of the criteria: it is filed under
# adapters/ but is no adapter of a user's input (audit 15 suggests moving it).
NOT_AN_ADAPTER = {"screen_bot.adapters.duckdb_batch"}


def test_the_adapters_know_nothing_of_criteria_or_sql() -> None:
    """DESIGN: "adapters know nothing of criteria or SQL": no adapter module imports the
    rules (where criteria are evaluated and SQL written) or the engine."""
    adapters = [m for m in MODULES if m.startswith("screen_bot.adapters")]
    assert "screen_bot.adapters.telegram.intake" in adapters  # the walk sees the package
    for adapter in sorted(set(adapters) - NOT_AN_ADAPTER):
        forbidden = {
            m
            for m in imports(adapter, top_level_only=False)
            if m.startswith(("screen_bot.rules", "screen_bot.engine"))
        }
        assert forbidden == set(), adapter


def test_the_command_line_imports_no_telegram_until_run() -> None:
    for name in [m for m in MODULES if m.startswith("screen_bot.cli")]:
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        names = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in top if isinstance(n, ast.ImportFrom)}
        assert not any(n.startswith(("telegram", "matplotlib", "graphviz")) for n in names), name
        assert "adapters" not in " ".join(names), name
