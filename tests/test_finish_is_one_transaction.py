"""Finishing a screening is one transaction: killed between its two writes, nothing is
logged twice and nothing is lost.

A real process finishes a screening and is killed (SIGKILL) right after the log record
was appended and before the open session is removed, the two writes the old code made in
two transactions. After the restart the screening is still open at its last question (the
append was rolled back with it); answering again logs it exactly once. The same kill with
the writes committed one by one, as the old code did, logs it twice: the control shows the
test can see the fault it guards against.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from conftest import DIALOGS
from screen_bot.protocol.catalog import Catalog
from screen_bot.results import Finished
from screen_bot.service import ScreeningService
from screen_bot.storage import Database, ledger, sessions

OWNER = 111
CHILD = """
import os, signal, sys
from pathlib import Path
from screen_bot.protocol.catalog import Catalog
from screen_bot.service import ScreeningService
from screen_bot.storage import Database, ledger, sessions

database, dialogs, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
db = Database(database)
service = ScreeningService(Catalog(dialogs), db, channel="telegram")
service.start(111, referral="R-1")

def killed(*args, **kwargs):  # the second write: the process dies just before it
    os.kill(os.getpid(), signal.SIGKILL)

if mode == "old":  # the old path: the record committed on its own, then the delete
    real_append = ledger.append
    def append_and_commit(tx, *args, **kwargs):
        record = real_append(tx, *args, **kwargs)
        tx.execute("COMMIT")
        tx.execute("BEGIN IMMEDIATE")
        return record
    ledger.append = append_and_commit
sessions.delete = killed
service.answer(111, "70")  # I1 fails: the screening finishes
raise SystemExit("not killed")
"""


def finish_and_kill(tmp_path: Path, mode: str) -> Path:
    database = tmp_path / "screen-bot.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(database), str(DIALOGS), mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return database


def restart_and_answer_again(database: Path) -> tuple[int, int]:
    """(log records, open screenings) after the screening is answered again."""
    with Database(database) as db:
        service = ScreeningService(Catalog(DIALOGS), db, channel="telegram")
        (finished,) = [r for r in service.answer(OWNER, "70") if isinstance(r, Finished)]
        assert finished.verdict.verdict == "not_eligible"
        return len(list(ledger.records(db.read()))), sessions.count(db.read())


def test_killed_between_the_two_writes_nothing_is_doubled_or_lost(tmp_path: Path) -> None:
    database = finish_and_kill(tmp_path, "one transaction")
    with Database(database) as db:
        assert list(ledger.records(db.read())) == []  # the append went with the kill
        session = sessions.active(db.read(), OWNER)
        assert session is not None and session.referral == "R-1"  # not lost
        assert session.state == "age" and session.answers == {}
        assert ledger.verify(db.read()) == []
    records, still_open = restart_and_answer_again(database)
    assert (records, still_open) == (1, 0)


def test_control_the_old_two_commits_log_twice(tmp_path: Path) -> None:
    database = finish_and_kill(tmp_path, "old")
    with Database(database) as db:
        assert len(list(ledger.records(db.read()))) == 1  # committed before the kill
        assert sessions.active(db.read(), OWNER) is not None  # ...and the session still open
    records, still_open = restart_and_answer_again(database)
    assert (records, still_open) == (2, 0)  # the duplicate the one transaction prevents
