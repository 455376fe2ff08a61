"""Load a dialog file: read it within limits, parse its YAML, validate it, check it.

Every problem is reported with the file, the line and what to change; loading either
returns a :class:`Protocol` or raises :class:`DialogFileError` listing all problems,
sorted by line. A hostile file (huge, deeply nested, full of aliases) is refused before
it is built into objects.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import ScreenBotError
from ..words import printable
from .model import Protocol
from .schema import FIXED, NAME, PROTOCOL_ID, SPELLINGS, SURROGATE_FIX, DialogFile

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

    def one_line(self) -> str:
        """On one line, with the file: ``FILE:12: what (fix: …)``."""
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.message}" + (f" (fix: {self.fix})" if self.fix else "")


class DialogFileError(ScreenBotError):
    """``protocol_id``: the id the file declares, when its YAML could be read that far;
    ``variables``: the question variables it declares then (None: its YAML was not read),
    so that a screening that leaves it out knows them as its protocol's."""

    def __init__(
        self,
        problems: list[Problem],
        protocol_id: str | None = None,
        variables: frozenset[str] | None = None,
    ) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0))
        self.protocol_id = protocol_id
        self.variables = variables
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
    declared = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        spec = DialogFile.model_validate(data)
    except ValidationError as err:
        problems = [_schema_problem(shown, tree, e) for e in err.errors()]
        raise DialogFileError(problems, declared, declared_variables(data)) from None
    checker = Checker(shown, tree, spec)
    protocol = checker.run(path, sha256)
    if checker.problems or protocol is None:
        raise DialogFileError(checker.problems, declared, declared_variables(data))
    return protocol


def declared_variables(data: dict[str, Any]) -> frozenset[str]:
    """The ``variable`` of each entry of a file's ``questions``, read from its YAML as it is
    (the file may be broken anywhere: whatever is not a name is passed over)."""
    questions = data.get("questions")
    entries = questions if isinstance(questions, list) else []
    return frozenset(
        q["variable"] for q in entries if isinstance(q, dict) and isinstance(q.get("variable"), str)
    )


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
    # An anchor (&name) does nothing without an alias (refused above), so one given twice is
    # harmless: not ruamel's multi-line Python warning, which named its own source file.
    # (libyaml refuses it: the pure parser, used then, reads it.)
    yaml.composer.warn_double_anchors = False
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


