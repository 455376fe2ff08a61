"""Webhook mode: Telegram POSTs each update; it is answered 200 only once it is stored.

A request must carry the secret token (``X-Telegram-Bot-Api-Secret-Token``, else 403)
and a JSON update object of at most 1 MB (else 400). Its body is never logged. The
update goes through the same :class:`~.intake.Intake` as a polled one, so the 200 that
confirms it to Telegram comes after the inbox write (or after it was handled).
"""

from __future__ import annotations

import hmac
import json
import logging
import urllib.parse
from http import HTTPStatus

import tornado.web
from tornado.httpserver import HTTPServer

from .intake import Intake, update_id_of

logger = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class UpdateHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("POST",)

    def initialize(self, intake: Intake, secret: str, path: str) -> None:
        self.intake, self.secret, self.path = intake, secret, path

    async def post(self) -> None:
        """One update from Telegram."""
        if _same_path(self.request.path) != self.path:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            logger.warning("webhook: a request without the secret token was refused")
            self.send_error(HTTPStatus.FORBIDDEN)
            return
        try:
            update = json.loads(self.request.body)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python reads
            update = None
        if update_id_of(update) is None:
            logger.warning("webhook: a request that is not an update was refused")
            self.send_error(HTTPStatus.BAD_REQUEST)
            return
        await self.intake.accept([update])
        self.set_status(HTTPStatus.OK)
        self.finish()


class QuietApplication(tornado.web.Application):
    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        """No access log: a request line is all it would add, and the secret path is in it."""


def _same_path(path: str) -> str:
    """A URL path as compared: decoded (Telegram may percent-encode what it was given),
    without the slashes around it."""
    return urllib.parse.unquote(path).strip("/")


def serve(intake: Intake, secret: str, path: str, listen: str, port: int) -> HTTPServer:
    """Start answering webhook requests on ``listen:port`` at ``/path`` (compared as text,
    not as a route pattern: a path may hold '+', '(' or '[')."""
    handler = {"intake": intake, "secret": secret, "path": _same_path(path)}
    application = QuietApplication([(r"/.*", UpdateHandler, handler)])
    server = HTTPServer(application, max_body_size=MAX_BODY)
    server.listen(port, address=listen)
    return server
