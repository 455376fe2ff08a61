"""Screening ids in the log: records of one screening linked, old logs migrated, the hash
chain verifiable across the change; and an ``all`` screening through the service."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from datetime import date
from pathlib import Path

from conftest import SHIPPED
from screen_bot.protocol.catalog import Catalog
from screen_bot.reports import export_row
from screen_bot.results import Finished
from screen_bot.service import ScreeningService
from screen_bot.storage import Database, ledger
from screen_bot.verdict import ProtocolRef, Verdict

# The screening log as it was before screening ids (the first release's schema).
OLD_SCHEMA = """
CREATE TABLE screening_log (
    number INTEGER PRIMARY KEY, at TEXT NOT NULL, channel TEXT NOT NULL,
    coordinator TEXT NOT NULL, referral TEXT, protocol_id TEXT NOT NULL,
    protocol_version TEXT NOT NULL, protocol_sha256 TEXT NOT NULL, verdict TEXT NOT NULL,
    reasons TEXT NOT NULL, open_items TEXT NOT NULL, answers TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE screening_log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), head_number INTEGER NOT NULL,
    head_hash TEXT NOT NULL, base_number INTEGER NOT NULL, base_hash TEXT NOT NULL,
    purged_before TEXT, purged_at TEXT);
"""


def old_record(number: int, prev_hash: str) -> dict[str, object]:
    fields = {
        "number": number,
        "at": "2026-01-15T09:00:00+00:00",
        "channel": "cli",
        "coordinator": "cli",
        "referral": f"R-{number}",
        "protocol_id": "blina-dli",
        "protocol_version": "1.1",
        "protocol_sha256": "0" * 64,
        "verdict": "eligible",
        "reasons": "[]",
        "open_items": "[]",
        "answers": "{}",
    }
    # the hash as the first release computed it, written out here on purpose
    payload = json.dumps({**fields, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":"))
    return {**fields, "prev_hash": prev_hash, "hash": hashlib.sha256(payload.encode()).hexdigest()}


def make_old_log(path: Path) -> list[dict[str, object]]:
    connection = sqlite3.connect(path)
    connection.executescript(OLD_SCHEMA)
    rows, prev = [], "0" * 64
    for number in (1, 2):
        row = old_record(number, prev)
        connection.execute(
            f"INSERT INTO screening_log ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
        rows.append(row)
        prev = str(row["hash"])
    connection.execute(
        "INSERT INTO screening_log_head VALUES (1, 2, ?, 0, ?, NULL, NULL)", (prev, "0" * 64)
    )
    connection.commit()
    connection.close()
    return rows


def verdict(referral: str) -> Verdict:
    return Verdict(
        referral=referral,
        verdict="eligible",
        protocol=ProtocolRef(id="blina-dli", version="1.1", sha256="0" * 64),
        screened_on="2026-01-15",  # type: ignore[arg-type]
    )


def test_an_old_log_gets_the_column_and_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = make_old_log(path)
    with Database(path) as db:
        columns = [row[1] for row in db.read().all("PRAGMA table_info(screening_log)")]
        assert "screening_id" in columns
        records = list(ledger.records(db.read()))
        assert [r.hash for r in records] == [row["hash"] for row in old]
        assert [r.screening_id for r in records] == [None, None]
        assert ledger.verify(db.read()) == []
        with db.transaction() as tx:
            for _ in range(2):
                ledger.append(
                    tx,
                    verdict("R-3"),
                    channel="cli",
                    coordinator="cli",
                    answers={},
                    screening_id="ab" * 8,
                )
        assert ledger.verify(db.read()) == []
        logged = list(ledger.records(db.read()))
        assert [r.screening_id for r in logged][2:] == ["ab" * 8] * 2
        # the screening date came later still: none for the old records, which export
        # the date of their time, as they always did
        assert [r.screened_on for r in logged] == [None, None, *[date(2026, 1, 15)] * 2]
        assert export_row(logged[0])["date"] == "2026-01-15"
    with Database(path) as again:  # opening it once more changes nothing
        assert ledger.verify(again.read()) == []


def test_a_changed_screening_id_breaks_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    make_old_log(path)
    with Database(path) as db:
        with db.transaction() as tx:
            ledger.append(
                tx, verdict("R-3"), channel="cli", coordinator="cli", answers={}, screening_id="c1"
            )
        raw = sqlite3.connect(path)
        raw.execute("DROP TRIGGER screening_log_no_update")
        raw.execute("UPDATE screening_log SET screening_id = 'c2' WHERE number = 3")
        raw.execute("UPDATE screening_log SET screening_id = 'c2' WHERE number = 1")
        raw.commit()
        raw.close()
        problems = ledger.verify(db.read())
    assert "record 1: changed after it was written" in problems
    assert "record 3: changed after it was written" in problems


def test_an_all_screening_through_the_service_logs_each_protocol(
    db: Database, tmp_path: Path
) -> None:
    both = tmp_path / "dialogs"
    both.mkdir()
    for name in ("blina-dli.yaml", "ctl019-rr-ball.yaml"):
        shutil.copy2(SHIPPED / name, both / name)
    catalog = Catalog(both)
    service = ScreeningService(catalog, db, channel="cli")
    results = service.start(7, "all", "R-9")
    assert results[0].protocol_id == "all"  # type: ignore[attr-defined]
    results = service.answer(7, "10")  # age 10: blina-dli fails at once
    for _ in range(100):
        finished = [r for r in results if isinstance(r, Finished)]
        if finished:
            break
        results = service.skip(7)
    (done,) = finished
    assert [v.protocol.id for v in done.verdicts] == ["ctl019-rr-ball", "blina-dli"]
    assert [v.verdict for v in done.verdicts] == ["unresolved", "not_eligible"]
    records = {r.protocol.id: r for r in ledger.records(db.read())}
    assert sorted(records) == ["blina-dli", "ctl019-rr-ball"]
    assert {r.screening_id for r in records.values()} == {done.screening_id}
    for protocol_id, record in records.items():  # each record keeps its protocol's answers
        assert set(record.answers) <= set(catalog.protocols[protocol_id].questions)
        assert record.answers["age"] == 10
    assert "marrow_blasts_percent" not in records["blina-dli"].answers
    assert tuple(r.number for r in records.values()) == tuple(sorted(done.log_numbers))
