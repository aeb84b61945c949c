"""A real browser: a customer signs in by the mailed link, opens a ticket and replies."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate.db.models import Ticket, TicketMessage
from tests.browser import Chromium, find_chromium, listening_socket, serving
from tests.mail import build_related, png
from tests.servers import IN_CI
from tests.web_support import PDF, Site, make_site, sign_in_link

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


@contextmanager
def customer_on(
    binary: str, tmp_path: Path, sock: socket.socket, site: Site, path: str
) -> Iterator[Chromium]:
    """Chromium on ``path`` of ``site`` served on ``sock``, signed in as Carol by her
    mailed link the way a person does it; the browser and the store closed after."""
    base = site.settings.web.base_url
    with serving(site.app, sock):
        browser = Chromium(binary, tmp_path / "profile", tmp_path / "chromium.log")
        try:
            browser.open_page()
            browser.goto(f"{base}{path}")
            browser.submit(
                "document.querySelector('#email').value = 'carol@acme.test';"
                "document.querySelector('form[action=\"/sign-in\"] button').click()"
            )
            browser.goto(base + sign_in_link(site, "carol@acme.test"))
            browser.submit("document.querySelector('#confirm').click()")
            assert browser.run("location.pathname") == path
            yield browser
        finally:
            browser.close()
            site.store.engine.dispose()


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


def test_customer_sees_a_mailed_screenshot_in_place(chromium_binary: str, tmp_path: Path) -> None:
    """Chromium draws a PNG mailed as a ``cid:`` part (multipart/related) in its message,
    under the portal's CSP; the remote image in the same mail stays out, with the note."""
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    site = make_site(f"sqlite:///{tmp_path / 'mailgate.db'}", base_url=base)
    number = site.ingest(
        build_related(
            sender="Carol <carol@acme.test>",
            subject="Screenshot of the error",
            html='<p>The error: <img src="cid:shot@acme.test" alt="screenshot"></p>'
            '<p><img src="http://tracker.example/open.gif" alt="">Carol</p>',
            images=[("shot.png", "image/png", png(40, 30), "shot@acme.test")],
        )
    )
    with customer_on(chromium_binary, tmp_path, sock, site, f"/tickets/{number}") as browser:
        # The load event waits for images: by now the screenshot is drawn or broken.
        assert browser.run("document.querySelector('article img').naturalWidth") == 40
        assert browser.run("document.querySelectorAll('article img').length") == 1
        assert "Remote images in this message were blocked." in browser.text()
        assert browser.run("document.querySelectorAll('script').length") == 0
        browser.screenshot(ARTIFACTS / "ticket-inline-image.png")


def test_customer_attaches_files_to_a_reply_and_a_new_ticket(
    chromium_binary: str, tmp_path: Path
) -> None:
    """Chromium: files chosen in the file input (as the file picker does it, through the
    DevTools protocol) go with a reply, and two with a new ticket; each lands on its
    message and is listed on the page, under the portal's CSP and with no script."""
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    log, photo, invoice = chosen / "printer.log", chosen / "smoke photo.png", chosen / "invoice.pdf"
    log.write_bytes(b"E42 paper jam\n")
    photo.write_bytes(png(20, 10))
    invoice.write_bytes(PDF)
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    site = make_site(f"sqlite:///{tmp_path / 'mailgate.db'}", base_url=base)
    number = site.numbers["carol"]
    with customer_on(chromium_binary, tmp_path, sock, site, f"/tickets/{number}") as browser:
        browser.set_files("#files", [log])
        assert browser.run("document.querySelector('#files').files.length") == 1
        browser.submit(
            "document.querySelector('#body').value = 'The log is attached.';"
            "document.querySelector('#send').click()"
        )
        assert browser.run("location.pathname") == f"/tickets/{number}"
        page = browser.text()
        assert "The log is attached." in page and "printer.log" in page
        browser.goto(f"{base}/tickets/new")
        browser.set_files("#files", [photo, invoice])
        browser.submit(
            "document.querySelector('#subject').value = 'Smoke in room 4';"
            "document.querySelector('#body').value = 'A photo and the invoice.';"
            "document.querySelector('form[action=\"/tickets/new\"] button').click()"
        )
        opened = int(str(browser.run("location.pathname")).rsplit("/", 1)[-1])
        page = browser.text()
        assert "Smoke in room 4" in page and "smoke photo.png" in page
        assert "invoice.pdf" in page
        assert browser.run("document.querySelectorAll('script').length") == 0
        browser.screenshot(ARTIFACTS / "ticket-with-files.png")
    with site.store.transaction() as session:
        reply = session.scalars(
            select(TicketMessage).where(TicketMessage.body_text == "The log is attached.")
        ).one()
        first = session.scalars(
            select(TicketMessage).join(Ticket).where(Ticket.number == opened)
        ).one()
        assert [(a.filename, a.content) for a in reply.attachments] == [
            ("printer.log", b"E42 paper jam\n")
        ]
        assert [(a.filename, a.content) for a in first.attachments] == [
            ("smoke photo.png", png(20, 10)),
            ("invoice.pdf", PDF),
        ]
