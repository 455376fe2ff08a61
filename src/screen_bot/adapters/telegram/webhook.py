"""Webhook mode: Telegram POSTs each update; it is answered 200 only once it is stored.

A request must carry the secret token (``X-Telegram-Bot-Api-Secret-Token``, else 403,
before its body is read) and a JSON update object of at most 1 MB (else 400: tornado's,
as soon as the ``Content-Length`` says more). Its body is never logged. The
update goes through the same :class:`~.intake.Intake` as a polled one, so the 200 that
confirms it to Telegram comes after the inbox write (or after it was handled).

A connection that sends nothing, or sends slowly, holds a file descriptor: it is closed
when its request's headers have not come within ``IDLE_TIMEOUT`` (or no next request in
as long), or its body within ``BODY_TIMEOUT``. Telegram sends an update whole at once and
reconnects when a kept-alive connection was closed. Connections past
:func:`connection_cap` are closed as soon as they are accepted: with every descriptor
taken, accepting failed in a loop (a traceback each time, megabytes of log a second) and
the bot could open neither its database nor a connection to the Bot API.
"""

from __future__ import annotations

import hmac
import json
import logging
import urllib.parse
from http import HTTPStatus
from types import TracebackType

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

from .intake import Intake, update_id_of

logger = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
IDLE_TIMEOUT = 30.0  # seconds for a request's headers, or between kept-alive requests
BODY_TIMEOUT = 10.0  # seconds for a body: 1 MB at 100 KB/s (Telegram's come in milliseconds)
# Telegram opens at most 100 connections at once (setWebhook's max_connections, default
# 40); the rest is room for a proxy's or a scanner's. An idle one costs about 6 KB.
MAX_CONNECTIONS = 4096
FD_RESERVE = 256  # descriptors kept for the database, the Bot API's connections, dialog files


@tornado.web.stream_request_body
class UpdateHandler(tornado.web.RequestHandler):
    """The path and the secret are checked once the headers are in, before the body is
    read: a stranger's body is never buffered (it held up to 1 MB per connection)."""

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, intake: Intake, secret: str, path: str) -> None:
        self.intake, self.secret, self.path = intake, secret, path
        self.chunks: list[bytes] = []  # the body, as it comes (at most MAX_BODY in all)

    def prepare(self) -> None:
        if _same_path(self.request.path) != self.path:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            logger.warning("webhook: a request without the secret token was refused")
            self.send_error(HTTPStatus.FORBIDDEN)

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    async def post(self) -> None:
        """One update from Telegram."""
        try:
            update = json.loads(b"".join(self.chunks))
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python reads
            update = None
        if update_id_of(update) is None:
            logger.warning("webhook: a request that is not an update was refused")
            self.send_error(HTTPStatus.BAD_REQUEST)
            return
        await self.intake.accept([update])
        self.set_status(HTTPStatus.OK)
        self.finish()

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A request that failed (answered 500), by its error's type only: tornado's
        line holds the request, and the secret path is in it."""
        if not isinstance(value, tornado.web.HTTPError):
            logger.error("webhook: a request failed (%s)", type(value).__name__)


class QuietApplication(tornado.web.Application):
    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        """No access log: a request line is all it would add, and the secret path is in it."""


def _same_path(path: str) -> str:
    """A URL path as compared: decoded (Telegram may percent-encode what it was given),
    without the slashes around it."""
    return urllib.parse.unquote(path).strip("/")


class BoundedHTTPServer(HTTPServer):
    """An HTTPServer that closes a connection past ``max_connections`` once accepted,
    saying so in the log once until the count is under the cap again."""

    max_connections = MAX_CONNECTIONS
    _full = False

    def open_connections(self) -> int:
        return len(self._connections)  # tornado's own set: a closed one is dropped from it

    def handle_stream(self, stream: IOStream, address: tuple[object, ...]) -> None:
        if self.open_connections() >= self.max_connections:
            stream.close()
            if not self._full:
                self._full = True
                logger.warning(
                    "webhook: %d connections are open; new ones are closed until some end",
                    self.max_connections,
                )
            return
        self._full = False
        super().handle_stream(stream, address)


def connection_cap() -> int:
    """How many webhook connections may be open at once: ``MAX_CONNECTIONS``, or fewer
    when the limit of open files (raised to its hard limit first, as far as allowed)
    would not leave ``FD_RESERVE`` descriptors for the rest of the bot."""
    if resource is None:
        return MAX_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:  # systemd's default soft limit is 1024, its hard one 524288
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # an unlimited hard limit may be more than allowed
            pass
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return min(MAX_CONNECTIONS, max(soft // 2, soft - FD_RESERVE))


def serve(
    intake: Intake,
    secret: str,
    path: str,
    listen: str,
    port: int,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    max_connections: int | None = None,
) -> BoundedHTTPServer:
    """Start answering webhook requests on ``listen:port`` at ``/path`` (compared as text,
    not as a route pattern: a path may hold '+', '(' or '[')."""
    handler = {"intake": intake, "secret": secret, "path": _same_path(path)}
    application = QuietApplication([(r"/.*", UpdateHandler, handler)])
    server = BoundedHTTPServer(
        application,
        max_body_size=MAX_BODY,
        idle_connection_timeout=idle_timeout,
        body_timeout=body_timeout,
    )
    server.max_connections = connection_cap() if max_connections is None else max_connections
    server.listen(port, address=listen)
    return server
