"""Load a dialog file: read it within limits, parse its YAML, validate it, check it.

Every problem is reported with the file, the line and what to change; loading either
returns a :class:`Protocol` or raises :class:`DialogFileError` listing all problems,
sorted by line. A hostile file (huge, deeply nested, full of aliases) is refused before
it is built into objects.
"""

from __future__ import annotations

import hashlib
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import ScreenBotError
from .model import Protocol
from .schema import FIXED, DialogFile

if TYPE_CHECKING:  # imported where a file is parsed: a start with every file cached skips it
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import Node
    from ruamel.yaml.reader import ReaderError

MAX_FILE_BYTES = 1_000_000
MAX_YAML_DEPTH = 12
MAX_YAML_EVENTS = 100_000


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str
    fix: str = ""

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.message}" + (f"\n    fix: {self.fix}" if self.fix else "")

    def brief(self) -> str:
        """On one line, without the file: ``line 12: what (fix: …)``."""
        place = f"line {self.line}: " if self.line else ""
        return f"{place}{self.message}" + (f" (fix: {self.fix})" if self.fix else "")


class DialogFileError(ScreenBotError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0))
        super().__init__("\n".join(str(p) for p in self.problems))


def load(path: str | Path, cache: Path | None = None) -> Protocol:
    """Load and check one dialog file; raise :class:`DialogFileError` with every problem.

    With a ``cache`` directory, a file already checked there (same bytes, same screen-bot)
    is not parsed or checked again (``cache.py``); a new or changed one is, then kept.
    """
    path = Path(path)
    raw = _read(path, str(path))
    sha256 = hashlib.sha256(raw).hexdigest()
    if cache is None:
        return _checked(path, raw, sha256)
    from . import cache as checked_files

    protocol = checked_files.recall(cache, path, sha256)
    if protocol is None:
        protocol = _checked(path, raw, sha256)
        checked_files.remember(cache, protocol)
    return protocol


def _checked(path: Path, raw: bytes, sha256: str) -> Protocol:
    from .checks import Checker  # the checks import the rules package; keep loading light

    shown = str(path)
    tree, data = _yaml(raw, shown)
    try:
        spec = DialogFile.model_validate(data)
    except ValidationError as err:
        raise DialogFileError([_schema_problem(shown, tree, e) for e in err.errors()]) from None
    checker = Checker(shown, tree, spec)
    protocol = checker.run(path, sha256)
    if checker.problems or protocol is None:
        raise DialogFileError(checker.problems)
    return protocol


def _read(path: Path, shown: str) -> bytes:
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # opening a named pipe waits for a writer
            raise DialogFileError(
                [Problem(shown, None, "not a regular file", "give the path of a .yaml file")]
            )
        size = status.st_size
        if size > MAX_FILE_BYTES:
            raise DialogFileError(
                [
                    Problem(
                        shown,
                        None,
                        f"the file is {size:,} bytes; a dialog file is at most {MAX_FILE_BYTES:,}",
                        "check that this is a dialog file; split a protocol this large",
                    )
                ]
            )
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise DialogFileError(
            [Problem(shown, None, f"cannot read the file: {err.strerror}", "check the path")]
        ) from None
    if len(raw) > MAX_FILE_BYTES:  # it grew after stat()
        raise DialogFileError(
            [Problem(shown, None, f"the file is over {MAX_FILE_BYTES:,} bytes", "split it")]
        )
    return raw


