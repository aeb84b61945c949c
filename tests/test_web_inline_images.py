"""Inline images through the real app: a screenshot mailed as a ``cid:`` part shows in
place on the customer's and the agent's ticket page, served by the attachment route
with its access checks; SVG stays a download; remote images stay out, with a note."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailgate.db.models import StoredAttachment
from mailgate.web.pages import CSP
from tests.mail import build, build_related, png
from tests.web_support import Site, make_site, sign_in_agent, sign_in_customer

SHOT = png(12, 9)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = (
    "<p>The error:</p>"
    '<p><img src="cid:Shot.1%40Acme.test" alt="screenshot of the error" width="12"></p>'
    '<p><img src="cid:diagram@acme.test" alt="wiring diagram"></p>'
    '<p><img src="https://tracker.example/open.gif" alt="">Thanks, Carol</p>'
)
NOTE = "Remote images in this message were blocked."
# The portal's policy, written out: showing images in place needed no loosening.
STRICT_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    s.numbers["shot"] = s.ingest(
        build_related(
            sender="Carol <carol@acme.test>",
            subject="Screenshot of the error",
            message_id="<shot-mail@acme.test>",
            html=HTML,
            images=[
                ("shot.png", "image/png", SHOT, "shot.1@acme.test"),
                ("diagram.svg", "image/svg+xml", SVG, "diagram@acme.test"),
            ],
        )
    )
    yield s
    s.store.engine.dispose()


def _attachment_id(site: Site, filename: str) -> int:
    with site.store.transaction() as session:
        found = session.scalars(
            select(StoredAttachment.id).where(StoredAttachment.filename == filename)
        ).one()
    return int(found)


def _message(page: str, words: str) -> str:
    """The ``<article>`` of the message saying ``words``."""
    found = [a for a in re.findall(r"<article.*?</article>", page, re.S) if words in a]
    assert len(found) == 1, f"{words!r} in {len(found)} messages"
    return found[0]


def test_customer_sees_the_screenshot_in_place(site: Site) -> None:
    """The cid (other case, URL-encoded) points at that message's attachment; the SVG and
    the remote image become their alt text; the note says images were blocked."""
    number, shot = site.numbers["shot"], _attachment_id(site, "shot.png")
    page = sign_in_customer(site, "carol@acme.test").get(f"/tickets/{number}")
    assert page.status_code == 200
    article = _message(page.text, "The error:")
    assert f'<img src="/tickets/{number}/attachments/{shot}" alt="screenshot of the error"' in (
        article
    )
    assert len(re.findall(r"<img\b", article)) == 1  # no SVG, no remote image drawn
    assert "wiring diagram" in article and "cid:" not in article
    assert "tracker.example" not in article
    assert NOTE in article
    # Both files stay listed; the one drawn above is marked so.
    assert re.search(
        rf"attachments/{shot}\">shot.png</a>\s*<span[^>]*>\([^)]*shown in the", article
    )
    svg = _attachment_id(site, "diagram.svg")
    assert re.search(rf"attachments/{svg}\">diagram.svg</a>\s*<span[^>]*>\([^),]*\)", article)
    assert page.headers["content-security-policy"] == CSP == STRICT_CSP


def test_the_image_is_served_inline_as_png_and_svg_stays_a_download(site: Site) -> None:
    """The image route: ``inline``, its real type, nosniff, sandbox; SVG as before."""
    number = site.numbers["shot"]
    client = sign_in_customer(site, "carol@acme.test")
    image = client.get(f"/tickets/{number}/attachments/{_attachment_id(site, 'shot.png')}")
    assert image.status_code == 200 and image.content == SHOT
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith('inline; filename="shot.png"')
    assert image.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in image.headers["content-security-policy"]
    svg = client.get(f"/tickets/{number}/attachments/{_attachment_id(site, 'diagram.svg')}")
    assert svg.status_code == 200 and svg.content == SVG
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["content-disposition"].startswith('attachment; filename="diagram.svg"')


def test_other_customers_and_strangers_cannot_fetch_the_image(site: Site) -> None:
    """Another account, a colleague who is no admin, a ticket of one's own: 404; signed out:
    sent to sign in."""
    number, shot = site.numbers["shot"], _attachment_id(site, "shot.png")
    url = f"/tickets/{number}/attachments/{shot}"
    for email in ("eve@globex.test", "dave@acme.test"):
        client = sign_in_customer(site, email)
        assert client.get(url).status_code == 404, email
    dave = sign_in_customer(site, "dave@acme.test")
    assert dave.get(f"/tickets/{site.numbers['dave']}/attachments/{shot}").status_code == 404
    signed_out = site.client().get(url)
    assert signed_out.status_code in (303, 401) and signed_out.content != SHOT


def test_agent_page_shows_it_too(site: Site) -> None:
    """The agent's ticket page draws the same image from the same route."""
    number, shot = site.numbers["shot"], _attachment_id(site, "shot.png")
    agent = sign_in_agent(site)
    page = agent.get(f"/tickets/{number}")
    assert page.status_code == 200 and "Close ticket" in page.text  # the agent's view
    article = _message(page.text, "The error:")
    assert f'<img src="/tickets/{number}/attachments/{shot}"' in article and NOTE in article
    image = agent.get(f"/tickets/{number}/attachments/{shot}")
    assert image.headers["content-type"] == "image/png" and image.content == SHOT
    assert page.headers["content-security-policy"] == CSP == STRICT_CSP


def test_a_cid_of_another_message_or_a_plain_image_attachment(site: Site) -> None:
    """A reply pointing at the first mail's part does not get it (each message draws its
    own parts); an image attached without a Content-ID is a download, not inline."""
    number, shot = site.numbers["shot"], _attachment_id(site, "shot.png")
    site.ingest(
        build(
            sender="carol@acme.test",
            subject="Re: Screenshot of the error",
            in_reply_to="<shot-mail@acme.test>",
            html='<p>Again: <img src="cid:shot.1@acme.test" alt="same shot"></p>',
            attachments=[("photo.png", "image/png", SHOT)],
        )
    )
    client = sign_in_customer(site, "carol@acme.test")
    page = client.get(f"/tickets/{number}").text
    reply = _message(page, "Again:")
    assert "<img" not in reply and "same shot" in reply and NOTE not in reply
    assert f"attachments/{shot}" not in reply
    photo = client.get(f"/tickets/{number}/attachments/{_attachment_id(site, 'photo.png')}")
    assert photo.headers["content-disposition"].startswith("attachment;")
    assert photo.headers["content-type"] == "image/png"


def test_plain_messages_carry_no_note(site: Site) -> None:
    """Without remote images (Carol's first ticket), nothing is said."""
    page = sign_in_customer(site, "carol@acme.test").get(f"/tickets/{site.numbers['carol']}")
    assert "<b>room 4</b>" in page.text and NOTE not in page.text
