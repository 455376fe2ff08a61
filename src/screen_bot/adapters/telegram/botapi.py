"""Bot API calls below python-telegram-bot's object layer, where the raw answer matters.

- ``getUpdates``: the raw JSON list, so one malformed update is skipped on its own
  instead of failing the whole batch (python-telegram-bot parses the batch at once);
- the start-up check of token and URL: the error code, so a rejected token (401) and a
  wrong URL (404) are told apart, and no exception text carries the token;
- the refusals to strangers: their own connections, outside the rate limiter that the
  coordinators' replies wait in.

Errors follow the Bot API: ``{"ok": false, "error_code": …, "description": …,
"parameters": {"retry_after": …}}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from telegram.error import TelegramError
from telegram.request import BaseRequest, RequestData

# How python-telegram-bot itself turns keyword arguments into a request (pinned to 22.x).
from telegram.request._requestparameter import RequestParameter

from ...redact import redact
from .https import https_request

DESCRIPTION_LIMIT = 200  # characters of an error's description kept (it is logged)


class ApiError(Exception):
    """The Bot API answered ``ok: false``."""

    def __init__(self, code: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code, self.description, self.retry_after = code, description, retry_after


class Unreachable(Exception):
    """No Bot API answer: network error, timeout, or a reply that is not Bot API JSON."""


class RawBotApi:
    """``call(method, params)`` → the ``result`` of the Bot API answer, or an exception."""

    def __init__(
        self, url: str, request: BaseRequest | None = None, hidden: Iterable[str] = ()
    ) -> None:
        self._url = url  # base URL with the token: never logged or shown
        self.request = request or https_request(4)
        self.hidden = tuple(hidden)  # the secrets an error's description may quote

    async def initialize(self) -> None:
        await self.request.initialize()

    async def shutdown(self) -> None:
        await self.request.shutdown()

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        data = RequestData(
            [RequestParameter.from_input(k, v) for k, v in (params or {}).items() if v is not None]
        )
        try:
            if timeout is None:
                code, payload = await self.request.do_request(f"{self._url}/{method}", "POST", data)
            else:
                code, payload = await self.request.do_request(
                    f"{self._url}/{method}", "POST", data, read_timeout=timeout
                )
        except TelegramError as err:  # python-telegram-bot wraps httpx errors in these
            raise Unreachable(type(err).__name__) from None
        except OSError as err:
            raise Unreachable(type(err).__name__) from None
        try:
            body = json.loads(payload)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python reads
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
            raise Unreachable(f"HTTP {code}, not a Bot API answer")
        if body["ok"]:
            return body.get("result")
        error_code = body.get("error_code")
        parameters = body.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        # Hidden before it is cut: a secret cut in two is no longer found whole, and its
        # first part would be logged as it is (a relay quoting the URL with the token).
        description = redact(str(body.get("description") or ""), self.hidden)
        raise ApiError(
            error_code if isinstance(error_code, int) else code,
            description[:DESCRIPTION_LIMIT],
            float(retry_after) if isinstance(retry_after, int | float) else None,
        )