def _yaml(raw: bytes, shown: str) -> tuple[Node, Any]:
    """The document's node tree (for line numbers) and its data (plain dicts and lists).

    libyaml does the parsing where ``ruamel.yaml.clib`` is installed (about 15 times
    faster: every command and the bot's start load every dialog file); a syntax error
    is parsed again by ruamel's own parser, so its message is the same either way.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1  # where the first byte that is not UTF-8 is
        raise DialogFileError(
            [Problem(shown, line, "the file is not UTF-8 text", "save it as UTF-8")]
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DialogFileError(
            [Problem(shown, line, "the file contains NUL bytes", "save it as plain UTF-8 text")]
        )
    try:
        try:
            return _parsed(text, shown, YAML(typ="safe"))
        except YAMLError:
            return _parsed(text, shown, YAML(typ="safe", pure=True))
    except MarkedYAMLError as err:
        mark = err.problem_mark
        at = mark.line + 1 if mark else None
        lines = text.splitlines()
        fix = None
        if mark and mark.line < len(lines):
            fix = _quoted_start_fix(lines[mark.line], mark.column)
        fix = fix or _yaml_hint(str(err.problem))
        raise DialogFileError([Problem(shown, at, f"YAML syntax: {err.problem}", fix)]) from None
    except ReaderError as err:
        raise DialogFileError([_unreadable_character(text, shown, err)]) from None
    except (YAMLError, RecursionError, MemoryError) as err:
        raise DialogFileError(
            [Problem(shown, None, f"YAML: {type(err).__name__}", "check the file's structure")]
        ) from None


def _parsed(text: str, shown: str, yaml: YAML) -> tuple[Node, Any]:
    from ruamel.yaml.error import YAMLError

    _check_shape(text, shown, yaml)
    tree = yaml.compose(text)
    try:
        data = yaml.constructor.construct_document(tree) if tree is not None else None
    except YAMLError:
        raise
    except Exception:  # noqa: BLE001 - ruamel raises ValueError, KeyError, AssertionError…
        raise DialogFileError([_unbuildable(tree, shown)]) from None
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
    return tree, data


VALUE_KINDS = {
    "timestamp": "a date",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
}


def _unbuildable(tree: Node, shown: str) -> Problem:
    """The first value YAML cannot build into data: an impossible date (2025-02-29), a
    whole number of over 4,300 digits, a wrong '!!' tag (!!int abc, !!omap with a key twice)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    constructor = YAML(typ="safe", pure=True).constructor

    def first_failing(node: Node) -> Node | None:  # the innermost, so children first
        if isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = node.value if isinstance(node, SequenceNode) else []
        for child in children:
            found = first_failing(child)
            if found is not None:
                return found
        try:
            constructor.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 - the failure is what is being looked for
            return node
        return None

    node = first_failing(tree)
    if node is None:  # not expected: every failure is at some node
        return Problem(shown, None, "YAML: a value cannot be read", "check the file's values")
    kind = str(node.tag).rsplit(":", 1)[-1]
    if not isinstance(node, ScalarNode):
        what, fix = (
            f"YAML cannot build this !!{kind}",
            f"remove the '!!{kind}': no dialog file needs it",
        )
    else:
        value = node.value if len(node.value) <= 40 else node.value[:40] + "…"
        what = f"YAML cannot read {value!r} as {VALUE_KINDS.get(kind, kind)}"
        fix = "correct the value" if kind != "timestamp" else "write a real date as YYYY-MM-DD"
        fix += "; to keep it as text, put it in quotes (and remove any '!!' tag before it)"
    return Problem(shown, node.start_mark.line + 1, what, fix)


def _unreadable_character(text: str, shown: str, err: ReaderError) -> Problem:
    """A character YAML does not allow (a control character such as U+000B), at its line."""
    before = text[: err.position]
    line = before.count("\n") + 1
    column = err.position - (before.rfind("\n") + 1) + 1
    return Problem(
        shown,
        line,
        f"the character U+{err.character:04X} (column {column}) is not allowed in YAML",
        "delete it or retype the text around it: it is invisible in most editors and often "
        "comes with text pasted from a PDF or a word processor",
    )


