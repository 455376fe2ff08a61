"""The screening log (ICH E6 essential document 8.3.20) as a hash-chained ledger.

Records are appended and never changed; a re-screen is a new record. Each record stores
the SHA-256 of its own fields and of the record before it, and a one-row head table holds
the number and hash of the last record, written in the same transaction as the records.
So :func:`verify` finds a record changed, deleted from the middle, or cut from the end.
:func:`purge` removes the oldest records and moves a checkpoint (the number and hash of
the last purged record) into the head, so the chain stays verifiable from there.
Triggers refuse UPDATE, and DELETE above the checkpoint, as a guard against accidents;
the hash chain is what detects a deliberate change.

Records of one screening share its ``screening_id``: one record per protocol screened
(a screening against ``all`` writes one per protocol). The column came after the first
records: a record without it (NULL) is hashed exactly as before, so old chains verify. So
came ``screened_on``, the screening date the verdict counted its windows from (a batch
row's ``screened_on``, the day a chat started), which the exports give as the date screened.

No patient identifiers: a referral label, the coordinator (Telegram user id or ``cli``),
the protocol, the verdict with its reasons and open items, and the answers by variable.
Statistics, exports and charts of the records live in :mod:`screen_bot.reports`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError

from ..errors import LogCorrupt
from ..verdict import OpenItem, ProtocolRef, Verdict, VerdictValue, met_on_its_day
from .db import Store, Tx, on_open, schema

Channel = Literal["telegram", "cli", "batch"]
CHANNELS: tuple[str, ...] = get_args(Channel)
GENESIS = "0" * 64  # the "previous hash" of the first record ever written
FIELDS = (
    "number",
    "at",
    "channel",
    "coordinator",
    "referral",
    "protocol_id",
    "protocol_version",
    "protocol_sha256",
    "verdict",
    "reasons",
    "open_items",
    "answers",
)
# Columns that came later, hashed only when set, so older records hash as they did.
LINK = "screening_id"
SCREENED = "screened_on"  # the screening date the verdict counted its windows from
LATER = (LINK, SCREENED)
COLUMNS = (*FIELDS, *LATER)
SELECT = f"SELECT {', '.join(COLUMNS)}, prev_hash, hash FROM screening_log"
INSERT = (
    f"INSERT INTO screening_log ({', '.join(COLUMNS)}, prev_hash, hash)"
    f" VALUES ({', '.join('?' for _ in COLUMNS)}, ?, ?)"
)
MISSING_HEAD = "the screening log head is missing; run 'screen-bot log verify'"
NEVER_CHANGED = "screening log records are never changed"
ONLY_BY_PURGE = "screening log records are removed only by purge"
ONLY_FORWARD = "the screening log head only moves forward"


def _log_table(number: str) -> str:
    """The log's columns; ``number``: the SQL type of a number that may pass 2^31."""
    return f"""screening_log (
    number {number} PRIMARY KEY,      -- the screening number, never reused
    at TEXT NOT NULL,                 -- ISO 8601 UTC, to the second
    channel TEXT NOT NULL,
    coordinator TEXT NOT NULL,
    referral TEXT,
    protocol_id TEXT NOT NULL,
    protocol_version TEXT NOT NULL,
    protocol_sha256 TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reasons TEXT NOT NULL,            -- JSON list of LoggedReason
    open_items TEXT NOT NULL,         -- JSON list of OpenItem
    answers TEXT NOT NULL,            -- JSON object, variable -> value
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    {LINK} TEXT                 -- links the records of one screening (NULL: older)
)"""


def _head_table(number: str) -> str:
    return f"""screening_log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    head_number {number} NOT NULL,     -- the last record written (0: none yet)
    head_hash TEXT NOT NULL,
    base_number {number} NOT NULL,     -- checkpoint: the last purged record (0: none)
    base_hash TEXT NOT NULL,
    purged_before TEXT,               -- the date of the last purge's --before
    purged_at TEXT
)"""


