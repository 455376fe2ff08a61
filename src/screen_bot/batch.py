"""Screen many patients from a file: one JSON object, JSON Lines, or CSV with a header.

Rows are read and screened one at a time, so memory does not grow with the file. A bad
row is reported with its row number and variable; the other rows are still screened.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

from .answers import AnswerError, check_value, parse_text, today
from .protocol import Protocol
from .session import REFERRAL_PATTERN

InputFormat = Literal["auto", "json", "jsonl", "csv"]
REFERRAL_KEY = "referral"
SCREENED_ON_KEY = "screened_on"
_REFERRAL = re.compile(REFERRAL_PATTERN)


@dataclass
class Row:
    number: int  # 1-based: the object's line in JSON Lines, the data row in CSV; 0: CSV header
    referral: str | None = None
    screened_on: date = field(default_factory=today)
    answers: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def detect_format(path: Path) -> InputFormat:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "json"


def read_rows(stream: IO[str], protocol: Protocol, input_format: InputFormat) -> Iterator[Row]:
    if input_format == "csv":
        yield from _csv_rows(stream, protocol)
    elif input_format == "jsonl":
        yield from _jsonl_rows(stream, protocol)
    else:
        yield from _json_rows(stream, protocol)


def _jsonl_rows(lines: Iterable[str], protocol: Protocol) -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield Row(number, errors=[f"not valid JSON ({err.msg} at column {err.colno})"])
            continue
        yield record_row(number, record, protocol)


def _json_rows(stream: IO[str], protocol: Protocol) -> Iterator[Row]:
    text = stream.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        if text.lstrip().startswith("{") and "\n" in text.strip():
            yield from _jsonl_rows(text.splitlines(), protocol)  # JSON Lines in a .json file
            return
        yield Row(1, errors=[f"not valid JSON ({err.msg} at line {err.lineno})"])
        return
    records = document if isinstance(document, list) else [document]
    for number, record in enumerate(records, start=1):
        yield record_row(number, record, protocol)


def record_row(number: int, record: Any, protocol: Protocol) -> Row:
    """Type one JSON record (a dict of answers) as a row."""
    row = Row(number)
    if not isinstance(record, dict):
        row.errors.append("expected a JSON object of answers")
        return row
    _set_screened_on(row, record.get(SCREENED_ON_KEY))
    for key, value in record.items():
        if key == REFERRAL_KEY:
            _set_referral(row, value)
        elif key == SCREENED_ON_KEY:
            continue
        elif (question := protocol.questions.get(key)) is None:
            row.errors.append(_unknown_key(key, protocol))
        else:
            try:
                row.answers[key] = check_value(question, value, row.screened_on)
            except AnswerError as err:
                row.errors.append(f"{key}: {_shown(value)}: {err}")
    return row


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _set_screened_on(row: Row, value: Any) -> None:
    if value is None or value == "":
        return
    try:
        row.screened_on = date.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(row.screened_on, date):
            raise ValueError
    except ValueError:
        row.screened_on = today()
        row.errors.append(f"{SCREENED_ON_KEY}: {_shown(value)}: expected a date as YYYY-MM-DD")


def _csv_rows(stream: IO[str], protocol: Protocol) -> Iterator[Row]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    unknown = [
        _unknown_key(h, protocol)
        for h in header
        if h and h not in (REFERRAL_KEY, SCREENED_ON_KEY) and h not in protocol.questions
    ]
    if unknown:  # reported once; the known columns are still screened
        yield Row(0, errors=unknown)
    for number, cells in enumerate(reader, start=1):
        row = Row(number)
        if len(cells) > len(header):
            row.errors.append(f"{len(cells)} cells but the header has {len(header)} columns")
        yield csv_row(row, dict(zip(header, cells, strict=False)), protocol)


def csv_row(row: Row, cells_by_key: dict[str, str | None], protocol: Protocol) -> Row:
    """Type one CSV row's cells (by column name) into ``row``; columns not of the protocol
    are left to the header check."""
    cells = {key: (cell or "").strip() for key, cell in cells_by_key.items()}
    _set_screened_on(row, cells.get(SCREENED_ON_KEY))
    for key, cell in cells.items():
        if key == REFERRAL_KEY:
            _set_referral(row, cell or None)
        elif (question := protocol.questions.get(key)) is not None and cell:
            try:
                row.answers[key] = parse_text(question, cell, row.screened_on)
            except AnswerError as err:
                row.errors.append(f"{key}: {_shown(cell)}: {err}")
    return row


def _set_referral(row: Row, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, str) and _REFERRAL.match(value):
        row.referral = value
    else:
        row.errors.append(
            f"{REFERRAL_KEY}: expected a short code such as R-0423 (letters, digits, . _ / -; "
            "no spaces, at most 32 characters), never a name"
        )


def _unknown_key(key: str, protocol: Protocol) -> str:
    close = difflib.get_close_matches(key, list(protocol.questions), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{key}: not a variable of {protocol.id}{hint}"
