"""Files attached in the portal (customers' new tickets and replies, agents' replies and
notes): stored on their message with safe names, held to mail's limits, refused with the
typed words kept, and notes' files never shown to customers."""

from __future__ import annotations

import hashlib
import html

import pytest
from sqlalchemy import select

from mailgate.db.models import StoredAttachment
from tests.upload_support import (
    LIMIT,
    ODD_NAME,
    SAFE_NAME,
    TEXT,
    attachment_ids,
    counts,
    files_of,
    last_message,
    post_files,
    small_site,
)
from tests.web_support import PDF, Site, csrf_from, sign_in_agent, sign_in_customer

site_fixture = pytest.fixture(name="site")(small_site)


def test_a_customer_opens_a_ticket_with_two_files(site: Site) -> None:
    """The new-ticket form takes several files; they are stored on the first message with
    safe names, listed on the ticket page, and download as sent. The form token still
    guards the multipart post."""
    client = sign_in_customer(site, "carol@acme.test")
    page = client.get("/tickets/new").text
    assert 'enctype="multipart/form-data"' in page
    assert '<input type="file" id="files" name="files" multiple' in page
    assert '<label for="files">' in page
    fields = {"subject": "Printer log", "body": "Both files attached.", "type": "General"}
    before = counts(site)
    forged = post_files(client, "/tickets/new", {**fields, "csrf": "forged"}, [("a.txt", TEXT, "")])
    assert forged.status_code == 403 and counts(site) == before
    token = csrf_from(client, "/tickets/new")
    files = [(ODD_NAME, TEXT, "text/plain"), ("scan:1?.pdf", PDF, "application/pdf")]
    made = post_files(client, "/tickets/new", {**fields, "csrf": token}, files)
    assert made.status_code == 303, made.text
    number = int(made.headers["location"].split("/")[2].split("?")[0])
    first = last_message(site, number)
    assert (first.direction, first.thread_method, first.body_text) == (
        "inbound",
        "portal",
        "Both files attached.",
    )
    assert files_of(site, first.id) == [
        (SAFE_NAME, "text/plain", len(TEXT), TEXT),
        ("scan_1_.pdf", "application/pdf", len(PDF), PDF),
    ]
    shown = client.get(f"/tickets/{number}").text
    assert SAFE_NAME in shown and "scan_1_.pdf" in shown
    ids = attachment_ids(site, first.id)
    download = client.get(f"/tickets/{number}/attachments/{ids[1]}")
    assert download.status_code == 200 and download.content == PDF
    with site.store.transaction() as session:
        sha = session.scalar(select(StoredAttachment.sha256).where(StoredAttachment.id == ids[0]))
    assert sha == hashlib.sha256(TEXT).hexdigest()


def test_a_customer_replies_with_two_files_and_an_empty_input_is_no_file(site: Site) -> None:
    """The reply's files hang off the reply (not the first message); a reply with the
    file input left empty (a nameless, empty part) is a reply without files."""
    client = sign_in_customer(site, "carol@acme.test")
    number = site.numbers["carol"]
    page = client.get(f"/tickets/{number}").text
    assert f'action="/tickets/{number}/reply" enctype="multipart/form-data"' in page
    token = csrf_from(client, f"/tickets/{number}")
    files = [
        ("photo.png", b"\x89PNG\r\n\x1a\nfake", "image/png"),
        ("notes.txt", TEXT, "text/plain"),
    ]
    sent = post_files(
        client, f"/tickets/{number}/reply", {"body": "Two files.", "csrf": token}, files
    )
    assert sent.status_code == 303, sent.text
    reply = last_message(site, number)
    assert reply.body_text == "Two files." and reply.direction == "inbound"
    assert [(n, k, s) for n, k, s, _ in files_of(site, reply.id)] == [
        ("photo.png", "image/png", 12),
        ("notes.txt", "text/plain", len(TEXT)),
    ]
    plain = post_files(
        client,
        f"/tickets/{number}/reply",
        {"body": "No file.", "csrf": token},
        [("", b"", "application/octet-stream")],
    )
    assert plain.status_code == 303, plain.text
    assert files_of(site, last_message(site, number).id) == []


def test_an_oversize_file_is_refused_and_the_typed_words_are_kept(site: Site) -> None:
    """A file over limits.max_attachment_bytes: 400, the form again with the subject and
    text typed, the file named with why; nothing stored, not even the good file."""
    client = sign_in_customer(site, "carol@acme.test")
    token = csrf_from(client, "/tickets/new")
    fields = {"subject": "Big <log>", "body": 'Line one\nand "two".', "type": "Technical"}
    before = counts(site)
    files = [("small.txt", TEXT, "text/plain"), ("huge.log", b"x" * (LIMIT + 1), "text/plain")]
    refused = post_files(client, "/tickets/new", {**fields, "csrf": token}, files)
    assert refused.status_code == 400
    assert counts(site) == before
    page = html.unescape(refused.text)
    assert 'value="Big <log>"' in page
    assert '>Line one\nand "two".</textarea>' in page
    assert '<option value="Technical" selected>' in refused.text
    assert "“huge.log” was not sent: it is larger than 2.9 KB" in page
    assert "please choose them again" in page
    number = site.numbers["carol"]
    token = csrf_from(client, f"/tickets/{number}")
    files = [("huge.log", b"x" * (LIMIT + 1), "text/plain")]
    refused = post_files(
        client, f"/tickets/{number}/reply", {"body": "See log", "csrf": token}, files
    )
    assert refused.status_code == 400 and counts(site) == before
    assert ">See log</textarea>" in refused.text
    assert 'aria-invalid="true"' in refused.text and "huge.log" in refused.text


