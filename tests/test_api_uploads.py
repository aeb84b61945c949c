"""Files attached through the API (base64, as Zammad's API takes them) and through every
channel of the write side: the same limits, the same safe names, read no further than
the limit."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import pytest
from sqlalchemy import select
from starlette.datastructures import Headers, UploadFile

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
from mailgate.web import api_tokens, uploads
from mailgate.web.api_models import AttachmentIn
from tests.mail import build
from tests.upload_support import (
    ANN,
    LIMIT,
    ODD_NAME,
    SAFE_NAME,
    TEXT,
    counts,
    files_of,
    post_files,
    small_limits,
    small_site,
)
from tests.web_support import PDF, Site, csrf_from, sign_in_customer

site_fixture = pytest.fixture(name="site")(small_site)


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
    assert files_of(site, out["message_id"]) == [("fix.txt", "application/octet-stream", 2, b"ok")]


def test_the_api_refuses_files_over_the_limits_naming_them(site: Site) -> None:
    """413 for a file over a limit, 422 for an empty or broken one; the answer names the
    file, and nothing is stored."""
    client, bearer = site.client(), _bearer(site)
    number = site.numbers["carol"]
    before = counts(site)

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
    assert counts(site) == before
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

    before = counts(site)
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
    assert counts(site) == before
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
    assert files_of(site, message_id)[0][0] == SAFE_NAME
    with pytest.raises(TypeError):
        opening.typed_ticket(
            requester="zoe@acme.test", subject="s", body="b", via="cli",
            attachments=[Attachment("a.txt", "", 1, b"a")],
        )  # fmt: skip


def test_reading_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """No more than the limit (and one byte) of an upload is read into memory, and none
    of one the form parser already counted as too large; an API file over the limit is
    never decoded."""
    settings = small_limits(Settings())
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
