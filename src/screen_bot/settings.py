"""Settings from the environment and ``.env`` (see ``.env.example``)."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .dburl import passwords
from .errors import ScreenBotError

TOKEN_PATTERN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,}$")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
API_BASE_URL, API_FILE_URL = "https://api.telegram.org/bot", "https://api.telegram.org/file/bot"
URL_EXAMPLE = f"e.g. {API_BASE_URL}"
REPO_DIALOGS = Path(__file__).resolve().parents[2] / "dialogs"
PACKAGED_DIALOGS = Path(__file__).resolve().parent / "dialogs"
CHECKED_DIALOGS = "screen-bot-checked-dialogs"  # the folder of the cache directory screen-bot owns


def default_data_dir() -> Path:
    """The user's data directory (e.g. ~/.local/share/screen-bot), not the working directory."""
    return Path(user_data_dir("screen-bot", appauthor=False))


def default_cache_dir() -> Path:
    """The user's cache directory (e.g. ~/.cache/screen-bot): dialog files already checked."""
    return Path(user_cache_dir("screen-bot", appauthor=False))


def default_dialogs_dir() -> Path:
    """The repository's ``dialogs/`` (editable install), else the copy inside the wheel."""
    return REPO_DIALOGS if REPO_DIALOGS.is_dir() else PACKAGED_DIALOGS


def _home(path: Path) -> Path:
    """``~/screen-bot-data`` in .env is under the home directory, as a shell reads it (no
    shell expands it there: it was a directory named ``~``)."""
    try:
        return path.expanduser()
    except RuntimeError:  # no HOME, or an unknown ~user
        # (the path is not quoted: no message about a setting quotes its value, see load)
        raise ValueError(
            "cannot tell which home directory its ~ is (HOME unset, or no such user)"
        ) from None


# A token of the usual shape, and the fields python-telegram-bot puts the token in
SAMPLE_TOKEN = "123456789:" + "A" * 35
TOKEN_FIELDS = frozenset({"token", "TOKEN", "bot_token", "BOT_TOKEN", "bot-token", "BOT-TOKEN"})


class _TokenOnly(dict[str, str]):
    def __missing__(self, key: str) -> str:
        if key in TOKEN_FIELDS:
            return SAMPLE_TOKEN
        raise KeyError(key)


def _as_called(url: str) -> str:
    """The URL a Bot API call goes to, as python-telegram-bot 22 makes it from ``url`` (its
    ``_parse_base_url``): the token in place of ``{token}``, else added at the end."""
    if not any(f"{{{field}}}" in url for field in TOKEN_FIELDS):
        return url + SAMPLE_TOKEN
    try:
        return url.format_map(_TokenOnly())
    except (KeyError, ValueError, IndexError, AttributeError):  # other braces: PTB fails too
        raise ValueError(f"not a valid URL (braces other than {{token}}); {URL_EXAMPLE}") from None


# Files of the tz database that load as zones but name none: Factory (UTC, "-00"),
# localtime (whichever zone the system's link points to: the name does not say), posixrules,
# and the posix/ and right/ (leap seconds counted) copies of every zone.
NOT_SITE_ZONES = frozenset({"factory", "localtime", "posixrules"})
NOT_SITE_ZONE_DIRECTORIES = ("posix/", "right/")