def test_an_empty_file_and_too_much_together_are_refused(site: Site) -> None:
    """An empty file is refused by name; so is the file that takes a message's files
    over smtp.max_message_bytes together."""
    client = sign_in_customer(site, "carol@acme.test")
    number = site.numbers["carol"]
    token = csrf_from(client, f"/tickets/{number}")
    before = counts(site)
    empty = post_files(
        client,
        f"/tickets/{number}/reply",
        {"body": "Empty?", "csrf": token},
        [("blank.txt", b"", "text/plain")],
    )
    assert empty.status_code == 400 and counts(site) == before
    assert "“blank.txt” was not sent: the file is empty." in html.unescape(empty.text)
    assert ">Empty?</textarea>" in empty.text
    three = [(f"part{i}.bin", b"y" * LIMIT, "application/octet-stream") for i in (1, 2, 3)]
    much = post_files(client, f"/tickets/{number}/reply", {"body": "Three", "csrf": token}, three)
    assert much.status_code == 400 and counts(site) == before
    assert "“part3.bin” was not sent: with the files before it" in html.unescape(much.text)


def test_agents_reply_and_note_with_files_and_a_note_file_stays_internal(site: Site) -> None:
    """An agent's reply and note each take two files, stored on that message. The
    reply's files are the customer's to download; the note's are not even listed, and
    their download is 404 to the customer (200 to agents)."""
    agent = sign_in_agent(site)
    carol = sign_in_customer(site, "carol@acme.test")
    number = site.numbers["carol"]
    page = agent.get(f"/tickets/{number}").text
    for form in ("reply", "note"):
        assert f'action="/agent/tickets/{number}/{form}" enctype="multipart/form-data"' in page
        assert f'<label for="{form}-files">' in page
    token = csrf_from(agent, f"/tickets/{number}")
    reply_files = [("steps.txt", TEXT, "text/plain"), ("manual.pdf", PDF, "application/pdf")]
    sent = post_files(
        agent, f"/agent/tickets/{number}/reply", {"body": "Try these.", "csrf": token}, reply_files
    )
    assert sent.status_code == 303, sent.text
    reply = last_message(site, number)
    assert reply.direction == "outbound"
    assert [f[0] for f in files_of(site, reply.id)] == ["steps.txt", "manual.pdf"]
    note_files = [
        ("secret-diagnosis.txt", b"vendor bug 42", "text/plain"),
        ("cost.csv", b"1,2", "text/csv"),
    ]
    noted = post_files(
        agent, f"/agent/tickets/{number}/note", {"body": "Known bug.", "csrf": token}, note_files
    )
    assert noted.status_code == 303, noted.text
    note = last_message(site, number)
    assert note.direction == "note"
    assert [f[0] for f in files_of(site, note.id)] == ["secret-diagnosis.txt", "cost.csv"]
    shown = carol.get(f"/tickets/{number}").text
    assert "manual.pdf" in shown and "secret-diagnosis.txt" not in shown and "cost.csv" not in shown
    for file_id in attachment_ids(site, reply.id):
        assert carol.get(f"/tickets/{number}/attachments/{file_id}").status_code == 200
    for file_id in attachment_ids(site, note.id):
        refused = carol.get(f"/tickets/{number}/attachments/{file_id}")
        assert refused.status_code == 404 and b"vendor bug" not in refused.content
        assert agent.get(f"/tickets/{number}/attachments/{file_id}").status_code == 200


def test_an_agents_refused_file_comes_back_on_its_own_form(site: Site) -> None:
    """A refused file on the note form: the agent page again (400), the note's words in
    the note's box, the refusal next to the note's file input, the reply's box empty."""
    agent = sign_in_agent(site)
    number = site.numbers["carol"]
    token = csrf_from(agent, f"/tickets/{number}")
    before = counts(site)
    files = [("dump.bin", b"z" * (LIMIT + 1), "application/octet-stream")]
    refused = post_files(
        agent, f"/agent/tickets/{number}/note", {"body": "Memory dump", "csrf": token}, files
    )
    assert refused.status_code == 400 and counts(site) == before
    assert 'name="body" rows="3" required>Memory dump</textarea>' in refused.text
    assert (
        'id="note-files-refused"' in refused.text and 'id="reply-files-refused"' not in refused.text
    )
    assert "dump.bin" in refused.text
    empty = [("empty.txt", b"", "text/plain")]
    again = post_files(
        agent,
        f"/agent/tickets/{number}/reply",
        {"body": "Here", "status": "Waiting", "csrf": token},
        empty,
    )
    assert again.status_code == 400 and counts(site) == before
    assert 'id="reply-files-refused"' in again.text and ">Here</textarea>" in again.text
    assert '<option value="Waiting" selected>' in again.text
