"""/log, /stats, /forget, /learn, /quiz, /progress and /flow in a chat (offline)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from screen_bot.adapters.telegram import records
from screen_bot.adapters.telegram.app import build_application
from screen_bot.protocol.catalog import Catalog
from screen_bot.settings import Settings, default_dialogs_dir
from screen_bot.storage import Database, Store, ledger, sessions
from screen_bot.training.flow import missing_for_images
from screen_bot.verdict import ProtocolRef, Reason, Verdict
from stores import StoreUnderTest
from telegram_offline import Chat, RecordingRequest
from test_telegram_transcript import COORDINATOR, OTHER, TOKEN


class RefusingEdits(RecordingRequest):
    """Telegram refusing every edit, as it does for a message too old to edit."""

    async def do_request(self, url: str, method: str, request_data=None, *args, **kwargs):
        if url.rsplit("/", 1)[-1].startswith("editMessage"):
            self.calls.append((url.rsplit("/", 1)[-1], {}))
            refusal = {"ok": False, "error_code": 400, "description": "Bad Request: no edit"}
            return 400, json.dumps(refusal).encode()
        return await super().do_request(url, method, request_data, *args, **kwargs)


@pytest.fixture
async def setup(tmp_path: Path, catalog: Catalog):
    async for made in _application(tmp_path, catalog, RecordingRequest()):
        yield made


@pytest.fixture
async def refusing_edits(tmp_path: Path, catalog: Catalog):
    async for made in _application(tmp_path, catalog, RefusingEdits()):
        yield made


@pytest.fixture
async def on_each_store(tmp_path: Path, catalog: Catalog, store: StoreUnderTest):
    async for made in _application(tmp_path, catalog, RecordingRequest(), store.open()):
        yield made


async def _application(
    tmp_path: Path, catalog: Catalog, request: RecordingRequest, db: Store | None = None
):
    settings = Settings(
        TELEGRAM_BOT_TOKEN=TOKEN,
        SCREEN_BOT_ALLOWED_USERS=f"{COORDINATOR},{OTHER}",
        SCREEN_BOT_DATA_DIR=tmp_path,
        SCREEN_BOT_DIALOGS_DIR=default_dialogs_dir(),
    )
    db = db or Database(settings.database)
    application, _ = build_application(
        settings,
        catalog,
        db,
        request=request,
        get_updates_request=RecordingRequest(),
    )
    await application.initialize()
    yield application, request, db
    await application.shutdown()
    db.close()


async def test_finished_chat_screening_is_logged_and_listed(setup) -> None:
    application, request, db = setup
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/screen R-0423")
    await chat.send("70")  # I1 fails: the screening ends and is logged
    (record,) = list(ledger.records(db.read()))
    assert (record.channel, record.coordinator, record.referral) == ("telegram", "111", "R-0423")
    assert [r.criterion for r in record.reasons] == ["I1"] and record.answers == {"age": 70}
    await chat.send("/log")
    assert "R-0423" in chat.last_text() and "not_eligible (I1)" in chat.last_text()
    other = Chat(application, request, OTHER)
    await other.send("/log")
    assert "no finished screenings" in other.last_text()


async def test_stats_sends_a_chart(setup) -> None:
    application, request, _ = setup
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/stats")
    assert "No screenings" in chat.last_text()
    await chat.send("/screen R-1")
    await chat.send("70")
    await chat.send("/stats")
    ((method, params),) = request.uploads
    assert method == "sendPhoto" and "1 patients screened" in params["caption"]
    assert "I1" in chat.last_text()


def log_failures(db: Store, protocols: int, criteria: int) -> None:
    """One patient per protocol (trial-0, trial-1, …), failing ``criteria`` criteria."""
    reasons = [
        Reason(criterion=f"I{k}", kind="inclusion", label=f"lab value {k}", source="", answers={})
        for k in range(criteria)
    ]
    with db.transaction() as tx:
        for p in range(protocols):
            failed = Verdict(
                referral=f"R-{p}",
                verdict="not_eligible",
                reasons=reasons,
                open_items=[],
                protocol=ProtocolRef(id=f"trial-{p}", version="1", sha256="ab" * 32),
                screened_on=date(2026, 3, 1),
            )
            ledger.append(tx, failed, channel="telegram", coordinator=str(COORDINATOR), answers={})


def texts_after_the_photo(chat: Chat) -> str:
    return "\n".join(m["text"] for m in chat.messages()[1:])


async def test_stats_photo_of_a_site_with_several_trials_is_taken(setup) -> None:
    """Five trials, each with 40 criteria failed: drawn whole, the photo was 1350 x 11,355
    px, which the Bot API refuses (width + height at most 10,000), and the counts were not
    sent either. Each panel shows its most frequent failures; the counts name them all."""
    application, request, db = setup
    log_failures(db, 5, criteria=40)
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/stats")
    ((width, height),) = request.photo_sizes
    assert width + height <= 10_000
    ((method, params),) = request.uploads
    assert method == "sendPhoto" and "trial-0: 1 patients screened" in params["caption"]
    counts = texts_after_the_photo(chat)
    assert all(f"trial-{p}: 1 patients screened" in counts for p in range(5))
    assert all(f"I{k}  " in counts for k in range(40))


async def test_stats_photo_of_as_many_protocols_as_it_shows_is_well_within_the_limit(
    setup,
) -> None:
    application, request, db = setup
    log_failures(db, records.PHOTO_PROTOCOLS, criteria=200)
    await Chat(application, request, COORDINATOR).send("/stats")
    ((width, height),) = request.photo_sizes
    assert width + height <= 8_000 and len(request.uploads) == 1


async def test_stats_counts_arrive_when_the_photo_is_refused(setup) -> None:
    application, request, _ = setup
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/screen R-1")
    await chat.send("70")
    request.failing["sendPhoto"] = 1
    request.failure = (400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    await chat.send("/stats")
    assert request.uploads == []
    assert "1 patients screened" in chat.last_text() and "I1" in chat.last_text()
    assert "chart could not be sent" in chat.last_text()
    assert "screen-bot log stats --chart" in chat.last_text()


async def test_stats_of_more_protocols_than_a_photo_shows_sends_the_counts(setup) -> None:
    application, request, db = setup
    log_failures(db, records.PHOTO_PROTOCOLS + 1, criteria=3)
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/stats")
    assert request.uploads == []
    counts = "\n".join(m["text"] for m in chat.messages())
    assert all(
        f"trial-{p}: 1 patients screened" in counts for p in range(records.PHOTO_PROTOCOLS + 1)
    )
    assert f"all {records.PHOTO_PROTOCOLS + 1} of them" in counts and "--chart" in counts


@contextmanager
def no_new_reader(store: StoreUnderTest) -> Iterator[None]:
    """The store's connection goes on working, a new one to it fails: the SQLite file moved
    away, or the PostgreSQL database refusing new sessions."""
    if store.url is None:
        path = store.data_dir / "screen-bot.sqlite3"
        path.rename(path.with_suffix(".moved"))
        try:
            yield
        finally:
            path.with_suffix(".moved").rename(path)
        return
    import psycopg

    cluster, name = store.url.rsplit("/", 1)
    with psycopg.connect(f"{cluster}/postgres", autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        try:
            yield
        finally:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")


async def test_stats_that_cannot_read_the_log_says_so_not_that_nothing_was_saved(
    on_each_store, store: StoreUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    """/stats reads on a connection of its own: when that one cannot be opened, the
    coordinator was told "That was NOT saved: the bot could not write to its database", and
    the log said nothing was saved, for a command that writes nothing."""
    application, request, db = on_each_store
    log_failures(db, 1, criteria=2)
    chat = Chat(application, request, COORDINATOR)
    with no_new_reader(store):
        await chat.send("/stats")
    assert "log could not be read" in chat.last_text() and "NOT saved" not in chat.last_text()
    assert request.uploads == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "nothing read" in logged
    assert "nothing saved" not in logged
    await chat.send("/stats")  # the log is read again once it can be
    assert "trial-0: 1 patients screened" in chat.last_text()


async def test_other_chats_are_answered_while_stats_reads_the_log(
    setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/stats reads all of the log (seconds, on a year of it): off the event loop, so
    another coordinator's /help is answered before that read is over."""
    from screen_bot import reports

    application, request, _ = setup
    mine, theirs = Chat(application, request, COORDINATOR), Chat(application, request, OTHER)
    await mine.send("/screen R-1")
    await mine.send("70")
    count, reading, release = reports.stats, threading.Event(), threading.Event()
    order: list[str] = []

    def held_read(*args: object) -> list[reports.Stats]:
        reading.set()
        release.wait(timeout=10)  # never reached when it works; a read on the loop ends so
        order.append("stats read")
        return count(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(reports, "stats", held_read)
    stats = asyncio.create_task(mine.send("/stats"))
    assert await asyncio.to_thread(reading.wait, 10)
    await theirs.send("/help")
    order.append("help answered")
    release.set()
    await stats
    assert order == ["help answered", "stats read"]
    assert "/screen" in theirs.last_text() and "I1" in mine.last_text()


async def test_forget_deletes_only_own_unfinished_screenings(setup) -> None:
    application, request, db = setup
    mine, theirs = Chat(application, request, COORDINATOR), Chat(application, request, OTHER)
    await mine.send("/screen A-1")
    await mine.send("42")
    await mine.send("/screen A-2")
    await theirs.send("/screen B-1")
    await mine.send("/screen A-3")
    await mine.send("70")  # finished: in the log, not forgettable
    await mine.send("/forget")
    assert "Deleted 2 unfinished screenings" in mine.last_text()
    assert sessions.list_open(db.read(), COORDINATOR) == []
    assert [o.referral for o in sessions.list_open(db.read(), OTHER)] == ["B-1"]
    assert len(list(ledger.records(db.read()))) == 1


async def test_learn_steps_through_criteria_with_deciding_threshold(setup) -> None:
    application, request, _ = setup
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/learn I8e")
    assert "I8e" in chat.last_text() and "lvef_percent ≥ 60" in chat.last_text()
    await chat.send("/learn")
    assert chat.last_text().startswith("I1 ")
    await chat.tap("Next ▶")
    assert chat.last_text().startswith("I2 ")


async def test_learn_works_out_its_steps_off_the_event_loop(
    setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deriving the thresholds may take a while: every other chat waits if it blocks the loop."""
    from screen_bot.training import walkthrough as module

    application, request, _ = setup
    threads = []
    original = module.walkthrough

    def recorded(*args: object) -> object:
        threads.append(threading.current_thread())
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "walkthrough", recorded)
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/learn")
    await chat.tap("Next ▶")
    assert chat.last_text().startswith("I2 ")
    assert threads and threading.main_thread() not in threads


async def test_quiz_by_buttons_grades_and_keeps_progress(setup) -> None:
    application, request, _ = setup
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/quiz 7")
    assert "seed 7" in chat.messages()[-2]["text"] and chat.last_text().startswith("Case 1/20")
    for _ in range(20):
        await chat.tap("Eligible")
    assert chat.last_text().startswith("Score: ")
    await chat.send("/progress")
    assert "20" in chat.last_text()
    await chat.send("/quiz 7")
    await chat.tap("Not eligible…")
    await chat.tap("E13")
    assert chat.messages()[-2]["text"].startswith(("✓", "✗"))
    await chat.tap("Stop quiz")
    assert chat.last_text().startswith("Quiz stopped.")


async def test_a_quiz_goes_on_when_telegram_refuses_to_edit_its_buttons(refusing_edits) -> None:
    application, request, _ = refusing_edits
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/quiz 7")
    await chat.tap("Eligible")
    assert [e for e, _ in request.calls].count("editMessageReplyMarkup") == 1
    assert chat.messages()[-2]["text"].startswith(("✓", "✗"))  # the grade, then the next case
    assert chat.last_text().startswith("Case 2/20") and len(request.answers()) == 1
    await chat.tap("Stop quiz")
    assert chat.last_text().startswith("Quiz stopped.") and len(request.answers()) == 2


async def test_a_quiz_ends_when_its_dialog_file_changes(tmp_path: Path) -> None:
    """Its cases and right answers come from the rules it began with: an edit of the file
    while the bot runs ends it (as a restart would), rather than grading by old rules."""
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    file = dialogs / "blina-dli.yaml"
    file.write_bytes((default_dialogs_dir() / "blina-dli.yaml").read_bytes())
    async for application, request, _ in _application(
        tmp_path, Catalog(dialogs), RecordingRequest()
    ):
        chat = Chat(application, request, COORDINATOR)
        await chat.send("/quiz 7")
        await chat.tap("Eligible")
        assert chat.last_text().startswith("Case 2/20")
        file.write_text(file.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
        await chat.tap("Eligible")
        assert chat.last_text().startswith("The protocol file changed since this quiz began")
        await chat.send("/quiz 7")  # a new one, on the file as it is now
        assert chat.last_text().startswith("Case 1/20")


@pytest.mark.skipif(missing_for_images() is not None, reason=str(missing_for_images()))
async def test_flow_sends_the_diagram(setup) -> None:
    application, request, _ = setup
    chat = Chat(application, request, COORDINATOR)
    await chat.send("/flow")
    ((method, params),) = request.uploads
    assert method == "sendDocument" and "blina-dli" in params["caption"]


def test_a_quiz_button_for_the_longest_criterion_id_the_schema_allows_decodes() -> None:
    from screen_bot.adapters.telegram import messages as say
    from screen_bot.adapters.telegram.callback_data import decode_quiz
    from screen_bot.protocol.schema import Criterion

    pattern = Criterion.model_fields["id"].metadata[0].pattern
    longest = "E" + "x" * 31
    assert re.match(pattern, longest) and not re.match(pattern, longest + "x")
    markup = say.criterion_buttons("0123abcd", 9999, [longest])
    data = markup.inline_keyboard[0][0].callback_data
    assert isinstance(data, str) and len(data.encode()) <= 64  # the Bot API's limit
    press = decode_quiz(data)
    assert press is not None and press.code == f"c:{longest}" and press.position == 9999
