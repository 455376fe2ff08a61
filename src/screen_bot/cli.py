"""The one entry point: ``screen-bot chat | screen | validate | protocols | start | ...``."""

from __future__ import annotations

import json
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .adapters.terminal import chat as terminal_chat
from .batch import detect_format, read_rows
from .cli_common import ProtocolOption, catalog, fail
from .engine import loggable_answers
from .log_cli import batch_log, open_log
from .protocol import DialogFileError, iter_dialog_files, load
from .protocol.catalog import ProtocolNotFound
from .render import verdict_text
from .session import REFERRAL_PATTERN, Session
from .settings import Settings
from .sql_cli import Engine, screen_with_duckdb
from .verdict import Verdict, build

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Pre-screen patients against clinical-trial protocols: in the terminal, in batch, "
    "or as a Telegram bot. A pre-screen is not an eligibility decision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class OutputFormat(StrEnum):
    json = "json"
    text = "text"


class InputFormat(StrEnum):
    auto = "auto"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"  # --engine duckdb only


@app.command()
def chat(
    protocol: ProtocolOption = None,
    referral: Annotated[
        str | None, typer.Option(help="Referral label, a short code such as R-0423 (never a name).")
    ] = None,
) -> None:
    """Screen one patient in the terminal, one question at a time; log the verdict."""
    if referral is not None and not re.match(REFERRAL_PATTERN, referral):
        raise fail(
            "--referral must be a short code such as R-0423 (letters, digits, . _ / -; "
            "no spaces, at most 32 characters), never a name"
        )
    engine = catalog().engine(protocol)
    numbers: list[int] = []
    with open_log() as log:  # opened first: a log that cannot be written fails before question 1

        def record(verdict: Verdict, session: Session) -> None:  # before the verdict is shown
            answers = loggable_answers(engine.protocol, session.values())
            entry = log.append(verdict, channel="cli", coordinator="cli", answers=answers)
            numbers.append(entry.number)

        verdict = terminal_chat(engine, referral=referral, on_verdict=record)
    if numbers:
        typer.echo(f"Screening log: record {numbers[0]}.")
    raise typer.Exit(0 if verdict is not None else 1)