@dataclass(frozen=True)
class Guard:
    """A trigger that refuses a change to the log by accident: its name, the table it is
    on, what it refuses (for messages), and the SQL that creates it."""

    name: str
    table: str
    refuses: str
    create: str


_SQLITE_GUARDS = (
    Guard(
        "screening_log_no_update",
        "screening_log",
        "changing a record",
        "CREATE TRIGGER IF NOT EXISTS screening_log_no_update BEFORE UPDATE ON screening_log"
        f" BEGIN SELECT RAISE(ABORT, '{NEVER_CHANGED}'); END",
    ),
    Guard(
        "screening_log_no_delete",
        "screening_log",
        "deleting a record but by purge",
        "CREATE TRIGGER IF NOT EXISTS screening_log_no_delete BEFORE DELETE ON screening_log"
        " WHEN OLD.number > COALESCE((SELECT base_number FROM screening_log_head WHERE id = 1),"
        f" -1) BEGIN SELECT RAISE(ABORT, '{ONLY_BY_PURGE}'); END",
    ),
    Guard(
        "screening_log_head_forward",
        "screening_log_head",
        "moving the log head back",
        "CREATE TRIGGER IF NOT EXISTS screening_log_head_forward BEFORE UPDATE ON"
        " screening_log_head WHEN NEW.head_number < OLD.head_number OR NEW.base_number <"
        f" OLD.base_number BEGIN SELECT RAISE(ABORT, '{ONLY_FORWARD}'); END",
    ),
)


def _create_sqlite(tx: Tx) -> None:
    tx.execute(f"CREATE TABLE IF NOT EXISTS {_log_table('INTEGER')}")
    columns = {row[1] for row in tx.all("PRAGMA table_info(screening_log)")}
    if LINK not in columns:  # a log written before screening ids: add the column (NULLs)
        tx.execute(f"ALTER TABLE screening_log ADD COLUMN {LINK} TEXT")
    tx.execute(f"CREATE INDEX IF NOT EXISTS screening_log_{LINK} ON screening_log ({LINK})")
    tx.execute(f"CREATE TABLE IF NOT EXISTS {_head_table('INTEGER')}")
    for guard in _SQLITE_GUARDS:  # guards against accidents
        tx.execute(guard.create)


# The same tables and guards in PostgreSQL: trigger functions in PL/pgSQL, and TRUNCATE
# (which fires no row trigger) refused as well.
_PG_GUARD_FUNCTIONS = (
    f"""CREATE FUNCTION screening_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION '{NEVER_CHANGED}';
    END IF;
    IF TG_OP = 'TRUNCATE' OR OLD.number > COALESCE(
        (SELECT base_number FROM screening_log_head WHERE id = 1), -1) THEN
        RAISE EXCEPTION '{ONLY_BY_PURGE}';
    END IF;
    RETURN OLD;
END $$""",
    f"""CREATE FUNCTION screening_log_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.head_number < OLD.head_number OR NEW.base_number < OLD.base_number THEN
        RAISE EXCEPTION '{ONLY_FORWARD}';
    END IF;
    RETURN NEW;
END $$""",
)
_PG_GUARDS = (
    Guard(
        "screening_log_no_change",
        "screening_log",
        "changing a record, or deleting one but by purge",
        "CREATE TRIGGER screening_log_no_change BEFORE UPDATE OR DELETE ON screening_log"
        " FOR EACH ROW EXECUTE FUNCTION screening_log_guard()",
    ),
    Guard(
        "screening_log_no_truncate",
        "screening_log",
        "TRUNCATE of the log",
        "CREATE TRIGGER screening_log_no_truncate BEFORE TRUNCATE ON screening_log"
        " FOR EACH STATEMENT EXECUTE FUNCTION screening_log_guard()",
    ),
    Guard(
        "screening_log_head_forward",
        "screening_log_head",
        "moving the log head back",
        "CREATE TRIGGER screening_log_head_forward BEFORE UPDATE ON screening_log_head"
        " FOR EACH ROW EXECUTE FUNCTION screening_log_head_guard()",
    ),
)
_CREATE_POSTGRES = (
    f"CREATE TABLE {_log_table('BIGINT')}",
    f"CREATE INDEX screening_log_{LINK} ON screening_log ({LINK})",
    f"CREATE TABLE {_head_table('BIGINT')}",
    *_PG_GUARD_FUNCTIONS,
    *(guard.create for guard in _PG_GUARDS),
)


