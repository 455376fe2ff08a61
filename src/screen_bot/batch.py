"""Screen many patients from a file: one JSON document, JSON Lines, or CSV with a header.

Rows are read and screened one at a time, so memory does not grow with the file. Input
is read as bytes and checked before it is trusted: a UTF-16 or binary file is refused as
a whole; a line longer than :data:`MAX_LINE`, bytes that are not UTF-8, JSON nested too
deep, a number too long to be one, or a key given twice make that row bad. A bad row is
reported with its row number (and variable); the other rows are still screened.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import itertools
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

import orjson

from .answers import AnswerError, Checker, check_value, checker, is_unknown_text, parse_text
from .errors import BadInput, BadReferral
from .protocol import Protocol
from .protocol.model import name_key
from .protocol.schema import Question
from .protocol.sets import LeftOut, ProtocolSet
from .referrals import check_referral
from .row_typing import Typer, row_typer
from .words import printable

Protocols = Protocol | ProtocolSet  # one protocol's variables, or a set's (``all``)
InputFormat = Literal["auto", "json", "jsonl", "csv"]
Kind = Literal["json", "jsonl", "csv"]
REFERRAL_KEY = "referral"
SCREENED_ON_KEY = "screened_on"
ROW_KEYS = frozenset({REFERRAL_KEY, SCREENED_ON_KEY})  # a row's keys besides its answers
MAX_LINE = 1 << 20  # bytes of one line (one JSON Lines row, one CSV line)
MAX_CELL_LINES = 20  # further lines a quoted CSV cell may go on over (a cell's line breaks)
MAX_CELL_BYTES = 64 << 10  # and their bytes: a stray quote never takes more
MAX_DOCUMENT = 64 << 20  # bytes of a whole .json document; larger files: use JSON Lines
TOO_LONG = "\x00too long\x00"  # stands for a line longer than MAX_LINE (NUL is never text)
_KEY = re.compile(r'"\s*:')
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


@dataclass
class Row:
    number: int  # 1-based: the object's line in JSON Lines, the data row in CSV; 0: CSV header
    referral: str | None = None
    # the row's screened_on, else the run's day: "today" is taken once per run, so a file
    # screened across midnight (UTC) is screened on one day, as on the DuckDB engine
    screened_on: date = field(kw_only=True)
    answers: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the file, said before this row


def detect_format(path: Path) -> InputFormat:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):  # the suffixes the DuckDB engine reads as Parquet
        raise BadInput("Parquet is read by --engine duckdb only")
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "json"


class Unit(NamedTuple):
    """One row as read, before typing: a JSON Lines line, a JSON object, or CSV cells (a
    named tuple: one is made for every row, and a tuple is made in a third of the time)."""

    number: int
    payload: Any  # str (a JSON Lines line), a parsed JSON value, or list[str] (CSV cells)
    problems: tuple[str, ...] = ()  # why it cannot be read (a bad row)
    notes: tuple[str, ...] = ()  # about the file, said before this row (not a problem)


@dataclass(frozen=True)
class Units:
    """A file's rows as read: the CSV header (if any) and an iterator of units."""

    kind: Kind
    header: tuple[str, ...]
    units: Iterator[Unit]


def read_rows(
    raw: IO[bytes], protocol: Protocols, input_format: InputFormat, day: date
) -> Iterator[Row]:
    """The rows of a byte stream (a file opened "rb", or stdin's buffer), typed; ``day``
    is the screening date of a row without one (the run's today)."""
    found = read_units(raw, protocol, input_format)
    for unit in found.units:
        yield typed(unit, found.kind, found.header, protocol, day)


def read_units(raw: IO[bytes], protocol: Protocols, input_format: InputFormat) -> Units:
    """Split the input into rows (cheap: no typing yet); raise BadInput for a whole file."""
    if not hasattr(raw, "peek"):  # e.g. a BytesIO: read through a buffer that can peek
        raw = io.BufferedReader(raw)  # type: ignore[type-var]
    _refuse_other_encodings(raw)
    if input_format == "json":
        return Units("json", (), _json_units(raw))
    if input_format == "csv":
        records = _csv_records(input_lines(raw))
        header = _csv_header(records)
        units = _csv_units(records, header, protocol) if header is not None else iter(())
        return Units("csv", header or (), units)
    return Units("jsonl", (), _jsonl_units(input_lines(raw)))