@app.command()
def screen(
    file: Annotated[
        Path,
        typer.Argument(
            help="Answers: .json (one object or a list), "
            ".jsonl, or .csv with a header row; - for stdin."
        ),
    ],
    protocol: ProtocolOption = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = (
        OutputFormat.text
    ),
    input_format: Annotated[InputFormat, typer.Option(help="Input format (auto: by suffix).")] = (
        InputFormat.auto
    ),
    log: Annotated[
        bool,
        typer.Option(
            "--log", help="Append one screening-log record per screened row (channel batch)."
        ),
    ] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            help="python: the dialog's engine; duckdb: the protocol compiled to SQL, run by "
            "DuckDB on the file (CSV, JSON Lines, JSON, Parquet)."
        ),
    ] = Engine.python,
) -> None:
    """Screen patients from a file without a dialog; every failed criterion is listed.

    Keys/columns are the protocol's variable names, plus an optional 'referral'. An absent
    key, null or an empty cell is unknown. Exit code 2 if any row was bad, else 0.
    With --log, records are written in transactions of up to 1000 rows.
    """
    # -- population pre-screening (sql_cli.py): --engine duckdb ------------------------------
    if engine == Engine.duckdb:
        if log:
            raise fail("--log is not available with --engine duckdb yet; use --engine python")
        as_json = output == OutputFormat.json
        raise typer.Exit(screen_with_duckdb(protocol, file, as_json, input_format.value))
    if input_format == InputFormat.parquet:
        raise fail("Parquet is read by --engine duckdb only")
    # ------------------------------------------------------------------------------------------
    chosen = catalog().get(protocol)
    fmt = (
        input_format.value
        if input_format != InputFormat.auto
        else ("jsonl" if str(file) == "-" else detect_format(file))
    )
    bad_rows = 0
    try:
        stream = sys.stdin if str(file) == "-" else file.open(encoding="utf-8-sig", newline="")
    except OSError as err:
        raise fail(f"cannot read {file}: {err.strerror}") from None
    with stream, batch_log(log) as log_writer:
        for row in read_rows(stream, chosen, fmt):  # type: ignore[arg-type]
            if row.errors:
                bad_rows += 1
                where = "header" if row.number == 0 else f"row {row.number}"
                for error in row.errors:
                    typer.echo(f"{file}: {where}: {error}", err=True)
                continue
            verdict = build(chosen, row.answers, referral=row.referral, screened_on=row.screened_on)
            if log_writer is not None:
                log_writer.add(verdict, loggable_answers(chosen, row.answers))
            if output == OutputFormat.json:
                record = {"row": row.number, **verdict.model_dump(mode="json")}
                typer.echo(json.dumps(record, ensure_ascii=False))
            else:
                typer.echo(f"--- row {row.number}" + (f" ({row.referral})" if row.referral else ""))
                typer.echo(verdict_text(verdict))
    raise typer.Exit(2 if bad_rows else 0)


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Dialog files or directories (default: the dialogs directory)."),
    ] = None,
) -> None:
    """Check dialog files; report every problem with file, line and fix. Exit 2 on a bad file."""
    files: list[Path] = []
    for path in paths or [Settings().dialogs_dir]:
        files += list(iter_dialog_files(path)) if path.is_dir() else [path]
    if not files:
        raise fail("no dialog files (*.yaml) found")
    bad = 0
    for file in files:
        try:
            protocol = load(file)
        except DialogFileError as err:
            bad += 1
            typer.echo(str(err), err=True)
            continue
        typer.echo(
            f"{file}: ok ({protocol.id} version {protocol.version}, "
            f"{len(protocol.order)} questions, {len(protocol.criteria)} criteria)"
        )
    raise typer.Exit(2 if bad else 0)


@app.command()
def protocols() -> None:
    """List the protocols found in the dialogs directory."""
    found = catalog()
    for protocol in found.protocols.values():
        typer.echo(f"{protocol.id}\t{protocol.version}\t{protocol.spec.title}")
    for problem in found.problems:
        typer.echo(f"skipped: {problem}", err=True)
    if not found.protocols:
        raise fail(f"no valid dialog file in {found.directory}")


@app.command()
def run(
    webhook: Annotated[
        str | None,
        typer.Option(
            help="Public HTTPS URL for webhook mode (default: long polling). "
            "Telegram must send SCREEN_BOT_WEBHOOK_SECRET (random if unset)."
        ),
    ] = None,
    listen: Annotated[str, typer.Option(help="Webhook mode: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Webhook mode: port to listen on.")] = 8443,
) -> None:
    """Run the Telegram bot. Needs TELEGRAM_BOT_TOKEN (environment or .env)."""
    from .adapters.telegram.app import run as run_bot

    settings = Settings()
    problem = settings.token_problem()
    if problem:
        raise fail(problem)
    if not settings.allowed_users:
        typer.echo(
            "warning: SCREEN_BOT_ALLOWED_USERS is empty, so the bot refuses everyone", err=True
        )
    run_bot(settings, webhook_url=webhook, listen=listen, port=port)


@app.command()
def start() -> None:
    """Start the main job: the Telegram bot when a token is set, else the terminal dialog."""
    settings = Settings()
    if settings.telegram_bot_token is None:
        typer.echo(
            "No TELEGRAM_BOT_TOKEN set (see .env.example): starting the terminal dialog instead.\n"
        )
        chat(protocol=None, referral=None)
    run(webhook=None)


from .log_cli import register as register_log  # noqa: E402
from .sql_cli import register as register_sql  # noqa: E402

register_sql(app)

register_log(app)


from .training.cli import register as register_training  # noqa: E402

register_training(app)


def main() -> None:
    """Console entry point: errors a user can act on, never a traceback."""
    try:
        app()
    except (ProtocolNotFound, DialogFileError) as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
