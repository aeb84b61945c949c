"""Images in a message's HTML as shown: ``cid:`` parts in place, nothing from elsewhere
(core.html.for_display), and which files the attachment route serves inline (web.downloads)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mailgate.core.html import cid_key, content_id_key, for_display, sanitize
from mailgate.web.downloads import content_disposition, inline_image_type, may_show_inline
from tests.mail import png

SHOT = "/tickets/7/attachments/12"
IMAGES = {"shot.1@acme.test": SHOT}


def test_cid_becomes_the_attachment_url() -> None:
    """``src="cid:X"`` points at the part's URL; the rest of the tag is kept."""
    shown = for_display(
        '<p>See <img src="cid:shot.1@acme.test" alt="the error" width="40"></p>', IMAGES
    )
    assert shown.html == f'<p>See <img src="{SHOT}" alt="the error" width="40"></p>'
    assert shown.inline == {"shot.1@acme.test"} and not shown.remote_images


def test_cid_is_matched_case_insensitively_url_decoded_and_without_brackets() -> None:
    """RFC 2392: the URL is URL-encoded; clients match Content-IDs without case or ``<>``."""
    for src in ("CID:Shot.1@ACME.test", "cid:shot.1%40acme.test", "cid:%3Cshot.1@acme.test%3E"):
        shown = for_display(f'<img src="{src}">', IMAGES)
        assert shown.html == f'<img src="{SHOT}">', src
    assert content_id_key(" <Shot.1@Acme.test> ") == "shot.1@acme.test"
    assert cid_key("Cid:Shot.1%40Acme.test") == "shot.1@acme.test"


def test_a_cid_without_its_part_is_left_out_keeping_the_alt_text() -> None:
    """No part (or one the caller may not show inline, as SVG): the alt text, no box."""
    shown = for_display(
        '<p>a <img src="cid:logo@x" alt="Logo <Acme> & co" width="300" height="90"> b</p>'
        '<p><img src="cid:nothing-said@x"></p>',
        IMAGES,
    )
    assert shown.html == "<p>a Logo &lt;Acme&gt; &amp; co b</p><p></p>"
    assert shown.inline == frozenset() and not shown.remote_images


def test_remote_images_are_left_out_and_noted() -> None:
    """http(s) and scheme-relative images are dropped (the CSP would block them) and noted."""
    for src in ("https://t.example/pixel.gif", "http://t.example/a.png", "//t.example/a.png"):
        shown = for_display(f'<p><img src="{src}" alt="banner">x</p>', IMAGES)
        assert shown.html == "<p>bannerx</p>", src
        assert shown.remote_images
    # A link to another site is no image: nothing was left out.
    shown = for_display('<a href="https://example.com/x">x</a>', IMAGES)
    assert not shown.remote_images and 'href="https://example.com/x"' in shown.html


def test_other_image_sources_are_left_out_quietly() -> None:
    """A relative path would make the page request one of this site's own pages."""
    shown = for_display('<img src="/sign-out" alt="a"><img src="data:image/png;base64,AA">', {})
    assert shown.html == "a" and not shown.remote_images


def test_only_paths_on_this_site_are_put_in() -> None:
    """nh3 checks no value its filter returns: a URL not a plain path here is refused."""
    for url in ("javascript:alert(1)", "//evil.example/x", '/x" onerror="alert(1)', "https://x/"):
        shown = for_display('<img src="cid:a@b" alt="A">', {"a@b": url})
        assert shown.html == "A" and not shown.inline, url


def test_the_rest_is_sanitized_as_before() -> None:
    """Scripts, handlers and foreign schemes go; markup in alt text or titles stays text."""
    shown = for_display(
        '<p title="<img src=x>" onclick="x()">Hi<script>alert(1)</script>'
        '<img src="cid:shot.1@acme.test" alt="&quot;><script>alert(2)</script>">'
        '<a href="javascript:alert(3)">l</a></p>',
        IMAGES,
    )
    assert "<script" not in shown.html and "onclick" not in shown.html
    assert "javascript:" not in shown.html
    assert 'title="&lt;img src=x&gt;"' in shown.html
    assert f'src="{SHOT}"' in shown.html and "&lt;script&gt;" in shown.html


def test_what_is_stored_keeps_cid_and_remote_sources() -> None:
    """``sanitize`` (the stored form) keeps them: each showing decides what they become."""
    stored = sanitize('<img src="cid:a@b"><img src="https://t.example/p.gif">')
    assert stored == '<img src="cid:a@b"><img src="https://t.example/p.gif">'


_PIECES = st.sampled_from(
    [
        '<img src="cid:shot.1@acme.test">',
        '<img src="cid:other@x" alt="o">',
        '<img alt="<img src=x>" src="https://a/b">',
        "<img src=/x>",
        '<p title="<img src=/y>">',
        "</p>",
        "<b>",
        "text <img",
        "&lt;img src=/z&gt;",
        "\n",
        "<table><tr><td>",
        "<script><img src=/s></script>",
    ]
)


@given(st.lists(_PIECES, max_size=12))
def test_every_image_shown_is_one_of_the_message_parts(pieces: list[str]) -> None:
    """Whatever the markup, each ``<img>`` left points at an image part, nothing else."""
    shown = for_display("".join(pieces), IMAGES)
    for tag in re.findall(r"<img\b[^>]*>", shown.html):
        assert re.fullmatch(rf'<img src="{SHOT}"( alt="[^"]*")?>', tag), tag


def test_inline_images_served_are_raster_images_whose_bytes_agree() -> None:
    """PNG, JPEG, GIF and WebP; never SVG; a PNG that is not one is a download."""
    assert inline_image_type("image/png", png()) == "image/png"
    assert inline_image_type("IMAGE/PNG; name=x.png", png()) == "image/png"
    assert inline_image_type("image/jpg", b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert inline_image_type("image/gif", b"GIF89a...") == "image/gif"
    assert inline_image_type("image/webp", b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert inline_image_type("image/webp", b"RIFF\x10\x00\x00\x00WAVEfmt ") is None
    assert inline_image_type("image/png", b"<html><script>alert(1)</script>") is None
    assert inline_image_type("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    assert inline_image_type("text/html", png()) is None
    assert may_show_inline("image/png") and not may_show_inline("image/svg+xml")


def test_inline_disposition_keeps_the_safe_name() -> None:
    assert content_disposition("shot é.png", inline=True) == (
        "inline; filename=\"shot e.png\"; filename*=UTF-8''shot%20%C3%A9.png"
    )
