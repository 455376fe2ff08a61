"""The bot's HTTPS clients to the Bot API, all on one TLS context.

Each ``httpx.AsyncClient`` otherwise builds its own ``ssl.SSLContext`` and loads the whole
CA bundle into it (20-40 ms of CPU each, a large part of ``screen-bot run``'s start-up).
The context is built once per process the way httpx builds it (certifi's CAs, or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), so certificates are checked exactly as
before. httpcore sets the ALPN protocols on the context at each connection; every client
here speaks HTTP/1.1, so they all set the same value.
"""

from __future__ import annotations

import functools
import ssl

import httpx
from telegram.request import HTTPXRequest

# python-telegram-bot's own pool sizes (ApplicationBuilder): requests, and getUpdates.
BOT_POOL = 256
POLLING_POOL = 1


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The CA-loaded TLS context every client of this process shares."""
    return httpx.create_ssl_context()


def https_request(connection_pool_size: int) -> HTTPXRequest:
    """python-telegram-bot's HTTPX request with its defaults, on the shared TLS context."""
    return HTTPXRequest(
        connection_pool_size=connection_pool_size, httpx_kwargs={"verify": tls_context()}
    )
