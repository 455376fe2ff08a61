"""``screen-bot start | chat | screen``: screening one patient, or a file of them."""

from __future__ import annotations

import gc
import json
import os
import sys
from collections import deque
from contextlib import closing
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import BadInput, StorageFailed
from . import options
from .options import CheckProtocolOption, ProtocolOption
from .output import OutputCut, log_stopped, output_stopped, rows_writer
from .population import Engine, screen_with_duckdb

if TYPE_CHECKING:
    from ..protocol.catalog import Catalog
    from ..service import ScreeningService
    from ..storage import Store


class OutputFormat(StrEnum):
    json = "json"
    text = "text"


class InputFormat(StrEnum):
    auto = "auto"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"  # --engine duckdb only


Details = Annotated[
    bool,
    typer.Option(
        "--details/--no-details",
        help="Show beside each question the criteria it decides and the variable names.",
    ),
]


def chat(
    protocol: ProtocolOption = None,
    referral: Annotated[
        str | None,
        typer.Option(
            help="Referral label, a short code such as R-0423 (never a name); "
            "asked first when not given (an empty line skips it)."
        ),
    ] = None,
    details: Details = False,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Go on with the unfinished screening of this referral code (one left open "
            "by a terminal dialog that was killed) at its current question.",
            callback=options.utf8_text,
        ),
    ] = None,
) -> None:
    """Screen one patient in the terminal, one step at a time; log the verdict.

    A step is one question, or a checklist of yes/no questions answered in one line.
    'quit' stops (exit 0) and keeps nothing of the unfinished screening; so does the end
    of the input (exit 1). Ctrl-C keeps it for --resume (exit 130).
    """
    from ..referrals import check_referral

    if resume is not None and (protocol is not None or referral is not None):
        raise BadInput("--resume goes on with a screening as it is: no --protocol or --referral")
    if referral is not None:
        check_referral(referral)
    found = options.catalog()
    if resume is not None:
        _converse(found, details, resume=resume)
        return
    protocol = options.choose(protocol)
    _converse(found, details, protocol=protocol, referral=referral)


CHECK_PROMPT = (
    "Type the values known, e.g. 'age 40, male, lvef 55' (one or more lines), then "
    + ("Ctrl-Z and Enter" if os.name == "nt" else "Ctrl-D on a new line")
    + " to check them."
)


def check(
    values: Annotated[
        str | None,
        typer.Argument(
            help="The values known, e.g. 'age 40, male, lvef 55, qtc 430' (blina-dli's names); "
            "one 'name value' per line also works. Without it, read from standard input (at a "
            "terminal: type them, then Ctrl-D)."
        ),
    ] = None,
    protocol: CheckProtocolOption = None,
    go_on: Annotated[
        bool,
        typer.Option(
            "--continue",
            help="Then screen the patient in the terminal, asking only what is missing.",
        ),
    ] = False,
    details: Details = False,
) -> None:
    """Quick check: what the values known already decide, and what is still unknown.

    Names are the protocol's variables or their aliases (learn lists them); a bare choice
    word ('male') answers the one question it is a choice of; 'ref R-0423' gives the
    referral. Everything that cannot be used is listed with the reason. With several
    protocols and no --protocol, every protocol is checked. Exit 0; 2 if nothing could be
    read, or if a broken dialog file's protocol was left out (with 'all', or no --protocol).
    """
    import sys

    from ..results import Checked, Problem
    from ..service import TERMINAL

    if go_on and values is None:
        raise BadInput("with --continue, give the values as an argument (the answers follow)")
    if values is None and sys.stdin.isatty():  # (on stderr: the output stays the result)
        typer.echo(CHECK_PROMPT, err=True)
    text = (values if values is not None else sys.stdin.read()).removeprefix("\ufeff")
    found = options.catalog()
    with options.database() as db:
        service = _terminal_service(found, db, details)
        (result,) = service.check(TERMINAL, text, protocol)
        if isinstance(result, Problem):
            raise BadInput(result.message)
        assert isinstance(result, Checked)
        typer.echo(result.text)
        if result.check_id is None or (result.left_out and not go_on):
            raise typer.Exit(2)
    if go_on:
        typer.echo("")
        _converse(found, details, check_id=result.check_id)


