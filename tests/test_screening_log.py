"""The screening log: hash chain, purge, counts, export escaping, file mode, batch writes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from patients import ELIGIBLE, SCREENED_ON
from screen_bot import reports
from screen_bot.errors import LogCorrupt
from screen_bot.protocol import Protocol
from screen_bot.protocol.loader import load
from screen_bot.reports import chart_png, export_row, write_csv
from screen_bot.session import REFERRAL_PATTERN, Session
from screen_bot.storage import Database, ledger, sessions
from screen_bot.storage import ledger as screening_log
from screen_bot.storage.ledger import FIELDS, LogRecord, LogWriter
from screen_bot.verdict import OpenItem, ProtocolRef, Reason, Verdict, build
from telegram_offline import png_size

PROTOCOL = ProtocolRef(id="blina-dli", version="1.0", sha256="ab" * 32)
DAY = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
HOSTILE = [
    '=cmd|" /C calc"!A0',
    "+1",
    "-2",
    "@x",
    "\tTAB",
    "\rCR",
    '=HYPERLINK("http://x")',
    'comma, "quote"',
    "line\nbreak",
    "crlf\r\nbreak",
    "ünïcödé ≥ 2 µmol/L 日本 🙂",
    "'already quoted",
    "",
]


def reason(criterion: str, label: str | None = None, **extra: object) -> Reason:
    return Reason(
        criterion=criterion,
        kind="exclusion" if criterion.startswith("E") else "inclusion",
        label=label if label is not None else f"label of {criterion}",
        source="source text",
        answers={},
        **extra,  # type: ignore[arg-type]
    )


def verdict(
    referral: str | None,
    *failed: str,
    value: str | None = None,
    protocol: ProtocolRef = PROTOCOL,
    open_items: list[OpenItem] | None = None,
) -> Verdict:
    return Verdict(
        referral=referral,
        verdict=value or ("not_eligible" if failed else "eligible"),  # type: ignore[arg-type]
        reasons=[reason(c) for c in failed],
        open_items=open_items or [],
        protocol=protocol,
        screened_on=date(2026, 3, 1),
    )


class ScreeningLog:
    """The ledger and reports on one database, each call its own transaction (test shorthand)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.database = Database(path)
        self.db = sqlite3.connect(path, isolation_level=None)  # plain SQL, triggers in force

    def append(self, verdict: Verdict, **kwargs: object) -> LogRecord:
        at = kwargs.get("at")
        if isinstance(at, datetime):  # screened the day it is logged, as a chat is
            verdict = verdict.model_copy(update={"screened_on": at.date()})
        with self.database.transaction() as tx:
            return ledger.append(tx, verdict, **kwargs)  # type: ignore[arg-type]

    def records(self, **filters: object) -> Iterator[LogRecord]:
        return ledger.records(self.database.read(), **filters)  # type: ignore[arg-type]

    def verify(self) -> list[str]:
        return ledger.verify(self.database.read())

    def purge(self, before: date) -> int:
        with self.database.transaction() as tx:
            return ledger.purge(tx, before)

    def stats(self, **filters: object) -> list[reports.Stats]:
        return reports.stats(self.database.read(), **filters)  # type: ignore[arg-type]

    def writer(self, *, channel: str, coordinator: str, chunk: int) -> LogWriter:
        return LogWriter(self.database, channel=channel, coordinator=coordinator, chunk=chunk)

    def close(self) -> None:
        self.db.close()
        self.database.close()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[ScreeningLog]:
    opened = ScreeningLog(tmp_path / "screen-bot.sqlite3")
    yield opened
    opened.close()


def fill(log: ScreeningLog, n: int, start: datetime = DAY) -> None:
    for i in range(n):
        log.append(
            verdict(f"R-{i}", "I1"),
            channel="cli",
            coordinator="cli",
            answers={"age": 70 + i},
            at=start + timedelta(days=i),
        )


def raw(log: ScreeningLog) -> sqlite3.Connection:
    """Another connection with the guard triggers dropped, as anyone with the sqlite3 shell."""
    db = sqlite3.connect(log.path, isolation_level=None)
    db.execute("DROP TRIGGER screening_log_no_update")
    db.execute("DROP TRIGGER screening_log_no_delete")
    return db


# -- records and the chain -------------------------------------------------------------------


def test_append_returns_the_record_with_its_number(log: ScreeningLog) -> None:
    v = verdict("R-1", "I4a")
    v.reasons[0].recoverable = "wait"
    v.reasons[0].meets_from = date(2026, 5, 1)
    first = log.append(v, channel="telegram", coordinator="123456", answers={"age": 30}, at=DAY)
    second = log.append(v, channel="telegram", coordinator="123456", answers={"age": 30})
    assert (first.number, second.number) == (1, 2)  # a re-screen is a new record
    assert first.at == DAY and first.channel == "telegram" and first.coordinator == "123456"
    assert first.protocol == PROTOCOL and first.verdict == "not_eligible"
    assert [(r.criterion, r.meets_from) for r in first.reasons] == [("I4a", date(2026, 5, 1))]
    assert first.answers == {"age": 30}
    assert second.prev_hash == first.hash
    assert [r.number for r in log.records()] == [1, 2]
    assert log.verify() == []


def test_append_refuses_unknown_channel_and_naive_time(log: ScreeningLog) -> None:
    with pytest.raises(ValueError, match="channel"):
        log.append(verdict("R-1"), channel="email", coordinator="cli", answers={})
    with pytest.raises(ValueError, match="timezone"):
        log.append(
            verdict("R-1"), channel="cli", coordinator="cli", answers={}, at=datetime(2026, 1, 1)
        )
    assert list(log.records()) == []


