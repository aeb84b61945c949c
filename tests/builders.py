"""Test mail built with the standard library, and a helper that runs it through intake
and processing exactly as `mailgate ingest` does."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from mailgate.core.settings import Settings
from mailgate.db.store import Store, open_store
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets.mail import ProcessResult, process
from tests.databases import migrate

_serial = itertools.count(1)


def build(
    *,
    sender: str = "Alice Customer <alice@customer.test>",
    to: str = "support@example.com",
    subject: str = "Printer is broken",
    body: str = "My printer does not print.",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    cc: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    html: str | None = None,
    attachments: Iterable[tuple[str, bytes]] = (),
) -> bytes:
    """An RFC 5322 message; every call gets a fresh Message-ID unless one is given."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 1, 5, 9, 0))
    msg["Message-ID"] = message_id or f"<m{next(_serial)}.{id(msg)}@customer.test>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(body)
    # After set_content, which drops any Content-* header set before it.
    for name, value in headers:
        msg[name] = value
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return bytes(msg)


def deliver(
    store: Store,
    settings: Settings,
    raw: bytes,
    now: Callable[[], datetime],
    *,
    envelope: Envelope | None = None,
) -> ProcessResult:
    """Store ``raw`` durably and process it, as the ingest command does."""
    accepted = accept(
        store,
        raw,
        source="ingest",
        envelope=envelope or Envelope(),
        max_bytes=settings.smtp.max_message_bytes,
        now=now,
    )
    return process(store, accepted.inbound_id, settings=settings, now=now)


def ready_store(settings: Settings) -> Store:
    """A store with its schema migrated, as `mailgate db upgrade` does for PostgreSQL."""
    migrate(settings.database.url)
    return open_store(settings)
