"""What ``screen-bot run`` does before its first poll: one CA load, no library it does not need."""

from __future__ import annotations

import gc
import os
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot_process import BotProcess, say
from cli_runner import Ran, process
from fakebot import FakeBotApi
from screen_bot.adapters.telegram import https
from screen_bot.adapters.telegram.app import build_application
from screen_bot.protocol.catalog import Catalog
from screen_bot.settings import CHECKED_DIALOGS, Settings, default_dialogs_dir
from screen_bot.storage import Database

TOKEN = "123456:TEST-token"


@pytest.fixture
def contexts_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ssl.SSLContext]]:
    """Every CA-loaded TLS context made (httpx makes them with ssl.create_default_context)."""
    made: list[ssl.SSLContext] = []
    create = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(create(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    https.forget()
    yield made
    https.forget()


def test_the_bots_https_clients_load_the_ca_store_once(
    tmp_path: Path, catalog: Catalog, contexts_made: list[ssl.SSLContext]
) -> None:
    settings = Settings(
        TELEGRAM_BOT_TOKEN=TOKEN,
        SCREEN_BOT_DATA_DIR=tmp_path,
        SCREEN_BOT_DIALOGS_DIR=default_dialogs_dir(),
    )
    db = Database(settings.database)
    try:
        polling = https.https_request(2)
        application, screening_bot = build_application(
            settings, catalog, db, get_updates_request=polling
        )
    finally:
        db.close()
    # the Application's request, the poller's (its getUpdates slot) and the refusals': one
    # context between them, which still checks certificates and host names
    assert application.bot.request is not screening_bot.gate.api.request
    (context,) = contexts_made
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_preloaded_context_is_the_one_every_client_gets(
    contexts_made: list[ssl.SSLContext],
) -> None:
    https.preload()
    first, second = https.tls_context(), https.tls_context()
    assert contexts_made == [first] and second is first


def test_the_start_path_imports_no_plotting_or_analytics_library() -> None:
    heavy = ("matplotlib", "graphviz", "duckdb", "psycopg", "numpy")
    code = (
        "import sys, screen_bot.cli.app, screen_bot.cli.bot, screen_bot.adapters.telegram.app; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_start_path_imports_no_module_of_a_command_used_later() -> None:
    # /quiz, /learn, /flow, /log, /stats and /check import theirs at their first use
    later = (
        "screen_bot.training.quiz",
        "screen_bot.training.cases",
        "screen_bot.training.walkthrough",
        "screen_bot.training.flow",
        "screen_bot.reports",
        "screen_bot.quick_check",
    )
    code = (
        "import sys, screen_bot.cli.app, screen_bot.cli.bot, screen_bot.adapters.telegram.app; "
        f"print([m for m in {later!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_start_asks_getme_once_and_publishes_the_commands_without_waiting(
    fake: FakeBotApi, tmp_path: Path
) -> None:
    fake.delay_next("setMyCommands", 2.0)  # the first poll does not wait for its answer
    bot = BotProcess(fake, tmp_path, "111")
    bot.start()
    try:
        calls = fake.calls()
        first_poll = [c["method"] for c in calls].index("getUpdates")
        before = [c["method"] for c in calls[:first_poll]]
        assert before.count("getMe") == 1 and "deleteWebhook" in before
        answered = [c for c in calls[:first_poll] if c["method"] == "setMyCommands" and "ok" in c]
        assert answered == []  # asked (or not yet), never waited for
        fake.wait_until(lambda: any(c["method"] == "setMyCommands" for c in fake.calls()))
        assert say(fake, 111, "/help")["text"]  # python-telegram-bot knows its user
    finally:
        bot.stop()
    assert bot.process is not None and bot.process.returncode == 0, bot.output()
    assert len(fake.calls("setMyCommands")) == 1 and len(fake.calls("getMe")) == 1


def test_a_refused_setmycommands_is_only_logged(fake: FakeBotApi, tmp_path: Path) -> None:
    fake.fail_next("setMyCommands", 400, "Bad Request: commands are bad")
    bot = BotProcess(fake, tmp_path, "111")
    bot.start()
    try:
        assert say(fake, 111, "/help")["text"]
    finally:
        bot.stop()
    assert "setMyCommands failed: BadRequest" in bot.output()


def _start(mode: str, *options: str, **env: str) -> tuple[int, str]:
    """``screen-bot run OPTIONS`` through the console entry, its settings' load made to fail
    as ``mode`` says (or not: "real"); the exit code and standard error."""
    code = (
        "import sys\n"
        "import screen_bot.settings as settings\n"
        f"mode, real = {mode!r}, settings.load\n"
        "def load():\n"
        "    global mode\n"
        "    if mode == 'interrupt':\n"
        "        raise KeyboardInterrupt\n"
        "    if mode == 'end of input':\n"
        "        raise EOFError\n"
        "    if mode == 'bug':\n"
        "        mode = 'real'  # once: the trace's writer loads them again\n"
        "        raise RuntimeError('a bug')\n"
        "    return real()\n"
        "settings.load = load\n"
        "from screen_bot.cli.entry import main\n"
        "sys.argv = ['screen-bot', 'run', *sys.argv[1:]]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *options],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("mode", "env", "code", "said"),
    [
        ("real", {"TELEGRAM_BOT_TOKEN": ""}, 2, "error: TELEGRAM_BOT_TOKEN is not set"),
        ("real", {"SCREEN_BOT_SESSION_TTL_HOURS": "-1"}, 2, "error: settings: "),
        ("real", {"TELEGRAM_API_BASE_URL": "http://127.0.0.1:99999/bot"}, 2, "URL: not a valid"),
        ("real", {"TELEGRAM_API_BASE_URL": "http://[::1/bot"}, 2, "error: settings: TELEGRAM_API"),
        ("real", {"TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot\r"}, 2, "URL: not a valid"),
        ("real", {"SCREEN_BOT_DIALOGS_DIR": "{empty}"}, 2, "refuses everyone"),
        ("interrupt", {}, 130, ""),
        ("end of input", {}, 1, "\nAborted!\n"),
        ("bug", {}, 1, "unexpected error: RuntimeError; full trace in "),
    ],
)
def test_a_bare_run_ends_as_a_run_read_by_typer(
    tmp_path: Path, mode: str, env: dict[str, str], code: int, said: str
) -> None:
    """``screen-bot run`` skips Typer (cli/serve.py); with an option, Typer reads it."""
    (tmp_path / "empty").mkdir()
    env = {k: v.format(empty=tmp_path / "empty") for k, v in env.items()}
    env = {
        "SCREEN_BOT_DATA_DIR": str(tmp_path / "data"),
        "SCREEN_BOT_DIALOGS_DIR": str(default_dialogs_dir()),
        "SCREEN_BOT_ALLOWED_USERS": "",
        "TELEGRAM_BOT_TOKEN": TOKEN + "_abcdefghijklmnopqrstuvwxyz",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot",  # never reached
        **env,
    }
    bare = _start(mode, **env)
    typer_read = _start(mode, "--port", "8443", **env)
    assert bare[0] == typer_read[0] == code
    assert said in bare[1]
    trace = re.compile(r"full trace in \S+")
    assert trace.sub("", bare[1]) == trace.sub("", typer_read[1])


def test_a_bare_run_imports_no_typer() -> None:
    code = (
        "import sys\n"
        "import screen_bot.settings as settings\n"
        "from screen_bot.errors import ScreenBotError\n"
        "def load():\n"
        "    print('typer imported:', 'typer' in sys.modules)\n"
        "    raise ScreenBotError('the test stops the start here')\n"
        "settings.load = load\n"
        "from screen_bot.cli.entry import main\n"
        "sys.argv = ['screen-bot', 'run']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2 and "error: the test stops the start here" in done.stderr
    # (load runs again on the error path, for the secrets to hide in the message)
    assert set(done.stdout.splitlines()) == {"typer imported: False"}, done.stdout + done.stderr


def test_a_start_that_fails_leaves_the_cyclic_collector_on(
    cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "not-a-token")
    assert gc.isenabled()
    ran = cli("run")
    assert ran.returncode == 2 and "does not look like a bot token" in ran.stderr
    assert gc.isenabled()  # off during start-up only (cli/serve.py)


def test_a_start_that_fails_waits_for_the_ca_store_loading_on_its_thread(
    cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare run with a bad setting exited while the CA bundle loaded on its thread, and
    twice in a full suite the process died of SIGSEGV (OpenSSL's exit handlers): the
    start now leaves only once that thread is done."""
    loaded = threading.Event()

    def slow_load() -> None:
        threading.Event().wait(0.3)
        loaded.set()

    https.forget()
    monkeypatch.setattr(https, "_load", slow_load)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "not-a-token")
    ran = cli("run")
    assert ran.returncode == 2 and "does not look like a bot token" in ran.stderr
    assert loaded.is_set()
    https.forget()


def test_with_no_valid_dialog_file_the_start_ends_on_that_though_the_database_opens_meanwhile(
    tmp_path: Path,
) -> None:
    dialogs, data = tmp_path / "dialogs", tmp_path / "data"
    dialogs.mkdir()
    data.mkdir()
    (dialogs / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n", encoding="utf-8")
    (data / "screen-bot.sqlite3").write_bytes(b"not a database " * 500)
    env = {
        "SCREEN_BOT_DATA_DIR": str(data),
        "SCREEN_BOT_DIALOGS_DIR": str(dialogs),
        "TELEGRAM_BOT_TOKEN": TOKEN + "_abcdefghijklmnopqrstuvwxyz",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot",  # never reached
    }
    ran = process("run", **env)
    assert ran.returncode == 2
    assert "no valid dialog file" in ran.stderr and "broken.yaml" in ran.stderr
    assert "database" not in ran.stderr.split("error:")[-1]
    env["SCREEN_BOT_DIALOGS_DIR"] = str(default_dialogs_dir())
    ran = process("run", **env)
    assert ran.returncode == 2 and "screen-bot.sqlite3" in ran.stderr


def _collections_during(*args: str) -> tuple[int, str]:
    """Cyclic collections run while ``screen-bot ARGS`` ran (through the console entry)."""
    code = (
        "import atexit, gc, sys\n"
        "from screen_bot.cli.entry import main\n"
        "count = lambda: sum(s['collections'] for s in gc.get_stats())\n"
        "before = count()\n"
        "atexit.register(lambda: print('collections', count() - before))\n"
        f"sys.argv = ['screen-bot', *{list(args)!r}]\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("collections "), done.stdout + done.stderr
    return int(last.split()[1]), done.stderr


def test_the_console_script_is_the_entry_module() -> None:
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="screen-bot")
    assert script.value == "screen_bot.cli.entry:main"


def test_run_imports_typer_and_pydantic_with_the_collector_already_off() -> None:
    # `--port x` is refused by Typer's check of the option, which imports pydantic first
    collections, stderr = _collections_during("run", "--port", "x")
    assert "Invalid value for '--port'" in stderr
    assert collections == 0
    # any other command runs with the collector on, as before
    collections, _ = _collections_during("migrate", "--help")
    assert collections > 0


def test_the_console_script_loads_no_pydantic_plugin_unless_told_to(tmp_path: Path) -> None:
    """A plugin would see every value validated, patients' answers among them."""
    site, mark = tmp_path / "site", tmp_path / "plugin-was-used"
    (site / "spy_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "spy_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: spy-plugin\nVersion: 1.0\n", encoding="utf-8"
    )
    (site / "spy_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[pydantic]\nspy = spy_plugin:plugin\n", encoding="utf-8"
    )
    (site / "spy_plugin.py").write_text(
        "import pathlib\n"
        "class Spy:\n"
        "    def new_schema_validator(self, *args, **kwargs):\n"
        f"        pathlib.Path({str(mark)!r}).touch()\n"
        "        return None, None, None\n"
        "plugin = Spy()\n",
        encoding="utf-8",
    )
    env = {"PYTHONPATH": str(site), "SCREEN_BOT_DATA_DIR": str(tmp_path / "data")}
    ran = process("where", **env)
    assert ran.returncode == 0 and not mark.exists()
    ran = process("where", **env, PYDANTIC_DISABLE_PLUGINS="")  # an explicit value is kept
    assert ran.returncode == 0 and mark.exists()


def test_the_bot_keeps_its_checked_dialog_files_for_the_next_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "screen-bot.sqlite3").write_bytes(b"not a database " * 500)  # ends the start
    kept = tmp_path / "cache" / CHECKED_DIALOGS  # conftest's SCREEN_BOT_CACHE_DIR
    env = {
        "SCREEN_BOT_DATA_DIR": str(data),
        "SCREEN_BOT_DIALOGS_DIR": str(default_dialogs_dir()),
        "TELEGRAM_BOT_TOKEN": TOKEN + "_abcdefghijklmnopqrstuvwxyz",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot",  # never reached
    }
    assert not kept.exists()
    assert process("run", **env).returncode == 2
    shipped = sorted(default_dialogs_dir().glob("*.yaml"))
    assert len(list(kept.glob("*.pickle"))) == len(shipped)


def test_a_second_preload_starts_no_second_load(
    contexts_made: list[ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    monkeypatch.setattr(https, "_load", release.wait)  # the load stays in progress
    https.preload()
    https.preload()  # e.g. cli/serve.py's, then the app's
    loading = [t for t in threading.enumerate() if t.name == "tls-context"]
    release.set()
    assert len(loading) == 1


def test_run_starts_loading_the_ca_store_before_it_imports_the_bot() -> None:
    code = (
        "import sys\n"
        "from screen_bot.adapters.telegram import https\n"
        "started = https.preload\n"
        "def preload():\n"
        "    print('preload; bot imported:', 'screen_bot.adapters.telegram.app' in sys.modules)\n"
        "    started()\n"
        "https.preload = preload\n"
        "from screen_bot.cli.app import main\n"
        "sys.argv = ['screen-bot', 'run']\n"
        "main()\n"
    )
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": ""}  # the start ends before the bot is built
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "TELEGRAM_BOT_TOKEN is not set" in done.stderr
    assert done.stdout.splitlines() == ["preload; bot imported: False"], done.stdout + done.stderr


def test_run_starts_opening_the_database_before_it_imports_the_bot(tmp_path: Path) -> None:
    code = (
        "import sys, threading\n"
        "import screen_bot.storage as storage\n"
        "from screen_bot.errors import ScreenBotError\n"
        "opening = threading.Event()\n"
        "def open_checked(path, url=None):\n"
        "    opening.set()\n"
        "    raise ScreenBotError('the test stops the start here')\n"
        "storage.open_checked = open_checked\n"
        "class Watch:\n"  # waits, at the bot's import, for the database to be opening
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'screen_bot.adapters.telegram.app':\n"
        "            print('opening before the import:', opening.wait(10))\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from screen_bot.cli.app import main\n"
        "sys.argv = ['screen-bot', 'run']\n"
        "main()\n"
    )
    env = {
        **os.environ,
        "SCREEN_BOT_DATA_DIR": str(tmp_path / "data"),
        "SCREEN_BOT_DIALOGS_DIR": str(default_dialogs_dir()),
        "TELEGRAM_BOT_TOKEN": TOKEN + "_abcdefghijklmnopqrstuvwxyz",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot",  # never reached
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the test stops the start here" in done.stderr  # raised when it is awaited
    assert done.stdout.splitlines() == ["opening before the import: True"], done.stdout
