"""Message text as the Bot API treats it: parse_mode parsing, trimming, entity detection.

Entities are built with code-point offsets and converted at the end to the UTF-16 offsets
the Bot API uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]


class ParseError(ValueError):
    """Text that the Bot API rejects with "can't parse entities: ..."."""


@dataclass
class _Entity:
    type: str
    start: int  # code points
    end: int
    extra: JsonDict = field(default_factory=dict)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode())


# --- HTML -----------------------------------------------------------------------------------

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTR = re.compile(r"""\s*([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")


def _html_unescape(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _HTML_NAMED[name]

    return _HTML_ENTITY.sub(repl, text)


def _parse_html(src: str) -> tuple[str, list[_Entity]]:
    out: list[str] = []
    entities: list[_Entity] = []
    stack: list[tuple[str, int, dict[str, str]]] = []
    i = 0
    while i < len(src):
        c = src[i]
        if c == "&":
            m = _HTML_ENTITY.match(src, i)
            out.append(_html_unescape(m.group(0)) if m else "&")
            i = m.end() if m else i + 1
            continue
        if c != "<":
            out.append(c)
            i += 1
            continue
        pos = _byte_offset(src, i)
        if src.startswith("</", i):
            end = src.find(">", i)
            if end < 0:
                raise ParseError(f"Unclosed end tag at byte offset {pos}")
            name = src[i + 2 : end].strip().lower()
            if not stack:
                raise ParseError(f'Unexpected end tag at byte offset {pos}: "</{name}>"')
            tag, start, attrs = stack.pop()
            if name != tag:
                raise ParseError(
                    f'Unmatched end tag at byte offset {pos}, expected "</{tag}>", '
                    f'found "</{name}>"'
                )
            entity = _html_entity(tag, attrs, start, len(out), stack)
            if entity is not None:
                entities.append(entity)
            i = end + 1
            continue
        m = _TAG_NAME.match(src, i + 1)
        if not m:
            raise ParseError(f"Unexpected end of name token at byte offset {pos}")
        name = m.group(0).lower()
        if name not in _HTML_TAGS:
            raise ParseError(f'Unsupported start tag "{name}" at byte offset {pos}')
        j = m.end()
        attrs: dict[str, str] = {}
        while True:
            while j < len(src) and src[j].isspace():
                j += 1
            if j >= len(src):
                raise ParseError(f"Unclosed start tag at byte offset {pos}")
            if src[j] == ">":
                break
            am = _ATTR.match(src, j)
            if not am or am.end() == j:
                raise ParseError(
                    f"Expected equal sign in declaration of an attribute of the tag "
                    f'"{name}" at byte offset {pos}'
                )
            value = next((g for g in am.groups()[1:] if g is not None), "")
            attrs[am.group(1).lower()] = _html_unescape(value)
            j = am.end()
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise ParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {pos}')
        stack.append((name, len(out), attrs))
        i = j + 1
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


def _html_entity(
    tag: str, attrs: dict[str, str], start: int, end: int, stack: list[tuple[str, int, Any]]
) -> _Entity | None:
    kind = _HTML_TAGS[tag]
    extra: JsonDict = {}
    if kind == "text_link":
        if not attrs.get("href"):
            return None
        extra["url"] = attrs["href"]
    elif kind == "custom_emoji":
        if not attrs.get("emoji-id"):
            return None
        extra["custom_emoji_id"] = attrs["emoji-id"]
    elif kind == "blockquote" and "expandable" in attrs:
        kind = "expandable_blockquote"
    elif kind == "code" and stack and stack[-1][0] == "pre":
        lang = attrs.get("class", "")
        if lang.startswith("language-"):
            # <pre><code class="language-x"> is one pre entity with a language.
            stack[-1][2]["language"] = lang.removeprefix("language-")
            return None
    elif kind == "pre" and attrs.get("language"):
        extra["language"] = attrs["language"]
    return _Entity(kind, start, end, extra)


# --- MarkdownV2 -----------------------------------------------------------------------------

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def _reserved(c: str) -> ParseError:
    return ParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")


def _find_unescaped(src: str, token: str, start: int) -> int:
    i = start
    while i < len(src):
        if src[i] == "\\":
            i += 2
            continue
        if src.startswith(token, i):
            return i
        i += 1
    return -1


def _unescape_v2(text: str) -> str:
    return re.sub(r"\\([\x01-\x7e])", r"\1", text)


def _parse_markdown_v2(src: str) -> tuple[str, list[_Entity]]:
    out: list[str] = []
    entities: list[_Entity] = []
    stack: list[tuple[str, int, int]] = []  # kind, start in out, byte offset in src
    quote_start: int | None = None
    i = 0

    def toggle(kind: str) -> None:
        if stack and stack[-1][0] == kind:
            _, start, _ = stack.pop()
            entities.append(_Entity(kind, start, len(out)))
        elif any(k == kind for k, _, _ in stack):
            top = stack[-1]
            raise ParseError(
                f"Can't find end of {_MDV2_NAMES[top[0]]} entity at byte offset {top[2]}"
            )
        else:
            stack.append((kind, len(out), _byte_offset(src, i)))

    while i < len(src):
        c = src[i]
        pos = _byte_offset(src, i)
        if (i == 0 or src[i - 1] == "\n") and c == ">":
            if quote_start is None:
                quote_start = len(out)
            i += 1
            continue
        if c == "\n" and quote_start is not None and not src.startswith(">", i + 1):
            entities.append(_Entity("blockquote", quote_start, len(out)))
            quote_start = None
        if c == "\\":
            if i + 1 < len(src) and 0 < ord(src[i + 1]) < 127:
                out.append(src[i + 1])
                i += 2
                continue
            raise _reserved("\\")
        if c == "`":
            fence = "```" if src.startswith("```", i) else "`"
            close = _find_unescaped(src, fence, i + len(fence))
            if close < 0:
                name = "Pre" if fence == "```" else "Code"
                raise ParseError(f"Can't find end of {name} entity at byte offset {pos}")
            inner = src[i + len(fence) : close]
            extra: JsonDict = {}
            if fence == "```":
                first, sep, rest = inner.partition("\n")
                if sep and first and not any(ch.isspace() for ch in first):
                    extra["language"] = first
                    inner = rest
            start = len(out)
            out.extend(_unescape_v2(inner))
            entities.append(_Entity("pre" if fence == "```" else "code", start, len(out), extra))
            i = close + len(fence)
            continue
        if c == "*":
            toggle("bold")
            i += 1
        elif c == "_":
            if src.startswith("__", i):
                toggle("underline")
                i += 2
            else:
                toggle("italic")
                i += 1
        elif c == "~":
            toggle("strikethrough")
            i += 1
        elif c == "|":
            if not src.startswith("||", i):
                raise _reserved("|")
            toggle("spoiler")
            i += 2
        elif c == "[" or (c == "!" and src.startswith("![", i)):
            kind = "text_link" if c == "[" else "custom_emoji"
            stack.append((kind, len(out), pos))
            i += 1 if c == "[" else 2
        elif c == "]":
            if not stack or stack[-1][0] not in ("text_link", "custom_emoji"):
                raise _reserved("]")
            kind, start, _ = stack.pop()
            if not src.startswith("(", i + 1):
                raise ParseError(
                    f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {pos}"
                )
            close = _find_unescaped(src, ")", i + 2)
            if close < 0:
                raise ParseError(f"Can't find end of a URL at byte offset {pos}")
            url = _unescape_v2(src[i + 2 : close])
            if kind == "text_link":
                entities.append(_Entity(kind, start, len(out), {"url": url}))
            else:
                emoji_id = url.partition("id=")[2]
                entities.append(_Entity(kind, start, len(out), {"custom_emoji_id": emoji_id}))
            i = close + 1
        elif c in _MDV2_RESERVED:
            raise _reserved(c)
        else:
            out.append(c)
            i += 1
    if stack:
        kind, _, pos = stack[-1]
        raise ParseError(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {pos}")
    if quote_start is not None:
        entities.append(_Entity("blockquote", quote_start, len(out)))
    return "".join(out), entities


# --- legacy Markdown ------------------------------------------------------------------------


def _parse_markdown(src: str) -> tuple[str, list[_Entity]]:
    out: list[str] = []
    entities: list[_Entity] = []
    i = 0
    while i < len(src):
        c = src[i]
        pos = _byte_offset(src, i)
        if c == "\\" and i + 1 < len(src) and src[i + 1] in "_*`[":
            out.append(src[i + 1])
            i += 2
            continue
        if c in "*_`" or c == "[":
            end_token = {"*": "*", "_": "_", "`": "`", "[": "]"}[c]
            if src.startswith("```", i):
                end_token = "```"
            begin = i + len(end_token) if end_token == "```" else i + 1
            close = src.find(end_token, begin)
            if close < 0:
                raise ParseError(f"Can't find end of the entity starting at byte offset {pos}")
            inner = src[begin:close]
            start = len(out)
            extra: JsonDict = {}
            kind = {"*": "bold", "_": "italic", "`": "code", "[": "text_link"}[c]
            i = close + len(end_token)
            if end_token == "```":
                kind = "pre"
                first, sep, rest = inner.partition("\n")
                if sep and first and not any(ch.isspace() for ch in first):
                    extra["language"] = first
                    inner = rest
            elif kind == "text_link":
                m = re.match(r"\(([^)]*)\)", src[i:])
                if not m:
                    raise ParseError(f"Can't find end of the entity starting at byte offset {pos}")
                extra["url"] = m.group(1)
                i += m.end()
            out.extend(inner)
            entities.append(_Entity(kind, start, len(out), extra))
            continue
        out.append(c)
        i += 1
    return "".join(out), entities


# --- entity detection, trimming, conversion -------------------------------------------------

_DETECT = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]'])"
    r"|(?P<email>\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b)"
    r"|(?P<bot_command>(?<![\w/@])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@]))"
    r"|(?P<mention>(?<![\w@])@[A-Za-z0-9_]{5,32}(?!\w))"
    r"|(?P<hashtag>(?<![\w#])#\w*[^\W\d]\w*)"
)
_OPAQUE = {"code", "pre", "text_link", "text_mention", "custom_emoji"}


def _detect(text: str, entities: list[_Entity]) -> list[_Entity]:
    found: list[_Entity] = []
    taken = [(e.start, e.end) for e in entities if e.type in _OPAQUE]
    for m in _DETECT.finditer(text):
        start, end = m.span()
        if any(start < b and a < end for a, b in taken):
            continue
        found.append(_Entity(m.lastgroup or "url", start, end))
        taken.append((start, end))
    return found


_SPACE = " \t\r\n"


def _trim(text: str, entities: list[_Entity]) -> tuple[str, list[_Entity]]:
    lead = len(text) - len(text.lstrip(_SPACE))
    trimmed = text.strip(_SPACE)
    kept = []
    for e in entities:
        start, end = max(e.start - lead, 0), min(e.end - lead, len(trimmed))
        if end > start:
            kept.append(_Entity(e.type, start, end, e.extra))
    return trimmed, kept


def _from_api(text: str, entities: list[JsonDict]) -> list[_Entity]:
    """Bot API entities (UTF-16 offsets) -> code-point entities."""
    bounds = [0]
    for ch in text:
        bounds.append(bounds[-1] + (2 if ord(ch) > 0xFFFF else 1))
    index = {units: i for i, units in enumerate(bounds)}
    result = []
    for e in entities:
        if not isinstance(e, dict) or "type" not in e:
            raise ParseError("entity must be an Object with a type")
        try:
            offset, length = int(e["offset"]), int(e["length"])
            start, end = index[offset], index[offset + length]
        except (KeyError, ValueError, TypeError) as exc:
            raise ParseError("entity offset or length is invalid") from exc
        extra = {k: v for k, v in e.items() if k not in ("type", "offset", "length")}
        result.append(_Entity(e["type"], start, end, extra))
    return result


def _to_api(text: str, entities: list[_Entity]) -> list[JsonDict]:
    ordered = sorted(entities, key=lambda e: (e.start, -e.end))
    return [
        {
            "offset": utf16_len(text[: e.start]),
            "length": utf16_len(text[e.start : e.end]),
            "type": e.type,
            **e.extra,
        }
        for e in ordered
        if e.end > e.start
    ]


def format_text(
    raw: str, parse_mode: str | None = None, entities: list[JsonDict] | None = None
) -> tuple[str, list[JsonDict]]:
    """Returns the text and entities Telegram would store for `raw` (raises ParseError)."""
    if entities:
        text, parsed = raw, _from_api(raw, entities)
    elif parse_mode:
        parser = {
            "html": _parse_html,
            "markdownv2": _parse_markdown_v2,
            "markdown": _parse_markdown,
        }.get(parse_mode.lower())
        if parser is None:
            raise ValueError("unsupported parse_mode")
        text, parsed = parser(raw)
    else:
        text, parsed = raw, []
    text, parsed = _trim(text, parsed)
    return text, _to_api(text, parsed + _detect(text, parsed))