def test_records_are_never_updated_or_deleted_through_sql(log: ScreeningLog) -> None:
    fill(log, 2)
    with pytest.raises(sqlite3.DatabaseError, match="never changed"):
        log.db.execute("UPDATE screening_log SET verdict = 'eligible' WHERE number = 1")
    with pytest.raises(sqlite3.DatabaseError, match="only by purge"):
        log.db.execute("DELETE FROM screening_log WHERE number = 2")
    with pytest.raises(sqlite3.DatabaseError, match="forward"):
        log.db.execute("UPDATE screening_log_head SET head_number = 1")


@pytest.mark.parametrize("column", ["verdict", "referral", "reasons", "answers", "at"])
def test_verify_finds_a_changed_field(log: ScreeningLog, column: str) -> None:
    fill(log, 3)
    raw(log).execute(f"UPDATE screening_log SET {column} = '\"x\"' WHERE number = 2")
    assert log.verify() == ["record 2: changed after it was written"]


def test_verify_finds_a_changed_record_whose_hash_was_recomputed(log: ScreeningLog) -> None:
    fill(log, 3)
    db = raw(log)
    for number, problem in [
        (2, "record 3: does not follow record 2"),
        (3, "record 3: does not match the log head"),
    ]:
        row = db.execute(
            f"SELECT {', '.join(FIELDS)}, prev_hash FROM screening_log WHERE number = ?", (number,)
        ).fetchone()
        fields = dict(zip(FIELDS, row[:-1], strict=True)) | {"verdict": "eligible"}
        forged = screening_log._hash(fields, row[-1])
        db.execute(
            "UPDATE screening_log SET verdict = 'eligible', hash = ? WHERE number = ?",
            (forged, number),
        )
        assert any(p.startswith(problem) for p in log.verify()), log.verify()


@pytest.mark.parametrize(
    ("deleted", "problem"),
    [
        ([1], "record 1 is missing (deleted)"),
        ([3], "record 3 is missing (deleted)"),
        ([2, 3, 4], "records 2–4 are missing (deleted)"),
        ([5], "record 5 is missing at the end (deleted)"),
        ([4, 5], "records 4–5 are missing at the end (deleted)"),
    ],
)
def test_verify_finds_deleted_records(log: ScreeningLog, deleted: list[int], problem: str) -> None:
    fill(log, 5)
    db = raw(log)
    for number in deleted:
        db.execute("DELETE FROM screening_log WHERE number = ?", (number,))
    assert log.verify() == [problem]


def test_verify_finds_a_missing_head(log: ScreeningLog) -> None:
    fill(log, 2)
    raw(log).execute("DELETE FROM screening_log_head")
    assert log.verify() == ["the log head is missing but 2 records remain"]
    reopened = ScreeningLog(log.path)  # reopening must not quietly make a new head
    assert reopened.verify() == ["the log head is missing but 2 records remain"]
    with pytest.raises(LogCorrupt):
        reopened.append(verdict("R-9"), channel="cli", coordinator="cli", answers={})


def test_a_corrupt_row_is_reported_not_a_traceback(log: ScreeningLog) -> None:
    fill(log, 1)
    raw(log).execute("UPDATE screening_log SET reasons = 'not json'")
    with pytest.raises(LogCorrupt, match="record 1 cannot be read"):
        list(log.records())


# -- purge -----------------------------------------------------------------------------------


def test_purge_removes_old_records_and_keeps_the_chain_verifiable(log: ScreeningLog) -> None:
    fill(log, 6)  # 1 March .. 6 March
    assert log.purge(date(2026, 3, 4)) == 3
    assert [r.number for r in log.records()] == [4, 5, 6]
    assert log.verify() == []
    assert log.purge(date(2026, 3, 4)) == 0
    new = log.append(verdict("R-new"), channel="cli", coordinator="cli", answers={})
    assert new.number == 7  # numbers are never reused
    assert log.verify() == []
    raw(log).execute("DELETE FROM screening_log WHERE number = 4")  # not through purge
    assert log.verify() == ["record 4 is missing (deleted)"]


def test_purge_everything_then_append(log: ScreeningLog) -> None:
    fill(log, 3)
    assert log.purge(date(2027, 1, 1)) == 3
    assert list(log.records()) == [] and log.verify() == []
    assert log.append(verdict("R-9"), channel="cli", coordinator="cli", answers={}).number == 4
    assert log.verify() == []


def test_purge_stops_at_the_first_record_to_keep(log: ScreeningLog) -> None:
    fill(log, 2, start=DAY)
    fill(log, 1, start=DAY - timedelta(days=30))  # written later with an older time
    assert log.purge(date(2026, 3, 2)) == 1  # record 2 is kept, so record 3 is too
    assert [r.number for r in log.records()] == [2, 3]
    assert log.verify() == []


def test_a_clock_that_went_back_is_named_and_so_are_the_records_a_purge_kept(
    log: ScreeningLog,
) -> None:
    fill(log, 1, start=DAY)
    fill(log, 1, start=DAY + timedelta(days=365 * 4))  # the clock years ahead, then NTP
    fill(log, 2, start=DAY + timedelta(days=1))
    read = log.database.read()
    step = ledger.clock_step(read)
    assert step is not None and (step.number, step.previous) == (3, 2)
    assert step.at.startswith("2026-03-02") and step.previous_at.startswith("2030-02-28")
    assert log.purge(date(2026, 6, 1)) == 1  # record 2 stops the cut: 3 and 4 stay
    kept = ledger.kept_before(log.database.read(), date(2026, 6, 1))
    assert kept is not None and (kept.count, kept.stopped_by) == (2, 2)
    assert ledger.kept_before(log.database.read(), date(2026, 3, 1)) is None
    assert log.verify() == []  # intact all the same


