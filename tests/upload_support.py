"""What the upload tests share: small limits, a site with them, a browser-like multipart
post, and reads of what was stored."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from mailgate.core.settings import Settings
from mailgate.db.models import StoredAttachment, Ticket, TicketMessage
from mailgate.tickets.actors import Actor
from tests.web_support import Site, make_site

LIMIT = 3000  # limits.max_attachment_bytes here
TOTAL = 8000  # smtp.max_message_bytes here: the seed mails fit
ANN = Actor("ann@example.com", "ann@example.com", "Ann")
# A name as a hostile or careless client sends it: folders, a bidi override.
ODD_NAME = "../../etc/re\u202eport.txt"
SAFE_NAME = "report.txt"  # what mail's sanitize_filename makes of it
TEXT = b"The printer log, line 1.\n"


def small_limits(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        limits=dataclasses.replace(settings.limits, max_attachment_bytes=LIMIT, max_parts=20),
        smtp=dataclasses.replace(settings.smtp, max_message_bytes=TOTAL),
    )


def small_site(db_url: str) -> Iterator[Site]:
    """A seeded site with the small limits; each test module makes it its ``site``
    fixture (``pytest.fixture(name="site")(small_site)``)."""
    s = make_site(db_url, adjust=small_limits)
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


def files_of(site: Site, message_id: int) -> list[tuple[str, str, int, bytes | None]]:
    with site.store.transaction() as session:
        rows = session.scalars(
            select(StoredAttachment)
            .where(StoredAttachment.ticket_message_id == message_id)
            .order_by(StoredAttachment.id)
        )
        return [(a.filename, a.content_type, a.size, a.content) for a in rows]


def last_message(site: Site, number: int) -> TicketMessage:
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


def counts(site: Site) -> tuple[int | None, ...]:
    with site.store.transaction() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Ticket, TicketMessage, StoredAttachment)
        )


def attachment_ids(site: Site, message_id: int) -> list[int]:
    with site.store.transaction() as session:
        return list(
            session.scalars(
                select(StoredAttachment.id)
                .where(StoredAttachment.ticket_message_id == message_id)
                .order_by(StoredAttachment.id)
            )
        )
