"""``screen-bot sql`` and ``screen --engine duckdb``: protocols compiled to SQL, for
population pre-screening where the data already lives."""

from __future__ import annotations

from enum import StrEnum
from itertools import accumulate
from pathlib import Path
from typing import Annotated

import typer

from ..errors import BadInput, ScreenBotError
from . import options
from .output import OutputCut, output_stopped, rows_writer

DIALECTS = ("duckdb", "postgres", "ansi")
_CHUNK = 1000  # rows of output written and flushed at a time by --engine duckdb


class Engine(StrEnum):
    python = "python"
    duckdb = "duckdb"


class Dialect(StrEnum):
    duckdb = "duckdb"
    postgres = "postgres"
    ansi = "ansi"


def sql(
    protocol: Annotated[
        str | None,
        typer.Option("--protocol", "-p", help="Protocol id, or 'all' (one query per protocol)."),
    ] = None,
    dialect: Annotated[Dialect, typer.Option(help="SQL dialect.")] = Dialect.duckdb,
    table: Annotated[
        str, typer.Option(help="The table of answers (schema.table allowed).")
    ] = "answers",
) -> None:
    """Print the protocol as one SQL query for population pre-screening.

    The table has one column per variable (NULL: unknown) plus referral and screened_on
    (NULL: today); see README "Population pre-screening" for the column types. Per row the
    query returns the verdict, the failed criterion ids, the open items
    (criterion:variable:kind), each failed time-based criterion's met-from date, the
    failures that may pass later (criterion:retest|wait), the answers outside their
    plausibility limits (warnings) and each estimate the verdict used (estimate:<name>). A row
    with a value the Python engine refuses (out of range, not a choice, a future date) gets
    no verdict (NULL) and 'invalid' names those variables, space-separated.
    """
    from ..rules.sql import compile_protocol
    from ..rules.sql_expressions import SqlError

    found = options.catalog()
    picked = options.choose(protocol)
    chosen = list(found.protocols.values()) if picked == "all" else [found.protocols[picked]]
    try:
        texts = [compile_protocol(p, dialect.value, table=table).text for p in chosen]
    except SqlError as err:
        raise ScreenBotError(str(err)) from None
    typer.echo(";\n\n".join(texts) + ";")
    if options.left_out(found, protocol, picked):  # (named on stderr by choose)
        raise typer.Exit(2)


def screen_with_duckdb(chosen_id: str | None, file: Path, output: str, input_format: str) -> int:
    """Screen ``file`` on DuckDB, printing what ``screen`` prints; the exit code."""
    import sys

    from ..adapters.duckdb_batch import DuckDBInputError, detect, screen_file
    from ..answers import today
    from ..batch import leave_out
    from ..batch_screen import shown
    from ..protocol.sets import ALL

    if chosen_id == ALL:
        raise BadInput(
            "--protocol all needs --engine python (--engine duckdb screens one protocol)"
        )
    found = options.catalog()
    picked = options.choose(chosen_id, with_all=False, ask=str(file) != "-" and sys.stdin.isatty())
    protocol = found.get(picked)
    left_out = options.left_out(found, chosen_id, picked)  # (named on stderr by choose)
    leave_out(protocol, options.left_out_variables(found, chosen_id, picked))
    if str(file) == "-":
        raise BadInput("--engine duckdb reads a file (CSV, JSON Lines, JSON or Parquet), not stdin")
    if not file.is_file():
        raise BadInput(
            f"cannot read {file}: {'it is a directory' if file.is_dir() else 'no such file'}"
        )
    fmt = detect(file) if input_format == "auto" else input_format
    bad_rows = 0
    pending: list[bytes] = []  # a row's output each
    numbers: list[int] = []  # their rows'
    write_rows = rows_writer(sys.stdout)

    def write() -> None:  # a chunk at a time
        try:
            write_rows(b"".join(pending), lambda: list(accumulate(map(len, pending))))
        except OutputCut as cut:  # `| head`, a pager quit, a full disk: the rest stops
            raise output_stopped(numbers[cut.whole] - 1, log=False, error=cut.error) from None
        pending.clear()
        numbers.clear()

    try:
        for screened in screen_file(protocol, file, fmt, today()):  # type: ignore[arg-type]
            for note in screened.notes:
                typer.echo(f"{file}: header: {note}", err=True)
            if screened.verdict is None:
                bad_rows += 1
                where = "header" if screened.number == 0 else f"row {screened.number}"
                for error in screened.errors:
                    typer.echo(f"{file}: {where}: {error}", err=True)
            else:
                pending.append(shown(screened.number, screened.verdict, output).encode())  # type: ignore[arg-type]
                numbers.append(screened.number)
            if len(pending) == _CHUNK:
                write()
    except DuckDBInputError as err:
        raise BadInput(str(err)) from None
    write()
    return 2 if bad_rows or left_out else 0


def register(app: typer.Typer) -> None:
    app.command()(sql)
