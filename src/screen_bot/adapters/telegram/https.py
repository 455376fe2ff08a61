"""The bot's HTTPS clients to the Bot API, all on one TLS context.

Each ``httpx.AsyncClient`` otherwise builds its own ``ssl.SSLContext`` and loads the whole
CA bundle into it (20-40 ms of CPU each, a large part of ``screen-bot run``'s start-up).
The context is built once per process the way httpx builds it (certifi's CAs, or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), so certificates are checked exactly as
before. httpcore sets the ALPN protocols on the context at each connection; every client
here speaks HTTP/1.1, so they all set the same value.

Loading the CA bundle releases the GIL, so ``preload`` starts it on a thread as soon as
``screen-bot run`` starts (``cli/serve.py``), while the rest of the bot's code is imported
and the dialog files are checked on the main thread.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import threading
from http import HTTPStatus
from typing import Any

import httpx
from telegram.request import BaseRequest, HTTPXRequest, RequestData

# python-telegram-bot's own pool sizes (ApplicationBuilder): requests, and getUpdates.
BOT_POOL = 256
POLLING_POOL = 1


_lock, _starting = threading.Lock(), threading.Lock()
_context: ssl.SSLContext | None = None
_loading: threading.Thread | None = None  # preload's thread, once started


def tls_context() -> ssl.SSLContext:
    """The CA-loaded TLS context every client of this process shares (made once)."""
    global _context
    with _lock:
        if _context is None:
            _context = httpx.create_ssl_context()
        return _context


def preload() -> None:
    """Start making the context on a thread (once); ``tls_context`` waits for it."""
    global _loading
    with _starting:  # not _lock: the thread holds that one while it loads
        if _loading is not None:
            return
        _loading = threading.Thread(target=_load, name="tls-context", daemon=True)
    _loading.start()


def settle() -> None:
    """Wait for preload's thread, if it runs: a process leaving while it loads the CA bundle
    can crash (SIGSEGV: OpenSSL's exit handlers free what the thread is still using)."""
    loading = _loading
    if loading is not None:
        loading.join()


def _load() -> None:
    # an error here is met again, and reported, by the main thread's call
    with contextlib.suppress(Exception):
        tls_context()


def forget() -> None:
    """Drop the context (tests: the next call makes a new one)."""
    global _context, _loading
    with _lock:
        _context, _loading = None, None


# The start of a successful Bot API answer, as Telegram writes it: {"ok":true,"result":…}
SUCCESS_START = re.compile(rb'\s*\{\s*"ok"\s*:\s*true\b')


class BotApiRequest(HTTPXRequest):
    """python-telegram-bot's HTTPX request, with the outcome read from the body's ``ok``.

    The Bot API defines an answer's outcome by its JSON (``ok``, ``error_code``,
    ``description``), not by the HTTP status. python-telegram-bot reads the status: an
    error sent with status 200 (a relay, an emulator) would reach it as a success and fail
    on the missing ``result`` (a KeyError, which no ``except TelegramError`` catches). Such
    an answer is given the status of its ``error_code``, so python-telegram-bot raises the
    error it raises for that code. A body that starts as a success is not parsed here.
    """

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        code, payload = await super().do_request(
            url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
        )
        # Bot API methods are POSTed; a file is downloaded with a GET, its bytes left alone.
        if method == "POST" and HTTPStatus.OK <= code <= 299 and not SUCCESS_START.match(payload):
            code = error_status(payload, code)
        return code, payload


def error_status(payload: bytes, status: int) -> int:
    """The HTTP status an answer means: its ``error_code`` when its body says ``ok: false``
    (400 when the code is missing or is no error status), else ``status``."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON (a proxy's page): PTB says so
        return status
    if not isinstance(body, dict) or body.get("ok") is not False:
        return status
    error_code = body.get("error_code")
    if isinstance(error_code, int) and 400 <= error_code <= 599:
        return error_code
    return HTTPStatus.BAD_REQUEST


class KnownAnswers(BotApiRequest):
    """python-telegram-bot's HTTPX request, which can be told a Bot API answer the process
    already has: the next call of that method gets it without asking the Bot API again.

    The bot's start-up check of the token (``app.check_token``) asks ``getMe`` itself, for
    its own errors; python-telegram-bot's ``Application.initialize`` asks it again to learn
    the bot's user. Given the check's answer, the second call costs no round trip.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known: dict[str, bytes] = {}

    def known(self, method: str, result: object) -> None:
        """Answer the next ``method`` call with ``result`` (as an ``ok`` Bot API answer)."""
        self._known[method] = json.dumps({"ok": True, "result": result}).encode()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        answer = self._known.pop(url.rpartition("/")[2], None) if self._known else None
        if answer is not None:
            return HTTPStatus.OK, answer
        return await super().do_request(
            url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
        )


def https_request(connection_pool_size: int) -> KnownAnswers:
    """python-telegram-bot's HTTPX request with its defaults, on the shared TLS context."""
    return KnownAnswers(
        connection_pool_size=connection_pool_size, httpx_kwargs={"verify": tls_context()}
    )
