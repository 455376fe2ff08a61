"""Settings a user gets wrong, and output paths a user mistypes: one line, exit 2, no secret."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cli_runner import SCREEN_BOT, Ran, invoke, process
from conftest import DIALOGS
from screen_bot.cli.outcome import exit_code, write_trace
from screen_bot.errors import BadReferral, ScreenBotError
from screen_bot.referrals import check_referral
from screen_bot.settings import CHECKED_DIALOGS, Settings, load

TOKEN = "123456789:AAHxyzSECRETsecretSECRETsecret12345"


def one_line_error(ran: Ran) -> str:
    assert ran.returncode == 2, ran
    (line,) = ran.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def test_a_token_pasted_as_a_user_id_is_not_shown(isolated: Path) -> None:
    Path(".env").write_text(f"SCREEN_BOT_ALLOWED_USERS=111,{TOKEN}\n")
    line = one_line_error(invoke("where"))
    assert TOKEN.partition(":")[2] not in line and "entry 2 of 2 is not" in line


# Values holding a token the way one gets pasted into the wrong setting
PASTED = [
    "{t}",
    "x{t} x",
    "~nosuchuser{t}",  # a path under an unknown user's home
    "https://api.telegram.org:{t}/bot",  # ':' typed for '/bot': a port of the token
    "https://{t}",
    "http://[{t}/bot",
    "ftp://{t}",
    "postgresql://{t}",
]


@pytest.mark.parametrize("alias", [f.alias for f in Settings.model_fields.values()])
def test_no_settings_error_quotes_the_value(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, alias: str
) -> None:
    """Whatever a setting holds, its error names the setting and never quotes the value:
    a token pasted there is not printed (the URL's port and a home directory were)."""
    secret_half = TOKEN.partition(":")[2]
    for shape in PASTED:
        monkeypatch.setenv(alias, shape.format(t=TOKEN))
        try:
            load()
        except ScreenBotError as err:
            assert secret_half not in err.message and alias in err.message, err.message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/bot\r", "invisible character"),  # a Windows-edited env file
        ("http://127.0.0.1:9/bo\tt", "invisible character"),
        ("http://127.0.0.1:9/bot\x7f", "invisible character"),
        ("http://127.0.0.1:9/bot\x01", "invisible character"),
        ("http://127.0.0.1:9/bot\u2028", "invisible character"),  # (it ended the line)
        ("http://xn--/bot", "its host is no valid name"),  # (IDNAError)
        ("http://1.2.3.999/bot", "its host is no valid name"),
        ("http://127.0.0.1:8081", "once the token is added to it"),  # no /bot: a port 8081123…
        ("http://127.0.0.1:9/bot{token}{x}", "braces other than {token}"),
    ],
)
def test_a_url_the_http_client_refuses_is_a_settings_error(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, url: str, why: str
) -> None:
    """Found by the HTTP client, these ended the start in "unexpected error: InvalidURL"."""
    for alias in ("TELEGRAM_API_BASE_URL", "TELEGRAM_API_FILE_URL"):
        monkeypatch.setenv(alias, url)
        line = one_line_error(invoke("where"))
        assert line.startswith(f"error: settings: {alias}: not a valid URL ("), line
        assert why in line
        monkeypatch.delenv(alias)


def test_a_password_in_a_bot_api_url_is_a_secret() -> None:
    """A self-hosted Bot API behind basic auth: a library's line quoting its URL hides it."""
    settings = Settings(
        TELEGRAM_API_BASE_URL="http://u:ZZSECRET42@127.0.0.1/bot",
        TELEGRAM_API_FILE_URL="http://u:ZZSECRET43@127.0.0.1/file/bot",
    )
    assert {"ZZSECRET42", "ZZSECRET43"} <= set(settings.secrets())


