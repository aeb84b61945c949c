"""Files attached in the portal (customers' new tickets and replies, agents' replies and
notes) and in the API: stored on their message with safe names, held to mail's limits,
refused with the typed words kept, and notes' files never shown to customers."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import io
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.datastructures import Headers, UploadFile
from starlette.testclient import TestClient

from mailgate.core.attachments import (
    EMPTY,
    TOO_LARGE,
    TOO_MANY,
    TOO_MUCH,
    Attachment,
    FileRefused,
)
from mailgate.core.settings import Settings
from mailgate.db.models import StoredAttachment, Ticket, TicketMessage
from mailgate.tickets import messages, opening, suppliers
from mailgate.tickets.actors import Actor
from mailgate.web import api_tokens, uploads
from mailgate.web.api_models import AttachmentIn
from tests.mail import build
from tests.web_support import PDF, Site, csrf_from, make_site, sign_in_agent, sign_in_customer

LIMIT = 3000  # limits.max_attachment_bytes here
TOTAL = 8000  # smtp.max_message_bytes here: the seed mails fit
ANN = Actor("ann@example.com", "ann@example.com", "Ann")
# A name as a hostile or careless client sends it: folders, a bidi override.
ODD_NAME = "../../etc/re\u202eport.txt"
SAFE_NAME = "report.txt"  # what mail's sanitize_filename makes of it
TEXT = b"The printer log, line 1.\n"


def _small_limits(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        limits=dataclasses.replace(settings.limits, max_attachment_bytes=LIMIT, max_parts=20),
        smtp=dataclasses.replace(settings.smtp, max_message_bytes=TOTAL),
    )


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url, adjust=_small_limits)
    yield s
    s.store.engine.dispose()


def post_files(
    client: TestClient,
    path: str,
    fields: dict[str, str],
    files: list[tuple[str, bytes, str]],
) -> Any:
    """Post ``fields`` and ``files`` as a browser does: multipart/form-data, the files
    in the ``files`` input in order, each part's name as typed (UTF-8), and, when the
    input is left empty, one nameless empty part."""
    boundary = "----mailgateUploadTest7MA4YWxkTrZu0gW"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for filename, data, kind in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return client.post(
        path, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )


def _files_of(site: Site, message_id: int) -> list[tuple[str, str, int, bytes | None]]:
    with site.store.transaction() as session:
        rows = session.scalars(
            select(StoredAttachment)
            .where(StoredAttachment.ticket_message_id == message_id)
            .order_by(StoredAttachment.id)
        )
        return [(a.filename, a.content_type, a.size, a.content) for a in rows]


def _last_message(site: Site, number: int) -> TicketMessage:
    with site.store.transaction() as session:
        found = session.scalars(
            select(TicketMessage)
            .join(Ticket)
            .where(Ticket.number == number)
            .order_by(TicketMessage.id.desc())
        ).first()
        assert found is not None
        session.expunge(found)
        return found


def _counts(site: Site) -> tuple[int | None, ...]:
    with site.store.transaction() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Ticket, TicketMessage, StoredAttachment)
        )


def _attachment_ids(site: Site, message_id: int) -> list[int]:
    with site.store.transaction() as session:
        return list(
            session.scalars(
                select(StoredAttachment.id)
                .where(StoredAttachment.ticket_message_id == message_id)
                .order_by(StoredAttachment.id)
            )
        )


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
    before = _counts(site)
    forged = post_files(client, "/tickets/new", {**fields, "csrf": "forged"}, [("a.txt", TEXT, "")])
    assert forged.status_code == 403 and _counts(site) == before
    token = csrf_from(client, "/tickets/new")
    files = [(ODD_NAME, TEXT, "text/plain"), ("scan:1?.pdf", PDF, "application/pdf")]
    made = post_files(client, "/tickets/new", {**fields, "csrf": token}, files)
    assert made.status_code == 303, made.text
    number = int(made.headers["location"].split("/")[2].split("?")[0])
    first = _last_message(site, number)
    assert (first.direction, first.thread_method, first.body_text) == (
        "inbound",
        "portal",
        "Both files attached.",
    )
    assert _files_of(site, first.id) == [
        (SAFE_NAME, "text/plain", len(TEXT), TEXT),
        ("scan_1_.pdf", "application/pdf", len(PDF), PDF),
    ]
    shown = client.get(f"/tickets/{number}").text
    assert SAFE_NAME in shown and "scan_1_.pdf" in shown
    ids = _attachment_ids(site, first.id)
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
    reply = _last_message(site, number)
    assert reply.body_text == "Two files." and reply.direction == "inbound"
    assert [(n, k, s) for n, k, s, _ in _files_of(site, reply.id)] == [
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
    assert _files_of(site, _last_message(site, number).id) == []


def test_an_oversize_file_is_refused_and_the_typed_words_are_kept(site: Site) -> None:
    """A file over limits.max_attachment_bytes: 400, the form again with the subject and
    text typed, the file named with why; nothing stored, not even the good file."""
    client = sign_in_customer(site, "carol@acme.test")
    token = csrf_from(client, "/tickets/new")
    fields = {"subject": "Big <log>", "body": 'Line one\nand "two".', "type": "Technical"}
    before = _counts(site)
    files = [("small.txt", TEXT, "text/plain"), ("huge.log", b"x" * (LIMIT + 1), "text/plain")]
    refused = post_files(client, "/tickets/new", {**fields, "csrf": token}, files)
    assert refused.status_code == 400
    assert _counts(site) == before
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
    assert refused.status_code == 400 and _counts(site) == before
    assert ">See log</textarea>" in refused.text
    assert 'aria-invalid="true"' in refused.text and "huge.log" in refused.text


def test_an_empty_file_and_too_much_together_are_refused(site: Site) -> None:
    """An empty file is refused by name; so is the file that takes a message's files
    over smtp.max_message_bytes together."""
    client = sign_in_customer(site, "carol@acme.test")
    number = site.numbers["carol"]
    token = csrf_from(client, f"/tickets/{number}")
    before = _counts(site)
    empty = post_files(
        client,
        f"/tickets/{number}/reply",
        {"body": "Empty?", "csrf": token},
        [("blank.txt", b"", "text/plain")],
    )
    assert empty.status_code == 400 and _counts(site) == before
    assert "“blank.txt” was not sent: the file is empty." in html.unescape(empty.text)
    assert ">Empty?</textarea>" in empty.text
    three = [(f"part{i}.bin", b"y" * LIMIT, "application/octet-stream") for i in (1, 2, 3)]
    much = post_files(client, f"/tickets/{number}/reply", {"body": "Three", "csrf": token}, three)
    assert much.status_code == 400 and _counts(site) == before
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
    reply = _last_message(site, number)
    assert reply.direction == "outbound"
    assert [f[0] for f in _files_of(site, reply.id)] == ["steps.txt", "manual.pdf"]
    note_files = [
        ("secret-diagnosis.txt", b"vendor bug 42", "text/plain"),
        ("cost.csv", b"1,2", "text/csv"),
    ]
    noted = post_files(
        agent, f"/agent/tickets/{number}/note", {"body": "Known bug.", "csrf": token}, note_files
    )
    assert noted.status_code == 303, noted.text
    note = _last_message(site, number)
    assert note.direction == "note"
    assert [f[0] for f in _files_of(site, note.id)] == ["secret-diagnosis.txt", "cost.csv"]
    shown = carol.get(f"/tickets/{number}").text
    assert "manual.pdf" in shown and "secret-diagnosis.txt" not in shown and "cost.csv" not in shown
    for file_id in _attachment_ids(site, reply.id):
        assert carol.get(f"/tickets/{number}/attachments/{file_id}").status_code == 200
    for file_id in _attachment_ids(site, note.id):
        refused = carol.get(f"/tickets/{number}/attachments/{file_id}")
        assert refused.status_code == 404 and b"vendor bug" not in refused.content
        assert agent.get(f"/tickets/{number}/attachments/{file_id}").status_code == 200


def test_an_agents_refused_file_comes_back_on_its_own_form(site: Site) -> None:
    """A refused file on the note form: the agent page again (400), the note's words in
    the note's box, the refusal next to the note's file input, the reply's box empty."""
    agent = sign_in_agent(site)
    number = site.numbers["carol"]
    token = csrf_from(agent, f"/tickets/{number}")
    before = _counts(site)
    files = [("dump.bin", b"z" * (LIMIT + 1), "application/octet-stream")]
    refused = post_files(
        agent, f"/agent/tickets/{number}/note", {"body": "Memory dump", "csrf": token}, files
    )
    assert refused.status_code == 400 and _counts(site) == before
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
    assert again.status_code == 400 and _counts(site) == before
    assert 'id="reply-files-refused"' in again.text and ">Here</textarea>" in again.text
    assert '<option value="Waiting" selected>' in again.text