def _converse(
    found: object,
    details: bool,
    *,
    protocol: str | None = None,
    referral: str | None = None,
    check_id: str | None = None,
    resume: str | None = None,
) -> None:
    """Run the terminal dialog to its verdict and say which log records it made."""
    from ..adapters.terminal import Stopped
    from ..adapters.terminal import chat as terminal_chat
    from ..protocol.catalog import Catalog
    from ..storage import grants

    assert isinstance(found, Catalog)
    # opened first: a database that cannot be written fails before question 1
    with options.database() as db:
        grants.refuse_missing(db)  # a role that cannot write all of a screening, too
        service = _terminal_service(found, db, details)
        try:
            finished = terminal_chat(
                service,
                protocol,
                referral,
                check_id=check_id,
                resume=resume,
                ttl_hours=options.settings().session_ttl_hours,
            )
        except Stopped as stop:
            raise typer.Exit(0 if stop.by_quit else 1) from None
    numbers = finished.log_numbers
    if len(numbers) == 1:
        typer.echo(f"Screening log: record {numbers[0]}.")
    else:
        typer.echo(
            f"Screening log: records {', '.join(map(str, numbers))} "
            f"(screening {finished.screening_id})."
        )


def _terminal_service(found: Catalog, db: Store, details: bool) -> ScreeningService:
    """The screening service of a terminal command, in the site's time zone and with its
    sessions' lifetime (SCREEN_BOT_TIMEZONE, SCREEN_BOT_SESSION_TTL_HOURS)."""
    from ..service import ScreeningService

    configured = options.settings()
    return ScreeningService(
        found,
        db,
        channel="cli",
        details=details,
        zone=configured.time_zone,
        lifetime=configured.session_lifetime,
    )


