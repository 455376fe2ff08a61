"""The bot's HTTPS clients to the Bot API, all on one TLS context.

Each ``httpx.AsyncClient`` otherwise builds its own ``ssl.SSLContext`` and loads the whole
CA bundle into it (20-40 ms of CPU each, a large part of ``screen-bot run``'s start-up).
The context is built once per process the way httpx builds it (certifi's CAs, or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), so certificates are checked exactly as
before. httpcore sets the ALPN protocols on the context at each connection; every client
here speaks HTTP/1.1, so they all set the same value.

Loading the CA bundle releases the GIL, so ``preload`` starts it on a thread as soon as
``screen-bot run`` starts (``cli/bot.py``), while the rest of the bot's code is imported
and the dialog files are checked on the main thread.
"""

from __future__ import annotations

import contextlib
import ssl
import threading

import httpx
from telegram.request import HTTPXRequest

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


def _load() -> None:
    # an error here is met again, and reported, by the main thread's call
    with contextlib.suppress(Exception):
        tls_context()


def forget() -> None:
    """Drop the context (tests: the next call makes a new one)."""
    global _context, _loading
    with _lock:
        _context, _loading = None, None


def https_request(connection_pool_size: int) -> HTTPXRequest:
    """python-telegram-bot's HTTPX request with its defaults, on the shared TLS context."""
    return HTTPXRequest(
        connection_pool_size=connection_pool_size, httpx_kwargs={"verify": tls_context()}
    )