def test_the_secrets_are_hidden_when_another_setting_is_wrong(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings do not load (a lifetime of -1), but the token and the database password
    can be read: an error that quotes them still hides them."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SCREEN_BOT_DATABASE_URL", "postgresql://u:ZZSECRET42@127.0.0.1/db")
    monkeypatch.setenv("SCREEN_BOT_SESSION_TTL_HOURS", "-1")

    def failing() -> None:
        raise ScreenBotError(f"a driver quoting /bot{TOKEN} and u:ZZSECRET42@")

    for env_file in ("", b"# \xff not UTF-8\n"):  # the .env unreadable too: the environment's
        Path(".env").write_bytes(env_file if isinstance(env_file, bytes) else env_file.encode())
        said: list[str] = []
        assert exit_code(failing, said.append) == 2
        assert said == ["error: a driver quoting /bot<secret> and u:<secret>@"]


@pytest.mark.parametrize(
    "content",
    ["# réglages\nSCREEN_BOT_SESSION_TTL_HOURS=72\n".encode("latin-1"),
     "SCREEN_BOT_SESSION_TTL_HOURS=72\n".encode("utf-16")],
    ids=["latin-1", "utf-16"],
)  # fmt: skip
def test_a_dotenv_that_is_not_utf8_is_named(isolated: Path, content: bytes) -> None:
    Path(".env").write_bytes(content)
    assert "settings: .env is not UTF-8 text" in one_line_error(invoke("where"))


@pytest.mark.parametrize("hours", ["inf", "1e9", "8761"])
def test_a_session_lifetime_over_a_year_is_refused(isolated: Path, hours: str) -> None:
    # (inf and 1e9 overflowed the expiry's date arithmetic at the bot's start)
    os.environ["SCREEN_BOT_SESSION_TTL_HOURS"] = hours
    try:
        assert "SCREEN_BOT_SESSION_TTL_HOURS" in one_line_error(invoke("where"))
    finally:
        del os.environ["SCREEN_BOT_SESSION_TTL_HOURS"]


def test_a_token_with_a_final_newline_is_not_a_token() -> None:
    assert Settings(TELEGRAM_BOT_TOKEN=TOKEN).token_problem() is None
    assert Settings(TELEGRAM_BOT_TOKEN=TOKEN + "\n").token_problem() is not None


def test_a_referral_with_a_final_newline_is_refused(isolated: Path) -> None:
    with pytest.raises(BadReferral):
        check_referral("R-1\n")
    rows = Path("rows.jsonl")
    rows.write_text(json.dumps({"referral": "R-1\n", "age": 40}) + "\n")
    ran = invoke("screen", str(rows), "-p", "blina-dli", "--format", "json", "--log")
    assert ran.returncode == 2 and ran.stdout == "" and "referral" in ran.stderr
    ran = invoke("chat", "-p", "blina-dli", "--referral", "R-1\n", stdin="40\n")
    assert ran.returncode == 2