UNBUILDABLE_FIXES = {
    "timestamp": "write a real date as YYYY-MM-DD",
    "int": "write the number meant: YAML reads whole numbers of at most 4,300 digits",
    "float": "write the number meant, e.g. 0.5",
    "bool": "write true or false",
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
        fix = UNBUILDABLE_FIXES.get(kind, f"write a plain {VALUE_KINDS.get(kind, 'value')}")
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
                [
                    Problem(
                        shown,
                        line,
                        f"the document has more than {MAX_YAML_EVENTS:,} YAML events (a key or "
                        "a value is one, a list or a mapping two); a dialog file has at most "
                        f"{MAX_YAML_EVENTS:,}",
                        f"split the protocol into two files ({LIMITS})",
                    )
                ]
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
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        return (
            f"remove the tag '{_tag_as_written(tag[1])}': a dialog file holds only text, "
            "numbers, lists and keys"
        )
    if "tab" in problem or "'\\t'" in problem:  # ruamel: "found character '\\t' that …"
        return "indent with spaces, never tabs"
    return "fix the indentation or quoting on that line"


YAML_TAGS = "tag:yaml.org,2002:"


def _tag_as_written(tag: str) -> str:
    """A YAML tag as a file writes it: '!!python/name:x' for YAML's own, '!foo' for a local
    one, '!<tag:…>' for any other."""
    if tag.startswith(YAML_TAGS):
        return "!!" + tag.removeprefix(YAML_TAGS)
    return tag if tag.startswith("!") else f"!<{tag}>"


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


RULE_FIELDS = ("met_when", "applies_when", "when")
LIMITS = "README, Dialog files: Limits"
# what a list or mapping of the file holds (many, one), and what to do with too many
ITEMS = {
    "questions": ("questions", "question", "split the protocol into two files"),
    "criteria": ("criteria", "criterion", "split the protocol into two files"),
    "choices": ("choices", "choice", "join the rare ones into one, e.g. 'other'"),
    "synonyms": ("synonyms", "synonym", "keep the words typed most often"),
    "aliases": ("aliases", "alias", "keep the names used most often"),
    "also_accepts": ("other units", "unit", "keep the units used in practice"),
    "checklists": ("checklists", "checklist", "ask some questions on their own"),
    "items": ("items", "item", "split the checklist in two"),
    "tables": ("tables", "table", "join tables that give the same value"),
    "rows": ("rows", "row", "join bands that give the same value"),
    "derived": ("derived values", "derived value", "remove those no rule reads"),
    "calculators": ("calculators", "calculator", "keep the estimates the protocol names"),
}


# the key that names each item of a list, so that a problem inside it says which one
NAMING_KEYS = {
    "criteria": "id",
    "questions": "variable",
    "derived": "name",
    "tables": "name",
    "checklists": "name",
}


def _schema_problem(file: str, data: Any, error: Any) -> Problem:
    loc = tuple(error["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    if name := _item_name(data, loc):
        where += f" ({name})"  # criteria.0.source (K-E1): the id, where a file has many
    message = error["msg"].removeprefix("Value error, ")
    return Problem(file, line_of(data, loc), f"{where}: {message}", _schema_fix(data, error))


def _item_name(tree: Node, loc: tuple[Any, ...]) -> str | None:
    """The id or name of the criterion, question, … a problem at ``loc`` lies in, as the
    file writes it; None when it is not written (or is what the problem is about)."""
    from ruamel.yaml.nodes import ScalarNode

    if len(loc) < 2 or loc[0] not in NAMING_KEYS or not isinstance(loc[1], int):
        return None
    key = NAMING_KEYS[loc[0]]
    if loc[2:3] == (key,):
        return None
    node = _node_at(tree, (*loc[:2], key))[0]  # a scalar only where the path is written
    name = " ".join(str(node.value).split()) if isinstance(node, ScalarNode) else ""
    if not name:
        return None
    return printable(name if len(name) <= 40 else name[:39] + "…")


def _schema_fix(data: Any, error: Any) -> str:
    """What to change for one schema problem: the problem's own fix where it carries one
    (``refusal`` in schema.py), else one chosen by its kind and what the file wrote."""
    loc = tuple(error["loc"])
    kind, given, ctx = error["type"], error["input"], error.get("ctx") or {}
    keys = [p for p in loc if isinstance(p, str)]
    if len(keys) > 1 and keys[-1] in ("bool", "list[str]"):
        keys.pop()  # a union's member (judgment: bool | list[str]) named after its key
    key = keys[-1] if keys else ""
    many, one, advice = ITEMS.get(key, ("items", "item", ""))
    if kind == FIXED:
        return str(ctx["fix"])
    if kind == "missing":
        return f"add '{loc[-1]}:'"
    if kind == "extra_forbidden":
        return REMOVED.get(str(loc[-1]), f"remove '{loc[-1]}' or correct its spelling")
    if kind == "literal_error":
        return f"use one of {ctx['expected']}"
    if kind == "finite_number":
        return "write an ordinary number: not .nan or .inf, nor one too large to store (1e400)"
    if given is None and kind.endswith("_type"):
        if isinstance(loc[-1], int):
            return "write the item after its '- ' (it is empty), or remove the line"
        if key in ITEMS:
            return f"list the {many} under '{key}:', one '- ' item each (it is empty)"
        return f"write the value after '{key}:' (it is empty)"
    if kind in ("string_type", "float_type", "bool_type", "list_type", "dict_type"):
        return _type_fix(data, loc, key, kind, given)
    if kind in ("model_type", "model_attributes_type"):
        return "write it as keys and values, 'key: value' a line (see README, Dialog files)"
    if kind == "invalid_key":
        return "write each key as a name, e.g. 'title:'; remove any other key"
    if kind == "string_pattern_mismatch":
        rule, example = SPELLINGS[ctx["pattern"]]
        return f"write {rule}, e.g. '{_respelled(str(given), ctx['pattern']) or example}'"
    if kind == "string_too_long":
        return f"shorten it to at most {ctx['max_length']:,} characters ({LIMITS})"
    if kind == "string_too_short":
        return "write the text (it is empty)"
    if kind == "too_long":
        return f"keep at most {ctx['max_length']:,} {many} ({LIMITS})" + (
            f": {advice}" if advice else ""
        )
    if kind == "too_short":
        if key == "items":
            return "give the checklist at least 2 items (ask a single question on its own)"
        return f"add a {one} (at least {ctx['min_length']})"
    if kind == "greater_than":
        fix = f"write a number greater than {ctx['gt']:g}"
        if key == "divide_by":
            fix += (
                ": what a value in the other unit is divided by to give the question's unit, "
                "e.g. unit: µmol/L, divide_by: 88.4 for a creatinine in mg/dL"
            )
        return fix
    if kind == "string_unicode":
        return SURROGATE_FIX
    return f"write what '{key}' takes: see the example in README, Dialog files"


def _type_fix(data: Any, loc: tuple[Any, ...], key: str, kind: str, given: Any) -> str:
    """The fix for a value of another type than its key takes, by what was given."""
    if kind == "string_type":
        if isinstance(given, bytes):
            return "remove the '!!binary' tag and write the text itself"
        if not isinstance(given, bool | int | float | date):
            return f"write one text, not {_read_as(given)} (a text with ': ' in it needs quotes)"
        written = _written(data, loc)
        if key in RULE_FIELDS:
            return (
                f"write a rule on the answers, e.g. {key}: 14 <= age <= 65 (unquoted, YAML "
                f"reads {written} as {_read_as(given)}; quoted, it would be a rule that reads "
                "no answer, which checks nothing)"
            )
        in_list = isinstance(loc[-1], int)
        example = f'"{written}" for that item of the list' if in_list else f'{key}: "{written}"'
        return (
            f"put the value in quotes as written, e.g. {example}: unquoted, YAML reads it as "
            f"{_read_as(given)}"
        )
    if kind == "float_type":
        if isinstance(given, bool):
            return "write the number meant: true and false are yes/no answers, not numbers"
        return "write a plain number, e.g. 0.5, without quotes or a unit" + (
            "" if isinstance(given, str) else f" (YAML reads this as {_read_as(given)})"
        )
    if kind == "bool_type":
        return "write true or false"
    if kind == "list_type":
        return f"write {key or 'it'} as a list: one '- ' item a line under '{key}:'"
    return f"write {key or 'it'} as keys and values: one 'key: value' a line under '{key}:'"


def _read_as(value: Any) -> str:
    """What YAML made of a value, in a fix's words."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, date):  # a datetime too
        return "a date"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "keys and values"
    return "a set" if isinstance(value, set | frozenset) else f"a {type(value).__name__}"


def _respelled(value: str, pattern: str) -> str | None:
    """``value`` with the usual slips repaired (upper case in a lower-case name, a space,
    '.', '-' or '_' where the pattern takes another), if that is enough to match."""
    separator = {NAME: "_", PROTOCOL_ID: "-"}.get(pattern)
    if separator is None:  # a criterion id takes letters of either case, '_', '.' and '-'
        candidate = value.strip().replace(" ", "-")
    else:
        slips = str.maketrans({c: separator for c in " .-_"})
        candidate = value.strip().lower().translate(slips)
    return candidate if candidate != value and re.fullmatch(pattern, candidate) else None


def iter_dialog_files(directory: Path) -> Iterator[Path]:
    """The YAML files of ``directory``, but an editor's lock file (Emacs writes ``.#x.yaml``,
    a link to nothing, while x.yaml is edited): not a dialog file, never reported broken."""
    yield from sorted(
        p
        for p in directory.glob("*.y*ml")
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".#")
    )


def distinct(files: Iterable[Path]) -> list[Path]:
    """``files`` without a second path to a file already there (a file named twice, a
    directory listed twice, a link to a file beside it): one file is never two protocols."""
    seen: set[str] = set()
    kept: list[Path] = []
    for file in files:
        real = os.path.realpath(file)  # (a link loop gives a path, not an error)
        if real not in seen:
            seen.add(real)
            kept.append(file)
    return kept