def test_a_log_stamped_in_order_has_no_clock_step(log: ScreeningLog) -> None:
    fill(log, 3)
    assert ledger.clock_step(log.database.read()) is None


def test_purge_refuses_a_broken_chain(log: ScreeningLog) -> None:
    fill(log, 3)
    raw(log).execute("UPDATE screening_log SET verdict = 'eligible' WHERE number = 1")
    with pytest.raises(LogCorrupt, match="record 1: changed"):
        log.purge(date(2027, 1, 1))
    assert len(list(log.records())) == 3


def test_purge_leaves_no_purged_screening_id_in_the_file(log: ScreeningLog) -> None:
    # Big enough for the screening-id index's pages to split many times: a split leaves
    # stale copies of the cells it moved in a page's free gap, which secure_delete misses.
    ids = [hashlib.sha256(f"screening {k}".encode()).hexdigest()[:16] for k in range(20_000)]
    entries = [
        ledger.entry(
            verdict(None),
            channel="cli",
            coordinator="cli",
            answers={},
            at=DAY + timedelta(hours=k),
            screening_id=id_,
        )
        for k, id_ in enumerate(ids)
    ]
    with log.database.transaction() as tx:
        ledger.append_entries(tx, entries)
    assert log.purge((DAY + timedelta(hours=10_000)).date()) > 9_000
    log.database.forget_deleted()  # as `log purge` does: the WAL into the file
    kept = {record.screening_id for record in log.records()}
    purged = {id_.encode() for id_ in ids if id_ not in kept}
    files = [log.path, Path(f"{log.path}-wal")]
    found = set().union(*(hex_words(file.read_bytes()) for file in files if file.exists()))
    assert sorted(purged & found) == []


def hex_words(data: bytes) -> set[bytes]:
    """Every run of 16 hex digits in ``data`` (a screening id's shape), overlapping ones too."""
    runs = (run.group() for run in re.finditer(rb"[0-9a-f]{16,}", data))
    return {run[i : i + 16] for run in runs for i in range(len(run) - 15)}


# -- batch writer ----------------------------------------------------------------------------


def test_writer_commits_in_chunks(log: ScreeningLog) -> None:
    with log.writer(channel="batch", coordinator="cli", chunk=3) as writer:
        for i in range(7):
            writer.add(verdict(f"R-{i}"), {"age": i})
            assert len(list(log.records())) == (i + 1) // 3 * 3
    assert writer.written == 7
    assert [r.channel for r in log.records()] == ["batch"] * 7
    assert log.verify() == []


@pytest.mark.parametrize("max_delay", [3600.0, 0.0], ids=["by count", "by time"])
def test_writer_ends_a_transaction_only_where_a_row_ends(
    log: ScreeningLog, monkeypatch: pytest.MonkeyPatch, max_delay: float
) -> None:
    """A row screened against two protocols has two records: a transaction that ended
    between them left the row half logged, and a failure next made the line naming the
    rows logged wrong by one record (review B3 of round 23)."""
    monkeypatch.setattr(LogWriter, "max_delay", max_delay)
    with log.writer(channel="batch", coordinator="cli", chunk=3) as writer:
        for row in range(5):
            for protocol in (1, 2):
                writer.add(verdict(f"R-{row}"), {"p": protocol}, row_ends=protocol == 2)
                assert len(list(log.records())) % 2 == 0
    assert writer.written == 10 and log.verify() == []


def test_writer_holds_no_lock_between_chunks(log: ScreeningLog) -> None:
    other = ScreeningLog(log.path)  # the Telegram bot, say
    with log.writer(channel="batch", coordinator="cli", chunk=1000) as writer:
        writer.add(verdict("B-1"), {})
        other.append(verdict("T-1"), channel="telegram", coordinator="42", answers={})
        writer.add(verdict("B-2"), {})
    assert [(r.number, r.referral) for r in log.records()] == [(1, "T-1"), (2, "B-1"), (3, "B-2")]
    assert log.verify() == []
    other.close()


