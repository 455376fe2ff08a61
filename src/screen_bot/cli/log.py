"""``screen-bot log export | stats | verify | purge``: the screening log.

Every command here reads an existing log: with no database yet, it says so (exit 2)
instead of creating an empty one.
"""

from __future__ import annotations

import io
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from . import options
from .output import owner_only

log_app = typer.Typer(
    rich_markup_mode=None,  # plain help: no "<bool>" after flags, and no rich import
    help="The screening log (ICH E6 8.3.20): one record per finished screening, no patient "
    "identifiers. Export it, count it, check it, purge old records.",
    no_args_is_help=True,
)

ProtocolFilter = Annotated[
    str | None,
    typer.Option(
        "--protocol",
        "-p",
        help="Only screenings under this protocol id.",
        callback=options.utf8_text,
    ),
]
SinceFilter = Annotated[
    datetime | None,
    typer.Option(
        formats=["%Y-%m-%d"],
        help="Only screenings whose date screened (as export gives it) is on or after this date.",
    ),
]


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@log_app.command()
def export(
    protocol: ProtocolFilter = None,
    since: SinceFilter = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="File format.")] = (
        ExportFormat.csv
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write the log a site files: one row per screening, oldest first.

    Columns: screening number, date screened (the screening date: the day a chat, bot or
    check screening started in the site's time zone, SCREEN_BOT_TIMEZONE, else UTC; a batch
    row's screened_on, else its UTC day), referral, protocol, protocol version, verdict,
    reasons for screen failure (criterion id and label, separated by '; '), open items, may
    pass later (a date of an answer named as the verdict names it: 'C-E11 when
    planned_infusion_date is on or after 2026-02-21'), screening id. No answers and no
    patient identifiers.

    CSV is UTF-8 with a byte-order mark and CRLF line ends, so a spreadsheet opened with a
    double click shows ≥, µ and accents right (Excel needs the mark; LibreOffice and
    Python's csv with encoding='utf-8-sig' read it too). A cell starting with = + - @ ',
    tab or carriage return gets a leading apostrophe, so no spreadsheet runs it as a formula.
    JSON Lines is UTF-8 without a mark, one object per line, lists kept as lists.
    A file written with -o is readable by its owner only (0600).
    """
    from ..reports import Reports, write_csv, write_jsonl

    encoding = "utf-8-sig" if fmt == ExportFormat.csv else "utf-8"
    write = write_csv if fmt == ExportFormat.csv else write_jsonl
    with options.database(existing=True) as db:
        records = Reports(db).records(protocol_id=protocol, since=_day(since))
        if output is None:
            stream = io.TextIOWrapper(sys.stdout.buffer, encoding=encoding, newline="")
            try:
                count = write(records, stream)
            finally:
                stream.flush()
                stream.detach()  # leave stdout open
        else:
            with owner_only(output, encoding=encoding, newline="") as file:
                count = write(records, file)
    typer.echo(f"exported {count} screenings" + (f" to {output}" if output else ""), err=True)


@log_app.command()
def stats(
    protocol: ProtocolFilter = None,
    since: SinceFilter = None,
    chart: Annotated[
        Path | None, typer.Option(help="Also draw the screen failures as a bar chart (PNG).")
    ] = None,
) -> None:
    """Counts for the CONSORT diagram: screened, eligible, not eligible, unresolved, and
    screen failures by criterion.

    Counts are of patients: a referral label screened again by the same coordinator
    counts once, by its latest screening (a screening without a label counts on its own).
    A patient failing several criteria counts under each, so the criterion counts may add
    up to more than the patients. One table per protocol.
    """
    from ..reports import chart_png, stats_text
    from ..reports import stats as count

    with options.database(existing=True) as db, db.snapshot() as tx:  # however long it takes
        found = count(tx, protocol_id=protocol, since=_day(since))
    if found:
        typer.echo("\n\n".join(stats_text(s) for s in found))
    else:
        typer.echo("no screenings logged" + (" that match" if protocol or since else ""))
    if chart is not None:
        picture = chart_png(found)
        with owner_only(chart, "wb") as stream:  # failures by criterion: as the export's
            stream.write(picture)
        typer.echo(f"chart written to {chart}", err=True)


HASH_PATTERN = r"^[0-9a-fA-F]{64}$"


@log_app.command()
def verify(
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            help="A head hash printed by an earlier verify and kept elsewhere: the log must "
            "still hold that record unchanged (finds a log cut back or rewritten whole).",
        ),
    ] = None,
) -> None:
    """Check the hash chain: every record unchanged, none missing, none cut from the end;
    and that the log's guards (the triggers refusing a change) are all there.

    Exit 1 listing each problem (which record or guard, what is wrong), 0 when intact. The last
    record's hash is printed: noted elsewhere (a report, an email), it also shows later
    that nobody rewrote the whole log or cut it back (--head HASH). After a purge the
    chain is checked from its checkpoint, which is shown, so a purge you did not run
    stands out.
    """
    import re

    from ..errors import BadInput
    from ..storage import ledger

    if head is not None and not re.match(HASH_PATTERN, head.strip()):
        raise BadInput("--head takes the 64-character hash that 'screen-bot log verify' printed")
    # One snapshot: the head, the checkpoint and the records as one moment left them, while
    # a bot appends (read one by one, a record appended in between was "written outside").
    with options.database(existing=True) as db, db.snapshot() as tx:
        problems = ledger.verify(tx) + ledger.guards_not_in_force(tx)
        anchored, anchor_problems = ledger.anchor(tx, head) if head is not None else (None, [])
        problems += anchor_problems
        number, digest = ledger.head(tx) if not problems else (0, "")
        base = ledger.checkpoint(tx)
        # the stamps of an intact chain are as screen-bot wrote them: comparable
        step = ledger.clock_step(tx) if not problems else None
    if problems:
        for problem in problems:
            typer.echo(problem)
        typer.echo(f"the screening log is NOT intact ({len(problems)} problems)", err=True)
        raise typer.Exit(1)
    typer.echo(f"intact: last record {number}, hash {digest}")
    if base is not None:
        typer.echo(
            f"checked from the purge checkpoint: record {base.number} (hash {base.hash[:16]}…), "
            f"purged before {base.purged_before} on {base.purged_at}; records up to "
            f"{base.number} are no longer in the log"
        )
    else:
        typer.echo("checked from the first record (nothing purged)")
    if head is not None:
        where = f"record {anchored}" if anchored is not None else "the start of the chain"
        typer.echo(f"the head given ({head.strip()[:16]}…) is {where}: still in the log")
    if step is not None:
        typer.echo(
            f"note: record {step.number} is stamped {step.at}, before record {step.previous} "
            f"({step.previous_at}): the server's clock went back between them (records are "
            "numbered in the order written; a purge stops at the first record stamped on or "
            "after its date)"
        )


# VACUUM, autovacuum's too, only marks a deleted row's space free for new rows.
POSTGRES_KEEPS_PURGED = (
    "PostgreSQL keeps their bytes in screening_log's files until new records reuse the "
    "space: to rewrite the table without them, run VACUUM FULL screening_log as its owner "
    "(it locks the log meanwhile: the bot's screenings wait)"
)


@log_app.command()
def purge(
    before: Annotated[
        datetime,
        typer.Option(formats=["%Y-%m-%d"], help="Remove records made before this UTC date."),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove old records (retention) and keep the chain verifiable.

    Records are removed oldest first, up to the first record made on or after DATE. In
    the same transaction the number and hash of the last removed record are kept as a
    checkpoint in the log's head row; verify then checks the first remaining record
    against the checkpoint, so a record deleted any other way is still found. Purge
    refuses (exit 2) when verify finds a problem, so it cannot erase the evidence.
    Screening numbers are never reused. Without --yes it asks first: anything but yes
    (n, or no answer) purges nothing (exit 2). On SQLite the records leave the file; on
    PostgreSQL their bytes stay in the table's files until VACUUM FULL screening_log.
    """
    from ..errors import ScreenBotError
    from ..storage import ledger

    day = before.date()
    with options.database(existing=True) as db:
        if not yes and not _confirmed(f"Remove every screening-log record made before {day}?"):
            raise ScreenBotError(
                "not confirmed: nothing was purged (add --yes to purge without asking)"
            )
        with db.transaction(long=True) as tx:  # a big log's purge may take long
            removed = ledger.purge(tx, day)
            kept = ledger.kept_before(tx, day)
        db.forget_deleted()
        dialect = db.dialect
    typer.echo(f"purged {removed} records made before {day}")
    if kept is not None:
        typer.echo(
            f"kept {kept.count} records made before {day}: record {kept.stopped_by}, stamped "
            f"{kept.stopped_at}, comes before them, and the log is purged from its start only "
            "(the server's clock was wrong: ahead when that record was made, or set back "
            "after it); they go with a purge past that record's date"
        )
    if removed and dialect == "postgres":
        typer.echo(POSTGRES_KEEPS_PURGED)


def _confirmed(question: str) -> bool:
    """Whether ``question`` is answered yes; no answer (the end of the input, Ctrl-C) is no."""
    try:
        return typer.confirm(question)
    except typer.Abort:
        typer.echo("")  # the error is a line of its own, not the prompt's end
        return False


def register(app: typer.Typer) -> None:
    app.add_typer(log_app, name="log")
