"""Settings from the environment and ``.env`` (see ``.env.example``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .dburl import passwords
from .errors import ScreenBotError

TOKEN_PATTERN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,}$")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
API_BASE_URL, API_FILE_URL = "https://api.telegram.org/bot", "https://api.telegram.org/file/bot"
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
        raise ValueError(f"cannot tell which home directory {path} is in") from None


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
        """An http(s) URL with a host and a valid port, e.g. https://api.telegram.org/bot
        (a typo found here is named; found by the HTTP client it would end in a trace)."""
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError as err:
            raise ValueError(
                f"not a valid URL ({err}); e.g. https://api.telegram.org/bot"
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
            raise ValueError("give an http(s) URL with a host, e.g. https://api.telegram.org/bot")
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
        secret, the database password."""
        found = []
        if self.telegram_bot_token is not None:
            token = self.telegram_bot_token.get_secret_value()
            found += [token, token.partition(":")[2]]
        if self.webhook_secret is not None:
            found.append(self.webhook_secret.get_secret_value())
        if self.database_url is not None:
            found += passwords(self.database_url.get_secret_value())
        return [s for s in found if s]

    def token_problem(self) -> str | None:
        """Why the bot token cannot be used, or None when it looks right."""
        if self.telegram_bot_token is None:
            return "TELEGRAM_BOT_TOKEN is not set (put it in .env; see .env.example)"
        if not TOKEN_PATTERN.fullmatch(self.telegram_bot_token.get_secret_value()):
            return (
                "TELEGRAM_BOT_TOKEN does not look like a bot token (123456789:AA… from BotFather)"
            )
        return None


def load() -> Settings:
    """The settings from the environment and .env; a bad value is an error, not a traceback."""
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