def _not_a_sites_zone(name: str) -> bool:
    folded = name.lower()  # (a file system may ignore case: tzdata's resources on Windows)
    return folded in NOT_SITE_ZONES or folded.startswith(NOT_SITE_ZONE_DIRECTORIES)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base_url: str = Field(API_BASE_URL, alias="TELEGRAM_API_BASE_URL")
    telegram_api_file_url: str = Field(API_FILE_URL, alias="TELEGRAM_API_FILE_URL")
    allowed_users: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), alias="SCREEN_BOT_ALLOWED_USERS"
    )
    data_dir: Path = Field(default_factory=default_data_dir, alias="SCREEN_BOT_DATA_DIR")
    cache_dir: Path = Field(default_factory=default_cache_dir, alias="SCREEN_BOT_CACHE_DIR")
    # At most a year: an unfinished screening is health data that must expire.
    session_ttl_hours: float = Field(72, alias="SCREEN_BOT_SESSION_TTL_HOURS")
    # One directory or several, separated as in PATH (':' on Linux and macOS, ';' on Windows).
    dialogs_dirs: Annotated[tuple[Path, ...], NoDecode] = Field(
        default_factory=lambda: (default_dialogs_dir(),), alias="SCREEN_BOT_DIALOGS_DIR"
    )
    webhook_secret: SecretStr | None = Field(None, alias="SCREEN_BOT_WEBHOOK_SECRET")
    # Unset: the SQLite file in the data directory. A postgresql:// URL: that database.
    database_url: SecretStr | None = Field(None, alias="SCREEN_BOT_DATABASE_URL")
    # The site's time zone: the day a dialog screening is dated (batch keeps the UTC day).
    time_zone: ZoneInfo = Field(
        default_factory=lambda: ZoneInfo("UTC"), alias="SCREEN_BOT_TIMEZONE"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        # Every setting: left empty in .env (as .env.example shows them) or passed empty by a
        # compose file, it is the default. (An empty path was the working directory.)
        if isinstance(value, str) and not value.strip():
            raise PydanticUseDefault()
        return value

    @field_validator("allowed_users", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            bad = [n for n, p in enumerate(parts, 1) if not p.lstrip("-").isdigit()]
            if bad:  # the entries are not shown: a token pasted here must not be printed
                raise ValueError(f"user ids must be numbers; entry {bad[0]} of {len(parts)} is not")
            return frozenset(int(p) for p in parts)
        return value

    @field_validator("dialogs_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, value: object) -> object:
        if isinstance(value, str | Path):
            parts = [p.strip() for p in str(value).split(os.pathsep) if p.strip()]
            if not parts:  # only separators
                raise PydanticUseDefault()
            return tuple(_home(Path(p)) for p in parts)
        return value

    @field_validator("time_zone", mode="before")
    @classmethod
    def _zone(cls, value: object) -> object:
        if isinstance(value, str) and value.strip():  # (empty: the default, as every setting)
            name = value.strip()
            if _not_a_sites_zone(name):
                raise ValueError(
                    "not a site's time zone (Factory, localtime, posixrules, posix/… and "
                    "right/… are files of the tz database, not a zone); give an IANA name, "
                    "e.g. Europe/Berlin or America/New_York, or leave it unset for UTC"
                )
            try:
                return ZoneInfo(name)
            # (not found, a directory such as America, a path; their texts quote it: see load)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(
                    "not a time zone name; give one of the IANA tz database, e.g. "
                    "Australia/Sydney or America/New_York, or leave it unset for UTC"
                ) from None
        return value

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return _home(value)

    @field_validator("session_ttl_hours")
    @classmethod
    def _hours(cls, value: float) -> float:
        if not 0 < value <= 8760:  # (false for nan too)
            raise ValueError("give a number of hours more than 0 and at most 8760 (a year)")
        return value

    @field_validator("telegram_api_base_url", "telegram_api_file_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        """An http(s) URL with a host and a valid port, e.g. https://api.telegram.org/bot,
        that the HTTP client reads as python-telegram-bot calls it (a typo found here is
        named; found by the HTTP client it would end in a trace)."""
        if value in (API_BASE_URL, API_FILE_URL):
            # Pydantic settings check the defaults too: these are known good, and checking
            # them imported the HTTP client (~20 ms) in every command, a batch run included.
            return value
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError(
                "not a valid URL (it holds a space, tab, line end or other invisible "
                f"character: a CR left by a Windows editor?); {URL_EXAMPLE}"
            )
        try:
            parts = urlsplit(value)
        except ValueError:  # (its text quotes the URL: see load)
            raise ValueError(f"not a valid URL (its host cannot be read); {URL_EXAMPLE}") from None
        try:
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError:
            raise ValueError(
                f"not a valid URL (its port is no number from 0 to 65535); {URL_EXAMPLE}"
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"give an http(s) URL with a host, {URL_EXAMPLE}")
        import httpx  # (here: only a URL that is set costs its import)

        # A request made as the client makes one: reading the URL alone passes an "xn--"
        # host that is no valid name, found when the request reads it back.
        try:
            httpx.Request("POST", value)
        except (httpx.InvalidURL, ValueError):  # (IDNAError is a ValueError)
            raise ValueError(
                f"not a valid URL (its host is no valid name or address); {URL_EXAMPLE}"
            ) from None
        called = f"{_as_called(value)}/getMe"
        try:
            httpx.Request("POST", called)
        except (httpx.InvalidURL, ValueError):
            raise ValueError(
                "not a valid URL (once the token is added to it, at its end or in place of "
                f"{{token}}: end it with /bot); {URL_EXAMPLE}"
            ) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(POSTGRES_SCHEMES):
            raise ValueError(
                "give a postgresql://user:password@host:port/database URL, or leave it unset "
                "for the SQLite file in the data directory"
            )
        return value

    @property
    def database(self) -> Path:
        """The SQLite file (used unless SCREEN_BOT_DATABASE_URL is set)."""
        return self.data_dir / "screen-bot.sqlite3"

    @property
    def checked_dialogs(self) -> Path:
        """Where the dialog files already checked are kept: a folder of the cache directory
        named so that no site's own folder is taken for it (``dialogs`` was: a cache
        directory that held the site's dialogs had them chmodded and pickles put beside)."""
        return self.cache_dir / CHECKED_DIALOGS

    @property
    def database_url_text(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None

    def secrets(self) -> list[str]:
        """Texts that must never be shown or logged: the token, its secret half, the webhook
        secret, the database password, a password in a Bot API URL (a self-hosted server
        behind basic auth)."""
        return _secrets(
            self.telegram_bot_token.get_secret_value() if self.telegram_bot_token else None,
            self.webhook_secret.get_secret_value() if self.webhook_secret else None,
            self.database_url.get_secret_value() if self.database_url else None,
            [self.telegram_api_base_url, self.telegram_api_file_url],
        )

    @property
    def session_lifetime(self) -> timedelta:
        """SCREEN_BOT_SESSION_TTL_HOURS, as a duration."""
        return timedelta(hours=self.session_ttl_hours)

    def token_problem(self) -> str | None:
        """Why the bot token cannot be used, or None when it looks right."""
        if self.telegram_bot_token is None:
            return "TELEGRAM_BOT_TOKEN is not set (put it in .env; see .env.example)"
        if not TOKEN_PATTERN.fullmatch(self.telegram_bot_token.get_secret_value()):
            return (
                "TELEGRAM_BOT_TOKEN does not look like a bot token (123456789:AA… from BotFather)"
            )
        return None


def _secrets(
    token: str | None,
    webhook_secret: str | None,
    database_url: str | None,
    api_urls: list[str | None],
) -> list[str]:
    found = []
    if token is not None:
        found += [token, token.partition(":")[2]]
    if webhook_secret is not None:
        found.append(webhook_secret)
    for url in [database_url, *api_urls]:
        found += passwords(url) if url is not None else []
    return [s for s in found if s]


class _Written(BaseSettings):
    """The settings that hold secrets, as written in the environment and .env, unchecked."""

    model_config = Settings.model_config
    token: str | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    webhook_secret: str | None = Field(None, alias="SCREEN_BOT_WEBHOOK_SECRET")
    database_url: str | None = Field(None, alias="SCREEN_BOT_DATABASE_URL")
    api_base_url: str | None = Field(None, alias="TELEGRAM_API_BASE_URL")
    api_file_url: str | None = Field(None, alias="TELEGRAM_API_FILE_URL")


def secrets_to_hide() -> list[str]:
    """The secrets no output may show (:meth:`Settings.secrets`), also when the settings do
    not load: then as they are written, unchecked (the token can still be read when
    another setting is wrong, and a message about that one must not show it)."""
    try:
        return load().secrets()
    except ScreenBotError:
        pass
    try:
        written = _Written()
    except (UnicodeDecodeError, ValidationError):  # a .env that is not UTF-8: the environment
        written = _Written(_env_file=None)
    urls = [written.api_base_url, written.api_file_url]
    return _secrets(written.token, written.webhook_secret, written.database_url, urls)


def load() -> Settings:
    """The settings from the environment and .env; a bad value is an error, not a traceback.
    No message quotes a value (a token pasted into another setting would show): each names
    the setting, and says what is wrong with it."""
    try:
        return Settings()
    except UnicodeDecodeError:
        raise ScreenBotError("settings: .env is not UTF-8 text; save it as UTF-8") from None
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors(include_url=False)
        )
        raise ScreenBotError(f"settings: {problems}") from None