@pytest.mark.parametrize(
    "args",
    [
        ("log", "export", "-o", "missing/x.csv"),
        ("log", "export", "-o", "."),
        ("log", "stats", "--chart", "missing/x.png"),
        ("graph", "-p", "blina-dli", "-o", "missing/x.md"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_named(
    isolated: Path, args: tuple[str, ...]
) -> None:
    rows = Path("rows.jsonl")
    rows.write_text(json.dumps({"referral": "R-1", "age": 70}) + "\n")
    assert invoke("screen", str(rows), "-p", "blina-dli", "--log").returncode == 0
    line = one_line_error(invoke(*args))
    assert line.startswith(f"error: cannot write {args[-1]}: ")


def test_an_export_to_a_pipe_writes_into_it_and_leaves_it_a_pipe(isolated: Path) -> None:
    rows = Path("rows.jsonl")
    rows.write_text(json.dumps({"referral": "R-1", "age": 70}) + "\n")
    assert invoke("screen", str(rows), "-p", "blina-dli", "--log").returncode == 0
    pipe = Path("pipe")
    os.mkfifo(pipe)
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append(pipe.read_bytes()), daemon=True)
    reader.start()
    ran = invoke("log", "export", "-o", str(pipe))
    reader.join(timeout=30)
    assert ran.returncode == 0, ran
    assert stat.S_ISFIFO(pipe.stat().st_mode)  # not replaced by a file (was: FILE.part renamed)
    assert read and b"R-1" in read[0]


def test_the_stats_chart_is_owner_only_like_the_export(isolated: Path) -> None:
    """The chart counts screen failures by criterion (one patient's, when few were
    screened): written 0600 as the export is, an existing looser file tightened."""
    rows = Path("rows.jsonl")
    rows.write_text(json.dumps({"referral": "R-1", "age": 70}) + "\n")
    assert invoke("screen", str(rows), "-p", "blina-dli", "--log").returncode == 0
    Path("old.png").write_bytes(b"")
    Path("old.png").chmod(0o644)
    umask = os.umask(0o022)
    try:
        for chart in ("new.png", "old.png"):
            assert invoke("log", "stats", "--chart", chart).returncode == 0
            assert stat.S_IMODE(Path(chart).stat().st_mode) == 0o600, chart
            assert Path(chart).read_bytes().startswith(b"\x89PNG")
        assert invoke("log", "export", "-o", "export.csv").returncode == 0
        assert stat.S_IMODE(Path("export.csv").stat().st_mode) == 0o600
    finally:
        os.umask(umask)
    assert not list(Path().glob("*.part"))


def test_each_unexpected_error_keeps_its_own_trace(isolated: Path) -> None:
    first, second = write_trace(ValueError("first")), write_trace(KeyError("second"))
    assert isinstance(first, Path) and isinstance(second, Path) and first != second
    assert "first" in first.read_text() and "second" in second.read_text()
    assert oct(first.stat().st_mode & 0o777) == "0o600"


def test_an_empty_api_url_is_telegrams() -> None:
    # (passed empty by an env or compose file: every command refused it)
    settings = Settings(TELEGRAM_API_BASE_URL="", TELEGRAM_API_FILE_URL=" ")
    assert settings.telegram_api_base_url == "https://api.telegram.org/bot"
    assert settings.telegram_api_file_url == "https://api.telegram.org/file/bot"


@pytest.mark.parametrize("alias", [f.alias for f in Settings.model_fields.values()])
def test_every_setting_left_empty_is_its_default(isolated: Path, alias: str) -> None:
    # (.env.example shows them as "NAME=": an empty path was the working directory, an
    # empty dialogs directory or session lifetime was refused)
    name = next(n for n, f in Settings.model_fields.items() if f.alias == alias)
    default = Settings.model_fields[name].get_default(call_default_factory=True)
    for empty in ("", " "):
        assert getattr(Settings(**{alias: empty}), name) == default


@pytest.fixture
def home(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory of its own and no data or cache directory set: the defaults."""
    home = isolated.parent / "home"
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "SCREEN_BOT_DATA_DIR", "SCREEN_BOT_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    work = isolated.parent / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


def test_empty_directories_in_dotenv_write_nothing_into_the_working_directory(
    home: Path,
) -> None:
    Path(".env").write_text("SCREEN_BOT_DATA_DIR=\nSCREEN_BOT_CACHE_DIR=\n")
    assert invoke("check", "-p", "blina-dli", "age 40").returncode == 0
    assert sorted(p.name for p in Path().iterdir()) == [".env"]
    assert (home / ".local/share/screen-bot/screen-bot.sqlite3").is_file()
    assert list((home / ".cache/screen-bot" / CHECKED_DIALOGS).glob("*.pickle"))


def test_a_directory_under_home_in_dotenv_is_under_home(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCREEN_BOT_DIALOGS_DIR")
    Path(".env").write_text(
        "SCREEN_BOT_DATA_DIR=~/screen-bot-data\nSCREEN_BOT_CACHE_DIR=~/cache\n"
        f"SCREEN_BOT_DIALOGS_DIR=~/mine{os.pathsep}{DIALOGS}\n"
    )
    (home / "mine").mkdir(parents=True)
    assert invoke("check", "-p", "blina-dli", "age 40").returncode == 0
    assert sorted(p.name for p in Path().iterdir()) == [".env"]  # no directory named ~
    assert (home / "screen-bot-data/screen-bot.sqlite3").is_file()
    assert list((home / "cache" / CHECKED_DIALOGS).glob("*.pickle"))
    shown = invoke("where").stdout
    assert f"dialogs directory: {home / 'mine'}\ndialogs directory: {DIALOGS}\n" in shown


def test_a_cache_directory_holding_the_sites_dialogs_folder_leaves_it_alone(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One site directory for everything (cache /srv/sb, dialogs /srv/sb/dialogs): the
    cache's folder was <cache>/dialogs, so the site's dialogs were chmodded 0700 and got
    pickles beside them; the cache, "safe to delete", now keeps to a folder of its own."""
    site = isolated.parent / "sb"
    dialogs = site / "dialogs"
    dialogs.mkdir(parents=True)
    for shipped in DIALOGS.glob("*.yaml"):
        (dialogs / shipped.name).write_bytes(shipped.read_bytes())
    dialogs.chmod(0o775)
    monkeypatch.setenv("SCREEN_BOT_CACHE_DIR", str(site))
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(dialogs))
    assert invoke("protocols").returncode == 0
    assert dialogs.stat().st_mode & 0o777 == 0o775
    assert [p.suffix for p in dialogs.iterdir()] == [".yaml"]
    assert list((site / CHECKED_DIALOGS).glob("*.pickle"))


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_output_that_is_not_utf8_never_crashes_a_screening(isolated: Path, encoding: str) -> None:
    # (the first checklist's ☑ ended the dialog in UnicodeEncodeError, leaving it unfinished)
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    for args, stdin, last in [
        (["chat", "-p", "blina-dli", "--referral", "R-1"], "35\n0\nquit\n", b"is not kept."),
        (["check", "-p", "blina-dli", "age 40, lvef 55"], "", b"other_investigator_concern"),
    ]:
        done = subprocess.run(
            [str(SCREEN_BOT), *args], input=stdin.encode(), capture_output=True, env=env
        )
        assert b"unexpected error" not in done.stderr, done.stderr
        assert done.returncode == 0 and done.stdout.rstrip().endswith(last), args


@pytest.mark.parametrize("hours", ["nan", "-inf", "0"])
def test_a_session_lifetime_out_of_range_says_the_range(isolated: Path, hours: str) -> None:
    # (nan got "Input should be less than or equal to 8760")
    os.environ["SCREEN_BOT_SESSION_TTL_HOURS"] = hours
    try:
        line = one_line_error(invoke("where"))
    finally:
        del os.environ["SCREEN_BOT_SESSION_TTL_HOURS"]
    assert line == (
        "error: settings: SCREEN_BOT_SESSION_TTL_HOURS: give a number of hours more than 0 "
        "and at most 8760 (a year)"
    )


def test_messages_name_the_place_and_what_is_wrong_with_it(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = isolated.parent / "empty"
    empty.mkdir()
    assert one_line_error(invoke("validate", str(empty))) == (
        f"error: no dialog files (*.yaml) in {empty}"
    )
    ran = invoke("screen", str(empty), "--engine", "duckdb", "-p", "blina-dli")
    assert one_line_error(ran) == f"error: cannot read {empty}: it is a directory"
    a_file = isolated.parent / "a-file"
    a_file.write_text("")
    monkeypatch.setenv("SCREEN_BOT_DATA_DIR", str(a_file))
    shown = invoke("where").stdout.splitlines()
    assert shown[0].endswith("(a file, not a directory)")
    assert shown[1].endswith(
        "(cannot be created: the data directory is a file; set SCREEN_BOT_DATA_DIR)"
    )
    missing = isolated.parent / "nowhere"
    monkeypatch.setenv("SCREEN_BOT_DIALOGS_DIR", str(missing))
    for command in ("protocols", "chat"):
        assert one_line_error(invoke(command)) == (
            f"error: no valid dialog file: {missing} does not exist (set "
            "SCREEN_BOT_DIALOGS_DIR to the directory of your dialog files)"
        )


def test_the_sites_time_zone_is_read_at_load_and_utc_when_unset(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load().time_zone == ZoneInfo("UTC")
    Path(".env").write_text("SCREEN_BOT_TIMEZONE=Australia/Sydney\r\n")  # (a Windows editor's)
    assert load().time_zone == ZoneInfo("Australia/Sydney")
    monkeypatch.setenv("SCREEN_BOT_TIMEZONE", "America/New_York")
    assert load().time_zone == ZoneInfo("America/New_York")
    monkeypatch.setenv("SCREEN_BOT_TIMEZONE", "")  # left empty: the default, as every setting
    assert load().time_zone == ZoneInfo("UTC")


@pytest.mark.parametrize(
    "zone",
    [
        "Mars/Base",
        "America",  # a directory of the tz database
        "../UTC",  # a path
        "/usr/share/zoneinfo/UTC",
        "Australia/Sydney/",
    ],
)
def test_a_time_zone_that_is_not_one_is_refused_naming_the_setting(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    # (a typo would date every dialog screening by the wrong day, silently)
    monkeypatch.setenv("SCREEN_BOT_TIMEZONE", zone)
    assert one_line_error(invoke("where")) == (
        "error: settings: SCREEN_BOT_TIMEZONE: not a time zone name; give one of the IANA tz "
        "database, e.g. Australia/Sydney or America/New_York, or leave it unset for UTC"
    )


@pytest.mark.parametrize(
    "zone", ["Factory", "localtime", "posixrules", "right/UTC", "posix/Asia/Tokyo", "LOCALTIME"]
)
def test_a_tz_database_file_that_names_no_sites_zone_is_refused(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    """They load as zones, but 'localtime' hides which zone dates the screenings, and none
    is a site's IANA name: one line naming the setting and the fix, as any bad value."""
    monkeypatch.setenv("SCREEN_BOT_TIMEZONE", zone)
    done = invoke("where")
    assert done.returncode == 2
    assert one_line_error(done) == (
        "error: settings: SCREEN_BOT_TIMEZONE: not a site's time zone (Factory, localtime, "
        "posixrules, posix/… and right/… are files of the tz database, not a zone); give an "
        "IANA name, e.g. Europe/Berlin or America/New_York, or leave it unset for UTC"
    )


def test_time_zones_need_no_system_time_zone_database(isolated: Path) -> None:
    """zoneinfo reads the system's database, which Windows and slim container images lack;
    the project installs tzdata, where zoneinfo looks next."""
    required = importlib.metadata.requires("screen-bot") or []
    assert any(re.match(r"tzdata\b", requirement) for requirement in required)
    nowhere = str(isolated.parent / "no-zoneinfo")
    done = process("where", PYTHONTZPATH=nowhere, SCREEN_BOT_TIMEZONE="Australia/Sydney")
    assert done.returncode == 0, done.stderr


def test_the_default_telegram_urls_are_taken_without_the_http_client() -> None:
    # Every command loads the settings; the default URLs need no check by the HTTP client,
    # whose import alone was ~20 ms of each command's start (a batch run's among them).
    code = (
        "import sys\n"
        "from screen_bot.settings import API_BASE_URL, API_FILE_URL, Settings\n"
        "s = Settings(_env_file=None)\n"
        "assert s.telegram_api_base_url == API_BASE_URL\n"
        "assert s.telegram_api_file_url == API_FILE_URL\n"
        "print('httpx' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_API")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