def test_a_failure_while_writing_a_chunk_leaves_no_half_chain(
    log: ScreeningLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(log, 2)
    real_hash, calls = screening_log._hash, []

    def failing_hash(fields: dict[str, object], prev: str) -> str:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk gone")
        return real_hash(fields, prev)

    writer = log.writer(channel="batch", coordinator="cli", chunk=5)
    for i in range(4):
        writer.add(verdict(f"B-{i}"), {})
    monkeypatch.setattr(screening_log, "_hash", failing_hash)
    with pytest.raises(OSError):
        writer.flush()
    monkeypatch.undo()
    assert [r.number for r in log.records()] == [1, 2]
    assert log.verify() == []
    assert log.append(verdict("R-x"), channel="cli", coordinator="cli", answers={}).number == 3


# -- records() filters and stats -------------------------------------------------------------


def test_records_filters_and_limit(log: ScreeningLog) -> None:
    other = ProtocolRef(id="other-trial", version="2", sha256="cd" * 32)
    log.append(verdict("A"), channel="telegram", coordinator="1", answers={}, at=DAY)
    log.append(
        verdict("B", protocol=other),
        channel="telegram",
        coordinator="2",
        answers={},
        at=DAY + timedelta(days=1),
    )
    log.append(
        verdict("C"), channel="cli", coordinator="cli", answers={}, at=DAY + timedelta(days=2)
    )
    log.append(verdict("D"), channel="telegram", coordinator="1", answers={}, at=DAY)

    def refs(**filters: object) -> list[str | None]:
        return [r.referral for r in log.records(**filters)]  # type: ignore[arg-type]

    assert refs(protocol_id="other-trial") == ["B"]
    assert refs(since=date(2026, 3, 2)) == ["B", "C"]
    assert refs(since=date(2026, 3, 2), protocol_id="blina-dli") == ["C"]
    assert refs(coordinator="1") == ["A", "D"]
    assert refs(limit=2) == ["C", "D"]  # the latest two, in screening order
    assert refs(coordinator="1", limit=1) == ["D"]


def test_stats_count_patients_once_and_every_failed_criterion(log: ScreeningLog) -> None:
    def add(v: Verdict, days: int = 0) -> None:
        log.append(v, channel="cli", coordinator="cli", answers={}, at=DAY + timedelta(days))

    add(verdict("A", "I1", "I4a", "E3c"))
    add(verdict("B", "I4a"))
    add(verdict("C"))  # eligible
    add(verdict(None, value="unresolved"))
    add(verdict(None, "E3c"))  # no label: a patient of its own
    add(verdict("A", "I4a"), days=60)  # re-screen: A counts by this one
    add(verdict("X", "I1", protocol=ProtocolRef(id="other", version="1", sha256="00" * 32)))

    (stats, other) = log.stats()
    assert (stats.protocol_id, other.protocol_id) == ("blina-dli", "other")
    assert stats.screenings == 6 and stats.patients == 5
    assert (stats.eligible, stats.not_eligible, stats.unresolved) == (1, 3, 1)
    assert stats.eligible + stats.not_eligible + stats.unresolved == stats.patients
    assert [(c.criterion, c.patients) for c in stats.failures] == [("I4a", 2), ("E3c", 1)]
    assert stats.failures[0].label == "label of I4a"

    (early,) = log.stats(protocol_id="blina-dli", since=date(2026, 3, 2))
    assert (early.screenings, early.patients, early.not_eligible) == (1, 1, 1)
    (before,) = log.stats(protocol_id="blina-dli", coordinator="cli")
    assert before.patients == 5
    assert log.stats(protocol_id="nothing") == []


def test_stats_count_one_label_of_two_coordinators_as_two_patients(log: ScreeningLog) -> None:
    """A label is the coordinator's own (the bot lets two coordinators each screen an
    R-55): the same label of another coordinator is another patient; re-screened by the
    same coordinator, it is one, by its latest screening."""

    def add(v: Verdict, coordinator: str) -> None:
        log.append(v, channel="telegram", coordinator=coordinator, answers={})

    add(verdict("R-55", "I1"), "1001")
    add(verdict("R-55"), "1002")  # another patient, eligible
    add(verdict("R-55", "I4a"), "1001")  # 1001's patient again: counts by this one
    (stats,) = log.stats()
    assert (stats.screenings, stats.patients) == (3, 2)
    assert (stats.eligible, stats.not_eligible) == (1, 1)
    assert [(c.criterion, c.patients) for c in stats.failures] == [("I4a", 1)]


def test_stats_with_two_failures_per_patient(log: ScreeningLog) -> None:
    for i in range(4):
        log.append(verdict(f"P{i}", "I1", "E3c"), channel="cli", coordinator="cli", answers={})
    (stats,) = log.stats()
    assert stats.patients == stats.not_eligible == 4
    assert {c.criterion: c.patients for c in stats.failures} == {"I1": 4, "E3c": 4}


def test_chart_is_a_png(log: ScreeningLog) -> None:
    fill(log, 3)
    assert chart_png(log.stats()).startswith(b"\x89PNG\r\n\x1a\n")
    assert chart_png([]).startswith(b"\x89PNG")


def failing(counts: list[int]) -> reports.Stats:
    failures = [reports.CriterionCount(f"I{k}", f"label {k}", n) for k, n in enumerate(counts)]
    return reports.Stats("blina-dli", patients=max(counts), failures=failures)


def test_a_bounded_chart_shows_the_most_frequent_failures_and_how_many_more() -> None:
    rows = reports._chart_rows(failing([9, 8, 7, 5, 5, 2]).failures, 3)
    assert rows == [
        ("I0 label 0", 9),
        ("I1 label 1", 8),
        ("I2 label 2", 7),
        ("+ 3 more criteria, each 5 patients or fewer", 0),
    ]
    one_more = reports._chart_rows(failing([9, 8, 7, 1]).failures, 3)
    assert one_more[-1] == ("I3 label 3", 1)  # its own bar: no taller than the row saying so
    assert reports._chart_rows(failing([9, 8]).failures, None) == [
        ("I0 label 0", 9),
        ("I1 label 1", 8),
    ]


def test_a_bounded_chart_is_as_tall_however_many_criteria_fail() -> None:
    sizes = {png_size(chart_png([failing([3] * n)], 10)) for n in (12, 40, 500)}
    assert len(sizes) == 1


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures chart_png saves, kept to measure what was drawn where."""
    figures: list[Figure] = []
    save = Figure.savefig

    def saved(figure: Figure, *args: Any, **kwargs: Any) -> None:
        figures.append(figure)
        save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", saved)
    return figures


def test_chart_titles_fit_in_the_picture_at_a_busy_sites_counts(drawn: list[Figure]) -> None:
    """The title of a panel (its CONSORT counts) was left-aligned over the bars, which a long
    criterion label pushes right: at a year's five-digit counts it ran past the picture's
    right edge, and 'not eligible' and 'unresolved' were cut off."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    busy = reports.Stats(
        "a" * 40,  # the longest protocol id
        screenings=4_193_300,
        patients=4_031_000,
        eligible=1_634_000,
        not_eligible=2_358_000,
        unresolved=39_000,
        failures=[
            reports.CriterionCount("C-I6b2", "bilirubin < 2.0 mg/dL (Gilbert's < 3.0)", 9),
            reports.CriterionCount("I1", "age 18 or older", 3),
        ],
    )
    chart_png([busy, busy], 10)
    (figure,) = drawn
    renderer = FigureCanvasAgg(figure).get_renderer()
    titles = [t for t in figure.findobj(Text) if "patients screened" in t.get_text()]
    assert len(titles) == 2 and all("39000 unresolved" in t.get_text() for t in titles)
    for title in titles:
        extent = title.get_window_extent(renderer)
        assert extent.x0 >= 0 and extent.x1 <= figure.bbox.width, title.get_text()


