"""Where a PostgreSQL URL keeps its passwords, read as libpq reads the URL, to hide them
(a Bot API URL's password, of a self-hosted server behind basic auth, is hidden alike).

libpq ends the user part at the first ``@`` before any ``/``, so a password may hold ``#``
or ``?`` unencoded (``urlsplit`` would cut it there and show the rest); one with an
unencoded ``@`` is cut there by libpq, which then names the rest as part of the host: it is
hidden up to the last ``@``. A password may also come as a ``password=`` parameter.
"""

from __future__ import annotations

from urllib.parse import unquote

HIDDEN = "***"


def password_spans(url: str) -> list[tuple[int, int]]:
    """(start, end) of each password in ``url``."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return []
    start = scheme_end + 3
    end = next((i for i in range(start, len(url)) if url[i] in "@/"), len(url))
    spans, after = [], start
    if end < len(url) and url[end] == "@":
        slash = url.find("/", end)
        last = url.rfind("@", end, slash if slash >= 0 else len(url))
        colon = url.find(":", start, end)
        if colon >= 0:
            spans.append((colon + 1, last))
        after = last + 1
    query = url.find("?", after)
    if query >= 0:
        position = query + 1
        for item in url[query + 1 :].split("&"):
            key, equals, _ = item.partition("=")
            if equals and key.strip() == "password":
                spans.append((position + len(key) + 1, position + len(item)))
            position += len(item) + 1
    return spans


def passwords(url: str) -> list[str]:
    """Each password as written in ``url`` and percent-decoded (a driver may quote either)."""
    written = [url[start:end] for start, end in password_spans(url)]
    pieces = [piece for w in written for piece in [w, *w.split("@")]]  # libpq's reading too
    return [p for piece in pieces for p in {piece, unquote(piece)} if p]


def hidden(url: str) -> str:
    """``url`` with every password replaced by ``***``."""
    for start, end in reversed(password_spans(url)):
        url = url[:start] + HIDDEN + url[end:]
    return url
