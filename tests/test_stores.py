"""The two stores behind one interface: migrations, the screening log's guards and chain,
locks between processes, a lost connection, a server that does not answer, and choosing
the store from the settings."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_runner import Ran, process
from screen_bot.dburl import hidden, passwords
from screen_bot.errors import DatabaseBroken, NoDatabase, ScreenBotError, StorageFailed
from screen_bot.service import DEFAULT_LIFETIME
from screen_bot.settings import Settings
from screen_bot.storage import Database, Store, inbox, ledger, open_store, outbox, sessions
from screen_bot.storage import postgres as pg
from screen_bot.storage.db import Tx, versions
from screen_bot.storage.inbox import Received
from screen_bot.storage.postgres import placeholders
from screen_bot.verdict import ProtocolRef, Verdict
from stores import StoreUnderTest, new_database

NEWEST = {
    "inbox": 3,
    "screening_log": 2,
    "outbox": 3,
    "owner_settings": 2,
    "quiz_scores": 1,
    "open_sessions": 4,
    "last_bot": 1,
}
PROTOCOL = ProtocolRef(id="blina-dli", version="1.0", sha256="ab" * 32)


def verdict(referral: str) -> Verdict:
    return Verdict(
        referral=referral,
        verdict="eligible",
        reasons=[],
        open_items=[],
        protocol=PROTOCOL,
        screened_on=date(2026, 3, 1),
    )


def append(db: Store, referral: str) -> ledger.LogRecord:
    with db.transaction() as tx:
        return ledger.append(tx, verdict(referral), channel="cli", coordinator="cli", answers={})


@pytest.fixture
def postgres(postgres_store: StoreUnderTest) -> StoreUnderTest:
    return postgres_store


# -- migrations -------------------------------------------------------------------------------


def test_every_schema_is_at_its_newest_version_and_opening_again_changes_nothing(
    store: StoreUnderTest,
) -> None:
    with store.open() as db:
        assert versions(db.read()) == NEWEST
        append(db, "R-1")
    with store.open() as again:
        assert versions(again.read()) == NEWEST
        assert [r.referral for r in ledger.records(again.read())] == ["R-1"]
        assert ledger.verify(again.read()) == []


def test_a_database_of_a_newer_screen_bot_is_refused(store: StoreUnderTest) -> None:
    with store.open() as db, db.transaction() as tx:
        tx.execute("UPDATE schema_version SET version = 9 WHERE name = 'inbox'")
    with pytest.raises(DatabaseBroken, match="version 9 of the inbox tables, newer than"):
        store.open()


def test_a_table_group_this_screen_bot_does_not_know_is_refused(store: StoreUnderTest) -> None:
    """A newer screen-bot that only added a group (say, one whose health data it expires)
    leaves a row this one has no schema for: refused as a newer version is, not used."""
    with store.open() as db, db.transaction() as tx:
        tx.execute("INSERT INTO schema_version (name, version) VALUES ('reminders', 1)")
    refusal = (
        "version 1 of the reminders tables, which this screen-bot does not know: a newer "
        "screen-bot wrote it; upgrade every instance together"
    )
    with pytest.raises(DatabaseBroken, match=refusal):
        store.open()
    with pytest.raises(DatabaseBroken, match=refusal):  # the commands that only read too
        open_store(store.data_dir / "screen-bot.sqlite3", store.url, existing=True)


def _tables(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
        return [row[0] for row in rows]


@pytest.mark.parametrize(
    "foreign",
    [
        "CREATE TABLE inbox (id serial PRIMARY KEY, subject text)",  # another program's mail
        "CREATE TABLE schema_version (id int, applied_at timestamp)",  # its migrations
    ],
)
def test_a_postgres_database_with_another_programs_table_of_our_name_is_refused_unchanged(
    foreign: str, postgres_server: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    url = new_database(postgres_server)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(foreign)
    before = _tables(url)
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", url)
    for command in (["migrate"], ["log", "verify"]):
        ran = cli(*command)  # no "unexpected error" (cli asserts it)
        if "no screen-bot tables yet" in ran.stderr:  # verify, where no schema_version is
            continue
        assert ran.returncode == 2, ran
        assert f"error: the database {url} is not a screen-bot database" in ran.stderr
        assert ("already exists" in ran.stderr) or ("does not exist" in ran.stderr)
    assert _tables(url) == before  # nothing created


def test_an_sqlite_file_from_before_schema_versions_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with Database(path) as db:
        append(db, "R-1")
        db.read().execute("DROP TABLE schema_version")  # as the releases before it
        db.read().execute("DROP INDEX inbox_chat")
    with Database(path) as db:
        assert versions(db.read()) == NEWEST
        indexes = {row[1] for row in db.read().all("PRAGMA index_list(inbox)")}
        assert "inbox_chat" in indexes
        assert ledger.verify(db.read()) == [] and ledger.head(db.read())[0] == 1


def test_reading_commands_refuse_a_database_without_tables(store: StoreUnderTest) -> None:
    with pytest.raises(NoDatabase):
        open_store(store.data_dir / "none.sqlite3", store.url, existing=True)


def test_work_on_commit_runs_only_after_a_commit(store: StoreUnderTest) -> None:
    ran: list[str] = []
    with store.open() as db:
        with db.transaction() as tx:
            tx.on_commit(lambda: ran.append("kept"))
            assert ran == []
        with pytest.raises(RuntimeError), db.transaction() as tx:
            tx.on_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("the work failed")
        with inbox.handling(5) as handled:
            with db.transaction() as tx:
                inbox.receive(tx, [Received(5, 11, "{}")], lifetime=DEFAULT_LIFETIME)
            assert handled.done  # marked in that transaction
            with db.transaction() as tx:  # a later transaction does not mark it again
                tx.execute("UPDATE inbox SET done = 0 WHERE update_id = 5")
            assert [r.update_id for r in inbox.pending(db.read())] == [5]
    assert ran == ["kept"]


def _forced_to_disk(tx: Tx) -> bool:
    """Whether this transaction's commit waits for the disk (FULL / synchronous commit)."""
    if tx.dialect == "sqlite":
        return int(tx.one("PRAGMA synchronous")[0]) == 2  # FULL
    return str(tx.one("SHOW synchronous_commit")[0]) == "on"