LONG_LABEL = ("ECOG PERFORMANCE STATUS 0-2 AT SCREENING AND AT THE BASELINE VISIT " * 3)[:200]


def protocol_failing(protocol_id: str, criteria: int, label: str = "") -> reports.Stats:
    """One patient, failing ``criteria`` criteria (none: eligible); the first labelled
    ``label`` if given."""
    failures = [
        reports.CriterionCount(f"I{k}", label if label and k == 0 else f"lab value {k}", 1)
        for k in range(criteria)
    ]
    return reports.Stats(
        protocol_id,
        1,
        1,
        eligible=int(not criteria),
        not_eligible=int(bool(criteria)),
        failures=failures,
    )


@pytest.mark.filterwarnings("error")  # matplotlib's "constrained_layout not applied …"
@pytest.mark.parametrize(
    ("failing_per_protocol", "most", "label"),
    [
        ([0, 5], 10, ""),
        ([1, 5], 10, ""),
        ([0, 10], 10, ""),
        ([10, 1, 0], 10, ""),
        ([0], 10, ""),
        ([1], 10, ""),
        ([1, 10, 0, 5, 1, 0, 10, 5], 10, ""),
        ([0] * 7 + [10], 10, ""),
        ([200] * 8, 10, ""),
        ([0, 25, 25, 25], None, ""),  # log stats --chart: every criterion
        ([1, 5], 10, LONG_LABEL),
        ([10] * 8, 10, LONG_LABEL),
    ],
)
def test_every_panel_of_the_chart_has_room_for_its_title_ticks_and_labels(
    drawn: list[Figure], failing_per_protocol: list[int], most: int | None, label: str
) -> None:
    """The panels shared the picture's height by their number of bars: beside a protocol
    with 5 or more failing criteria, one with 0 or 1 had no room for its two-line title,
    matplotlib gave up the layout, and the titles ran over the bars and the x labels, the
    criterion labels cut at the left. A 200-character label left the bars no width."""
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    stats = [protocol_failing(f"trial-{p}", n, label) for p, n in enumerate(failing_per_protocol)]
    png = chart_png(stats, most)
    if most is not None:
        assert sum(png_size(png)) <= 10_000  # what sendPhoto takes
    (figure,) = drawn
    renderer = FigureCanvasAgg(figure).get_renderer()
    inside = figure.bbox
    titles = [t for t in figure.findobj(Text) if "patients screened" in t.get_text()]
    assert len(titles) == len(stats)
    title_boxes = [title.get_window_extent(renderer) for title in titles]
    # an axes' tight box holds what it draws: the tick labels shown, the x label, the counts
    panels = [axes.get_tightbbox(renderer) for axes in figure.findobj(Axes)]
    assert len(panels) == len(stats)
    for box in title_boxes + panels:
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1
        assert inside.y0 <= box.y0 and box.y1 <= inside.y1
    for n, box in enumerate(title_boxes + panels):
        assert not any(box.overlaps(other) for other in (title_boxes + panels)[n + 1 :])


# -- export ----------------------------------------------------------------------------------


def exported(log: ScreeningLog, **filters: object) -> list[list[str]]:
    buffer = io.StringIO(newline="")
    write_csv(log.records(**filters), buffer)  # type: ignore[arg-type]
    return list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))


