"""The population pre-screening commands: ``screen-bot sql`` and ``screen --engine duckdb``.

Kept apart from cli.py so the wiring can move with the CLI package: :func:`register` adds
the ``sql`` command; :func:`screen_with_duckdb` is what ``screen --engine duckdb`` runs.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .answers import today
from .cli_common import catalog, fail
from .render import verdict_text
from .rules.sql import DIALECTS, SqlError, compile_protocol


class Engine(StrEnum):
    python = "python"
    duckdb = "duckdb"


Dialect = StrEnum("Dialect", {d: d for d in DIALECTS})  # type: ignore[misc]


def register(app: typer.Typer) -> None:
    @app.command()
    def sql(
        protocol: Annotated[
            str | None,
            typer.Option(
                "--protocol", "-p", help="Protocol id, or 'all' (one query per protocol)."
            ),
        ] = None,
        dialect: Annotated[Dialect, typer.Option(help="SQL dialect.")] = Dialect.duckdb,  # type: ignore[valid-type, attr-defined]
        table: Annotated[
            str, typer.Option(help="The table of answers (schema.table allowed).")
        ] = "answers",
    ) -> None:
        """Print the protocol as one SQL query for population pre-screening.

        The table has one column per variable (NULL: unknown) plus referral and
        screened_on (NULL: today); see README "Population pre-screening" for the column
        types. Per row the query returns the verdict, the failed criterion ids, the open
        items (criterion:variable:kind) and each failed time-based criterion's met-from date.
        """
        found = catalog()
        chosen = list(found.protocols.values()) if protocol == "all" else [found.get(protocol)]
        try:
            texts = [compile_protocol(p, dialect.value, table=table).text for p in chosen]
        except SqlError as err:
            raise fail(str(err)) from None
        typer.echo(";\n\n".join(texts) + ";")


def screen_with_duckdb(chosen_id: str | None, file: Path, as_json: bool, input_format: str) -> int:
    """Screen ``file`` on DuckDB, printing what ``screen`` prints; the exit code."""
    from .adapters.duckdb_batch import DuckDBInputError, detect, screen_file

    protocol = catalog().get(chosen_id)
    if str(file) == "-":
        raise fail("--engine duckdb reads a file (CSV, JSON Lines, JSON or Parquet), not stdin")
    if not file.is_file():
        raise fail(f"cannot read {file}: no such file")
    fmt = detect(file) if input_format == "auto" else input_format
    bad_rows = 0
    try:
        for screened in screen_file(protocol, file, fmt, today()):  # type: ignore[arg-type]
            if screened.verdict is None:
                bad_rows += 1
                where = "header" if screened.number == 0 else f"row {screened.number}"
                for error in screened.errors:
                    typer.echo(f"{file}: {where}: {error}", err=True)
                continue
            if as_json:
                record = {"row": screened.number, **screened.verdict.model_dump(mode="json")}
                typer.echo(json.dumps(record, ensure_ascii=False))
            else:
                referral = screened.verdict.referral
                typer.echo(f"--- row {screened.number}" + (f" ({referral})" if referral else ""))
                typer.echo(verdict_text(screened.verdict))
    except DuckDBInputError as err:
        typer.echo(f"error: {err}", err=True)
        return 2
    return 2 if bad_rows else 0
