"""Batch screening on DuckDB: the protocol's compiled query over a CSV, JSON (Lines) or
Parquet file that DuckDB reads directly.

The file becomes a view with one typed column per variable (the types of
``rules.sql.input_columns``); each cell is checked in SQL as ``answers.check_value`` (JSON,
Parquet) or ``answers.parse_text`` (CSV) would check it, for the plain forms: numbers,
yes/no words, ISO dates, ``none``, choices (also by a unique prefix in CSV), comma-separated
multi-selects; a Parquet FLOAT (32-bit) is read as the decimal written. A row with a cell
that fails is not screened: its errors are the Python engine's own messages (the row is
re-typed by ``batch``), and a form only the Python engine reads (``133 µmol/L``,
``45/40``) is named as such. Good rows go through
the compiled query (``detail=True``); each result row becomes the same :class:`Verdict` the
Python engine builds, from the SQL's verdict, failures, open items and "met from" dates,
with the values the rules read.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import duckdb

from ..answers import (
    MAX_DIGITS,
    MAX_TEXT,
    NO_WORDS,
    NONE_OF_THESE,
    UNKNOWN_WORDS,
    YES_WORDS,
    names_a_choice,
)
from ..batch import (
    MAX_LINE,
    REFERRAL_KEY,
    SCREENED_ON_KEY,
    Row,
    _set_referral,
    csv_header,
    csv_row,
    left_out_of,
    parse_with_json,
    read_rows,
    record_row,
    unread_column,
)
from ..protocol import Protocol
from ..protocol.schema import Question
from ..rules.dates import EARLIEST_YEAR, NEVER
from ..rules.evaluation import Context, Status, Used, given, status_of_each
from ..rules.expressions import SCREENING_DATE
from ..rules.sql import Query, compile_protocol
from ..rules.sql_expressions import quote, text_literal
from ..rules.windows import Waiting, open_then
from ..session import REFERRAL_PATTERN
from ..verdict import Verdict, assembled_fields, row_fields

FileFormat = Literal["csv", "jsonl", "json", "parquet"]
BATCH = 2048
_NUMBER = r"^{sign}([0-9]+([.,][0-9]*)?|[.,][0-9]+)$"
# what answers._THOUSANDS refuses: 1,200 may be 1.2 or 1200 (1.200 only where 1200 fits)
_THOUSANDS = r"^[+-]?0*[1-9][0-9]{{0,2}}[{mark}][0-9]{{3}}$"
_FLOAT32 = "float32_as_written"  # the Python function that reads a FLOAT, in SQL
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")  # fmt: skip
# the days a Python date holds: DuckDB's DATE also holds years past 9999, BC and infinity,
# which it hands to Python as text (or, for infinity, as a wrong date)
_CALENDAR = "BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'"
_PLAIN = (
    "a value the DuckDB engine does not read (it reads plain numbers, yes/no, ISO dates, "
    "none and the choices); --engine python reads free-text answers such as units"
)
# the screening date is never free text: what is left is a tab or line break around it
_PLAIN_DAY = (
    "a value the DuckDB engine does not read (it reads YYYY-MM-DD without a tab or line "
    "break around it); --engine python reads it"
)


class DuckDBInputError(ValueError):
    """A file DuckDB cannot read as a whole (the message says where)."""


@dataclass
class Screened:
    number: int  # as the Python engine numbers rows: 0 is a CSV header
    verdict: Verdict | None = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the file, said before this row


def detect(path: Path) -> FileFormat:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    return "csv" if suffix == ".csv" else "json"


def screen_file(
    protocol: Protocol, path: Path, file_format: FileFormat, today: date
) -> Iterator[Screened]:
    """Every row of the file, screened, in the file's order. Where DuckDB cannot read a row
    of a CSV or JSON file (a CSV row with too few or too many cells, bytes that are not
    UTF-8, a line over 2 MB, a line that is not JSON), the rows from the first one not yet
    given are screened by the Python engine, which reports just the bad rows; DuckDB would
    stop the whole query, or not say why."""
    if file_format in ("csv", "jsonl") and _read_otherwise(path, file_format):
        yield from _screened_by_python(protocol, path, file_format, -1, today)
        return
    if file_format == "json" and _blank(path):  # DuckDB: no rows; it is no JSON document
        yield from _screened_by_python(protocol, path, file_format, -1, today)
        return
    given = Screened(-1)  # the last row given (0: the CSV header's problems, if any)
    try:
        for given in _screened_by_duckdb(protocol, path, file_format, today):
            yield given
    except DuckDBInputError:
        if file_format == "parquet":
            raise
        yield from _screened_by_python(protocol, path, file_format, given.number, today)


def _screened_by_duckdb(
    protocol: Protocol, path: Path, file_format: FileFormat, today: date
) -> Iterator[Screened]:
    connection = connect()
    try:
        reader = _Reader(protocol, path, file_format, today, connection)
        if reader.empty:
            return
        query = compile_protocol(
            protocol, "duckdb", table="_typed", detail=True, keep=("_bad", "_raw", "_unread")
        )
        try:
            connection.execute(f"CREATE TEMP VIEW {quote('_typed')} AS {reader.typed_sql()}")
            result = connection.execute(query.text)
        except duckdb.Error as err:
            raise _unreadable(path, file_format, err) from None
        names = [d[0] for d in result.description or ()]
        number = 0
        unread = {i for i, _ in reader.nameless}  # columns whose values are not read
        while chunk := _fetch(result, path, file_format):
            for values in chunk:
                number += 1
                row = dict(zip(names, values, strict=True))
                if row["_bad"] is not None and row["_raw"] is None:  # not JSON: why, DuckDB
                    raise DuckDBInputError(f"{path}: row {number}")  # does not say
                if row["_bad"] is not None:
                    given = Screened(number, errors=reader.errors(number, row["_bad"], row["_raw"]))
                elif refused := _referral_refused(number, row[REFERRAL_KEY], today):
                    given = Screened(number, errors=refused)
                else:
                    given = Screened(number, _verdict(protocol, query, row))
                if row["_unread"] is not None:  # said once, at a column's first value
                    noted = [int(i) for i in row["_unread"].split() if int(i) in unread]
                    unread.difference_update(noted)
                    given.notes = [unread_column(i) for i in noted]
                yield given
    finally:
        connection.close()


def _referral_refused(number: int, referral: str | None, today: date) -> list[str]:
    """SQL checks a label's shape only; the rest of the rule (a digit, no date of birth)
    is the one check every other way in goes through."""
    checked = Row(number, screened_on=today)
    _set_referral(checked, referral)
    return checked.errors


def _screened_by_python(
    protocol: Protocol, path: Path, file_format: FileFormat, after: int, today: date
) -> Iterator[Screened]:
    """The rows after row ``after`` (-1: all, with the CSV header's problems) as the Python
    engine screens them (a row without screened_on: ``today``, the DuckDB rows' day)."""
    with path.open("rb") as raw:
        for row in read_rows(raw, protocol, file_format, today):  # type: ignore[arg-type]
            if row.number <= after:
                continue
            if row.errors:
                yield Screened(row.number, errors=row.errors, notes=row.notes)
                continue
            fields = row_fields(
                protocol, row.answers, referral=row.referral, screened_on=row.screened_on
            )
            yield Screened(row.number, Verdict(**fields), notes=row.notes)


# a character str.strip() removes, as RE2 writes it: \p{Z} and the control characters
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f\x{85}\p{Z}"
_BLANK_LINE = re.compile(rb"\n[ \t\r\f\v]*\n")
# a line of empty cells as the Python engine finds it: quotes, commas and what str.strip()
# removes, in UTF-8 (a no-break space as spreadsheets write it, U+3000, ...; a test holds it)
_EMPTY_CELLS = re.compile(
    rb'\n(?:[ \t\r\f\v\x1c-\x1f,"]|\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]'
    rb"|\xe2\x81\x9f|\xe3\x80\x80)*\n"
)
_QUOTED = re.compile(rb'"[^"\n]*"')  # a quoted cell's text (or part of it) on one line
_SPACED_QUOTE = re.compile(rb'[\n,][ \t]+"')


def _read_otherwise(path: Path, file_format: Literal["csv", "jsonl"]) -> bool:
    """Whether DuckDB would read a line of the file otherwise than the Python engine (the
    first and last lines included): then the Python engine reads the file."""
    with path.open("rb") as raw:
        carry = b"\n"  # the file starts a line
        while block := raw.read(1 << 20):
            text = carry + block
            end = text.rfind(b"\n")
            if _lines_read_otherwise(text[: end + 1], file_format):
                return True
            carry = text[end:]  # the last line so far, with its start
            if len(carry) > 4 * MAX_LINE:  # the Python engine reports it (too long)
                return True
        return carry != b"\n" and _lines_read_otherwise(carry + b"\n", file_format)


def _blank(path: Path) -> bool:
    """Whether the file holds nothing but white space (and a byte-order mark)."""
    with path.open("rb") as raw:
        block = raw.read(1 << 16).removeprefix(codecs.BOM_UTF8)
        while block:
            if block.strip():
                return False
            block = raw.read(1 << 16)
    return True


def _lines_read_otherwise(lines: bytes, file_format: Literal["csv", "jsonl"]) -> bool:
    """Whether DuckDB reads one of these whole lines (from a line break to a line break)
    otherwise. A blank line: it skips it without counting it (the later row numbers would
    be off). In CSV also a line of empty cells (DuckDB: a patient, every answer unknown), a
    line with an odd number of quotes (DuckDB reads on into the next line, without the
    Python engine's bounds on a cell's line breaks), and a quote after spaces at a cell's
    start (for DuckDB it opens a quoted cell; for the Python engine it is text, and
    '"female"' not a choice)."""
    if file_format == "jsonl":
        return _BLANK_LINE.search(lines) is not None
    if _EMPTY_CELLS.search(lines):
        return True
    if b'"' not in lines:  # the common case, found fast
        return False
    if b'"' in _QUOTED.sub(b"", lines):  # a quote left without its pair on its line
        return True
    spaced = b' "' in lines or b'\t"' in lines
    return spaced and _SPACED_QUOTE.search(lines) is not None


def _unreadable(path: Path, file_format: FileFormat, err: duckdb.Error) -> DuckDBInputError:
    """One line naming the file: DuckDB's own message may quote a row of it (health data)."""
    if isinstance(err, duckdb.IOException):
        return DuckDBInputError(f"{path}: DuckDB cannot open the file")
    return DuckDBInputError(
        f"{path}: DuckDB cannot read the file as {file_format} (check the file, or convert "
        "it to CSV or JSON Lines and use --engine python)"
        if file_format == "parquet"
        else f"{path}: DuckDB cannot read the file as {file_format}; use --engine python"
    )


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that never draws its progress bar: DuckDB draws it on standard
    output once a query runs over 2 s, in the middle of the verdicts written there."""
    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    return connection


def _fetch(
    result: duckdb.DuckDBPyConnection, path: Path, file_format: FileFormat
) -> list[tuple[Any, ...]]:
    try:
        return result.fetchmany(BATCH)
    except duckdb.Error as err:
        raise _unreadable(path, file_format, err) from None


# -- the typed view ---------------------------------------------------------------------------


class _Reader:
    """The SQL that reads the file and types each variable's column, with the bad cells."""

    def __init__(
        self,
        protocol: Protocol,
        path: Path,
        file_format: FileFormat,
        today: date,
        connection: duckdb.DuckDBPyConnection,
    ) -> None:
        self.p = protocol
        self.format = file_format
        self.today = today
        location = text_literal(str(path), "duckdb")
        header: tuple[str, ...] | None = None
        if file_format == "csv":
            with path.open("rb") as raw:  # as the Python engine: a column given twice, …
                header = csv_header(raw)  # … a header that is not UTF-8 refuse the file
            self.source = (
                f"read_csv({location}, header = true, all_varchar = true, delim = ',', "
                "quote = '\"', escape = '\"')"
            )
        elif file_format == "parquet":
            self.source = f"read_parquet({location})"
        else:
            shape = "newline_delimited" if file_format == "jsonl" else "auto"
            self.source = f"read_json_objects({location}, format = '{shape}', ignore_errors = true)"
        try:
            described = connection.execute(f"DESCRIBE SELECT * FROM {self.source}").fetchall()
        except duckdb.Error as err:
            raise _unreadable(path, file_format, err) from None
        duckdb_names = [str(c[0]) for c in described]  # 'column2' for an empty header cell
        self.empty = file_format == "csv" and header is None  # no header: no rows
        if header is not None and len(header) != len(described):
            raise DuckDBInputError(f"{path}: DuckDB reads the header otherwise")
        names = duckdb_names if header is None else header  # the Python engine's
        floats = [quote(str(c[0])) for c in described if str(c[1]) == "FLOAT"]
        if floats:  # read once, where the file is read: every use of the column sees it
            _read_float32_as_written(connection)
            read = ", ".join(f"{_float32_as_written(c)} AS {c}" for c in floats)
            self.source = f"(SELECT * REPLACE ({read}) FROM {self.source})"
        # each column by the Python engine's name: (DuckDB's name, its type as read)
        self.columns: dict[str, tuple[str, str]] = {
            name: (column, "DOUBLE" if str(c[1]) == "FLOAT" else str(c[1]))
            for name, column, c in zip(names, duckdb_names, described, strict=True)
            if name
        }
        # (number, DuckDB's name) of each CSV column whose header cell is empty
        self.nameless = [
            (number, column)
            for number, (name, column) in enumerate(zip(names, duckdb_names, strict=True), 1)
            if not name and header is not None
        ]

    # -- raw cells

    def _raw(self, key: str) -> tuple[str, str]:
        """(SQL of the cell, its kind): kind 'text' (CSV), 'json', or a DuckDB type."""
        if self.format in ("json", "jsonl"):
            return f"json_extract({quote('json')}, {text_literal('$.' + key, 'duckdb')})", "json"
        if key not in self.columns:
            return "CAST(NULL AS VARCHAR)", "VARCHAR"
        column, kind = self.columns[key]
        if self.format == "csv":
            return f"NULLIF(trim({quote(column)}), '')", "text"
        return quote(column), kind

    def typed_sql(self) -> str:
        """SELECT typed variables, ``referral``, ``screened_on``, ``_bad`` (the bad variables,
        space-separated; NULL for a good row) and ``_raw`` (the row as JSON, when bad)."""
        inner, outer, bad = [], [], []
        day, day_bad = self._screened_on()
        inner += [f"{day} AS {quote('_day')}", f"{day_bad} AS {quote('_day_bad')}"]
        bad.append(f"CASE WHEN {quote('_day_bad')} THEN 'screened_on' END")
        outer.append(f"{quote('_day')} AS {quote(SCREENED_ON_KEY)}")
        referral, referral_bad = self._referral()
        inner += [f"{referral} AS {quote('_ref')}", f"{referral_bad} AS {quote('_ref_bad')}"]
        outer.append(f"{quote('_ref')} AS {quote(REFERRAL_KEY)}")
        bad.append(f"CASE WHEN {quote('_ref_bad')} THEN 'referral' END")
        for i, q in enumerate(self.p.spec.questions):
            value, unreadable = self._convert(q)
            inner += [f"{value} AS {quote(f'_c{i}')}", f"{unreadable} AS {quote(f'_u{i}')}"]
            invalid = self._invalid(q, quote(f"_c{i}"), quote("_day"))
            bad.append(
                f"CASE WHEN {quote(f'_u{i}')} OR coalesce({invalid}, false) "
                f"THEN {text_literal(q.variable, 'duckdb')} END"
            )
            typed = self._typed(q, quote(f"_c{i}"))
            outer.append(f"{typed} AS {quote(q.variable)}")
        # the keys of a row: its answers, and a left-out protocol's variables (not screened)
        row_keys = [
            REFERRAL_KEY,
            SCREENED_ON_KEY,
            *self.p.questions,
            *sorted(left_out_of(self.p).variables),
        ]
        given = text_literal(f"[^{_SPACE}]", "duckdb")  # a value, as batch's cell.strip()
        if self.format in ("json", "jsonl"):
            known = ", ".join(text_literal(k, "duckdb") for k in row_keys)
            j = quote("json")
            bad.append(f"CASE WHEN {j} IS NULL THEN '(json)' END")
            keys = f"json_keys({j})"
            bad.append(
                f"CASE WHEN json_type({j}) <> 'OBJECT' OR len(list_filter({keys}, "
                f"lambda k: NOT list_contains([{known}], k))) > 0 "
                f"OR len({keys}) <> len(list_distinct({keys})) THEN '(keys)' END"
            )
            inner.append(f"{j} AS {quote('_json')}")
            raw = f"CAST({quote('_json')} AS VARCHAR)"
        else:  # a value in a column that is not a variable: a bad row, as its key in JSON
            has_value = [
                f"regexp_matches({quote(column)}, {given})"
                if self.format == "csv"
                else f"{quote(column)} IS NOT NULL"
                for name, (column, _) in self.columns.items()
                if name not in row_keys
            ]
            if has_value:  # read in the inner SELECT: outside, "_ref" or "_json" are ours
                inner.append(f"({' OR '.join(has_value)}) AS {quote('_extra')}")
                bad.append(f"CASE WHEN {quote('_extra')} THEN '(keys)' END")
            fields = ", ".join(f"{quote(n)} := {quote(c)}" for n, (c, _) in self.columns.items())
            raw = f"CAST(to_json(struct_pack({fields})) AS VARCHAR)"
            inner.append(f"{raw} AS {quote('_json')}")
            raw = quote("_json")
        flags = f"NULLIF(concat_ws(' ', {', '.join(bad)}), '')"
        unread = [
            f"CASE WHEN regexp_matches({quote(column)}, {given}) THEN '{i}' END"
            for i, column in self.nameless
        ]
        outer += [
            f"{flags} AS {quote('_bad')}",
            f"CASE WHEN {flags} IS NOT NULL THEN {raw} END AS {quote('_raw')}",
            f"NULLIF(concat_ws(' ', {', '.join(unread) or 'NULL'}), '') AS {quote('_unread')}",
        ]
        return (
            "SELECT "
            + ", ".join(outer)
            + " FROM (SELECT "
            + ", ".join(inner)
            + f", * FROM {self.source}) AS {quote('_cells')}"
        )

    def _screened_on(self) -> tuple[str, str]:
        cell, kind = self._raw(SCREENED_ON_KEY)
        today = f"DATE '{self.today.isoformat()}'"
        if kind == "DATE":
            day = cell
        else:
            text = self._text(cell, kind)
            iso = f"regexp_full_match({text}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')"
            day = f"TRY_CAST(CASE WHEN {iso} THEN {text} END AS DATE)"
        good = f"(CASE WHEN {day} {_CALENDAR} THEN {day} END)"  # DuckDB reads 0000-01-01 too
        present = (
            f"({cell} IS NOT NULL AND json_type({cell}) <> 'NULL')"
            if kind == "json"
            else f"({cell} IS NOT NULL)"
        )
        return f"coalesce({good}, {today})", f"({present} AND {good} IS NULL)"

    def _referral(self) -> tuple[str, str]:
        cell, kind = self._raw(REFERRAL_KEY)
        text = self._text(cell, kind)
        good = f"regexp_full_match({text}, {text_literal(REFERRAL_PATTERN.strip('^$'), 'duckdb')})"
        wrong_type = f"json_type({cell}) NOT IN ('VARCHAR', 'NULL')" if kind == "json" else "false"
        present = f"{text} IS NOT NULL"
        return (
            f"CASE WHEN {good} THEN {text} END",
            f"(({present} AND NOT {good}) OR coalesce({wrong_type}, false))",
        )

    @staticmethod
    def _text(cell: str, kind: str) -> str:
        if kind == "json":
            return (
                f"(CASE WHEN json_type({cell}) = 'VARCHAR' "
                f"THEN json_extract_string({cell}, '$') END)"
            )
        if kind in ("text", "VARCHAR"):
            return cell
        return f"CAST({cell} AS VARCHAR)"

    # -- conversion of one cell

    def _convert(self, q: Question) -> tuple[str, str]:
        """(the cell as the variable's base SQL value or NULL, TRUE when present but not
        readable as one). Dates convert to VARCHAR 'none' or an ISO date."""
        cell, kind = self._raw(q.variable)
        lenient = kind == "text"  # CSV: parse_text; else check_value
        text = self._text(cell, kind)
        present = (
            f"({cell} IS NOT NULL AND json_type({cell}) <> 'NULL')"
            if kind == "json"
            else f"({cell} IS NOT NULL)"
        )
        if lenient:
            words = sorted(w for w in UNKNOWN_WORDS if not names_a_choice(q, w))
            unknown = ", ".join(text_literal(w, "duckdb") for w in words)
            squeezed = f"lower(regexp_replace({cell}, '\\s+', ' ', 'g'))"
            present = f"({cell} IS NOT NULL AND {squeezed} NOT IN ({unknown}))"
        value = self._value(q, cell, kind, text, lenient)
        return f"(CASE WHEN {present} THEN {value} END)", f"({present} AND ({value}) IS NULL)"

    def _value(self, q: Question, cell: str, kind: str, text: str, lenient: bool) -> str:
        if q.type in ("int", "number"):
            # a minus sign only where the range goes below 0, as answers._parse_number
            sign = "[+]?" if q.min is None or q.min >= 0 else "[+-]?"
            plain = f"regexp_full_match(trim({text}), '{_NUMBER.format(sign=sign)}')"
            comma = f"regexp_full_match(trim({text}), '{_THOUSANDS.format(mark=',')}')"
            dot = f"regexp_full_match(trim({text}), '{_THOUSANDS.format(mark='.')}')"
            thousands = f"TRY_CAST(replace(trim({text}), '.', '') AS DOUBLE)"
            limits = [f"{thousands} >= {q.min!r}"] if q.min is not None else []
            limits += [f"{thousands} <= {q.max!r}"] if q.max is not None else []
            fits = " AND ".join(limits) or "TRUE"
            ambiguous = f"({comma} OR ({dot} AND {fits}))"
            # as answers.MAX_DIGITS: at most 15 significant digits, or the digits of the
            # double's shortest decimal (DuckDB's text of a DOUBLE, as Python's repr) or of
            # its 17 significant digits (DuckDB's printf %.17g, as Python's format)
            digits = _significant(text)
            double = f"TRY_CAST(replace(trim({text}), ',', '.') AS DOUBLE)"
            shortest = _significant(f"regexp_replace(CAST({double} AS VARCHAR), 'e.*', '')")
            seventeen = _significant(f"regexp_replace(printf('%.17g', {double}), 'e.*', '')")
            short = (
                f"(length({digits}) <= {MAX_DIGITS} OR {digits} = {shortest} "
                f"OR {digits} = {seventeen})"
            )
            number = (
                f"TRY_CAST(CASE WHEN {plain} AND NOT {ambiguous} AND {short} "
                f"THEN replace(trim({text}), ',', '.') END AS DOUBLE)"
            )
            if kind == "json":
                return (
                    f"(CASE WHEN json_type({cell}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
                    f"THEN CAST({cell} AS DOUBLE) ELSE {number} END)"
                )
            if kind.split("(")[0] in _NUMERIC_TYPES:
                return f"CAST({cell} AS DOUBLE)"
            return number if kind in ("text", "VARCHAR") else "CAST(NULL AS DOUBLE)"
        if q.type == "yes_no":
            if lenient:
                yes = ", ".join(f"'{w}'" for w in sorted(YES_WORDS))
                no = ", ".join(f"'{w}'" for w in sorted(NO_WORDS))
                return (
                    f"(CASE WHEN lower({text}) IN ({yes}) THEN TRUE "
                    f"WHEN lower({text}) IN ({no}) THEN FALSE END)"
                )
            if kind == "json":
                return f"(CASE WHEN json_type({cell}) = 'BOOLEAN' THEN CAST({cell} AS BOOLEAN) END)"
            return cell if kind == "BOOLEAN" else "CAST(NULL AS BOOLEAN)"
        choices = q.choices or []
        listed = "[" + ", ".join(text_literal(c, "duckdb") for c in choices) + "]"
        if q.type == "choice" and q.multiple:
            return self._choices(cell, kind, text, lenient, listed)
        if q.type == "choice":
            if lenient:
                return self._choice_of(text, listed)
            exact = f"(CASE WHEN list_contains({listed}, {text}) THEN {text} END)"
            if q.ordered:  # a whole number names an ordered choice ('2' of '0'..'4')
                whole = "NULL"
                if kind == "json":
                    whole = (
                        f"(CASE WHEN json_type({cell}) IN ('BIGINT', 'UBIGINT') "
                        f"THEN CAST({cell} AS VARCHAR) END)"
                    )
                elif kind.split("(")[0] in _NUMERIC_TYPES[:9]:  # the integer types
                    whole = f"CAST({cell} AS VARCHAR)"
                named = f"CASE WHEN list_contains({listed}, {whole}) THEN {whole} END"
                exact = f"coalesce({exact}, {named})"
            return exact
        if q.type in ("date", "date_or_none"):
            return self._date(q, cell, kind, text)
        # text: kept for the coordinator, checked for its length only
        length = f"length(trim({text}))" if lenient else f"length({text})"
        return f"(CASE WHEN {length} <= {MAX_TEXT} THEN {text} END)"

    @staticmethod
    def _choice_of(text: str, listed: str) -> str:
        """A typed choice: the same text in any case, else the one choice it begins unless
        it also begins a later word of another choice (as ``answers`` reads it)."""
        lowered = f"lower(trim({text}))"
        exact = f"list_filter({listed}, lambda c: lower(c) = {lowered})"
        prefix = f"list_filter({listed}, lambda c: starts_with(lower(c), {lowered}))"
        later_words = "string_split_regex(lower(c), '[_\\s]+')[2:]"
        begun = f"list_filter({later_words}, lambda p: starts_with(p, {lowered}))"
        named = (
            f"list_filter({listed}, lambda c: starts_with(lower(c), {lowered}) OR len({begun}) > 0)"
        )
        return (
            f"(CASE WHEN len({exact}) > 0 THEN {exact}[1] "
            f"WHEN len({prefix}) = 1 AND len({named}) = 1 THEN {prefix}[1] END)"
        )

    def _choices(self, cell: str, kind: str, text: str, lenient: bool, listed: str) -> str:
        """A multi-select as VARCHAR[] in the question's order (NULL when a part is not a
        choice, or the text names none): a list of exact choices, or text separated by , ;
        or a line break."""
        none_words = ", ".join(text_literal(w, "duckdb") for w in sorted(NONE_OF_THESE))
        squeezed = f"lower(regexp_replace(trim({text}), '\\s+', ' ', 'g'))"
        split = f"list_transform(string_split_regex({text}, '[,;\\n]'), lambda w: trim(w))"
        words = f"list_filter({split}, lambda w: w <> '')"
        # each word's choice (NULL when none matches)
        picked = f"list_transform({words}, lambda w: {self._choice_of('w', listed)})"
        lowered = f"list_transform({listed}, lambda c: lower(c))"
        from_text = (
            f"(CASE WHEN {squeezed} IN ({none_words}) AND NOT list_contains({lowered}, {squeezed}) "
            f"THEN CAST([] AS VARCHAR[]) "
            f"WHEN len({words}) = 0 THEN NULL "
            f"WHEN len(list_filter({picked}, lambda c: c IS NULL)) > 0 THEN NULL "
            f"ELSE list_filter({listed}, lambda c: list_contains({picked}, c)) END)"
        )
        if kind == "json":
            items = f"CAST({cell} AS JSON[])"
            strings = (
                f"len(list_filter({items}, lambda e: json_type(e) = 'VARCHAR')) = len({items})"
            )
            exact = f"list_transform({items}, lambda e: json_extract_string(e, '$'))"
            strangers = f"list_filter({exact}, lambda e: NOT list_contains({listed}, e))"
            from_list = (
                f"(CASE WHEN {strings} AND len({strangers}) = 0 "
                f"THEN list_filter({listed}, lambda c: list_contains({exact}, c)) END)"
            )
            return (
                f"(CASE json_type({cell}) WHEN 'ARRAY' THEN {from_list} "
                f"WHEN 'VARCHAR' THEN {from_text} END)"
            )
        if kind.endswith("[]"):
            given_items = f"CAST({cell} AS VARCHAR[])"
            strangers = (
                f"list_filter({given_items}, lambda e: e IS NULL OR NOT list_contains({listed}, e))"
            )
            return (
                f"(CASE WHEN len({strangers}) = 0 "
                f"THEN list_filter({listed}, lambda c: list_contains({given_items}, c)) END)"
            )
        return from_text if kind in ("text", "VARCHAR") else "CAST(NULL AS VARCHAR[])"

    @staticmethod
    def _date(q: Question, cell: str, kind: str, text: str) -> str:
        """ISO or none in CSV too (``batch`` reads a CSV date as a JSON one)."""
        digits = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
        iso = (
            f"CAST(TRY_CAST(CASE WHEN regexp_full_match(trim({text}), '{digits}') "
            f"THEN trim({text}) END AS DATE) AS VARCHAR)"
        )
        if q.type == "date_or_none":
            word = f"lower(trim({text}))"
            iso = f"(CASE WHEN {word} = '{NEVER}' THEN '{NEVER}' ELSE {iso} END)"
        if kind == "DATE":
            return f"(CASE WHEN {cell} {_CALENDAR} THEN CAST({cell} AS VARCHAR) END)"
        if kind in ("text", "VARCHAR", "json"):
            return iso
        return "CAST(NULL AS VARCHAR)"

    # -- checks after conversion, and the typed column

    @staticmethod
    def _invalid(q: Question, value: str, day: str) -> str:
        """TRUE when a converted value breaks the question's limits (NULL: nothing to check)."""
        if q.type in ("int", "number"):
            checks = [f"NOT isfinite({value})"]
            if q.type == "int":
                checks.append(f"{value} <> floor({value}) OR abs({value}) >= {float(2**63)!r}")
            if q.min is not None and q.max is not None:
                checks.append(f"NOT ({value} BETWEEN {q.min!r} AND {q.max!r})")
            return "(" + " OR ".join(checks) + ")"
        if q.type in ("date", "date_or_none"):
            as_date = f"TRY_CAST(NULLIF({value}, '{NEVER}') AS DATE)"
            side = f"{as_date} < {day}" if q.future else f"{as_date} > {day}"
            return f"(year({as_date}) < {EARLIEST_YEAR} OR {side})"
        return "false"

    @staticmethod
    def _typed(q: Question, value: str) -> str:
        if q.type == "int":  # NULL for NaN or past 64 bits: _invalid has made the row bad
            return f"TRY_CAST({value} AS BIGINT)"
        if q.type == "date":
            return f"CAST({value} AS DATE)"
        return value

    # -- messages for bad rows

    def errors(self, number: int, bad: str, raw: str) -> list[str]:
        """The Python engine's messages for a row SQL found bad (re-typed by ``batch``)."""
        record, problem = parse_with_json(raw)  # DuckDB's text of the row (JSON: as given)
        if problem is not None:
            return [problem]
        if self.format == "csv" and isinstance(record, dict):
            row = csv_row(Row(number, screened_on=self.today), record, self.p)
        elif self.format == "parquet" and isinstance(record, dict):  # NULL: no answer
            given = {key: value for key, value in record.items() if value is not None}
            row = record_row(number, given, self.p, self.today)
        else:
            row = record_row(number, record, self.p, self.today)
        if row.errors:
            return row.errors
        names = [n for n in bad.split() if not n.startswith("(")]
        plain = {SCREENED_ON_KEY: _PLAIN_DAY}
        return [f"{name}: {plain.get(name, _PLAIN)}" for name in names] or [_PLAIN]


def _significant(written: str) -> str:
    """The digits of the SQL text ``written`` without its sign, marks and the zeros before the
    first and after the last other digit (as answers._significant_digits counts them)."""
    return f"trim(regexp_replace({written}, '[^0-9]', '', 'g'), '0')"


def _float32_as_written(cell: str) -> str:
    """A FLOAT (32-bit) cell as the DOUBLE of the shortest decimal that is the same float32:
    the 1.2 its writer meant, not its binary value 1.2000000476837158, which is above a limit
    of 1.2 (pandas' float32, Spark's FloatType). NaN and the infinities stay as they are (a
    Python function's NaN comes back NULL)."""
    return f"(CASE WHEN isfinite({cell}) THEN {_FLOAT32}({cell}) ELSE CAST({cell} AS DOUBLE) END)"


def _read_float32_as_written(connection: duckdb.DuckDBPyConnection) -> None:
    """Give ``connection`` the function ``_float32_as_written`` calls: numpy prints a float32
    as the shortest decimal that reads back the same. DuckDB's own text of a FLOAT is not
    always the shortest (343126.125 for 343126.12). A NULL stays NULL, without a call."""
    import numpy  # only for a Parquet file with a FLOAT column

    def as_written(value: float) -> float:
        return float(str(numpy.float32(value)))

    connection.create_function(_FLOAT32, as_written, ["FLOAT"], "DOUBLE")


# -- verdicts from result rows -------------------------------------------------------------


def _verdict(protocol: Protocol, query: Query, row: dict[str, Any]) -> Verdict:
    ctx = _context(protocol, query, row)
    failed = row["failed"].split()
    opened: dict[str, tuple[str, list[str]]] = {}
    for token in row["open"].split():
        criterion, variable, kind = token.split(":")
        status = "confirm" if kind == "confirm" else "unknown"
        opened.setdefault(criterion, (status, []))[1].append(variable)
    found: dict[str, Status] = {}
    details = []  # the outcomes of the criteria not met
    unlisted = status_of_each(protocol, ctx)  # the statuses the query's columns do not give
    for cid in protocol.criteria:
        if cid in failed:
            found[cid] = "failed"
            details.append(given(protocol, cid, ctx, "failed"))
        elif cid in opened:
            status, variables = opened[cid]
            found[cid] = status  # type: ignore[assignment]
            details.append(given(protocol, cid, ctx, status, tuple(variables)))  # type: ignore[arg-type]
        else:  # met, or unknown in a not-eligible row (the query lists no open items then)
            found[cid] = unlisted[cid]
    waits = {
        t.criterion: _waiting(row, t.meets_from, t.window_closed, t.anchor) for t in query.timed
    }
    fields = assembled_fields(
        protocol,
        ctx,
        found,
        details,
        referral=row[REFERRAL_KEY],
        screened_on=row[SCREENED_ON_KEY],
        # the query finds the day; what keeps the criterion open on it is found from ctx
        waits=lambda criterion: open_then(protocol, criterion, ctx, waits.get(criterion)),
    )
    return Verdict(**fields)


def _waiting(row: dict[str, Any], meets: str, closed: str, anchor: str | None) -> Waiting | None:
    clock = (row[anchor] if anchor else None) or SCREENING_DATE
    return Waiting(row[meets], clock, bool(row[closed]))


def _context(protocol: Protocol, query: Query, row: dict[str, Any]) -> Context:
    env: dict[str, Any] = {}
    applicable = set()
    for variable, (value, never, asked) in query.answers.items():
        if asked is not None and not row[asked]:
            continue
        applicable.add(variable)
        answer = row[value]
        if never is not None and row[never]:
            answer = NEVER
        elif isinstance(answer, list):
            answer = tuple(answer)
        env[variable] = answer
    env[SCREENING_DATE] = row[SCREENED_ON_KEY]
    estimated = {}
    for name, (value, index) in query.derived.items():
        derived = protocol.derived[name]
        measured = env.get(derived.measured) if derived.measured else None
        env[name] = measured if measured is not None else row[value]  # the answer as given
        if row[index] is not None:
            use = protocol.estimates[name][row[index] - 1].use
            estimated[name] = Used(use.calculator, {v: env.get(v) for v in use.inputs.values()})
    for name, value in query.tables.items():
        env[name] = row[value]
    return Context(env, frozenset(applicable), estimated)
