"""The screening log (ICH E6 essential document 8.3.20): one record per finished screening.

Records are appended and never changed; a re-screen is a new record. Each record stores
the SHA-256 of its own fields and of the record before it, and a one-row head table holds
the number and hash of the last record, written in the same transaction as the records.
So :meth:`ScreeningLog.verify` finds a record changed, deleted from the middle, or cut
from the end. ``purge`` removes the oldest records and moves a checkpoint (the number and
hash of the last purged record) into the head, so the chain stays verifiable from there.
Triggers refuse UPDATE, and DELETE above the checkpoint, as a guard against accidents;
the hash chain is what detects a deliberate change.

No patient identifiers: a referral label, the coordinator (Telegram user id or ``cli``),
the protocol, the verdict with its reasons and open items, and the answers by variable.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, Literal, get_args

from pydantic import BaseModel, ValidationError

from .store import connect, transaction
from .verdict import OpenItem, ProtocolRef, Verdict, VerdictValue

Channel = Literal["telegram", "cli", "batch"]
CHANNELS: tuple[str, ...] = get_args(Channel)
GENESIS = "0" * 64  # the "previous hash" of the first record ever written
# OWASP CSV injection: these starts get an apostrophe; so does "'" itself, so that
# removing one leading apostrophe always gives the stored text back.
ESCAPED_START = ("=", "+", "-", "@", "\t", "\r", "'")

SCHEMA = """
CREATE TABLE IF NOT EXISTS screening_log (
    number INTEGER PRIMARY KEY,       -- the screening number, never reused
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
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS screening_log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    head_number INTEGER NOT NULL,     -- the last record written (0: none yet)
    head_hash TEXT NOT NULL,
    base_number INTEGER NOT NULL,     -- checkpoint: the last purged record (0: none)
    base_hash TEXT NOT NULL,
    purged_before TEXT,               -- the date of the last purge's --before
    purged_at TEXT
);
CREATE TRIGGER IF NOT EXISTS screening_log_no_update BEFORE UPDATE ON screening_log
BEGIN SELECT RAISE(ABORT, 'screening log records are never changed'); END;
CREATE TRIGGER IF NOT EXISTS screening_log_no_delete BEFORE DELETE ON screening_log
WHEN OLD.number > COALESCE((SELECT base_number FROM screening_log_head WHERE id = 1), -1)
BEGIN SELECT RAISE(ABORT, 'screening log records are removed only by purge'); END;
CREATE TRIGGER IF NOT EXISTS screening_log_head_forward BEFORE UPDATE ON screening_log_head
WHEN NEW.head_number < OLD.head_number OR NEW.base_number < OLD.base_number
BEGIN SELECT RAISE(ABORT, 'the screening log head only moves forward'); END;
"""
# Only a new, empty log gets a head: a missing head beside records is a problem verify reports.
INIT_HEAD = """
INSERT INTO screening_log_head (id, head_number, head_hash, base_number, base_hash)
SELECT 1, 0, :genesis, 0, :genesis
WHERE NOT EXISTS (SELECT 1 FROM screening_log_head) AND NOT EXISTS (SELECT 1 FROM screening_log)
"""
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
SELECT = f"SELECT {', '.join(FIELDS)}, prev_hash, hash FROM screening_log"
INSERT = (
    f"INSERT INTO screening_log ({', '.join(FIELDS)}, prev_hash, hash)"
    f" VALUES ({', '.join(':' + f for f in FIELDS)}, :prev_hash, :hash)"
)


class LogCorrupt(Exception):
    """The log cannot be read or written as it is; ``screen-bot log verify`` says why."""


class LoggedReason(BaseModel):
    criterion: str
    kind: Literal["inclusion", "exclusion"]
    label: str
    recoverable: Literal["retest", "wait"] | None = None
    meets_from: date | None = None


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
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class CriterionCount:
    criterion: str
    label: str
    patients: int


@dataclass
class Stats:
    """Counts of one protocol, per patient: a referral counts once, by its latest screening."""

    protocol_id: str
    screenings: int = 0
    patients: int = 0
    eligible: int = 0
    not_eligible: int = 0
    unresolved: int = 0
    failures: list[CriterionCount] = field(default_factory=list)  # most frequent first


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _hash(fields: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 of the record's stored fields and the previous record's hash."""
    return hashlib.sha256(_json({**fields, "prev_hash": prev_hash}).encode()).hexdigest()


