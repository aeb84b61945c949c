"""HTML from customers: sanitized with nh3 for display, flattened to text for search and rules."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote

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
    """Safe HTML to show an agent: no scripts, styles, event handlers or foreign URL schemes.

    ``cid:`` and remote image sources are kept: this is also what is stored, and
    ``for_display`` decides at each showing what becomes of them."""
    return _clean(markup, None)


def _clean(markup: str, attribute_filter: Callable[[str, str, str], str | None] | None) -> str:
    if not markup.strip():
        return ""
    allowed = set(nh3.ALLOWED_TAGS) - _DROP_WITH_CONTENT
    return nh3.clean(
        markup,
        tags=allowed,
        clean_content_tags=_DROP_WITH_CONTENT,
        url_schemes=_URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
        attribute_filter=attribute_filter,
    ).strip()


# --- showing a message: inline images in place, remote images left out ---

# What an image URL from the caller may look like: a path on this site, nothing else.
# nh3 checks URL schemes before its attribute filter runs, never after, so what the
# filter puts in is checked here.
_SITE_PATH = re.compile(r"^/(?!/)[A-Za-z0-9._~/-]*$")
_REMOTE = re.compile(r"^\s*(https?:|//)", re.IGNORECASE)
_CID = re.compile(r"^\s*cid:", re.IGNORECASE)


@dataclass(frozen=True)
class Shown:
    """A message's HTML as shown: safe markup, the Content-IDs drawn in it (normalized,
    ``content_id_key``), and whether it asked for images from other sites."""

    html: str
    inline: frozenset[str]
    remote_images: bool


def content_id_key(content_id: str) -> str:
    """A part's Content-ID as looked up: without ``<>`` and case-folded (RFC 2392 is
    read case-insensitively by mail clients, and so here)."""
    return content_id.strip().strip("<>").strip().lower()


def cid_key(url: str) -> str:
    """The ``content_id_key`` a ``cid:`` URL points at (it is URL-encoded, RFC 2392)."""
    return content_id_key(unquote(_CID.sub("", url, count=1)))


def for_display(markup: str, images: Mapping[str, str]) -> Shown:
    """``markup`` sanitized for a page, with ``<img src="cid:X">`` pointing at
    ``images[content_id_key(X)]`` (paths on this site, made by the caller for the
    image parts it may show inline).

    Every other image source is left out: a ``cid:`` with no such part, a remote
    ``http(s):`` image (a tracking pixel, and blocked by the page's CSP anyway; noted in
    ``remote_images``), a relative path that would request a page of this site. An
    image left without a source becomes its alt text, so no broken box is drawn.
    """
    used: set[str] = set()
    remote = False

    def image_source(tag: str, attribute: str, value: str) -> str | None:
        nonlocal remote
        if tag != "img" or attribute != "src":
            return value
        if _CID.match(value):
            key = cid_key(value)
            url = images.get(key, "") if key else ""
            if _SITE_PATH.match(url):
                used.add(key)
                return url
            return None
        if _REMOTE.match(value):
            remote = True
        return None

    # The rewrite is nh3's own attribute filter: the sanitizer still writes every tag and
    # attribute, so no URL given here can open markup (it is escaped like any value).
    clean = _clean(markup, image_source)
    return Shown(_without_sourceless_images(clean), frozenset(used), remote)


class _ImageFinder(HTMLParser):
    """The ``<img>`` tags without ``src`` in sanitizer output, by position."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[tuple[int, int], str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._image(tag, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._image(tag, attrs)

    def _image(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and not values.get("src"):
            self.found.append(
                (self.getpos(), self.get_starttag_text() or "", values.get("alt") or "")
            )


def _without_sourceless_images(clean: str) -> str:
    """Each ``<img>`` without a source replaced by its (escaped) alt text.

    ``clean`` is nh3's serialization (every value quoted and escaped, no comments, no
    raw-text elements), which Python's parser reads token for token as a browser
    does; each tag is cut out at the exact place and length the parser reports."""
    if "<img" not in clean:
        return clean
    finder = _ImageFinder()
    finder.feed(clean)
    finder.close()
    if not finder.found:
        return clean
    # The parser counts lines by "\n" alone (str.splitlines would also split on others).
    line_starts = [0] + [i + 1 for i, ch in enumerate(clean) if ch == "\n"]
    out: list[str] = []
    done = 0
    for (line, column), tag_text, alt in finder.found:
        start = line_starts[line - 1] + column
        if clean[start : start + len(tag_text)] != tag_text:  # never expected: keep the tag
            continue
        out.append(clean[done:start])
        out.append(html_lib.escape(alt, quote=False))
        done = start + len(tag_text)
    out.append(clean[done:])
    return "".join(out)


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