def _check_shape(text: str, shown: str, yaml: YAML) -> None:
    """Refuse aliases, deep nesting and huge documents from the event stream (no recursion)."""
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

    depth = 0
    for events, event in enumerate(yaml.parse(text), start=1):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, AliasEvent):
            raise DialogFileError(
                [
                    Problem(
                        shown,
                        line,
                        "YAML aliases (*name) are not allowed in a dialog file",
                        "write the value out where it is used",
                    )
                ]
            )
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise DialogFileError(
                    [
                        Problem(
                            shown,
                            line,
                            f"nested more than {MAX_YAML_DEPTH} levels deep",
                            "a dialog file needs only a few levels; check the indentation",
                        )
                    ]
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        if events > MAX_YAML_EVENTS:
            raise DialogFileError(
                [Problem(shown, line, "the document is too large", "split the protocol")]
            )


# a quoted scalar after a key, a list dash or a flow mapping's '{' or ',', then only spaces
QUOTED_VALUE = re.compile(
    r"""(?:(?P<key>[\w-]+):|[-{,])\s+(?P<value>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")\s*$"""
)


# the same from the line's start (a block key or list item), matched whole: linear
QUOTED_LINE = re.compile(
    r"""\s*(?:-\s+)?(?:(?P<key>[\w-]+):\s+)?(?P<value>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")\s*"""
)
MAX_HINT_SCAN = 400  # characters before a YAML error searched for a quoted value elsewhere


def _quoted_start_fix(line: str, column: int) -> str | None:
    """The fix for ``applies_when: 'x' in prior_therapies``: YAML reads the quoted choice as
    the whole value and cannot place what follows it (at ``column``); None for other errors."""
    # elsewhere on the line (a flow mapping), its end only: the pattern retried from each
    # character of a long line would cost its length squared (a 60 KB line: 48 s)
    quoted = QUOTED_LINE.fullmatch(line[:column]) or QUOTED_VALUE.search(
        " " + line[max(0, column - MAX_HINT_SCAN) : column]
    )
    rest = line[column:].strip()
    if quoted is None or not rest or rest.startswith("#"):
        return None
    flow = "{" in line[:column]  # the rest runs on to the mapping's other keys
    expression = f"{quoted['value']} {'…' if flow else rest}"
    if '"' in expression:
        expression = "'" + expression.replace("'", "''") + "'"
    else:
        expression = f'"{expression}"'
    example = f"{quoted['key']}: {expression}" if quoted["key"] else expression
    return f"put the whole expression in quotes: {example}"


def _yaml_hint(problem: str) -> str:
    indentation = (
        "mapping values are not allowed",
        "could not find expected ':'",
        "did not find expected key",
        "expected <block end>",
        "did not find expected '-' indicator",
    )
    if any(words in problem for words in indentation):
        return (
            "check the indentation: keys of one mapping start in the same column, list items "
            "('- ') are indented under their key, and a value with ': ' in it needs quotes"
        )
    tag = re.search(r"constructor for the tag '(?:tag:yaml\.org,2002:)?([^']*)'", problem)
    if tag:
        return (
            f"remove the tag '!!{tag[1]}': a dialog file holds only text, numbers, lists and keys"
        )
    if "tab" in problem or "'\\t'" in problem:  # ruamel: "found character '\\t' that …"
        return "indent with spaces, never tabs"
    return "fix the indentation or quoting on that line"


def line_of(tree: Node, loc: Iterable[Any]) -> int | None:
    """The 1-based line of what is at ``loc`` (keys and list indices) in the node tree: the
    line of the deepest key or item found, or the document's first line."""
    return _node_at(tree, loc)[1]


def _written(tree: Node, loc: Iterable[Any]) -> str:
    """The text of the value at ``loc`` as the file writes it ('1.10', not 1.1)."""
    from ruamel.yaml.nodes import ScalarNode

    node = _node_at(tree, loc)[0]
    return str(node.value) if isinstance(node, ScalarNode) else "…"


def _node_at(tree: Node, loc: Iterable[Any]) -> tuple[Node, int]:
    """The deepest node found at ``loc``, and the line of its key or item."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    line = tree.start_mark.line + 1
    node = tree
    for key in loc:
        if isinstance(node, MappingNode):
            found = [(k, v) for k, v in node.value if k.value == str(key)]
            if not found:
                break
            key_node, node = found[0]
        elif isinstance(node, SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = key_node = node.value[key]
        else:
            break
        line = key_node.start_mark.line + 1
    return node, line


REMOVED = {
    "time_unit": "time_unit was removed in format 2: ask the date itself (type: date) and "
    "write the window in the rule, e.g. screening_date >= transplant_date + months(2)",
}


def _schema_problem(file: str, data: Any, error: Any) -> Problem:
    loc = tuple(error["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    kind = error["type"]
    if kind == "missing":
        fix = f"add '{loc[-1]}:'"
    elif kind == "extra_forbidden":
        fix = REMOVED.get(str(loc[-1]), f"remove '{loc[-1]}' or correct its spelling")
    elif kind == "literal_error":
        fix = f"use one of {error['ctx']['expected']}"
    elif kind == "finite_number":
        fix = "write an ordinary number: not .nan or .inf, nor one too large to store (1e400)"
    elif kind == FIXED:
        fix = error["ctx"]["fix"]
    elif kind == "string_type" and isinstance(error["input"], bytes):
        fix = "remove the '!!binary' tag and write the text itself"
    elif kind == "float_type" and isinstance(error["input"], bool):
        fix = "write the number meant: true and false are yes/no answers, not numbers"
    elif kind == "string_type" and isinstance(error["input"], bool | int | float):
        written = f'"{_written(data, loc)}"'
        in_list = isinstance(loc[-1], int)
        example = f"{written} for that item of the list" if in_list else f"{loc[-1]}: {written}"
        fix = (
            f"put the value in quotes as written, e.g. {example}: "
            "unquoted, YAML reads it as a number (or true/false)"
        )
    elif kind == "string_pattern_mismatch":
        fix = "use lower-case letters, digits and _ (criterion ids: letters and digits, e.g. I8c)"
    else:
        fix = "correct the value"
    message = error["msg"].removeprefix("Value error, ")
    return Problem(file, line_of(data, loc), f"{where}: {message}", fix)


def iter_dialog_files(directory: Path) -> Iterator[Path]:
    yield from sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