def unescaped(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def expected_cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r", "'") else value


def test_export_row_columns(log: ScreeningLog) -> None:
    v = verdict("R-0423", "I4a", "E3c")
    v.reasons[0].label, v.reasons[0].recoverable = "≥ 2 months post-transplant", "wait"
    v.reasons[0].meets_from = date(2026, 5, 2)
    v.reasons[1].label, v.reasons[1].recoverable = "prolonged QTc", "retest"
    log.append(v, channel="cli", coordinator="cli", answers={"age": 40}, at=DAY)
    header, row = exported(log)
    assert header[0] == "screening number" and len(header) == len(row)
    assert row == [
        "1",
        "2026-03-01",
        "R-0423",
        "blina-dli",
        "1.0",
        "not_eligible",
        "I4a ≥ 2 months post-transplant; E3c prolonged QTc",
        "",
        "I4a from 2026-05-02; E3c retest",
        "",  # no screening id: appended on its own
    ]


CTL019 = ProtocolRef(id="ctl019-rr-ball", version="0.1", sha256="cd" * 32)


def waiting(criterion: str, meets_from: date, anchor: str | None) -> Reason:
    return Reason(
        criterion=criterion,
        kind="exclusion",
        label=f"label of {criterion}",
        source="source text",
        answers={},
        recoverable="wait",
        meets_from=meets_from,
        meets_from_anchor=anchor,
    )


def test_export_says_which_date_a_later_pass_counts_from(log: ScreeningLog) -> None:
    """ctl019: C-E11's date is a planned infusion date (a screening today passes with the
    infusion planned from it), C-E12's a screening date: the log keeps which, and the export
    says it as the verdict does, never both as "from"."""
    v = verdict("R-1", protocol=CTL019, value="not_eligible")
    v.reasons = [
        waiting("C-E11", date(2026, 2, 21), "planned_infusion_date"),
        waiting("C-E12", date(2026, 1, 31), None),
    ]
    written = log.append(v, channel="batch", coordinator="cli", answers={}, at=DAY)
    (read,) = log.records()
    assert [r.meets_from_anchor for r in read.reasons] == ["planned_infusion_date", None]
    assert read == written and log.verify() == []
    assert export_row(read)["may_pass_later"] == [
        "C-E11 when planned_infusion_date is on or after 2026-02-21",
        "C-E12 from 2026-01-31",
    ]
    _, row = exported(log)
    assert row[8] == (
        "C-E11 when planned_infusion_date is on or after 2026-02-21; C-E12 from 2026-01-31"
    )


def test_export_says_a_criterion_open_on_its_date_no_longer_fails_not_that_it_is_met(
    log: ScreeningLog,
) -> None:
    """ctl019 case 142: from its date C-I1b is open on an unknown answer, not met. The log
    keeps that answer's name and the export says so; a reason met on its date is stored
    without it, as before."""
    v = verdict("R-1", protocol=CTL019, value="not_eligible")
    v.reasons = [
        waiting("C-I1b", date(2026, 1, 20), "planned_infusion_date"),
        waiting("C-E12", date(2026, 1, 31), None),
    ]
    v.reasons[0].meets_from_open_on = ["marrow_relapse_after_allo_hsct"]
    written = log.append(v, channel="batch", coordinator="cli", answers={}, at=DAY)
    (read,) = log.records()
    assert read == written and log.verify() == []
    assert [r.meets_from_open_on for r in read.reasons] == [
        ["marrow_relapse_after_allo_hsct"],
        [],
    ]
    (stored,) = log.db.execute("SELECT reasons FROM screening_log").fetchone()
    assert [sorted(r) for r in json.loads(stored)][1] == [
        "criterion",
        "kind",
        "label",
        "meets_from",
        "meets_from_anchor",
        "recoverable",
    ]
    assert export_row(read)["may_pass_later"] == [
        "C-I1b no longer fails when planned_infusion_date is on or after 2026-01-20,"
        " then open until marrow_relapse_after_allo_hsct is known",
        "C-E12 from 2026-01-31",
    ]


def logged_first(log: ScreeningLog, fields: dict[str, Any]) -> str:
    """Write ``fields`` as the log's first record, hashed as the release before hashed it
    (written out here on purpose, not by the code under test); its hash."""
    payload = json.dumps({**fields, "prev_hash": "0" * 64}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode()).hexdigest()
    log.db.execute(
        f"INSERT INTO screening_log ({', '.join(fields)}, prev_hash, hash)"
        f" VALUES ({', '.join('?' * len(fields))}, ?, ?)",
        (*fields.values(), "0" * 64, digest),
    )
    log.db.execute("UPDATE screening_log_head SET head_number = 1, head_hash = ?", (digest,))
    return digest


def test_a_record_logged_before_anchors_were_kept_exports_as_before(log: ScreeningLog) -> None:
    """A record written before the log kept a date's anchor: its reasons text has none, it
    reads, verifies and exports "from" as it always did, and a record appended after it
    keeps its anchor with the chain intact."""
    fields = {
        "number": 1,
        "at": "2026-01-15T09:00:00+00:00",
        "channel": "batch",
        "coordinator": "cli",
        "referral": "R-1",
        "protocol_id": CTL019.id,
        "protocol_version": CTL019.version,
        "protocol_sha256": CTL019.sha256,
        "verdict": "not_eligible",
        "reasons": '[{"criterion":"C-E11","kind":"exclusion","label":"label of C-E11",'
        '"meets_from":"2026-02-21","recoverable":"wait"}]',
        "open_items": "[]",
        "answers": "{}",
        "screened_on": "2026-01-15",
    }
    digest = logged_first(log, fields)
    v = verdict("R-1", protocol=CTL019, value="not_eligible")
    v.reasons = [waiting("C-E11", date(2026, 2, 21), "planned_infusion_date")]
    log.append(v, channel="batch", coordinator="cli", answers={}, at=DAY)
    old, new = log.records()
    assert old.hash == digest and old.reasons[0].meets_from_anchor is None
    assert log.verify() == []
    _, old_row, new_row = exported(log)
    assert old_row[8] == "C-E11 from 2026-02-21"
    assert new_row[8] == "C-E11 when planned_infusion_date is on or after 2026-02-21"


def test_export_groups_open_items_by_criterion(log: ScreeningLog) -> None:
    items = [
        OpenItem(criterion="I8d", variable=v, kind="missing", label="CrCl ≥ 50")
        for v in ("crcl_ml_min", "weight_kg")
    ] + [OpenItem(criterion="I9", variable="survival", kind="judgment", label="survival")]
    log.append(
        verdict("R-1", value="unresolved", open_items=items),
        channel="cli",
        coordinator="cli",
        answers={},
    )
    record = next(log.records())
    assert export_row(record)["open_items"] == [
        "I8d CrCl ≥ 50: crcl_ml_min, weight_kg (missing data)",
        "I9 survival: survival (investigator judgment)",
    ]


def test_export_names_every_criterion_an_open_item_keeps_open(
    log: ScreeningLog, protocol: Protocol
) -> None:
    """lvef_percent keeps I8e and E3a open, alt_x_uln I8b and E5 (DATA-DICTIONARY 1.1: the
    open items name the criterion and the variable): the export names all four, each
    with its label where an item carries it."""
    answers = {**ELIGIBLE, "lvef_percent": None, "alt_x_uln": None}
    found = build(protocol, answers, referral="R-1", screened_on=SCREENED_ON)
    assert {(i.variable, tuple(i.criteria)) for i in found.open_items} == {
        ("alt_x_uln", ("I8b", "E5")),
        ("lvef_percent", ("I8e", "E3a")),
    }
    log.append(found, channel="cli", coordinator="cli", answers={})
    label = {cid: c.label for cid, c in protocol.criteria.items()}
    assert export_row(next(log.records()))["open_items"] == [
        f"I8b {label['I8b']}: alt_x_uln (missing data)",
        "E5: alt_x_uln (missing data)",
        f"I8e {label['I8e']}: lvef_percent (missing data)",
        "E3a: lvef_percent (missing data)",
    ]


def test_export_keeps_the_advice_of_an_item_to_confirm(
    log: ScreeningLog, protocol: Protocol
) -> None:
    # no measured clearance and a low Cockcroft-Gault estimate: E6b is open to confirm
    answers = {**ELIGIBLE, "crcl_ml_min": None, "weight_kg": 48, "serum_creatinine_mg_dl": 6}
    found = build(protocol, answers, referral="R-1", screened_on=SCREENED_ON)
    log.append(found, channel="cli", coordinator="cli", answers={})
    assert export_row(next(log.records()))["open_items"] == [
        f"E6b {protocol.criteria['E6b'].label}: crcl_ml_min (to confirm by measurement: "
        "measure a 24-hour creatinine clearance)"
    ]


def test_a_record_logged_before_open_items_kept_their_criteria_exports_as_before(
    log: ScreeningLog,
) -> None:
    """Open items stored without ``criteria`` (before dictionary 1.1) read as keeping only
    their criterion open: the record verifies and exports one entry per criterion."""
    items = [
        {"criterion": "I8d", "variable": v, "kind": "missing", "label": "CrCl ≥ 50"}
        for v in ("crcl_ml_min", "weight_kg")
    ]
    fields = {
        "number": 1,
        "at": "2026-01-15T09:00:00+00:00",
        "channel": "cli",
        "coordinator": "cli",
        "referral": "R-1",
        "protocol_id": PROTOCOL.id,
        "protocol_version": PROTOCOL.version,
        "protocol_sha256": PROTOCOL.sha256,
        "verdict": "unresolved",
        "reasons": "[]",
        "open_items": json.dumps(items),
        "answers": "{}",
        "screened_on": "2026-01-15",
    }
    digest = logged_first(log, fields)
    (record,) = log.records()
    assert record.hash == digest and log.verify() == []
    assert [i.criteria for i in record.open_items] == [["I8d"], ["I8d"]]
    assert export_row(record)["open_items"] == [
        "I8d CrCl ≥ 50: crcl_ml_min, weight_kg (missing data)"
    ]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_export_neutralises_formulas_and_round_trips(log: ScreeningLog, hostile: str) -> None:
    v = verdict(hostile, "I1")
    v.reasons[0].label = hostile
    v.open_items = [OpenItem(criterion="E1", variable="x", kind="judgment", label=hostile)]
    log.append(v, channel="cli", coordinator="cli", answers={"note": hostile})
    # and a row written straight into the table, past every model
    reasons = json.dumps([{"criterion": "E9", "kind": "exclusion", "label": hostile}])
    raw(log).execute(
        "INSERT INTO screening_log VALUES (99, '2026-03-01T00:00:00+00:00', 'cli', 'cli', ?,"
        " 'blina-dli', ?, 'x', 'not_eligible', ?, '[]', '{}', '', '', NULL, NULL)",
        (hostile, hostile, reasons),
    )
    (_, row, direct) = exported(log)
    assert len(row) == 10 and len(direct) == 10
    assert row[2] == expected_cell(hostile) and unescaped(row[2]) == hostile
    assert row[6] == "I1 " + hostile
    assert direct[2] == expected_cell(hostile) and direct[4] == expected_cell(hostile)
    assert direct[6] == "E9 " + hostile
    for cell in row + direct:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=st.from_regex(REFERRAL_PATTERN, fullmatch=True), text=st.text(max_size=40))