def _add_screened_on_sqlite(tx: Tx) -> None:
    columns = {row[1] for row in tx.all("PRAGMA table_info(screening_log)")}
    if SCREENED not in columns:
        tx.execute(f"ALTER TABLE screening_log ADD COLUMN {SCREENED} TEXT")


schema(
    "screening_log",
    sqlite=[_create_sqlite, _add_screened_on_sqlite],
    # 2: the screening date (a batch row's screened_on, the day a chat started)
    postgres=[_CREATE_POSTGRES, f"ALTER TABLE screening_log ADD COLUMN {SCREENED} TEXT"],
)


def _new_log(tx: Tx) -> bool:
    """No head and no records (a missing head beside records is for verify to report);
    reading both tables at every open also finds one of them dropped."""
    head = tx.one("SELECT 1 FROM screening_log_head")
    record = tx.one("SELECT 1 FROM screening_log LIMIT 1")
    return head is None and record is None


@on_open(needed=_new_log)
def _start_head(tx: Tx) -> None:
    """Only a new, empty log gets a head: a missing head beside records is a problem
    verify reports."""
    tx.execute(
        "INSERT INTO screening_log_head (id, head_number, head_hash, base_number, base_hash)"
        " SELECT 1, 0, ?, 0, ? WHERE NOT EXISTS (SELECT 1 FROM screening_log_head)"
        " AND NOT EXISTS (SELECT 1 FROM screening_log)",
        (GENESIS, GENESIS),
    )


class LoggedReason(BaseModel):
    criterion: str
    kind: Literal["inclusion", "exclusion"]
    label: str
    recoverable: Literal["retest", "wait"] | None = None
    meets_from: date | None = None
    # The date meets_from is of (a planned infusion date); None: the screening date, and
    # every reason logged before it was kept. Part of the stored reasons text, so a record
    # written without it reads and hashes as before.
    meets_from_anchor: str | None = None
    # What still keeps it open from meets_from (empty: met then). Written only when not
    # empty, so a reason met on its date is stored, and hashes, as before.
    meets_from_open_on: list[str] = Field(default_factory=list, exclude_if=met_on_its_day)


