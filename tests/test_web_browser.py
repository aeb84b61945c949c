"""A real browser: a customer signs in by the mailed link, opens a ticket and replies."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate.db.models import TicketMessage
from tests.browser import Chromium, find_chromium, listening_socket, serving
from tests.servers import IN_CI
from tests.web_support import make_site, sign_in_link

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REPLY = "The fire is out, but the printer smells of smoke."


@pytest.fixture
def chromium_binary() -> str:
    binary = find_chromium()
    if binary is None:
        if IN_CI:
            pytest.fail("chromium is not installed; CI must provide it (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium) to run the browser test")
    return binary


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_customer_signs_in_opens_a_ticket_and_replies(chromium_binary: str, tmp_path: Path) -> None:
    """Chromium: sign in by link, open the ticket, reply; the page shows it; screenshot kept."""
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    site = make_site(f"sqlite:///{tmp_path / 'mailgate.db'}", base_url=base)
    number = site.numbers["carol"]
    browser = None
    try:
        with serving(site.app, sock):
            browser = Chromium(chromium_binary, tmp_path / "profile", tmp_path / "chromium.log")
            browser.open_page()
            browser.goto(f"{base}/tickets/{number}")
            assert "Sign in" in browser.text()  # signed out: sent to sign in first
            browser.submit(
                "document.querySelector('#email').value = 'carol@acme.test';"
                "document.querySelector('form[action=\"/sign-in\"] button').click()"
            )
            assert "Check your mail" in browser.text()
            browser.goto(base + sign_in_link(site, "carol@acme.test"))
            assert "Sign in as carol@acme.test" in browser.text()
            browser.submit("document.querySelector('#confirm').click()")
            page = browser.text()
            assert "Printer on fire" in page and "room 4" in page  # back on the ticket asked for
            browser.goto(f"{base}/tickets")
            browser.submit(f"document.querySelector('a[href=\"/tickets/{number}\"]').click()")
            browser.submit(
                f"document.querySelector('#body').value = {REPLY!r};"
                "document.querySelector('#send').click()"
            )
            assert browser.run("location.pathname") == f"/tickets/{number}"
            page = browser.text()
            assert REPLY in page and "The printer in room 4 is on fire." in page
            assert "report ü.pdf" in page and "Status\nNew" in page.replace("\t", "\n")
            assert site.note_text not in page
            assert browser.run("document.querySelectorAll('script').length") == 0
            # The stylesheet loaded under the CSP (the body has the portal's background).
            background = browser.run("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(244, 246, 249)"
            shot = browser.screenshot(ARTIFACTS / "ticket-page.png")
    finally:
        if browser is not None:
            browser.close()
        site.store.engine.dispose()
    width, height = _png_size(shot)
    assert width == 1200 and height >= 600
    assert len(shot) > 10_000  # a rendered page, not a blank image
    with site.store.transaction() as session:
        message = session.scalars(
            select(TicketMessage).where(TicketMessage.body_text == REPLY)
        ).one()
        assert (message.direction, message.thread_method) == ("inbound", "portal")