def _utc_text(at: datetime | None) -> str:
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None:
        raise ValueError("'at' must be timezone-aware (UTC)")
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _day_start(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat(timespec="seconds")


def _fields(
    verdict: Verdict, channel: str, coordinator: str, answers: dict[str, Any], at: datetime | None
) -> dict[str, Any]:
    """The stored columns of a new record, all but its number."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    if not coordinator:
        raise ValueError("coordinator must not be empty")
    reasons = [
        LoggedReason.model_validate(r.model_dump(include=set(LoggedReason.model_fields)))
        for r in verdict.reasons
    ]
    return {
        "at": _utc_text(at),
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
    }


def _record(row: Sequence[Any]) -> LogRecord:
    values = dict(zip(FIELDS, row[: len(FIELDS)], strict=True))
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
            prev_hash=row[-2],
            hash=row[-1],
        )
    except (ValueError, ValidationError) as err:  # JSONDecodeError is a ValueError
        raise LogCorrupt(
            f"screening log record {values['number']} cannot be read "
            f"({type(err).__name__}); run 'screen-bot log verify'"
        ) from None


def _span(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}–{last} are"


class ScreeningLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)
        self.db.executescript(SCHEMA)
        self.db.execute(INIT_HEAD, {"genesis": GENESIS})

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ScreeningLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _head(self) -> tuple[int, str, int, str] | None:
        return self.db.execute(
            "SELECT head_number, head_hash, base_number, base_hash"
            " FROM screening_log_head WHERE id = 1"
        ).fetchone()

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        verdict: Verdict,
        *,
        channel: str,
        coordinator: str,
        answers: dict[str, Any],
        at: datetime | None = None,
    ) -> LogRecord:
        """Append one record (committed before it returns) and return it with its number."""
        row = self._write([_fields(verdict, channel, coordinator, answers, at)])[-1]
        return _record([*(row[f] for f in FIELDS), row["prev_hash"], row["hash"]])

    def writer(self, *, channel: str, coordinator: str, chunk: int = 1000) -> LogWriter:
        """A buffered appender for batch runs: see :class:`LogWriter`."""
        return LogWriter(self, channel=channel, coordinator=coordinator, chunk=chunk)

    def _write(self, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Chain and insert records, moving the head, in one transaction."""
        rows = []
        with transaction(self.db) as db:
            head = self._head()
            if head is None:
                raise LogCorrupt("the screening log head is missing; run 'screen-bot log verify'")
            number, prev_hash = head[0], head[1]
            for fields in pending:
                number += 1
                row = {"number": number, **fields}
                digest = _hash(row, prev_hash)
                row |= {"prev_hash": prev_hash, "hash": digest}
                db.execute(INSERT, row)
                rows.append(row)
                prev_hash = digest
            db.execute(
                "UPDATE screening_log_head SET head_number = ?, head_hash = ? WHERE id = 1",
                (number, prev_hash),
            )
        return rows

    # -- reading ---------------------------------------------------------------------------

    def _where(
        self, protocol_id: str | None, since: date | None, coordinator: str | None
    ) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if protocol_id is not None:
            clauses.append("protocol_id = ?")
            params.append(protocol_id)
        if since is not None:
            clauses.append("at >= ?")  # same ISO format throughout: text order is time order
            params.append(_day_start(since))
        if coordinator is not None:
            clauses.append("coordinator = ?")
            params.append(coordinator)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def records(
        self,
        protocol_id: str | None = None,
        since: date | None = None,
        coordinator: str | None = None,
        limit: int | None = None,
    ) -> Iterator[LogRecord]:
        """Matching records in screening-number order; with ``limit``, only the latest ones.

        ``since`` is a UTC date, inclusive. Records are read one at a time.
        """
        where, params = self._where(protocol_id, since, coordinator)
        query = f"{SELECT}{where} ORDER BY number"
        if limit is not None:
            query = f"SELECT * FROM ({SELECT}{where} ORDER BY number DESC LIMIT ?) ORDER BY number"
            params.append(limit)
        for row in self.db.execute(query, params):
            yield _record(row)

    def stats(
        self,
        protocol_id: str | None = None,
        since: date | None = None,
        coordinator: str | None = None,
    ) -> list[Stats]:
        """Counts per protocol (sorted by id), for the CONSORT diagram.

        A patient is a referral label within a protocol, counted once by its latest
        screening; a screening without a label is a patient of its own. A patient failing
        several criteria counts under each of them.
        """
        latest: dict[tuple[str, str | int], tuple[str, list[LoggedReason]]] = {}
        screenings: Counter[str] = Counter()
        for record in self.records(protocol_id, since, coordinator):
            pid = record.protocol.id
            screenings[pid] += 1
            patient = record.referral if record.referral is not None else record.number
            latest.pop((pid, patient), None)  # re-insert: dicts keep the latest order
            latest[(pid, patient)] = (record.verdict, record.reasons)
        result = {pid: Stats(pid, screenings=n) for pid, n in sorted(screenings.items())}
        failed: dict[str, Counter[str]] = {pid: Counter() for pid in result}
        labels: dict[tuple[str, str], str] = {}  # from the latest screening failing it
        for (pid, _), (verdict, reasons) in latest.items():
            stats = result[pid]
            stats.patients += 1
            setattr(stats, verdict, getattr(stats, verdict) + 1)
            failed[pid].update({r.criterion for r in reasons})
            labels |= {(pid, r.criterion): r.label for r in reasons}
        for pid, stats in result.items():
            stats.failures = [
                CriterionCount(criterion, labels[(pid, criterion)], n)
                for criterion, n in sorted(failed[pid].items(), key=lambda c: (-c[1], c[0]))
            ]
        return list(result.values())

    # -- integrity and retention -----------------------------------------------------------

    def verify(self) -> list[str]:
        """Problems found by walking the hash chain from the checkpoint; [] when intact."""
        head = self._head()
        if head is None:
            found = self.db.execute("SELECT count(*) FROM screening_log").fetchone()[0]
            return [f"the log head is missing but {found} records remain"] if found else []
        head_number, head_hash, last, prev_hash = head
        problems = []
        for row in self.db.execute(f"{SELECT} ORDER BY number"):
            fields = dict(zip(FIELDS, row[: len(FIELDS)], strict=True))
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

    def head(self) -> tuple[int, str]:
        """(number, hash) of the last record: note it elsewhere to anchor the chain."""
        head = self._head()
        if head is None:
            raise LogCorrupt("the screening log head is missing; run 'screen-bot log verify'")
        return head[0], head[1]

    def purge(self, before: date) -> int:
        """Remove the oldest records, up to the first one made on or after ``before`` (UTC).

        The number and hash of the last removed record become the checkpoint the chain is
        verified from. Refuses (LogCorrupt) when the chain is broken: purging must not
        erase the evidence. Returns how many records were removed.
        """
        with transaction(self.db) as db:
            problems = self.verify()
            if problems:
                raise LogCorrupt("the screening log is not intact: " + "; ".join(problems))
            head_number, _, base_number, _ = self._head() or (0, "", 0, "")
            first_kept = db.execute(
                "SELECT min(number) FROM screening_log WHERE at >= ?", (_day_start(before),)
            ).fetchone()[0]
            last = head_number if first_kept is None else first_kept - 1
            if last <= base_number:
                return 0
            (last_hash,) = db.execute(
                "SELECT hash FROM screening_log WHERE number = ?", (last,)
            ).fetchone()
            db.execute(
                "UPDATE screening_log_head SET base_number = ?, base_hash = ?,"
                " purged_before = ?, purged_at = ? WHERE id = 1",
                (last, last_hash, before.isoformat(), _utc_text(None)),
            )
            return db.execute("DELETE FROM screening_log WHERE number <= ?", (last,)).rowcount


class LogWriter:
    """Appends batch records in transactions of up to ``chunk`` records (or 2 s of them).

    Records wait in memory (at most ``chunk``) and are written in one transaction, so the
    database is locked only while writing and a crash loses whole chunks, never part of
    one. Used as a context manager, what is pending is written on the way out, also after
    an error in the caller's loop (those verdicts were shown, so they are logged).
    """

    max_delay = 2.0

    def __init__(self, log: ScreeningLog, *, channel: str, coordinator: str, chunk: int) -> None:
        self.log, self.channel, self.coordinator, self.chunk = log, channel, coordinator, chunk
        self.pending: list[dict[str, Any]] = []
        self.since = 0.0
        self.written = 0

    def add(self, verdict: Verdict, answers: dict[str, Any], at: datetime | None = None) -> None:
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append(_fields(verdict, self.channel, self.coordinator, answers, at))
        if len(self.pending) >= self.chunk or time.monotonic() - self.since > self.max_delay:
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if pending:
            self.log._write(pending)
            self.written += len(pending)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


# -- export and chart ----------------------------------------------------------------------

CSV_COLUMNS = (
    "screening number",
    "date screened (UTC)",
    "referral",
    "protocol",
    "protocol version",
    "verdict",
    "reasons for screen failure",
    "open items",
    "may pass later",
)
OPEN_KIND = {"missing": "missing data", "judgment": "investigator judgment"}


def cell(value: str) -> str:
    """A spreadsheet cell never read as a formula; drop one leading "'" to get the text back."""
    return "'" + value if value.startswith(ESCAPED_START) else value


def _later(reason: LoggedReason) -> str:
    if reason.meets_from:
        return f"{reason.criterion} from {reason.meets_from.isoformat()}"
    return f"{reason.criterion} {reason.recoverable}"


def _open_items(items: list[OpenItem]) -> list[str]:
    """One entry per criterion: 'I8d label: crcl_ml_min, weight_kg (missing data)'."""
    variables: dict[tuple[str, str, str], list[str]] = {}
    for item in items:
        variables.setdefault((item.criterion, item.label, item.kind), []).append(item.variable)
    return [
        f"{criterion} {label}: {', '.join(names)} ({OPEN_KIND[kind]})"
        for (criterion, label, kind), names in variables.items()
    ]


def export_row(record: LogRecord) -> dict[str, Any]:
    """What a site files about one screening (no answers, no patient identifiers)."""
    return {
        "screening_number": record.number,
        "date": record.at.date().isoformat(),
        "referral": record.referral,
        "protocol": record.protocol.id,
        "protocol_version": record.protocol.version,
        "verdict": record.verdict,
        "reasons": [f"{r.criterion} {r.label}" for r in record.reasons],
        "open_items": _open_items(record.open_items),
        "may_pass_later": [_later(r) for r in record.reasons if r.recoverable],
    }


def write_csv(records: Iterable[LogRecord], stream: IO[str]) -> int:
    """One row per screening; list cells joined with '; '. Open ``stream`` with newline=''."""
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        row = export_row(record)
        values = [v if not isinstance(v, list) else "; ".join(v) for v in row.values()]
        writer.writerow([cell(v) if isinstance(v, str) else v for v in values])
        count += 1
    return count


def write_jsonl(records: Iterable[LogRecord], stream: IO[str]) -> int:
    count = 0
    for record in records:
        stream.write(json.dumps(export_row(record), ensure_ascii=False) + "\n")
        count += 1
    return count


def stats_text(stats: Stats) -> str:
    """The counts as a plain-text table (monospace)."""
    lines = [
        f"{stats.protocol_id}: {stats.patients} patients screened "
        f"({stats.screenings} screenings; a re-screened referral counts once, by its latest)",
        f"  eligible      {stats.eligible:>6}",
        f"  not eligible  {stats.not_eligible:>6}",
        f"  unresolved    {stats.unresolved:>6}",
    ]
    if stats.failures:
        lines.append(
            "Screen failures by criterion (patients; one failing several counts under each):"
        )
        width = max(len(c.criterion) for c in stats.failures)
        lines += [f"  {c.criterion:<{width}}  {c.patients:>6}  {c.label}" for c in stats.failures]
    return "\n".join(lines)


def chart_png(stats: Sequence[Stats]) -> bytes:
    """A bar chart of screen failures by criterion, one panel per protocol, as PNG bytes."""
    from matplotlib.figure import Figure  # no pyplot: no display, no global state
    from matplotlib.ticker import MaxNLocator

    heights = [max(len(s.failures), 1) for s in stats] or [1]
    figure = Figure(
        figsize=(9, 1.2 + 0.35 * sum(heights) + 0.9 * len(heights)), layout="constrained"
    )
    panels = figure.subplots(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
    for axes, s in zip(panels, stats, strict=False):
        axes.set_title(
            f"{s.protocol_id}: {s.patients} patients screened ({s.screenings} screenings): "
            f"{s.eligible} eligible, {s.not_eligible} not eligible, {s.unresolved} unresolved",
            fontsize=10,
            loc="left",
        )
        failures = s.failures[::-1]  # most frequent on top
        bars = axes.barh(
            [f"{c.criterion} {c.label}" for c in failures], [c.patients for c in failures]
        )
        axes.bar_label(bars, padding=2)
        axes.margins(x=0.08)
        axes.set_xlabel("patients failing the criterion (a patient may fail several)")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if not failures:
            axes.text(
                0.5, 0.5, "no screen failures", ha="center", va="center", transform=axes.transAxes
            )
    if not stats:
        panels[0].text(0.5, 0.5, "no screenings logged", ha="center", va="center")
        panels[0].set_axis_off()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150)
    return buffer.getvalue()