def test_only_a_transaction_asked_not_to_be_durable_skips_the_wait_for_the_disk(
    store: StoreUnderTest,
) -> None:
    with store.open() as db:
        if db.dialect == "postgres":  # the test cluster's default is off: the real one's is on
            db.read().execute("SET synchronous_commit = on")
        with db.transaction() as tx:
            assert _forced_to_disk(tx)
        with db.transaction(durable=False) as tx:
            assert not _forced_to_disk(tx)
            outbox.put(tx, 7, "the verdict", lifetime=DEFAULT_LIFETIME)
        with db.transaction() as tx:  # back to durable, also after a failed relaxed one
            assert _forced_to_disk(tx)
        with pytest.raises(RuntimeError), db.transaction(durable=False):
            raise RuntimeError("the work failed")
        with db.transaction() as tx:
            assert _forced_to_disk(tx)
        assert [v.owner for v in outbox.undelivered(db.read())] == [7]  # committed all the same


# -- the screening log on PostgreSQL -------------------------------------------------------------


def test_the_log_guards_are_triggers_on_postgres_too(postgres: StoreUnderTest) -> None:
    import psycopg

    with postgres.open() as db:
        for n in range(3):
            append(db, f"R-{n}")
    with psycopg.connect(postgres.url, autocommit=True) as raw:  # plain SQL, as psql
        for sql, refusal in [
            ("UPDATE screening_log SET verdict = 'x' WHERE number = 1", "never changed"),
            ("DELETE FROM screening_log WHERE number = 3", "only by purge"),
            ("TRUNCATE screening_log", "only by purge"),
            ("UPDATE screening_log_head SET head_number = 1", "only moves forward"),
        ]:
            with pytest.raises(psycopg.errors.RaiseException, match=refusal):
                raw.execute(sql)
        raw.execute("ALTER TABLE screening_log DISABLE TRIGGER USER")  # what a guard is not
        raw.execute("UPDATE screening_log SET verdict = 'not_eligible' WHERE number = 2")
    with postgres.open() as db:
        assert ledger.verify(db.read()) == ["record 2: changed after it was written"]


