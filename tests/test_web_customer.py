"""The customer portal: lists, the ticket page, attachments, replies, new tickets."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from mailgate.db.models import HistoryEvent, StoredAttachment, Ticket, TicketLink, TicketMessage
from mailgate.tickets import changes
from mailgate.tickets.actors import Actor
from tests.web_support import (
    PDF,
    Site,
    csrf_from,
    form,
    make_site,
    sign_in_customer,
)

ANN = Actor("ann@example.com", "ann@example.com", "Ann")


def test_ticket_list_filters_by_status_and_type(site: Site) -> None:
    """Open/closed/all and the type filter each show exactly the matching tickets."""
    client = sign_in_customer(site, "carol@acme.test")
    made = form(
        client,
        "/tickets/new",
        "/tickets/new",
        subject="Server rack noise",
        body="Loud.",
        type="Technical",
    )
    assert made.status_code == 303
    with site.store.transaction() as session:
        changes.close(
            session,
            settings=site.settings,
            number=site.numbers["carol"],
            actor=ANN,
            at=site.clock(),
        )

    def shown(query: str) -> set[str]:
        text = client.get(f"/tickets?{query}").text
        return {s for s in ("Printer on fire", "Server rack noise") if s in text}

    assert shown("status=open") == {"Server rack noise"}
    assert shown("status=closed") == {"Printer on fire"}
    assert shown("status=all") == {"Printer on fire", "Server rack noise"}
    assert shown("status=all&type=General") == {"Printer on fire"}
    assert shown("status=all&type=Technical") == {"Server rack noise"}


def test_ticket_page_shows_the_conversation_sanitized_and_never_internal_notes(site: Site) -> None:
    """The ticket page shows sanitized HTML (even from a raw row), files, status, no notes."""
    number = site.numbers["carol"]
    with site.store.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        session.add(
            TicketMessage(
                ticket_id=ticket.id,
                direction="inbound",
                author_email="carol@acme.test",
                body_text="raw",
                body_html='<p>Look <script>alert(1)</script><img src="x" onerror="alert(2)">'
                '<a href="javascript:alert(3)">here</a></p>',
                created_at=site.clock(),
            )
        )
    page = sign_in_customer(site, "carol@acme.test").get(f"/tickets/{number}")
    assert page.status_code == 200
    assert "<b>room 4</b>" in page.text
    assert "<script>alert" not in page.text and "onerror" not in page.text
    assert "javascript:" not in page.text and "Look" in page.text
    assert site.note_text not in page.text and "internal note" not in page.text
    assert f"/tickets/{number}/attachments/{site.attachment_id}" in page.text
    assert "report ü.pdf" in page.text and ">New<" in page.text


def test_attachment_download_is_an_attachment_with_its_stored_type(site: Site) -> None:
    """The file comes as a download: RFC 6266 filename*, the stored type, nosniff, sandbox."""
    client = sign_in_customer(site, "carol@acme.test")
    response = client.get(f"/tickets/{site.numbers['carol']}/attachments/{site.attachment_id}")
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"report u.pdf\"; filename*=UTF-8''report%20%C3%BC.pdf"
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]


def test_html_attachment_and_omitted_attachment(site: Site) -> None:
    """An HTML file is still only a download; one too large to keep is a clear 404."""
    number = site.ingest(
        __import__("tests.mail", fromlist=["build"]).build(
            sender="carol@acme.test",
            subject="Two files",
            attachments=[("page.html", "text/html", b"<script>alert(1)</script>")],
        )
    )
    with site.store.transaction() as session:
        html_file = session.scalars(
            select(StoredAttachment).where(StoredAttachment.filename == "page.html")
        ).one()
        big = StoredAttachment(
            ticket_message_id=html_file.ticket_message_id,
            filename="huge.iso",
            content_type="application/octet-stream",
            size=10**9,
            sha256="0" * 64,
            content=None,
            omitted="over limits.max_attachment_bytes",
        )
        session.add(big)
        session.flush()
        html_id, big_id = html_file.id, big.id
    client = sign_in_customer(site, "carol@acme.test")
    html = client.get(f"/tickets/{number}/attachments/{html_id}")
    assert html.headers["content-type"] == "text/html"
    assert html.headers["content-disposition"].startswith("attachment;")
    gone = client.get(f"/tickets/{number}/attachments/{big_id}")
    assert gone.status_code == 404 and "too large" in gone.text
    elsewhere = client.get(f"/tickets/{site.numbers['carol']}/attachments/{html_id}")
    assert elsewhere.status_code == 404  # an attachment is only found under its own ticket


def test_customer_reply_is_an_inbound_portal_message_that_reopens_a_waiting_ticket(
    site: Site,
) -> None:
    """A portal reply is an inbound portal message; Waiting → Open; the assignee is told."""
    number = site.numbers["carol"]
    with site.store.transaction() as session:
        changes.assign(
            session,
            settings=site.settings,
            number=number,
            actor=ANN,
            assignee="bob@example.com",
            at=site.clock(),
        )
        changes.change_status(
            session,
            settings=site.settings,
            number=number,
            actor=ANN,
            status="Waiting",
            at=site.clock(),
        )
    client = sign_in_customer(site, "carol@acme.test")
    sent = form(client, f"/tickets/{number}/reply", f"/tickets/{number}", body="Still burning.\r\n")
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/tickets/{number}?done=reply#latest"
    with site.store.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None and ticket.status == "Open"
        message = session.scalars(select(TicketMessage).order_by(TicketMessage.id.desc())).first()
        assert message is not None
        assert (message.direction, message.thread_method, message.author_email) == (
            "inbound",
            "portal",
            "carol@acme.test",
        )
        assert message.body_text == "Still burning."
        actions = [
            e.action
            for e in session.scalars(
                select(HistoryEvent).where(HistoryEvent.ticket_id == ticket.id)
            )
        ]
    assert actions[-2:] == ["status", "customer_reply"]
    assert [(n.recipient, n.ticket_id) for n in site.notices("customer_replied")] == [
        ("bob@example.com", ticket.id)
    ]
    assert "Still burning." in client.get(f"/tickets/{number}").text


def test_closed_ticket_refuses_replies_and_offers_a_new_ticket(site: Site) -> None:
    """A closed ticket has no reply form, refuses replies (409) and offers a new ticket."""
    number = site.numbers["carol"]
    client = sign_in_customer(site, "carol@acme.test")
    token = csrf_from(client, f"/tickets/{number}")
    with site.store.transaction() as session:
        changes.close(session, settings=site.settings, number=number, actor=ANN, at=site.clock())
    page = client.get(f"/tickets/{number}")
    assert "please open a new ticket" in page.text.lower()
    assert f'href="/tickets/new?follow_up={number}"' in page.text
    assert f'action="/tickets/{number}/reply"' not in page.text
    count = len(site.notices())
    refused = client.post(f"/tickets/{number}/reply", data={"csrf": token, "body": "hello?"})
    assert refused.status_code == 409
    assert "Open a new ticket" in refused.text and f"follow_up={number}" in refused.text
    with site.store.transaction() as session:
        assert (
            session.scalars(
                select(TicketMessage).where(TicketMessage.body_text == "hello?")
            ).first()
            is None
        )
    assert len(site.notices()) == count


def test_new_ticket_form_offers_the_types_and_creates_a_linked_ticket(site: Site) -> None:
    """The form offers the types; a new ticket has its message, history, ack and link."""
    client = sign_in_customer(site, "carol@acme.test")
    page = client.get(f"/tickets/new?follow_up={site.numbers['carol']}")
    assert '<option value="General"' in page.text and '<option value="Technical"' in page.text
    made = form(
        client,
        "/tickets/new",
        "/tickets/new",
        subject="Printer again",
        body="It is back.",
        type="Technical",
        follow_up=str(site.numbers["carol"]),
    )
    assert made.status_code == 303
    number = int(made.headers["location"].split("?")[0].rsplit("/", 1)[1])
    with site.store.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None
        assert (ticket.type, ticket.status, ticket.requester) == (
            "Technical",
            "New",
            "carol@acme.test",
        )
        assert ticket.customer_id is not None
        [message] = session.scalars(
            select(TicketMessage).where(TicketMessage.ticket_id == ticket.id)
        )
        assert (message.direction, message.thread_method) == ("inbound", "portal")
        events = session.scalars(select(HistoryEvent).where(HistoryEvent.ticket_id == ticket.id))
        assert [(e.action, e.detail) for e in events] == [
            ("created", {"via": "portal"}),
            ("linked", {"kind": "follows"}),
            ("unassigned", {"reason": "team support assigns nobody automatically"}),
        ]
        kinds = {link.kind for link in session.scalars(select(TicketLink))}
    assert kinds == {"follows", "followed by"}
    assert [n.ticket_id for n in site.notices("acknowledgement")] == [ticket.id]


def test_new_ticket_cannot_follow_up_someone_elses_ticket(site: Site) -> None:
    """A follow_up naming another account's ticket is ignored: no link reveals it."""
    client = sign_in_customer(site, "eve@globex.test")
    made = form(
        client,
        "/tickets/new",
        "/tickets/new",
        subject="x",
        body="y",
        type="General",
        follow_up=str(site.numbers["carol"]),
    )
    assert made.status_code == 303
    with site.store.transaction() as session:
        assert session.scalars(select(TicketLink)).first() is None


