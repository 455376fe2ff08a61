"""One bot per store (``storage/running.py``), with the real ``screen-bot run`` processes.

A second ``run`` on one SQLite file is refused at start (exit 2) and the first goes on; a
run killed with ``kill -9`` leaves nothing that blocks the next. A store another bot used
before is taken over: that bot's update ids no longer make this bot's updates look
handled already, nor its answers typed before the question. (Two instances of the same
bot, and another bot refused, on PostgreSQL: ``test_two_instances.py``.)
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
from pathlib import Path

import pytest

from bot_process import PROTOCOL, BotProcess, say, variable_of
from fakebot import FakeBotApi
from screen_bot.adapters.telegram import messages as words
from screen_bot.adapters.telegram.app import DRAIN_SECONDS
from screen_bot.errors import ScreenBotError
from screen_bot.storage import Database, running
from stores import StoreUnderTest

COORDINATOR = 111
BOT_A = "111111:AAAA-token_abcdefghijklmnopqrstuvwxyz"
BOT_B = "222222:BBBB-token_abcdefghijklmnopqrstuvwxyz"
HELP = "how to use me"  # a line of /help's reply


def test_a_second_run_on_one_sqlite_file_exits_2_at_start_and_the_first_goes_on(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    first = BotProcess(fake, tmp_path, str(COORDINATOR), log_name="first.log")
    second = BotProcess(fake, tmp_path, str(COORDINATOR), log_name="second.log")
    first.start()
    try:
        before = {m: len(fake.calls(m)) for m in ("getMe", "deleteWebhook", "setWebhook")}
        second.start(wait_for_poll=False)
        assert second.process is not None and first.process is not None
        assert second.process.wait(60) == 2, second.output()
        errors = [line for line in second.output().splitlines() if line.startswith("error:")]
        assert errors == [
            f"error: another 'screen-bot run' (process {first.process.pid}) is running on the "
            f"database {tmp_path / 'screen-bot.sqlite3'}: stop it first, or give this one its "
            "own SCREEN_BOT_DATA_DIR (several instances of one bot need PostgreSQL: "
            "SCREEN_BOT_DATABASE_URL)"
        ]
        # refused before it asked the Bot API anything (so before it could poll)
        assert {m: len(fake.calls(m)) for m in before} == before
        assert HELP in say(fake, COORDINATOR, "/help")["text"]
        assert first.process.poll() is None
    finally:
        first.stop()
        second.stop()


def test_a_run_killed_with_sigkill_does_not_block_the_next(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    first = BotProcess(fake, tmp_path, str(COORDINATOR), log_name="first.log")
    first.start()
    first.kill()
    assert (tmp_path / "screen-bot.sqlite3-run.lock").exists()  # left behind
    second = BotProcess(fake, tmp_path, str(COORDINATOR), log_name="second.log")
    second.start()
    try:
        assert HELP in say(fake, COORDINATOR, "/help")["text"]
    finally:
        second.stop()


def test_a_child_forked_while_the_bot_runs_does_not_keep_the_files_lock(tmp_path: Path) -> None:
    """A child forked without exec shares the lock's open file: it must not keep the lock
    once the bot is gone."""
    db = Database(tmp_path / "screen-bot.sqlite3")
    end_read, end_write = os.pipe()  # the child ends when told
    ready_read, ready_write = os.pipe()  # the child is forked
    try:
        with running.sole_run(db):
            child = os.fork()
            if child == 0:  # pragma: no cover - the child only waits, then ends
                os.write(ready_write, b".")  # (after the fork's handlers in the child)
                os.read(end_read, 1)
                os._exit(0)
            os.read(ready_read, 1)
        try:
            with running.sole_run(db):  # the run above has ended; its child lives on
                pass
        finally:
            os.write(end_write, b".")
            os.waitpid(child, 0)
        with (  # while a run holds it, another is refused
            running.sole_run(db),
            pytest.raises(ScreenBotError, match="is running on"),
            running.sole_run(db),
        ):
            pass
    finally:
        for end in (end_read, end_write, ready_read, ready_write):
            os.close(end)
        db.close()


def test_a_store_another_bot_used_before_is_taken_over_with_its_open_screening(
    store: StoreUnderTest,
) -> None:
    """Bot B's update ids overlap bot A's: its /help has the id of A's, and its answer an id
    below that of the update A's question was shown after. Both are handled."""
    with FakeBotApi(token=BOT_A) as a:
        bot_a = BotProcess(a, store.data_dir, str(COORDINATOR), store=store, log_name="a.log")
        bot_a.start()
        try:
            assert HELP in say(a, COORDINATOR, "/help")["text"]  # update 1000
            a.next_update_id(1500)
            question = say(a, COORDINATOR, f"/screen {PROTOCOL.id} R-0042")  # update 1500
            assert variable_of(question) == "age"
        finally:
            bot_a.stop()
    with FakeBotApi(token=BOT_B) as b:
        bot_b = BotProcess(b, store.data_dir, str(COORDINATOR), store=store, log_name="b.log")
        bot_b.start()
        try:
            assert HELP in say(b, COORDINATOR, "/help")["text"]  # update 1000 again
            reply = say(b, COORDINATOR, "33")  # update 1001: after the question all the same
            assert words.EARLY not in reply["text"]
            assert variable_of(reply) != "age", reply["text"]
            # bot A's question message is not one of this chat's: none of them is edited
            assert [c["method"] for c in b.calls() if c["method"].startswith("edit")] == []
        finally:
            bot_b.stop()
    warnings = [line for line in bot_b.output().splitlines() if "takes it over" in line]
    assert len(warnings) == 1
    assert warnings[0].endswith(
        "WARNING screen_bot.storage.running: this database was last used by bot 111111; bot "
        "222222 takes it over: the open screenings go on with this bot"
    )
    assert "AAAA" not in bot_b.output() and "BBBB" not in bot_b.output()
    [(body,)] = store.rows("SELECT body FROM open_sessions WHERE owner = ?", (COORDINATOR,))
    assert json.loads(body)["answers"]["age"]["value"] == 33
    assert store.rows("SELECT bot_id FROM last_bot") == [(222222,)]


def test_a_run_started_while_the_last_one_is_still_stopping_waits_for_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart begun before the old process ended (its lock released a moment later)
    goes on; only a lock kept past the grace means another run."""
    db = Database(tmp_path / "screen-bot.sqlite3")
    stopping = os.open(running.lock_file(db.path), os.O_RDWR | os.O_CREAT)
    fcntl.flock(stopping, fcntl.LOCK_EX)
    threading.Timer(0.5, os.close, (stopping,)).start()
    with running.sole_run(db):
        pass  # without the wait: "another 'screen-bot run' is running"
    assert running.STOPPING_GRACE > DRAIN_SECONDS  # what a stopping run lets handlers take
    monkeypatch.setattr(running, "STOPPING_GRACE", 0.3)
    kept = os.open(running.lock_file(db.path), os.O_RDWR)
    fcntl.flock(kept, fcntl.LOCK_EX)
    try:
        with pytest.raises(ScreenBotError, match="another 'screen-bot run'"), running.sole_run(db):
            pass
    finally:
        os.close(kept)


def test_a_filesystem_that_cannot_lock_files_does_not_stop_the_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite works where flock is refused (ENOLCK on some network shares): the run goes
    on, saying a second run would not be refused there."""

    def refused(descriptor: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(running.fcntl, "flock", refused)
    db = Database(tmp_path / "screen-bot.sqlite3")
    with running.sole_run(db):
        pass
    assert "a second 'screen-bot run' on this database would not be refused" in caplog.text