def screen(
    file: Annotated[
        Path,
        typer.Argument(
            help="Answers: .json (one object or a list), .jsonl/.ndjson, .csv with a "
            "header row, or .parquet/.pq (--engine duckdb); - for stdin.",
            readable=False,  # one that cannot be read is one line naming it, as any error
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
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=64,
            help="Worker processes (output stays in row order). Default 1.",
        ),
    ] = 1,
    engine: Annotated[
        Engine,
        typer.Option(
            help="python: the dialog's engine; duckdb: the protocol compiled to SQL, run by "
            "DuckDB on the file (CSV, JSON Lines, JSON, Parquet)."
        ),
    ] = Engine.python,
) -> None:
    """Screen patients from a file without a dialog; every failed criterion is listed.

    With --protocol all, each row is screened against every protocol: one output object
    per row with a verdict per protocol (best first), one log record per protocol.

    Keys/columns are the protocol's variable names, plus an optional 'referral' and an
    optional 'screened_on' (ISO date, default today UTC, once per run; "" in JSON is a bad
    value). An absent key, null or an empty cell is unknown; dates are YYYY-MM-DD or none.
    JSON output is one compact object per row. A bad row is reported on stderr with its
    row number and the others are still screened; a file that is not UTF-8 text is
    refused. Exit code 2 if any row was bad, or if a broken dialog file's protocol was left
    out (each named on stderr), else 0. With --log, records are written in transactions of
    up to 1000 rows. Output closed early (| head), a full disk or a failed write to the log
    stops the run, exit 2, saying the last row written and logged.
    """
    from contextlib import nullcontext

    if sys.stdout is None:  # closed from the start (`>&-`): screen nothing, log nothing
        raise output_stopped(0, log)
    if engine == Engine.duckdb:
        if log:
            raise BadInput("--log is not available with --engine duckdb; use --engine python")
        gc.enable()  # (cli/entry.py starts screen without it; the Python engine: screen_file)
        raise typer.Exit(screen_with_duckdb(protocol, file, output.value, input_format.value))
    if input_format == InputFormat.parquet:
        raise BadInput("Parquet is read by --engine duckdb only")

    from ..answers import today
    from ..batch import detect_format, leave_out
    from ..batch_screen import screen_file, workers
    from ..heap import keep_freed_memory
    from ..protocol.sets import ALL
    from ..verdict import Verdict

    found = options.catalog()
    # with the answers on standard input there is no asking which protocol
    # a batch run asks only a person at a terminal; a script gets the error at once
    picked = options.choose(protocol, ask=str(file) != "-" and sys.stdin.isatty())
    chosen = found.protocol_set if picked == ALL else found.protocols[picked]
    left_out = options.left_out(found, protocol, picked)  # (named on stderr by choose)
    leave_out(chosen, options.left_out_variables(found, protocol, picked))
    fmt = (
        input_format.value
        if input_format != InputFormat.auto
        else ("jsonl" if str(file) == "-" else detect_format(file))
    )
    try:
        raw = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    except OSError as err:
        raise BadInput(f"cannot read {file}: {err.strerror}") from None
    # The workers are forked before the store is opened, so that none holds its connection
    # (see batch_screen.workers).
    with workers(chosen, jobs) as pool:
        db = options.database() if log else None
        if db is not None:  # the store's modules are imported only for a run that logs
            from ..storage.ledger import LogWriter

            writer = LogWriter(db, channel="batch", coordinator="cli")
        else:
            writer = None
        bad_rows = 0
        written_to = 0  # the last row all of whose output went out
        stopped_at: int | None = 1  # the first row not screened yet (None: all were)
        logged_rows = LoggedRows()
        write = rows_writer(sys.stdout)
        keep_freed_memory()
        day = today()  # once: a run across midnight (UTC) screens every row on one day
        chunks = screen_file(raw, chosen, fmt, output.value, log, jobs, day, pool)  # type: ignore[arg-type]
        try:
            with raw, db or nullcontext(), writer or nullcontext(), closing(chunks):
                for chunk in chunks:
                    bad_rows += chunk.bad_rows
                    for problem in chunk.problems:
                        typer.echo(f"{file}: {problem}", err=True)
                    cut = None
                    try:  # a chunk at a time: typer.echo flushes every line
                        write(b"".join(chunk.output), chunk.output_ends)
                    except OutputCut as stopped:  # `| head`, a pager quit, a full disk
                        cut = stopped
                    whole = len(chunk.rows) if cut is None else cut.whole
                    written_to = chunk.rows[whole - 1] if whole else written_to
                    if cut is not None:
                        stopped_at = chunk.rows[cut.whole]
                    elif chunk.last_row:
                        stopped_at = chunk.last_row + 1
                    if writer is not None and whole:  # logged once all of its row's output went out
                        per_row = len(chunk.logged) // len(chunk.rows)  # records: one a protocol
                        for i, row in enumerate(chunk.rows[:whole]):
                            records = chunk.logged[i * per_row : (i + 1) * per_row]
                            for j, (verdict, answers, screening_id) in enumerate(records, 1):
                                writer.add(
                                    Verdict.model_validate_json(verdict),
                                    json.loads(answers),
                                    screening_id=screening_id,
                                    row_ends=j == per_row,
                                )
                            logged_rows.added(row, per_row)
                        logged_rows.written(writer.written)
                    if cut is not None:  # the rest would go nowhere: stop, saying where
                        raise output_stopped(chunk.rows[cut.whole] - 1, log, cut.error)
                stopped_at = None
        except StorageFailed as err:  # a transaction of the log's, after others were saved
            if writer is None:
                raise
            logged_to = logged_rows.written(writer.written)
            raise log_stopped(err, logged_to, written_to, stopped_at) from None
        finally:
            if writer is not None:
                typer.echo(f"screening log: {writer.written} records appended", err=True)
    raise typer.Exit(2 if bad_rows or left_out else 0)


class LoggedRows:
    """The last row all of whose records are in the log, from a LogWriter's count of the
    records it wrote (a row has one record a protocol; those waiting in the writer are not
    written yet). Only the rows not yet known to be written are kept."""

    def __init__(self) -> None:
        self.up_to = 0
        self._added = 0
        self._waiting: deque[tuple[int, int]] = deque()  # (records added with it, its row)

    def added(self, row: int, records: int) -> None:
        self._added += records
        self._waiting.append((self._added, row))

    def written(self, records: int) -> int:
        """The last row whose records are among the first ``records`` added."""
        while self._waiting and self._waiting[0][0] <= records:
            self.up_to = self._waiting.popleft()[1]
        return self.up_to


def start() -> None:
    """Start the main job: the Telegram bot when a token is set, else the terminal dialog."""
    from .bot import run

    if options.settings().telegram_bot_token is None:
        typer.echo(
            "No TELEGRAM_BOT_TOKEN set (see .env.example): starting the terminal dialog instead.\n"
        )
        chat(protocol=None, referral=None, details=False)
        return
    run(webhook=None)


def register(app: typer.Typer) -> None:
    for command in (start, chat, check, screen):
        app.command()(command)
