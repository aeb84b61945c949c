"""HTML from customers: sanitized with nh3 for display, flattened to text for search and rules."""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

import nh3

# Inline images point at their part by Content-ID (RFC 2392).
_URL_SCHEMES = {"http", "https", "mailto", "cid", "tel"}
_DROP_WITH_CONTENT = {"script", "style", "head", "title", "template", "object", "iframe"}
_BLOCKS = {
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "table",
    "ul",
    "ol",
    "hr",
    "section",
    "article",
}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n\s*\n+")


def sanitize(markup: str) -> str:
    """Safe HTML to show an agent: no scripts, styles, event handlers or foreign URL schemes."""
    if not markup.strip():
        return ""
    allowed = set(nh3.ALLOWED_TAGS) - _DROP_WITH_CONTENT
    return nh3.clean(
        markup,
        tags=allowed,
        clean_content_tags=_DROP_WITH_CONTENT,
        url_schemes=_URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
    ).strip()


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP_WITH_CONTENT:
            self._skip += 1
        elif tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_WITH_CONTENT:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def to_text(markup: str) -> str:
    """Readable plain text from HTML: block elements become line breaks, whitespace folded."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = html_lib.unescape("".join(parser.chunks))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