def _bearer(site: Site) -> dict[str, str]:
    with site.store.transaction() as session:
        token = api_tokens.add(session, "crm", site.clock())
    return {"Authorization": f"Bearer {token}"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_the_api_takes_files_as_base64_and_lists_what_it_stored(site: Site) -> None:
    """POST /api/tickets and /replies take ``attachments`` as Zammad's API does and
    answer with the stored files; GET shows them on their message."""
    client, bearer = site.client(), _bearer(site)
    files = [
        {"filename": ODD_NAME, "content_type": "text/plain", "data": _b64(TEXT)},
        {"filename": "scan.pdf", "content_type": "application/pdf; name=x", "data": _b64(PDF)},
    ]
    body = {
        "requester": "zoe@acme.test",
        "subject": "Via CRM",
        "body": "Attached.",
        "attachments": files,
    }
    made = client.post("/api/tickets", json=body, headers=bearer)
    assert made.status_code == 201, made.text
    stored = made.json()["attachments"]
    assert [(a["filename"], a["content_type"], a["size"]) for a in stored] == [
        (SAFE_NAME, "text/plain", len(TEXT)),
        ("scan.pdf", "application/pdf", len(PDF)),
    ]
    assert stored[0]["sha256"] == hashlib.sha256(TEXT).hexdigest()
    number = made.json()["number"]
    shown = client.get(f"/api/tickets/{number}", headers=bearer).json()
    assert shown["messages"][0]["attachments"] == stored
    reply = {
        "body": "Here is the fix.",
        "attachments": [{"filename": "fix.txt", "data": _b64(b"ok")}],
    }
    answered = client.post(f"/api/tickets/{number}/replies", json=reply, headers=bearer)
    assert answered.status_code == 201, answered.text
    out = answered.json()
    assert [(a["filename"], a["content_type"]) for a in out["attachments"]] == [
        ("fix.txt", "application/octet-stream")
    ]
    assert _files_of(site, out["message_id"]) == [("fix.txt", "application/octet-stream", 2, b"ok")]


def test_the_api_refuses_files_over_the_limits_naming_them(site: Site) -> None:
    """413 for a file over a limit, 422 for an empty or broken one; the answer names the
    file, and nothing is stored."""
    client, bearer = site.client(), _bearer(site)
    number = site.numbers["carol"]
    before = _counts(site)

    def reply(*files: dict[str, str]) -> Any:
        body = {"body": "With files", "attachments": list(files)}
        return client.post(f"/api/tickets/{number}/replies", json=body, headers=bearer)

    big = reply({"filename": "huge.iso", "data": _b64(b"x" * (LIMIT + 1))})
    assert big.status_code == 413 and "'huge.iso'" in big.json()["detail"]
    assert "max_attachment_bytes" in big.json()["detail"]
    three = [{"filename": f"p{i}.bin", "data": _b64(b"y" * LIMIT)} for i in (1, 2, 3)]
    much = reply(*three)
    assert much.status_code == 413 and "'p3.bin'" in much.json()["detail"]
    empty = reply({"filename": "blank.txt", "data": ""})
    assert empty.status_code == 422 and "'blank.txt' is empty" in empty.text
    broken = reply({"filename": "bad.bin", "data": "not base64!"})
    assert broken.status_code == 422
    opened = client.post(
        "/api/tickets",
        json={
            "requester": "zoe@acme.test",
            "subject": "Big",
            "body": "b",
            "attachments": [{"filename": "huge.iso", "data": _b64(b"x" * (LIMIT + 1))}],
        },
        headers=bearer,
    )
    assert opened.status_code == 413 and "'huge.iso'" in opened.json()["detail"]
    assert _counts(site) == before
    schema = client.get("/api/openapi.json").json()
    data = schema["components"]["schemas"]["AttachmentIn"]["properties"]["data"]
    assert data["minLength"] == 4 and data["pattern"].startswith("^")
    assert "413" in schema["paths"]["/api/tickets/{number}/replies"]["post"]["responses"]


def test_every_channel_stores_a_file_the_same_way_and_the_write_side_checks(site: Site) -> None:
    """Mail, the portal and the API store one file alike (mail's safe name, its bytes,
    hash and type); and the write side itself refuses a file over the limits whatever
    channel hands it over, so no channel can skip the check."""
    by_mail = site.ingest(
        build(
            sender="Carol <carol@acme.test>",
            subject="Log by mail",
            attachments=[(ODD_NAME, "text/plain", TEXT)],
        )
    )
    client = sign_in_customer(site, "carol@acme.test")
    token = csrf_from(client, "/tickets/new")
    fields = {"subject": "Log by portal", "body": "Log.", "type": "General", "csrf": token}
    made = post_files(client, "/tickets/new", fields, [(ODD_NAME, TEXT, "text/plain")])
    by_portal = int(made.headers["location"].split("/")[2].split("?")[0])
    api_body = {
        "requester": "carol@acme.test",
        "subject": "Log by API",
        "body": "Log.",
        "attachments": [{"filename": ODD_NAME, "content_type": "text/plain", "data": _b64(TEXT)}],
    }
    by_api = (
        site.client().post("/api/tickets", json=api_body, headers=_bearer(site)).json()["number"]
    )
    with site.store.transaction() as session:
        stored = [
            session.execute(
                select(
                    StoredAttachment.filename,
                    StoredAttachment.content_type,
                    StoredAttachment.size,
                    StoredAttachment.sha256,
                    StoredAttachment.content,
                )
                .join(TicketMessage)
                .join(Ticket)
                .where(Ticket.number == number)
            ).one()
            for number in (by_mail, by_portal, by_api)
        ]
    assert len(set(stored)) == 1 and stored[0][0] == SAFE_NAME

    before = _counts(site)
    number = site.numbers["carol"]
    big = Attachment("big.bin", "application/octet-stream", LIMIT + 1, b"b" * (LIMIT + 1))
    calls = {
        "customer_reply": lambda s, files: messages.customer_reply(
            s, settings=site.settings, number=number, author="carol@acme.test", body="x",
            at=site.clock(), attachments=files,
        ),
        "reply": lambda s, files: messages.reply(
            s, settings=site.settings, number=number, actor=ANN, body="x", at=site.clock(),
            attachments=files,
        ),
        "note": lambda s, files: messages.note(
            s, settings=site.settings, number=number, actor=ANN, body="x", at=site.clock(),
            attachments=files,
        ),
        "supplier": lambda s, files: suppliers.reply_to_supplier(
            s, settings=site.settings, number=number, actor=ANN, supplier="Parts Co", body="x",
            at=site.clock(), attachments=files,
        ),
        "typed_ticket": lambda s, files: opening.typed_ticket(
            requester="zoe@acme.test", subject="s", body="b", via="cli",
            attachments=files, settings=site.settings,
        ),
    }  # fmt: skip
    for name, call in calls.items():
        for files, reason in (
            ([big], TOO_LARGE),
            ([Attachment("none.txt", "text/plain", 0, b"")], EMPTY),
            ([Attachment(f"{i}.bin", "", LIMIT, b"c" * LIMIT) for i in range(3)], TOO_MUCH),
            ([Attachment(f"{i}.txt", "", 1, b"d") for i in range(21)], TOO_MANY),
        ):
            with pytest.raises(FileRefused) as refused, site.store.transaction() as session:
                call(session, files)
            assert refused.value.reason == reason, name
    assert _counts(site) == before
    with site.store.transaction() as session:
        message = messages.note(
            session,
            settings=site.settings,
            number=number,
            actor=ANN,
            body="raw name",
            at=site.clock(),
            attachments=[Attachment(ODD_NAME, "text/plain", len(TEXT), TEXT)],
        )
        message_id = message.id
    assert _files_of(site, message_id)[0][0] == SAFE_NAME
    with pytest.raises(TypeError):
        opening.typed_ticket(
            requester="zoe@acme.test", subject="s", body="b", via="cli",
            attachments=[Attachment("a.txt", "", 1, b"a")],
        )  # fmt: skip


def test_reading_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """No more than the limit (and one byte) of an upload is read into memory, and none
    of one the form parser already counted as too large; an API file over the limit is
    never decoded."""
    settings = _small_limits(Settings())
    unknown = UploadFile(io.BytesIO(b"u" * 10 * LIMIT), filename="stream.bin")
    with pytest.raises(FileRefused) as refused:
        uploads.read_files([unknown], settings)
    assert refused.value.reason == TOO_LARGE and unknown.file.tell() == LIMIT + 1
    counted = UploadFile(io.BytesIO(b"c" * 10 * LIMIT), size=10 * LIMIT, filename="big.bin")
    with pytest.raises(FileRefused):
        uploads.read_files([counted], settings)
    assert counted.file.tell() == 0
    fine = UploadFile(
        io.BytesIO(b"ok"),
        size=2,
        filename="ok.txt",
        headers=Headers({"content-type": "Text/Plain; charset=utf-8"}),
    )
    assert uploads.read_files([fine], settings) == (Attachment("ok.txt", "text/plain", 2, b"ok"),)

    def never(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("decoded a file over the limit")

    def decoded_size(n: int) -> int:
        file = AttachmentIn(filename="a", data=_b64(b"q" * n))
        return uploads.decode_files([file], settings)[0].size

    assert [decoded_size(n) for n in (1, 2, 3, 4, LIMIT)] == [1, 2, 3, 4, LIMIT]
    big = AttachmentIn(filename="big.bin", data=_b64(b"x" * (LIMIT + 1)))
    monkeypatch.setattr(uploads.base64, "b64decode", never)
    with pytest.raises(FileRefused):
        uploads.decode_files([big], settings)