def typed(unit: Unit, kind: Kind, header: tuple[str, ...], protocol: Protocols, day: date) -> Row:
    """The unit as a typed row (or a bad row with its problems)."""
    if unit.problems:
        return Row(unit.number, errors=list(unit.problems), notes=list(unit.notes), screened_on=day)
    if kind == "csv":
        row = _csv_row(unit.number, header, unit.payload, protocol, day)
        row.notes += unit.notes
        return row
    if kind == "jsonl":
        record = orjson_object(unit.payload)  # read once, whichever way the row goes on
        fast = None if record is None else typed_fast(unit.number, record, protocol, day)
        if fast is not None:
            return fast
        if record is None or not _flat(record):
            record, problem = parse_with_json(unit.payload)
            if problem is not None:
                return Row(unit.number, errors=[problem], screened_on=day)
        return record_row(unit.number, record, protocol, day)
    return record_row(unit.number, unit.payload, protocol, day)


def _refuse_other_encodings(raw: IO[bytes]) -> None:
    head = raw.peek(4096)[:4096]  # type: ignore[attr-defined]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BadInput("the file is UTF-16 (or UTF-32) text: save it as UTF-8 (CSV UTF-8)")
    if b"\x00" in head:
        raise BadInput("this is not a text file (it holds NUL bytes): give JSON, JSON Lines or CSV")