class LogRecord(BaseModel):
    number: int
    at: datetime
    channel: Channel
    coordinator: str
    referral: str | None
    protocol: ProtocolRef
    verdict: VerdictValue
    reasons: list[LoggedReason]
    open_items: list[OpenItem]
    answers: dict[str, Any]
    screening_id: str | None = None
    screened_on: date | None = None  # None: written before the column; the date of ``at``
    prev_hash: str
    hash: str


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _hash(fields: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 of the record's stored fields and the previous record's hash.

    ``screening_id`` counts only when set: a record from before it hashes as it did.
    """
    hashed = {k: v for k, v in fields.items() if k in FIELDS or (k in LATER and v is not None)}
    return hashlib.sha256(_json({**hashed, "prev_hash": prev_hash}).encode()).hexdigest()


def utc_text(at: datetime | None) -> str:
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None:
        raise ValueError("'at' must be timezone-aware (UTC)")
    return at.astimezone(UTC).isoformat(timespec="seconds")


def day_start(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat(timespec="seconds")


def entry(
    verdict: Verdict,
    *,
    channel: str,
    coordinator: str,
    answers: dict[str, Any],
    at: datetime | None = None,
    screening_id: str | None = None,
) -> dict[str, Any]:
    """The stored columns of a new record, all but its number (checked before any write)."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    if not coordinator:
        raise ValueError("coordinator must not be empty")
    reasons = [
        LoggedReason.model_validate(r.model_dump(include=set(LoggedReason.model_fields)))
        for r in verdict.reasons
    ]
    return {
        "at": utc_text(at),
        "channel": channel,
        "coordinator": coordinator,
        "referral": verdict.referral,
        "protocol_id": verdict.protocol.id,
        "protocol_version": verdict.protocol.version,
        "protocol_sha256": verdict.protocol.sha256,
        "verdict": verdict.verdict,
        "reasons": _json([r.model_dump(mode="json") for r in reasons]),
        "open_items": _json([i.model_dump(mode="json") for i in verdict.open_items]),
        "answers": _json(answers),
        LINK: screening_id,
        SCREENED: verdict.screened_on.isoformat(),
    }


def _record(row: Sequence[Any]) -> LogRecord:
    values = dict(zip(COLUMNS, row[: len(COLUMNS)], strict=True))
    try:
        return LogRecord(
            number=values["number"],
            at=values["at"],
            channel=values["channel"],
            coordinator=values["coordinator"],
            referral=values["referral"],
            protocol=ProtocolRef(
                id=values["protocol_id"],
                version=values["protocol_version"],
                sha256=values["protocol_sha256"],
            ),
            verdict=values["verdict"],
            reasons=json.loads(values["reasons"]),
            open_items=json.loads(values["open_items"]),
            answers=json.loads(values["answers"]),
            screening_id=values[LINK],
            screened_on=values[SCREENED],
            prev_hash=row[-2],
            hash=row[-1],
        )
    except (ValueError, ValidationError) as err:  # JSONDecodeError is a ValueError
        raise LogCorrupt(
            f"screening log record {values['number']} cannot be read "
            f"({type(err).__name__}); run 'screen-bot log verify'"
        ) from None


def _head(tx: Tx, *, lock: bool = False) -> tuple[int, str, int, str] | None:
    """The head row; with ``lock``, kept from other writers until the transaction ends
    (the chain is appended to by one writer at a time)."""
    row = tx.one(
        "SELECT head_number, head_hash, base_number, base_hash FROM screening_log_head"
        " WHERE id = 1" + (tx.for_update if lock else "")
    )
    return (row[0], row[1], row[2], row[3]) if row else None


# -- writing -------------------------------------------------------------------------------


def append_entries(tx: Tx, entries: Sequence[dict[str, Any]]) -> list[LogRecord]:
    """Chain and insert records (from :func:`entry`), moving the head; call inside a transaction."""
    head = _head(tx, lock=True)
    if head is None:
        raise LogCorrupt(MISSING_HEAD)
    number, prev_hash = head[0], head[1]
    written = []
    for fields in entries:
        number += 1
        row = {"number": number, **fields}
        digest = _hash(row, prev_hash)
        stored = tuple(row.get(c) for c in COLUMNS)
        tx.execute(INSERT, (*stored, prev_hash, digest))
        written.append(_record([*stored, prev_hash, digest]))
        prev_hash = digest
    tx.execute(
        "UPDATE screening_log_head SET head_number = ?, head_hash = ? WHERE id = 1",
        (number, prev_hash),
    )
    return written


def append(
    tx: Tx,
    verdict: Verdict,
    *,
    channel: str,
    coordinator: str,
    answers: dict[str, Any],
    at: datetime | None = None,
    screening_id: str | None = None,
) -> LogRecord:
    """Append one record and return it with its number; call inside a transaction."""
    fields = entry(
        verdict,
        channel=channel,
        coordinator=coordinator,
        answers=answers,
        at=at,
        screening_id=screening_id,
    )
    return append_entries(tx, [fields])[-1]


class LogWriter:
    """Appends batch records in transactions of up to ``chunk`` records (or 2 s of them).

    Records wait in memory (at most ``chunk``, and the rest of a row's) and are written in
    one transaction, so the database is locked only while writing and a crash loses whole
    chunks, never part of one. A transaction ends only where a row's records end
    (``row_ends``: a row screened against several protocols has one record each), so a row
    is logged whole or not at all. Used as a context manager, what is pending is written on
    the way out, also after an error in the caller's loop (those verdicts were shown, so
    they are logged).
    """

    max_delay = 2.0

    def __init__(self, db: Store, *, channel: str, coordinator: str, chunk: int = 1000) -> None:
        self.db, self.channel, self.coordinator, self.chunk = db, channel, coordinator, chunk
        self.pending: list[dict[str, Any]] = []
        self.since = 0.0
        self.written = 0

    def add(
        self,
        verdict: Verdict,
        answers: dict[str, Any],
        at: datetime | None = None,
        screening_id: str | None = None,
        *,
        row_ends: bool = True,
    ) -> None:
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append(
            entry(
                verdict,
                channel=self.channel,
                coordinator=self.coordinator,
                answers=answers,
                at=at,
                screening_id=screening_id,
            )
        )
        if row_ends and (
            len(self.pending) >= self.chunk or time.monotonic() - self.since > self.max_delay
        ):
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if pending:
            with self.db.transaction() as tx:
                append_entries(tx, pending)
            self.written += len(pending)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


# -- reading -------------------------------------------------------------------------------


def records(
    tx: Tx,
    protocol_id: str | None = None,
    since: date | None = None,
    coordinator: str | None = None,
    limit: int | None = None,
) -> Iterator[LogRecord]:
    """Matching records in screening-number order; with ``limit``, only the latest ones.

    ``since`` is a date, inclusive, of the date screened (the screening date: a chat's is
    the site's day, not the UTC day). Records are read one at a time.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if protocol_id is not None:
        clauses.append("protocol_id = ?")
        params.append(protocol_id)
    if since is not None:  # the date screened: a record before that column, its time's
        clauses.append(f"COALESCE({SCREENED}, substr(at, 1, 10)) >= ?")
        params.append(since.isoformat())
    if coordinator is not None:
        clauses.append("coordinator = ?")
        params.append(coordinator)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    query = f"{SELECT}{where} ORDER BY number"
    if limit is not None:
        query = (
            f"SELECT * FROM ({SELECT}{where} ORDER BY number DESC LIMIT ?) AS latest"
            " ORDER BY number"
        )
        params.append(limit)
    for row in tx.execute(query, params):
        yield _record(row)


def latest_screening(tx: Tx, coordinator: str, label: str) -> list[int]:
    """The record numbers of the coordinator's latest logged screening with this referral
    (or screening id), in order; empty when there is none (a label that is not UTF-8, e.g.
    a lone surrogate a Bot API relay may send, is in no record and no driver binds it)."""
    if not label or not _is_utf8(label):
        return []
    row = tx.one(
        f"SELECT number, {LINK} FROM screening_log WHERE coordinator = ?"
        f" AND (referral = ? OR {LINK} = ?) ORDER BY number DESC LIMIT 1",
        (coordinator, label, label),
    )
    if row is None:
        return []
    number, screening_id = row
    if screening_id is None:
        return [number]
    rows = tx.all(
        f"SELECT number FROM screening_log WHERE {LINK} = ? ORDER BY number", (screening_id,)
    )
    return [found for (found,) in rows]


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def logged_since(tx: Tx, coordinator: str, referral: str, since: datetime) -> list[int]:
    """The numbers of the coordinator's records with this referral logged at or after
    ``since`` (to the second), in order."""
    rows = tx.all(
        "SELECT number FROM screening_log WHERE coordinator = ? AND referral = ? AND at >= ?"
        " ORDER BY number",
        (coordinator, referral, utc_text(since)),
    )
    return [number for (number,) in rows]


# -- integrity and retention ---------------------------------------------------------------


def _span(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}–{last} are"


def verify(tx: Tx) -> list[str]:
    """Problems found by walking the hash chain from the checkpoint; [] when intact."""
    head = _head(tx)
    if head is None:
        found = tx.one("SELECT count(*) FROM screening_log")[0]
        return [f"the log head is missing but {found} records remain"] if found else []
    head_number, head_hash, last, prev_hash = head
    problems = []
    if last and checkpoint(tx) is None:
        problems.append(f"the checkpoint (record {last}) was not set by a purge (no purge date)")
    for row in tx.execute(f"{SELECT} ORDER BY number"):
        fields = dict(zip(COLUMNS, row[: len(COLUMNS)], strict=True))
        number, stored_prev, stored_hash = fields["number"], row[-2], row[-1]
        if number <= last:
            problems.append(f"record {number}: present although purged up to {last}")
        elif number > last + 1:
            problems.append(f"{_span(last + 1, number - 1)} missing (deleted)")
        elif stored_prev != prev_hash:
            problems.append(
                f"record {number}: does not follow record {last} "
                f"(record {last} was changed or replaced)"
            )
        if _hash(fields, stored_prev) != stored_hash:
            problems.append(f"record {number}: changed after it was written")
        last, prev_hash = max(last, number), stored_hash
    if last < head_number:
        problems.append(f"{_span(last + 1, head_number)} missing at the end (deleted)")
    elif last > head_number:
        problems.append(f"{_span(head_number + 1, last)} not in the log head (written outside)")
    elif prev_hash != head_hash:
        problems.append(f"record {last}: does not match the log head (changed or replaced)")
    return problems


def _guards(tx: Tx) -> tuple[Guard, ...]:
    return _PG_GUARDS if tx.dialect == "postgres" else _SQLITE_GUARDS


def _guard_states(tx: Tx) -> dict[str, bool]:
    """The log's triggers there are, by name: whether each fires (on PostgreSQL a trigger
    may be disabled, or set to fire only on a replica)."""
    if tx.dialect == "postgres":
        rows = tx.all(
            "SELECT tgname, tgenabled IN ('O', 'A') FROM pg_trigger WHERE NOT tgisinternal"
            " AND tgrelid IN (to_regclass('screening_log'), to_regclass('screening_log_head'))"
        )
    else:
        rows = tx.all(
            "SELECT name, 1 FROM sqlite_master WHERE type = 'trigger'"
            " AND tbl_name IN ('screening_log', 'screening_log_head')"
        )
    return {name: bool(fires) for name, fires in rows}


def guards_not_in_force(tx: Tx) -> list[str]:
    """The log's guards that were dropped (or disabled), one line each; [] when all hold.

    The hash chain finds a changed record whatever the guards; they refuse the change by
    accident in the first place, and README promises them."""
    states = _guard_states(tx)
    return [
        f"the log's guard {guard.name} (it refuses {guard.refuses}) is "
        f"{'disabled' if guard.name in states else 'missing'}: 'screen-bot migrate' run as "
        "the tables' owner puts it back"
        for guard in _guards(tx)
        if not states.get(guard.name, False)
    ]


def restore_guards(tx: Tx) -> list[str]:
    """Put back the log's guards that were dropped or disabled; return their names. Call
    inside a transaction, as the tables' owner (another role fails: StorageFailed)."""
    states = _guard_states(tx)
    restored = [guard for guard in _guards(tx) if not states.get(guard.name, False)]
    if restored and tx.dialect == "postgres":
        for function in _PG_GUARD_FUNCTIONS:  # as written first, if it was changed
            tx.execute(function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    for guard in restored:
        if guard.name in states:  # disabled (PostgreSQL)
            tx.execute(f"ALTER TABLE {guard.table} ENABLE TRIGGER {guard.name}")
        else:
            tx.execute(guard.create)
    return [guard.name for guard in restored]


@dataclass(frozen=True)
class Checkpoint:
    """Where verification starts after a purge: the last record removed, and the purge."""

    number: int
    hash: str
    purged_before: str
    purged_at: str


def checkpoint(tx: Tx) -> Checkpoint | None:
    """The purge checkpoint the chain is verified from; None when nothing was purged."""
    row = tx.one(
        "SELECT base_number, base_hash, purged_before, purged_at FROM screening_log_head"
        " WHERE id = 1 AND base_number > 0 AND purged_before IS NOT NULL"
    )
    return Checkpoint(row[0], row[1], row[2], row[3] or "") if row else None


def anchor(tx: Tx, digest: str) -> tuple[int | None, list[str]]:
    """Check a head printed earlier (``log verify`` shows it) against the log now.

    Returns (the record it names, or None for the empty log's or the checkpoint's hash;
    problems). Its record must still be in the log with that hash: a log cut back to an
    earlier head, rewritten, or purged past it by hand no longer has it.
    """
    digest = digest.strip().lower()
    if digest == GENESIS:
        return None, []
    row = tx.one("SELECT number FROM screening_log WHERE hash = ?", (digest,))
    if row is not None:
        return row[0], []
    base = checkpoint(tx)
    if base is not None and base.hash == digest:
        return None, []
    detail = (
        f"; a purge since then (checkpoint record {base.number}) may have removed it: "
        "check against a head printed after that purge"
        if base is not None
        else ""
    )
    return None, [
        f"the head {digest[:16]}… is not in the log: records were removed from the end or "
        f"rewritten since it was printed{detail}"
    ]


def head(tx: Tx) -> tuple[int, str]:
    """(number, hash) of the last record: note it elsewhere to anchor the chain."""
    found = _head(tx)
    if found is None:
        raise LogCorrupt(MISSING_HEAD)
    return found[0], found[1]


@dataclass(frozen=True)
class ClockStep:
    """A record stamped before the record before it: the server's clock went back between
    them (the chain is still intact: records are numbered in the order they were written)."""

    number: int
    at: str
    previous: int
    previous_at: str


def clock_step(tx: Tx) -> ClockStep | None:
    """The first record stamped before the record before it, if any."""
    previous: tuple[int, str] | None = None
    for number, at in tx.execute("SELECT number, at FROM screening_log ORDER BY number"):
        if previous is not None and datetime.fromisoformat(at) < datetime.fromisoformat(
            previous[1]
        ):
            return ClockStep(number, at, *previous)
        previous = (number, at)
    return None


@dataclass(frozen=True)
class KeptBefore:
    """Records made before a purge's date that it kept: a purge removes the log from its
    start only, so the first record stamped on or after the date (``stopped_by``) keeps
    every record after it, whenever those were made."""

    count: int
    stopped_by: int
    stopped_at: str


def kept_before(tx: Tx, before: date) -> KeptBefore | None:
    """The records made before ``before`` that a purge to ``before`` keeps (None: none)."""
    start = day_start(before)
    (count,) = tx.one("SELECT count(*) FROM screening_log WHERE at < ?", (start,))
    if not count:
        return None
    number, at = tx.one(
        "SELECT number, at FROM screening_log WHERE at >= ? ORDER BY number LIMIT 1", (start,)
    )
    return KeptBefore(count, number, at)


def purge(tx: Tx, before: date) -> int:
    """Remove the oldest records, up to the first one made on or after ``before`` (UTC).

    Call inside a transaction. The number and hash of the last removed record become the
    checkpoint the chain is verified from. Refuses (LogCorrupt) when the chain is broken:
    purging must not erase the evidence. Returns how many records were removed.
    """
    _head(tx, lock=True)  # no append in between
    problems = verify(tx)
    if problems:
        raise LogCorrupt("the screening log is not intact: " + "; ".join(problems))
    head_number, _, base_number, _ = _head(tx) or (0, "", 0, "")
    first_kept = tx.one(
        "SELECT min(number) FROM screening_log WHERE at >= ?", (day_start(before),)
    )[0]
    last = head_number if first_kept is None else first_kept - 1
    if last <= base_number:
        return 0
    (last_hash,) = tx.one("SELECT hash FROM screening_log WHERE number = ?", (last,))
    tx.execute(
        "UPDATE screening_log_head SET base_number = ?, base_hash = ?,"
        " purged_before = ?, purged_at = ? WHERE id = 1",
        (last, last_hash, before.isoformat(), utc_text(None)),
    )
    removed: int = tx.execute("DELETE FROM screening_log WHERE number <= ?", (last,)).rowcount
    if tx.dialect == "sqlite":
        # An index page split leaves stale copies of the cells it moved in the page's free
        # gap, which secure_delete does not clear: some purged screening ids stayed in the
        # file. Rebuilt, the index holds only kept records, and its old pages are freed,
        # which secure_delete zeroes (0.1 s for a year's log).
        tx.execute("REINDEX screening_log")
    return removed
