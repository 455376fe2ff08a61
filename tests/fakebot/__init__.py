"""Fake Telegram Bot API server for end-to-end tests.

Usage inside tests (rootdir/tests is on sys.path): ``from fakebot import FakeBotApi``.
To use the fixture, import it into a conftest or test module: ``from fakebot import
fake_bot_api``.
"""

from collections.abc import Iterator

import pytest

from .markup import format_text, utf16_len
from .server import DEFAULT_TOKEN, ApiError, FakeBotApi, Upload

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "FakeBotApi",
    "Upload",
    "fake_bot_api",
    "format_text",
    "utf16_len",
]


@pytest.fixture
def fake_bot_api() -> Iterator[FakeBotApi]:
    """A started FakeBotApi, stopped after the test."""
    with FakeBotApi() as api:
        yield api