def input_lines(raw: IO[bytes], first: bool = True) -> Iterator[str]:
    """Decoded lines, each at most MAX_LINE bytes (a longer one is TOO_LONG); a UTF-8
    byte-order mark on the ``first`` line is dropped; bytes that are not UTF-8 survive as
    surrogates (bad rows)."""
    while line := raw.readline(MAX_LINE + 1):
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while (rest := raw.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass
            first = False  # a mark on the line after is not at the start of the input
            yield TOO_LONG + "\n"
            continue
        if first:
            line, first = line.removeprefix(codecs.BOM_UTF8), False
        yield line.decode("utf-8", "surrogateescape")


def _problems(problem: str | None) -> tuple[str, ...]:
    return () if problem is None else (problem,)


def unreadable(text: str) -> str | None:
    """Why a line (or cell) cannot be read as text, or None."""
    # (looking for one character is a tenth of the time of looking for TOO_LONG in a line)
    too_long = "\x00" in text and TOO_LONG in text
    if text.isascii():
        return "the line is longer than 1 MiB" if too_long else None
    if too_long:
        return "the line is longer than 1 MiB"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not UTF-8 text (save the file as UTF-8)"
    return None


def jsonl_blocks(raw: IO[bytes], size: int | Callable[[], int]) -> Iterator[bytes]:
    """The input in blocks of whole lines, about ``size`` bytes each, or ``size()`` bytes
    for each next block (raise BadInput for a whole file as :func:`read_units` does).
    Reading a block's lines with :func:`input_lines` gives the lines reading the whole input
    would: a line cut at MAX_LINE + 1 bytes is still too long, and a too-long line's rest is
    skipped here."""
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw)  # type: ignore[type-var]
    _refuse_other_encodings(raw)
    while block := raw.read(size if isinstance(size, int) else size()):
        if not block.endswith(b"\n"):
            tail = raw.readline(MAX_LINE + 1)
            if len(tail) > MAX_LINE and not tail.endswith(b"\n"):
                while (rest := raw.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                    pass
                tail += b"\n"
            block += tail
        yield block


def jsonl_block_units(block: bytes, first_number: int, first: bool) -> Iterator[Unit]:
    """The rows of one of :func:`jsonl_blocks`'s blocks, numbered from ``first_number``."""
    return _jsonl_units(input_lines(io.BufferedReader(io.BytesIO(block)), first), first_number)


def _jsonl_units(lines: Iterable[str], start: int = 1) -> Iterator[Unit]:
    for number, line in enumerate(lines, start=start):
        if line and not line.isspace():  # (line.strip(), without copying the line)
            problem = unreadable(line)
            yield Unit(number, line) if problem is None else Unit(number, line, (problem,))


def typed_fast(number: int, record: dict[str, Any], protocol: Protocols, day: date) -> Row | None:
    """The row of a JSON Lines line that :func:`orjson_object` read, when the protocol's row
    typing takes it (see :mod:`.row_typing`: then orjson's reading is json's); else None,
    and the line is read as :func:`typed` reads any line. The same row: a test."""
    referral, screened_on = record.get(REFERRAL_KEY), record.get(SCREENED_ON_KEY)
    if not (referral is None or type(referral) is str):
        return None
    if not (screened_on is None or type(screened_on) is str):
        return None
    typer = _row_typer(protocol)
    if typer is None:
        return None
    row = Row(number, screened_on=day)
    if screened_on is not None:
        _set_screened_on(row, screened_on)
    answers = typer(record, row.screened_on)
    if answers is None:
        return None
    row.answers = answers
    if referral is not None:
        _set_referral(row, referral)
    return row


def _parse_json(text: str) -> tuple[Any, str | None]:
    record = orjson_object(text)
    if record is not None and _flat(record):
        return record, None
    return parse_with_json(text)


def parse_with_json(text: str) -> tuple[Any, str | None]:
    """The JSON value of ``text``, or why it is not valid: the reference reading."""
    try:
        record = json.loads(text)
        if (
            isinstance(record, dict | list)
            and text.count(":") > (keys := _keys(record))  # else each colon is a key's
            and len(_KEY.findall(text)) > keys
        ):
            record = json.loads(text, object_pairs_hook=_marked)  # a key may be given twice
        if isinstance(record, _Twice):
            raise ValueError(record.problem)
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    except RecursionError:
        return None, "not valid JSON here (nested too deep)"
    except ValueError as err:  # a key given twice; an integer too long to read
        if "integer string conversion" in str(err):
            return None, "not valid JSON here (a number too long to be an answer)"
        return None, f"not valid JSON here ({str(err)[:80]})"
    return record, None


_FLAT = frozenset({str, int, bool, float, type(None), list})
_BIG = float(2**63)  # orjson reads an integer past 64 bits as a float; json as an int


def orjson_object(text: str) -> dict[str, Any] | None:
    """The line's object as orjson reads it, when it is an object with no key given twice (a
    colon per key is proof), else None. Whether json.loads reads it alike is
    :func:`_flat`'s question (or :mod:`.row_typing`'s, for a row its typing takes)."""
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(record) is not dict or text.count(":") > len(record):
        return None
    return record


def _flat(record: dict[str, Any]) -> bool:
    """Whether json.loads reads the text of :func:`orjson_object`'s ``record`` alike.

    Only a flat object qualifies: scalar values (and lists of strings), and no float that
    could have been an integer too long for orjson. Anything else, valid or not, is read
    again by :mod:`json`, so what is accepted and every message about a bad row stay json's.
    """
    kinds = set(map(type, record.values()))
    if not kinds <= _FLAT:
        return False
    values = record.values()
    if float in kinds and [v for v in values if type(v) is float and not -_BIG < v < _BIG]:
        return False
    return list not in kinds or all(type(s) is str for v in values if type(v) is list for s in v)


class _Twice(dict[str, Any]):
    """A JSON object in which a key is given twice (``problem`` says which)."""

    problem = ""


def _marked(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object of ``pairs``; a :class:`_Twice` when a key is given twice, so that in a
    list of objects only that object's row is bad."""
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        found = _Twice(found)
        found.problem = f"the key {twice!r} is given twice"
    return found


def _keys(value: Any) -> int:
    """How many keys the objects in ``value`` hold, at any depth."""
    if isinstance(value, dict):
        return len(value) + sum(map(_keys, value.values()))
    if isinstance(value, list):
        return sum(map(_keys, value))
    return 0


def _json_units(raw: IO[bytes]) -> Iterator[Unit]:
    data = raw.read(MAX_DOCUMENT + 1)
    if len(data) > MAX_DOCUMENT:
        raise BadInput(f"a JSON document over {MAX_DOCUMENT >> 20} MB: give JSON Lines (.jsonl)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise BadInput(f"not UTF-8 text (at line {line}): save the file as UTF-8") from None
    document, problem = _parse_json(text)
    if problem is not None:
        if text.lstrip().startswith("{") and "\n" in text.strip():  # JSON Lines in a .json file
            for unit in _jsonl_units(text.split("\n")):  # not splitlines(): U+2028 is text
                record, bad = _parse_json(unit.payload) if not unit.problems else (None, None)
                yield Unit(unit.number, record, unit.problems or _problems(bad))
            return
        yield Unit(1, None, (problem,))
        return
    records = document if isinstance(document, list) else [document]
    for number, record in enumerate(records, start=1):
        if isinstance(record, _Twice):
            yield Unit(number, None, (f"not valid JSON here ({record.problem})",))
        else:
            yield Unit(number, record)


def record_row(number: int, record: Any, protocol: Protocols, day: date) -> Row:
    """A JSON object of answers as a typed row (or a bad row with its problems); ``day``
    is its screening date unless it gives one."""
    row = Row(number, screened_on=day)
    if not isinstance(record, dict):
        row.errors.append("expected a JSON object of answers")
        return row
    _set_screened_on(row, record.get(SCREENED_ON_KEY))
    typer = _row_typer(protocol)
    if typer is not None and (answers := typer(record, row.screened_on)) is not None:
        row.answers = answers  # what the loop below gives (a test holds them equal)
        _set_referral(row, record.get(REFERRAL_KEY))
        return row
    return typed_by_each_key(row, record, protocol)


def typed_by_each_key(row: Row, record: dict[str, Any], protocol: Protocols) -> Row:
    """Type the record's answers key by key into ``row``, whose screening date is set: the
    general reading, and the reference of :mod:`.row_typing`'s fast one."""
    checkers, answers, day = _checkers(protocol), row.answers, row.screened_on
    for key, value in record.items():
        check = checkers.get(key)
        if check is not None:
            if value is None:
                answers[key] = None
                continue
            try:
                answers[key] = check(value, day)
            except AnswerError as err:
                row.errors.append(f"{key}: {_shown(value)}: {err}")
        elif key == REFERRAL_KEY:
            _set_referral(row, value)
        elif key != SCREENED_ON_KEY and (unknown := _unknown_key(key, protocol)):
            row.errors.append(unknown)
    return row


def _checkers(protocol: Protocols) -> dict[str, Checker]:
    """Each question's value checker, made once per protocol (kept on it)."""
    found = protocol.__dict__.get("_batch_checkers")
    if found is None:
        found = protocol.__dict__["_batch_checkers"] = {
            v: checker(q) for v, q in protocol.questions.items()
        }
    return found


def _row_typer(protocol: Protocols) -> Typer | None:
    """The protocol's generated row typing, made once (kept on it); None when a question
    bears the name of a key of its own (``referral``, ``screened_on``)."""
    if "_row_typer" not in protocol.__dict__:
        clash = ROW_KEYS & protocol.questions.keys()
        protocol.__dict__["_row_typer"] = None if clash else row_typer(protocol.questions, ROW_KEYS)
    found: Typer | None = protocol.__dict__["_row_typer"]
    return found


def _shown(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**20:
        return "a number too long to be an answer"
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _set_screened_on(row: Row, value: Any) -> None:
    """A given screening date (None: the run's day stays). In JSON "" is a bad value, as
    for every key; a CSV caller passes an empty cell as None."""
    if value is None:
        return
    day = given_day(value)
    if day is not None:
        row.screened_on = day
        return
    today = " (for today leave the key out, or null)" if value == "" else ""
    row.errors.append(f"{SCREENED_ON_KEY}: {_shown(value)}: expected a date as YYYY-MM-DD{today}")


def given_day(value: Any) -> date | None:
    """A given screening date, or None when ``value`` is not one (a bad value)."""
    if not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return None  # fromisoformat also reads 2026-W03-4 and 20260115
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def csv_header(raw: IO[bytes]) -> tuple[str, ...] | None:
    """The CSV header row of a byte stream (None: no rows); raise BadInput as the Python
    engine refuses a file for its header (the DuckDB engine reads it here too)."""
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw)  # type: ignore[type-var]
    _refuse_other_encodings(raw)
    return _csv_header(_csv_records(input_lines(raw)))


class _QuoteLeftOpen(Exception):
    """The csv reader asked for the next line before its record ended."""


class _RecordLines:
    """Lines for csv.reader, a record each: when the reader asks for another line in the
    middle of a record (a quote left open), it gets :class:`_QuoteLeftOpen` instead.
    ``number`` is the line's (0: the first); lines taken ahead can be put back."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines: Iterator[tuple[int, str]] = enumerate(lines)
        self.taken: deque[tuple[int, str]] = deque()  # lines taken ahead and put back
        self.number = -1
        self.line = ""
        self.in_record = False

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        if self.in_record:
            self.in_record = False
            raise _QuoteLeftOpen
        self.number, self.line = self.taken.popleft() if self.taken else next(self.lines)
        self.in_record = True
        return self.line

    def take(self, count: int) -> list[tuple[int, str]]:
        ahead = [self.taken.popleft() for _ in range(min(count, len(self.taken)))]
        return ahead + list(itertools.islice(self.lines, count - len(ahead)))

    def put_back(self, taken: list[tuple[int, str]]) -> None:
        self.taken.extendleft(reversed(taken))


def _csv_records(lines: Iterable[str]) -> Iterator[tuple[int, list[str] | str]]:
    """Each record's line number (0: the header's) and cells, or why it is not a CSV
    record. A record is one line, unless a quoted cell holds line breaks (RFC 4180 2.6, as
    spreadsheets write a cell's Alt+Enter): see :func:`_spanning_record`. Otherwise a quote
    left open makes its line bad and the next line is read as the next record, so a stray
    quote never swallows the rows after it."""
    csv.field_size_limit(MAX_LINE)
    source = _RecordLines(lines)
    reader = csv.reader(source)
    width = 0  # the header's cells; the header itself is one line
    while True:
        try:
            found: list[str] | str = next(reader)
        except StopIteration:
            return
        except _QuoteLeftOpen:
            found = _spanning_record(source, width)
        except csv.Error as err:
            found = f"not valid CSV ({str(err)[:80]})"
        source.in_record = False
        if source.number == 0 and isinstance(found, list):
            width = len(found)
        yield source.number, found


def _spanning_record(source: _RecordLines, width: int) -> list[str] | str:
    """The cells of the record whose quoted cell, opened on ``source.line``, goes on over
    the next lines: only when its closing quote comes within MAX_CELL_LINES further lines
    and MAX_CELL_BYTES, the record is well-formed CSV and has no more cells than the
    header (``width``). Else why the opening line alone is bad; the lines after it are put
    back, to be read as records of their own."""
    opening = source.line
    further = source.take(MAX_CELL_LINES) if width else []
    used = size = 0

    def record_lines() -> Iterator[str]:
        nonlocal used, size
        yield opening
        for _, line in further:
            size += len(line.encode("utf-8", "surrogateescape"))
            if TOO_LONG in line or size > MAX_CELL_BYTES:
                return
            used += 1
            yield line

    try:
        cells = next(csv.reader(record_lines(), strict=True))
    except (csv.Error, StopIteration):
        cells = None
    if cells is None or len(cells) > width:
        source.put_back(further)
        column = len(next(csv.reader([opening])))
        return f"not valid CSV (a quote opened in column {column} is not closed on its line)"
    source.put_back(further[used:])
    return cells


def _csv_header(records: Iterator[tuple[int, list[str] | str]]) -> tuple[str, ...] | None:
    _, header = next(records, (0, None))
    if isinstance(header, str):
        raise BadInput(f"the header row cannot be read: {header}")
    if header is None:
        return None
    problem = next(filter(None, map(unreadable, header)), None)
    if problem is not None:
        raise BadInput(f"the header row cannot be read: {problem}")
    names = tuple(h.strip() for h in header)
    twice = next((n for i, n in enumerate(names) if n and n in names[:i]), None)
    if twice is not None:  # which of its cells would be the answer?
        raise BadInput(f"the header row gives the column {twice[:60]!r} twice")
    return names


def _csv_units(
    records: Iterator[tuple[int, list[str] | str]], header: tuple[str, ...], protocol: Protocols
) -> Iterator[Unit]:
    unread = [i for i, name in enumerate(header) if not name]  # e.g. pandas' or R's index
    for number, cells in records:  # a row's number is its first line's
        if isinstance(cells, str):
            yield Unit(number, None, (cells,))
        elif not "".join(cells).strip():
            continue  # a blank line (or only commas) is no patient: counted, as in JSON Lines
        else:
            problem = _problems(next(filter(None, map(unreadable, cells)), None))
            given = [i for i in unread if i < len(cells) and cells[i].strip()] if unread else []
            for i in given:
                unread.remove(i)  # said once, at the first value
            yield Unit(number, cells, problem, tuple(unread_column(i + 1) for i in given))


def _csv_row(
    number: int, header: tuple[str, ...], cells: list[str], protocol: Protocols, day: date
) -> Row:
    row = Row(number, screened_on=day)
    if len(cells) > len(header):
        row.errors.append(f"{len(cells)} cells but the header has {len(header)} columns")
    return csv_row(row, dict(zip(header, cells, strict=False)), protocol)


def unread_column(column: int) -> str:
    """The note said once when a column whose header cell is empty holds a value."""
    return f"note: column {column} has no name, so its values are not read"


def csv_row(row: Row, cells_by_key: dict[str, str | None], protocol: Protocols) -> Row:
    """Type one CSV row's cells (by column name) into ``row``. An empty cell is an absent
    answer, also in a column that is not a variable; a value there makes the row bad, as
    the key does in JSON (its answer would otherwise be dropped unseen). A column without
    a name is not read (see :func:`unread_column`)."""
    cells = {key: (cell or "").strip() for key, cell in cells_by_key.items()}
    _set_screened_on(row, cells.get(SCREENED_ON_KEY) or None)  # an empty cell: today
    for key, cell in cells.items():
        if key == REFERRAL_KEY:
            _set_referral(row, cell or None)
        elif not cell or not key:
            continue
        elif (question := protocol.questions.get(key)) is not None:
            try:
                row.answers[key] = _csv_answer(question, cell, row.screened_on)
            except AnswerError as err:
                row.errors.append(f"{key}: {_shown(cell)}: {err}")
        elif key != SCREENED_ON_KEY and (unknown := _unknown_key(key, protocol)):
            row.errors.append(unknown)
    return row


def _csv_answer(question: Question, cell: str, screened_on: date) -> Any:
    """A CSV cell's answer, read as typed text, but a date only as the data dictionary's
    batch form, ISO or none (as in JSON): 02/01/2025 is 2 January to some, 1 February to
    others, and a file has no one to ask."""
    if question.type in ("date", "date_or_none") and not is_unknown_text(cell):
        return check_value(question, cell, screened_on)
    return parse_text(question, cell, screened_on)


def _set_referral(row: Row, value: Any) -> None:
    if value is None:
        return
    try:
        if not isinstance(value, str):
            raise BadReferral(f"expected text, not {type(value).__name__}")
        row.referral = check_referral(value)
    except BadReferral as err:
        row.errors.append(f"{REFERRAL_KEY}: {err}")


def leave_out(protocol: Protocols, left_out: LeftOut) -> None:
    """Screen ``protocol`` as a screening of every protocol that leaves the broken files of
    ``left_out`` out (kept on it; an empty one for any other screening)."""
    protocol.__dict__["_left_out"] = left_out


def left_out_of(protocol: Protocols) -> LeftOut:
    """What :func:`leave_out` kept on ``protocol`` (nothing left out by default)."""
    found: LeftOut = protocol.__dict__.get("_left_out") or LeftOut()
    return found


MAX_KEYS_KEPT = 4096  # unknown keys whose problem is kept (random keys must not grow it)


def _unknown_key(key: str, protocol: Protocols) -> str | None:
    """Why a row's key (or CSV column with a value) is bad; None for a variable of a protocol
    the screening leaves out (its file is broken and said so): not screened, not bad."""
    left_out = left_out_of(protocol)
    if key in left_out.variables:
        return None
    # Said for every row that has the key (a column of a CSV file, or a file screened
    # against the wrong protocol): the hint's search is done once per key.
    known: dict[tuple[str, LeftOut], str] = protocol.__dict__.setdefault("_unknown_keys", {})
    if (problem := known.get((key, left_out))) is None:
        problem = _key_problem(key, protocol, left_out)
        if len(known) < MAX_KEYS_KEPT:
            known[(key, left_out)] = problem
    return problem


def _key_problem(key: str, protocol: Protocols, left_out: LeftOut) -> str:
    hint = ""
    named = name_key(key)
    alias = next(
        (v for v, q in protocol.questions.items() if named in map(name_key, q.aliases)), None
    )
    close = [alias] if alias else difflib.get_close_matches(key, list(protocol.questions), n=1)
    if close:
        hint = f"; did you mean '{close[0]}'?"
    if left_out.unread:
        files = ", ".join(left_out.unread)
        verb = "is" if len(left_out.unread) == 1 else "are"
        of = f"the protocols screened ({files} {verb} left out, broken)"
    else:
        of = protocol.id
    return f"{printable(key[:60])}: not a variable of {of}{hint}"