def test_new_ticket_validation_and_intake_policy(tmp_path: Path) -> None:
    """An unknown type is a 400 keeping the form; intake.policy = admins refuses non-admins."""
    import dataclasses

    site = make_site(f"sqlite:///{tmp_path / 'm.db'}")
    client = sign_in_customer(site, "carol@acme.test")
    bad = form(client, "/tickets/new", "/tickets/new", subject="Keep me", body="b", type="Billing")
    assert bad.status_code == 400 and "unknown type" in bad.text and 'value="Keep me"' in bad.text
    site.settings = dataclasses.replace(
        site.settings, intake=dataclasses.replace(site.settings.intake, policy="admins")
    )
    from mailgate.web.app import create_app

    site.app = create_app(site.settings, site.store, now=site.clock)
    client = sign_in_customer(site, "carol@acme.test")
    refused = form(client, "/tickets/new", "/tickets/new", subject="s", body="b", type="General")
    assert refused.status_code == 403 and "administrators" in refused.text
    admin = sign_in_customer(site, "boss@acme.test")
    assert (
        form(
            admin, "/tickets/new", "/tickets/new", subject="s", body="b", type="General"
        ).status_code
        == 303
    )
    assert [n.recipient for n in site.notices("acknowledgement")] == ["boss@acme.test"]
    site.store.engine.dispose()