def _commands_use(store: StoreUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands run in this test open ``store``."""
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(store.data_dir))
    if store.url:
        monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", store.url)


GUARDS = {
    "sqlite": ["screening_log_no_update", "screening_log_no_delete"],
    "postgres": ["screening_log_no_change", "screening_log_no_truncate"],
}


def test_verify_reports_the_guards_dropped_and_migrate_puts_them_back(
    store: StoreUnderTest, cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    _commands_use(store, monkeypatch)
    with store.open() as db:
        append(db, "R-1")
        for name in GUARDS[store.kind]:  # as the owner could, by hand
            db.read().execute(
                f"DROP TRIGGER {name}" + (" ON screening_log" if store.kind == "postgres" else "")
            )
    verified = cli("log", "verify")
    assert verified.returncode == 1, verified.stdout
    assert verified.stdout.splitlines() == [
        f"the log's guard {name} (it refuses {refuses}) is missing: 'screen-bot migrate' run "
        "as the tables' owner puts it back"
        for name, refuses in zip(
            GUARDS[store.kind],
            ["changing a record", "deleting a record but by purge"]
            if store.kind == "sqlite"
            else ["changing a record, or deleting one but by purge", "TRUNCATE of the log"],
            strict=True,
        )
    ]
    migrated = cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"screening_log: guards put back ({', '.join(GUARDS[store.kind])})" in migrated.stdout
    assert cli("log", "verify").returncode == 0
    refused = pytest.raises(StorageFailed, match="never changed")
    with store.open() as db, refused, db.transaction() as tx:
        tx.execute("UPDATE screening_log SET verdict = 'not_eligible'")
    assert "put back" not in cli("migrate").stdout  # nothing to do now


def test_a_disabled_guard_is_reported_and_enabled_again(
    postgres: StoreUnderTest, cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    _commands_use(postgres, monkeypatch)
    with postgres.open() as db:
        db.read().execute("ALTER TABLE screening_log DISABLE TRIGGER screening_log_no_truncate")
    verified = cli("log", "verify")
    assert verified.returncode == 1
    assert "guard screening_log_no_truncate (it refuses TRUNCATE of the log) is disabled" in (
        verified.stdout
    )
    assert "guards put back (screening_log_no_truncate)" in cli("migrate").stdout
    assert cli("log", "verify").returncode == 0


def test_migrate_says_when_its_role_cannot_put_the_guards_back(
    postgres: StoreUnderTest, cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    assert postgres.url is not None
    with postgres.open() as db:
        db.read().execute("DROP TRIGGER screening_log_no_truncate ON screening_log")
    role = f"bot_{postgres.url.rsplit('/', 1)[1]}"
    with psycopg.connect(postgres.url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN")
        owner.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", postgres.url.replace("://screen@", f"://{role}@"))
    migrated = cli("migrate")
    assert migrated.returncode == 2
    assert re.fullmatch(
        r"error: the screening log's guards \(triggers\) are missing or disabled, and they "
        r"cannot be put back here \((permission denied|must be owner)[^)]*\): run 'screen-bot "
        r"migrate' as the tables' owner\n",
        migrated.stderr,
    ), migrated.stderr


def test_purge_moves_the_checkpoint_on_postgres(postgres: StoreUnderTest) -> None:
    with postgres.open() as db:
        for n in range(3):
            append(db, f"R-{n}")
        with db.transaction() as tx:
            assert ledger.purge(tx, date(2999, 1, 1)) == 3
        assert ledger.verify(db.read()) == []
        assert append(db, "R-3").number == 4  # numbers are never reused
        assert ledger.verify(db.read()) == []


def test_purge_on_postgres_names_the_statement_that_takes_the_records_out_of_the_files(
    postgres: StoreUnderTest, cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    _commands_use(postgres, monkeypatch)
    old = [f"R-OLD-{n:03d}" for n in range(200)]
    labelled = [(label, datetime(2025, 6, 1, tzinfo=UTC)) for label in old]
    labelled += [("R-NEW", datetime(2026, 6, 1, tzinfo=UTC))] * 200  # live rows after them
    with postgres.open() as db, db.transaction() as tx:
        ledger.append_entries(
            tx,
            [
                ledger.entry(verdict(label), channel="cli", coordinator="cli", answers={}, at=at)
                for label, at in labelled
            ],
        )
    purged = cli("log", "purge", "--before", "2026-01-01", "--yes")
    assert purged.stdout.splitlines() == [
        "purged 200 records made before 2026-01-01",
        "PostgreSQL keeps their bytes in screening_log's files until new records reuse the "
        "space: to rewrite the table without them, run VACUUM FULL screening_log as its owner "
        "(it locks the log meanwhile: the bot's screenings wait)",
    ]
    named = re.search(r"run (VACUUM FULL \w+) as its owner", purged.stdout)
    assert named is not None
    assert postgres.url is not None
    with psycopg.connect(postgres.url, autocommit=True) as owner:
        owner.execute("VACUUM screening_log")  # what autovacuum does: marks the space free
        owner.execute("CHECKPOINT")
        assert b"R-OLD-007" in _table_files(owner, "screening_log")
        owner.execute(named.group(1))
        owner.execute("CHECKPOINT")
        files = _table_files(owner, "screening_log")
    assert [label for label in old if label.encode() in files] == []
    assert b"R-NEW" in files


def _table_files(connection: Any, table: str) -> bytes:
    """The bytes of ``table``'s own files and its TOAST table's, as a copy of the data
    directory holds them (the write-ahead log aside)."""
    (data_directory,) = connection.execute("SHOW data_directory").fetchone()
    (heap, toast) = connection.execute(
        "SELECT pg_relation_filepath(oid), pg_relation_filepath(reltoastrelid)"
        " FROM pg_class WHERE oid = %s::regclass",
        (table,),
    ).fetchone()
    return b"".join(Path(data_directory, path).read_bytes() for path in (heap, toast))


def test_verify_reads_the_log_as_one_moment_left_it_while_another_process_appends(
    store: StoreUnderTest, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(store.data_dir))
    for name, value in store.env().items():
        monkeypatch.setenv(name, value)
    read_head = ledger._head
    with store.open() as bot:
        append(bot, "R-1")

        def head_then_an_append(tx: Tx, *, lock: bool = False) -> Any:
            found = read_head(tx, lock=lock)
            monkeypatch.setattr(ledger, "_head", read_head)  # once
            append(bot, "R-more")  # committed between reading the head and the records
            return found

        monkeypatch.setattr(ledger, "_head", head_then_an_append)
        ran = cli("log", "verify")
        assert ran.returncode == 0, ran.stdout
        assert ran.stdout.startswith("intact: last record 1,")  # as it was when verify began
        assert ledger.verify(bot.read()) == []


def test_the_log_picks_records_by_the_date_screened_on_both_stores(store: StoreUnderTest) -> None:
    with store.open() as db:
        with db.transaction() as tx:
            for day in (date(2026, 3, 31), date(2026, 4, 1)):
                screened = verdict(f"R-{day}").model_copy(update={"screened_on": day})
                ledger.append(tx, screened, channel="batch", coordinator="cli", answers={})
        since = [r.referral for r in ledger.records(db.read(), since=date(2026, 4, 1))]
        assert since == ["R-2026-04-01"]
        assert [r.screened_on for r in ledger.records(db.read())] == [
            date(2026, 3, 31),
            date(2026, 4, 1),
        ]


def test_the_bots_stats_read_on_a_thread_has_a_connection_of_its_own(
    store: StoreUnderTest,
) -> None:
    """/stats reads the log on a thread while the event loop's chats write on the store's
    connection: sharing that connection, the read would run inside another chat's
    transaction (and an SQLite connection is not for two threads at once)."""
    from screen_bot.reports import Reports

    with store.open() as db, ThreadPoolExecutor(1) as thread:
        append(db, "R-1")
        with db.transaction() as tx:  # a chat's screening being logged, not committed yet
            ledger.append(tx, verdict("R-2"), channel="cli", coordinator="cli", answers={})
            (during,) = thread.submit(Reports(db).stats).result()
        (after,) = thread.submit(Reports(db).stats).result()
    assert (during.screenings, after.screenings) == (1, 2)


def test_the_bots_stats_read_of_a_file_that_is_no_longer_a_database_fails_as_a_read(
    tmp_path: Path,
) -> None:
    """The file replaced meanwhile by one that is not a database: the reader opens it (SQLite
    opens lazily) and fails at its first read. That is StorageFailed "could not be read", as
    a file gone is and as any read on PostgreSQL, so that /stats says it could not read the
    log (it said "Something went wrong")."""
    from screen_bot.reports import Reports

    path = tmp_path / "screen-bot.sqlite3"
    with Database(path) as db:  # closed: its WAL (which would still serve the pages) is gone
        append(db, "R-1")
    (tmp_path / "other").write_bytes(b"not a database\n" * 512)
    (tmp_path / "other").replace(path)
    with pytest.raises(StorageFailed, match="could not be read"):
        Reports(db).stats()


def test_appends_from_two_connections_at_once_make_one_chain(postgres: StoreUnderTest) -> None:
    """Each append reads the head and moves it: two writers must not read the same head."""
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with postgres.open() as db:
                for n in range(40):
                    append(db, f"{name}-{n}")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with postgres.open() as db:
        numbers = [r.number for r in ledger.records(db.read())]
        assert numbers == list(range(1, 81))
        assert ledger.verify(db.read()) == []


# -- the rest of the tables, the same on both ----------------------------------------------------


def test_inbox_outbox_and_sessions_behave_alike(store: StoreUnderTest) -> None:
    from screen_bot.session import Session

    with store.open() as db:
        with db.transaction() as tx:
            got = inbox.receive(
                tx, [Received(5, 11, "{}"), Received(6, 11, "{}")], lifetime=DEFAULT_LIFETIME
            )
            again = inbox.receive(
                tx, [Received(5, 11, "{}"), Received(7, 12, "{}")], lifetime=DEFAULT_LIFETIME
            )
            delivery = outbox.put(tx, 11, "verdict", lifetime=DEFAULT_LIFETIME)
            inbox.finish(tx, 5)
        assert [r.update_id for r in got] == [5, 6] and [r.update_id for r in again] == [7]
        read = db.read()
        assert [r.update_id for r in inbox.pending_in(read, 11)] == [6]
        assert inbox.newest(read, 11) == 6 and inbox.newest(read, 99) is None
        assert inbox.chats_waiting(read) == [11, 12]
        assert outbox.waiting(read, delivery) and [u.id for u in outbox.undelivered(read)] == [
            delivery
        ]
        with db.transaction() as tx:
            outbox.sent(tx, delivery, 2)  # of its messages
        read = db.read()
        assert outbox.waiting(read, delivery) == outbox.Undelivered(delivery, 11, "verdict", 2)
        assert (
            outbox.undelivered(read)
            == outbox.undelivered_to(read, 11)
            == [outbox.Undelivered(delivery, 11, "verdict", 2)]
        )
        later = datetime(2999, 1, 1, tzinfo=UTC)
        assert inbox.chats_waiting(read, later) == [11, 12] and not inbox.chats_waiting(
            read, datetime(2000, 1, 1, tzinfo=UTC)
        )
        first = Session(protocol_id="p", protocol_version="1", protocol_sha256="x", state="age")
        second = Session(protocol_id="p", protocol_version="1", protocol_sha256="x", state="age")
        big_chat = 2**40 + 1  # Telegram ids do not fit 32 bits
        with db.transaction() as tx:
            sessions.save(tx, big_chat, first, lifetime=DEFAULT_LIFETIME)
            sessions.save(tx, big_chat, second, lifetime=DEFAULT_LIFETIME)  # the active one now
            sessions.save(tx, big_chat, first, lifetime=DEFAULT_LIFETIME, activate=False)  # paused
            assert sessions.activate(tx, big_chat, first.id)
        active = sessions.active(db.read(), big_chat)
        assert active is not None and active.id == first.id
        assert [o.active for o in sessions.list_open(db.read(), big_chat)].count(True) == 1


def test_the_bot_may_run_as_a_role_that_can_neither_create_tables_nor_drop_the_guards(
    postgres: StoreUnderTest, cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    assert postgres.url is not None
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", postgres.url)  # the owner creates them
    made = cli("migrate")
    assert made.returncode == 0 and "screening_log: version 2 (applied now)" in made.stdout
    again = cli("migrate")
    assert "screening_log: version 2\n" in again.stdout and "applied now" not in again.stdout
    role = f"bot_{postgres.url.rsplit('/', 1)[1]}"
    with psycopg.connect(postgres.url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN")
        owner.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        owner.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    as_bot = postgres.url.replace("://screen@", f"://{role}@")
    with open_store(Path("unused"), as_bot) as db:
        append(db, "R-1")
        assert ledger.verify(db.read()) == []
    with psycopg.connect(as_bot, autocommit=True) as raw:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute("DROP TRIGGER screening_log_no_change ON screening_log")
        with pytest.raises(psycopg.errors.RaiseException, match="never changed"):
            raw.execute("UPDATE screening_log SET verdict = 'x'")


def test_a_bot_role_without_usage_on_the_sequences_is_refused_at_the_start(
    postgres: StoreUnderTest, cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not at the verdict, after a whole dialog (the outbox's id is a sequence's)."""
    import psycopg

    assert postgres.url is not None
    postgres.open().close()  # the owner creates the tables
    role = f"bot_{postgres.url.rsplit('/', 1)[1]}"
    with psycopg.connect(postgres.url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN")
        owner.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
    as_bot = postgres.url.replace("://screen@", f"://{role}@")
    refusal = (
        f"error: the role {role} lacks privileges screen-bot needs on {as_bot} (USAGE on "
        "sequences outbox_id_seq, quiz_scores_id_seq): as the tables' owner, run GRANT USAGE "
        f"ON ALL SEQUENCES IN SCHEMA public TO {role}\n"
    )
    ran = process(
        "run",
        SCREEN_BOT_DATABASE_URL=as_bot,
        TELEGRAM_BOT_TOKEN="123456:TEST-token_abcdefghijklmnopqrstuvwxyz",
        TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot",  # never reached
        SCREEN_BOT_ALLOWED_USERS="111",
    )
    assert ran.returncode == 2 and ran.stderr.endswith(refusal), ran.stderr
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", as_bot)
    chat = cli("chat", "--referral", "R-1", stdin="70\n")
    assert chat.returncode == 2 and chat.stderr == refusal and chat.stdout == ""
    with psycopg.connect(postgres.url, autocommit=True) as owner:
        owner.execute(f"REVOKE SELECT ON quiz_scores, owner_settings FROM {role}")
        owner.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    assert cli("chat", "--referral", "R-1", stdin="70\n").stderr == (
        f"error: the role {role} lacks privileges screen-bot needs on {as_bot} (SELECT on "
        "tables owner_settings, quiz_scores): as the tables' owner, run GRANT SELECT, INSERT, "
        f"UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}\n"
    )


def test_a_role_granted_less_where_the_bot_does_not_write_is_not_refused(
    postgres: StoreUnderTest, cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site hardening its role (no UPDATE or DELETE on the screening log, no write to
    schema_version) screened before the grant check came, and still does."""
    import psycopg

    assert postgres.url is not None
    postgres.open().close()
    role = f"tight_{postgres.url.rsplit('/', 1)[1]}"
    with psycopg.connect(postgres.url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN")
        owner.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        owner.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        owner.execute(f"REVOKE UPDATE, DELETE ON screening_log FROM {role}")
        owner.execute(f"REVOKE INSERT, UPDATE, DELETE ON schema_version FROM {role}")
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", postgres.url.replace("://screen@", f"://{role}@"))
    chat = cli("chat", "--referral", "R-1", stdin="quit\n")
    assert chat.returncode == 0 and "lacks privileges" not in chat.stderr, chat.stderr


# -- between processes -----------------------------------------------------------------------------

HOLDER = """
import sys, time
from screen_bot.storage import open_store
db = open_store(None, sys.argv[1])
assert db.try_lock("screen-bot/chat/1")
print("locked", flush=True)
time.sleep(60)
"""


def test_a_chat_lock_is_free_again_when_its_holder_is_killed(postgres: StoreUnderTest) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(postgres.url)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with postgres.open() as db:
            assert not db.try_lock("screen-bot/chat/1")
            assert db.try_lock("screen-bot/chat/2")  # another chat's lock is free
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            deadline = time.monotonic() + 10
            while not db.try_lock("screen-bot/chat/1"):
                assert time.monotonic() < deadline, "the lock outlived its holder"
                time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait()


def test_a_write_on_a_session_the_server_ended_while_idle_begins_on_a_new_one(
    postgres: StoreUnderTest,
) -> None:
    """A coordinator thinking at chat's prompt while the server restarts or ends the idle
    session: the answer that follows is a write, and it is taken (nothing of it had run
    when its BEGIN found the session over); a server that is gone still fails it."""
    import psycopg

    with postgres.open() as db:
        append(db, "R-1")
        (pid,) = db.read().one("SELECT pg_backend_pid()")
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert append(db, "R-2").number == 2
        assert ledger.verify(db.read()) == []
        (again,) = db.read().one("SELECT pg_backend_pid()")
        db.url = "postgresql://screen@127.0.0.1:1/gone"
        _terminate(str(postgres.url), again)
        with pytest.raises(StorageFailed, match="nothing was saved"):
            append(db, "R-3")


def _terminate(url: str, pid: int) -> None:
    """End a session from the server's side (as a restart, idle_session_timeout, a pooler)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_read_on_a_session_the_server_ended_connects_again(postgres: StoreUnderTest) -> None:
    with postgres.open() as db:
        append(db, "R-1")
        (pid,) = db.read().one("SELECT pg_backend_pid()")
        _terminate(str(postgres.url), pid)
        # a chat's check before an answer, after the server ended its idle connection
        assert db.read().one("SELECT count(*) FROM screening_log")[0] == 1
        (again,) = db.read().one("SELECT pg_backend_pid()")
        _terminate(str(postgres.url), again)
        db.url = "postgresql://screen@127.0.0.1:1/gone"  # and the server cannot be reached
        with pytest.raises(StorageFailed, match="cannot connect to PostgreSQL at"):
            db.read().one("SELECT count(*) FROM screening_log")


def test_a_chat_lock_on_a_session_the_server_ended_is_taken_on_a_new_one(
    postgres: StoreUnderTest,
) -> None:
    with postgres.open() as db:
        assert db.try_lock("screen-bot/chat/1")
        db.unlock("screen-bot/chat/1")
        (pid,) = db.read().one(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'screen-bot' AND pid <> pg_backend_pid()"
        )
        _terminate(str(postgres.url), pid)  # the lock connection, idle
        assert db.try_lock("screen-bot/chat/1")  # at once, not a failed update and a sweep


def test_a_statement_over_the_timeout_is_cancelled_and_its_write_not_saved(
    postgres: StoreUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg, "STATEMENT_TIMEOUT_MS", 300)  # 30 s in use
    with postgres.open() as db:
        failed = pytest.raises(StorageFailed, match="statement timeout.*nothing was saved")
        with failed, db.transaction() as tx:
            ledger.append(tx, verdict("R-1"), channel="cli", coordinator="cli", answers={})
            tx.execute("SELECT pg_sleep(5)")  # a server that takes it and does not answer
        assert db.read().one("SELECT count(*) FROM screening_log")[0] == 0
        append(db, "R-2")  # the next write works
        assert [r.referral for r in ledger.records(db.read())] == ["R-2"]


def test_a_write_that_waited_too_long_for_the_write_lock_fails_and_the_next_one_is_saved(
    postgres: StoreUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holding the write lock past the lock timeout (a long purge, a
    migration, a chat stopped inside its transaction) fails this write, and only it: the
    same store, the bot's one connection, saves the next write once the lock is free."""
    import psycopg

    monkeypatch.setattr(pg, "LOCK_TIMEOUT_MS", 200)  # 5 s in use
    with postgres.open() as db:
        append(db, "R-1")
        for long in (False, True):  # an answer, and a purge
            with psycopg.connect(str(postgres.url)) as holder:  # its transaction holds it
                holder.execute("SELECT pg_advisory_xact_lock(%s)", (pg.lock_key_of(pg.WRITE_LOCK),))
                failed = pytest.raises(StorageFailed, match="lock timeout.*nothing was saved")
                with failed, db.transaction(long=long) as tx:
                    ledger.append(tx, verdict("lost"), channel="cli", coordinator="cli", answers={})
            append(db, f"R-{2 + long}")  # the lock free again: saved
        with db.snapshot() as tx:
            assert [r.referral for r in ledger.records(tx)] == ["R-1", "R-2", "R-3"]
        assert ledger.verify(db.read()) == []


def test_an_up_to_date_database_is_opened_and_read_while_a_writer_holds_the_write_lock(
    postgres: StoreUnderTest,
    postgres_server: str,
    cli: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`log verify` while another process holds the write lock past the lock timeout (a
    long purge): its open only reads, the tables being current, so it is not failed by a
    write's lock wait; it said "could not be written … (while creating the tables)". A
    database whose tables must be created still waits for the lock, and says so."""
    import psycopg

    monkeypatch.setattr(pg, "LOCK_TIMEOUT_MS", 200)  # 5 s in use
    with postgres.open() as db:
        append(db, "R-1")
    empty = new_database(postgres_server)
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", str(postgres.url))
    with psycopg.connect(str(postgres.url)) as holder, psycopg.connect(empty) as on_empty:
        for session in (holder, on_empty):  # (a database's own lock) held by its transaction
            session.execute("SELECT pg_advisory_xact_lock(%s)", (pg.lock_key_of(pg.WRITE_LOCK),))
        ran = cli("log", "verify")
        assert ran.returncode == 0 and ran.stdout.startswith("intact: last record 1"), ran.stderr
        with pytest.raises(DatabaseBroken, match="lock timeout.*while creating the tables"):
            pg.PostgresDatabase(empty)
    with pg.PostgresDatabase(empty) as db:  # the lock free again
        assert versions(db.read()) == NEWEST


def test_a_snapshot_that_failed_to_begin_leaves_the_connection_usable(
    postgres: StoreUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    with postgres.open() as db:
        monkeypatch.setattr(pg, "_SNAPSHOT", "BEGIN READ ONLY; SELECT 1 / 0")  # after its BEGIN
        with pytest.raises(StorageFailed, match="could not be read"), db.snapshot():
            pass
        append(db, "R-1")
        assert db.read().one("SELECT count(*) FROM screening_log")[0] == 1


def test_what_may_take_long_is_not_timed(
    postgres: StoreUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg, "STATEMENT_TIMEOUT_MS", 300)
    monkeypatch.setattr(pg, "IDLE_IN_TRANSACTION_MS", 300)

    def slow_migration(tx: Tx, where: str) -> dict[str, int]:
        tx.execute("SELECT pg_sleep(0.6)")  # a migration rewriting a big table
        return {}

    with postgres.open() as db:
        with db.transaction(long=True) as tx:  # a purge of a big log
            tx.execute("SELECT pg_sleep(0.6)")
            time.sleep(0.6)  # verifying the chain first, between its statements
            tx.execute("SELECT 1")
        with db.snapshot() as tx:  # log verify, export, stats
            tx.execute("SELECT pg_sleep(0.6)")
        monkeypatch.setattr(pg, "outdated", lambda tx, where: True)  # (else nothing to do)
        monkeypatch.setattr(pg, "migrate", slow_migration)
        with postgres.open():
            pass


@contextmanager
def standby_gone(server: str) -> Iterator[None]:
    """The cluster made to wait at every durable COMMIT for a synchronous standby that is
    not there (``synchronous_standby_names``, as on a site whose replica died), once that
    is in force; back to no standby afterwards (which also ends every such wait)."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS standby_probe (at timestamptz)")
        admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'gone'")
        admin.execute("SELECT pg_reload_conf()")
        try:
            with psycopg.connect(server, autocommit=True) as probe:
                probe.execute("SET synchronous_commit = on")
                deadline = time.monotonic() + 30
                while not _commit_waits_for_a_standby(admin, probe):
                    assert time.monotonic() < deadline, "the server never waited for a standby"
                    time.sleep(0.05)  # it has not read its settings again yet
            yield
        finally:
            admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
            admin.execute("SELECT pg_reload_conf()")


def _commit_waits_for_a_standby(admin: Any, probe: Any) -> bool:
    """Whether a COMMIT that wrote something waits for the standby (stopped if it does)."""
    committing = threading.Thread(
        target=probe.execute, args=("INSERT INTO standby_probe VALUES (now())",)
    )
    committing.start()
    waiting = False
    while committing.is_alive() and not waiting:
        waiting = admin.execute(
            "SELECT wait_event = 'SyncRep' FROM pg_stat_activity WHERE pid = %s",
            (probe.info.backend_pid,),
        ).fetchone()[0]
    if waiting:
        admin.execute("SELECT pg_cancel_backend(%s)", (probe.info.backend_pid,))
    committing.join()
    return bool(waiting)


def test_a_commit_waiting_for_a_standby_that_is_gone_is_kept_and_said_so(
    postgres: StoreUnderTest,
    postgres_server: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import psycopg

    monkeypatch.setattr(pg, "STATEMENT_TIMEOUT_MS", 500)
    with psycopg.connect(str(postgres.url), autocommit=True) as admin:  # the test cluster's: off
        admin.execute(
            "ALTER DATABASE " + str(postgres.url).rsplit("/", 1)[1] + " SET synchronous_commit = on"
        )
    caplog.set_level(logging.WARNING, logger="screen_bot.storage.postgres")
    done: list[ledger.LogRecord] = []
    with postgres.open() as db, standby_gone(postgres_server):
        appending = threading.Thread(
            target=lambda: done.extend([append(db, "R-1"), append(db, "R-2")])
        )
        appending.start()
        appending.join(60)  # without a bound: until the standby requirement is lifted
        assert not appending.is_alive(), "the COMMIT waited for the standby that is gone"
    appending.join()
    assert [r.number for r in done] == [1, 2]  # each saved, once: committed on this server
    with postgres.open() as db:
        assert [r.referral for r in ledger.records(db.read())] == ["R-1", "R-2"]
        assert ledger.verify(db.read()) == []
    said = [r.getMessage() for r in caplog.records]
    assert any("committed locally" in line for line in said), said
    # the first COMMIT was stopped waiting; the one after it did not wait for the standby
    assert sum("a COMMIT has waited" in line for line in said) == 1, said


def test_an_unreachable_server_is_one_line_naming_it_without_the_password() -> None:
    url = "postgresql://screen:hunter2@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseBroken) as refused:
        open_store(Path("unused"), url)
    assert "cannot connect to PostgreSQL at postgresql://screen:***@127.0.0.1:1/nowhere" in str(
        refused.value
    )
    assert "hunter2" not in str(refused.value)


# -- choosing the store ------------------------------------------------------------------------


def test_the_url_setting_chooses_postgres_and_its_password_is_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", "postgresql://bot:s3cret-pw@db.example:5432/sb")
    settings = Settings()
    assert settings.database_url_text == "postgresql://bot:s3cret-pw@db.example:5432/sb"
    assert "s3cret-pw" in settings.secrets()
    assert hidden(settings.database_url_text) == "postgresql://bot:***@db.example:5432/sb"
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", "postgresql://bot@db/sb?password=qs-pw")
    assert "qs-pw" in Settings().secrets()
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", "")
    assert Settings().database_url_text is None  # empty: the SQLite file


def test_a_url_that_is_not_postgres_is_refused(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", "mysql://bot@db/sb")
    ran = cli("log", "verify")
    assert ran.returncode == 2 and "give a postgresql://" in ran.stderr


def test_the_commands_use_postgres_when_the_url_is_set(
    postgres: StoreUnderTest, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with postgres.open() as db:
        append(db, "R-7")
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", str(postgres.url))
    ran = cli("log", "verify")
    assert ran.returncode == 0 and ran.stdout.startswith("intact: last record 1"), ran.stderr
    where = cli("where")
    assert f"database:          {postgres.url} (PostgreSQL)" in where.stdout
    assert not (postgres.data_dir / "data" / "screen-bot.sqlite3").exists()


def test_without_psycopg_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(ScreenBotError, match=r"pip install 'screen-bot\[postgres\]'"):
        open_store(Path("unused"), "postgresql://screen@127.0.0.1:1/none")


def test_placeholders_become_psycopgs_outside_quoted_text() -> None:
    sql = "SELECT '?', '50%', x FROM t WHERE a = ? AND b LIKE 'it''s ?' AND c = ? -- 5%"
    assert placeholders(sql) == (
        "SELECT '?', '50%', x FROM t WHERE a = %s AND b LIKE 'it''s ?' AND c = %s -- 5%%"
    )


def test_a_second_database_on_the_same_server_is_separate(postgres_server: str) -> None:
    first, second = new_database(postgres_server), new_database(postgres_server)
    with open_store(Path("unused"), first) as a, open_store(Path("unused"), second) as b:
        append(a, "R-1")
        assert list(ledger.records(b.read())) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://screen:pa#SECRETLONG@127.0.0.1:1/db",  # libpq takes '#' and '?' as they are
        "postgresql://screen:pa?SECRETLONG@127.0.0.1:1/db",
        "postgresql://screen:pa@SECRETLONG@127.0.0.1:1/db",  # libpq: the rest is "the host"
        "postgresql://screen@127.0.0.1:1/db?sslmode=disable&password=SECRETLONG",
        "postgresql://screen:pw%zzSECRETLONG@127.0.0.1:1/db",  # not percent-encoded
        "postgresql://screen:pwSECRETLONG@[::1/db",  # a typo in the host
    ],
)
def test_a_password_is_never_shown_however_the_url_is_written(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "SECRETLONG" not in hidden(url)
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", url)
    for command in (["where"], ["log", "verify"], ["chat", "-p", "blina-dli"]):
        ran = process(*command, stdin="")
        assert "SECRETLONG" not in ran.stdout + ran.stderr, command


@given(st.text(st.characters(exclude_characters="/@\n", codec="utf-8"), min_size=4, max_size=30))
def test_any_password_is_hidden_and_known_as_a_secret(password: str) -> None:
    url = f"postgresql://screen:{password}@db.example:5432/sb"
    assert hidden(url) == "postgresql://screen:***@db.example:5432/sb"
    assert password in passwords(url)