def test_export_round_trips_any_label(log: ScreeningLog, label: str, text: str) -> None:
    v = verdict(label, "I1")
    v.reasons[0].label = text
    log.append(v, channel="telegram", coordinator="7", answers={"x": text})
    (_, row) = exported(log, limit=1)
    assert row[2] == label  # a valid label never needs escaping
    assert row[6] == "I1 " + text  # a label inside a cell never starts it
    v.referral = text
    log.append(v, channel="telegram", coordinator="7", answers={})
    (_, row) = exported(log, limit=1)
    assert row[2] == expected_cell(text)


# -- the database file and the open-session store ---------------------------------------------


def test_database_and_wal_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "screen-bot.sqlite3"
    old = os.umask(0o022)
    try:
        log = ScreeningLog(path)
        fill(log, 1)
        files = [path, Path(f"{path}-wal")]
        assert all(p.exists() for p in files)
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        log.close()
    finally:
        os.umask(old)


def session(updated: datetime, state: str = "age") -> Session:
    return Session(
        protocol_id="blina-dli",
        protocol_version="1.0",
        protocol_sha256="ab" * 32,
        state=state,
        updated_at=updated,
    )


def test_store_expire_and_forget_touch_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "screen-bot.sqlite3"
    log = ScreeningLog(path)
    db = log.database
    fill(log, 3)
    now = datetime(2026, 3, 10, tzinfo=UTC)
    old_1, new_1 = session(now - timedelta(days=5)), session(now)
    old_2, new_2 = session(now - timedelta(days=5)), session(now - timedelta(hours=1))
    with db.transaction() as tx:
        sessions.save(tx, 1, old_1, lifetime=timedelta(days=3), activate=False)
        sessions.save(tx, 1, new_1, lifetime=timedelta(days=3))
        sessions.save(tx, 2, old_2, lifetime=timedelta(days=3), activate=False)
        sessions.save(tx, 2, new_2, lifetime=timedelta(days=3))

    with db.transaction() as tx:
        assert sessions.expire(tx, now, now - timedelta(days=3)) == 2
    read = db.read()
    assert [s.session_id for s in sessions.list_open(read, 1)] == [new_1.id]
    assert [s.session_id for s in sessions.list_open(read, 2)] == [new_2.id]
    assert sessions.active(read, 1) == new_1 and sessions.active(read, 2) == new_2

    with db.transaction() as tx:
        assert sessions.forget(tx, 1) == 1
    assert sessions.list_open(read, 1) == [] and sessions.active(read, 1) is None
    assert [s.session_id for s in sessions.list_open(read, 2)] == [new_2.id]

    assert [r.number for r in log.records()] == [1, 2, 3]
    assert log.verify() == []
    log.close()


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "screen-bot.sqlite3"
    Database(path).close()
    path.chmod(0o644)
    Database(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_new_data_directory_is_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "fresh" / "data"
    Database(directory / "screen-bot.sqlite3").close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    log = ScreeningLog(tmp_path / "screen-bot.sqlite3")
    kept = session(datetime(2026, 3, 10, tzinfo=UTC))
    with log.database.transaction() as tx:
        sessions.save(tx, 1, kept, lifetime=timedelta(days=3))
    with pytest.raises(RuntimeError), log.database.transaction() as tx:
        ledger.append(tx, verdict("R-1"), channel="cli", coordinator="cli", answers={})
        sessions.delete(tx, 1, kept.id)
        raise RuntimeError("crash between the writes")
    assert list(log.records()) == []
    assert sessions.active(log.database.read(), 1) == kept
    log.close()


# ctl019-rr-ball's patient with prior_allo_hsct (and so chronic_gvhd_extensive) not known
E8B_OPEN = {
    "marrow_relapse_count": 3,
    "prior_therapies": [],
    "cns_status": "CNS1",
    "marrow_blasts_percent": 6.2,
    "age": 17,
    "age_at_diagnosis": 12,
    "b_all_cd19_positive": True,
    "burkitt": False,
    "isolated_extramedullary_relapse": False,
    "ph_negative": False,
    "cd19_flow_date": "2026-10-11",
    "cd19_flow_positive": True,
    "last_imp_date": "2023-11-26",
    "bone_marrow_failure_syndrome": False,
    "prior_malignancy": "cis_skin_cervix",
    "hepatitis_b_active_or_latent": False,
    "hepatitis_c_active": False,
    "hiv_infection": False,
    "uncontrolled_life_threatening_infection": False,
    "karnofsky": 62,
    "sex": "female",
    "childbearing_potential": True,
    "pregnant_or_lactating": False,
    "contraception_agreed": True,
    "alt_x_uln": 3.0,
    "total_bilirubin_mg_dl": 2.5,
    "gilbert_syndrome": True,
    "serum_creatinine_mg_dl": 2.0,
    "measured_gfr_ml_min_173": 75,
    "spo2_room_air_percent": 96,
    "shortening_fraction_percent": 35,
    "life_expectancy_over_12_weeks": True,
    "guardian_consent_and_assent": True,
}


def test_export_lists_a_criterion_once_with_each_variables_reason(log: ScreeningLog) -> None:
    """C-E8b kept open by a missing prior_allo_hsct and by a judgment not given yet is one
    entry, each variable with why it is open (it was two entries, C-E11 between them)."""
    protocol = load(Path(__file__).parents[1] / "dialogs" / "ctl019-rr-ball.yaml")
    answers = {k: date.fromisoformat(v) if k.endswith("_date") else v for k, v in E8B_OPEN.items()}
    found = build(protocol, answers, referral="R-1", screened_on=date(2026, 11, 26))
    log.append(found, channel="cli", coordinator="cli", answers={})
    entries = export_row(next(log.records()))["open_items"]
    ids = [entry.split(" ")[0].rstrip(":") for entry in entries]
    assert len(ids) == len(set(ids)), entries
    e8b = next(entry for entry in entries if entry.startswith("C-E8b"))
    assert e8b.endswith(
        ": prior_allo_hsct (missing data); chronic_gvhd_extensive (investigator judgment)"
    )
