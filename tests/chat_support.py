"""Settings and outbox rows for the chat and webhook delivery tests."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailgate.core.settings import (
    ChatChannelSetting,
    CustomerSetting,
    Settings,
    WebhookSetting,
)
from mailgate.db.models import Notice
from mailgate.db.store import Store
from tests.builders import build, deliver
from tests.conftest import fixed_clock

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Written into a customer's subject and body: must never reach a chat or webhook body
# unless a webhook asks for content.
MARKER = "ZEBRA-MARKER-7Q"
_serial = itertools.count(1)


def with_channels(
    settings: Settings,
    tmp_path: Path,
    *chat: ChatChannelSetting,
    webhooks: tuple[WebhookSetting, ...] = (),
) -> Settings:
    """``settings`` with the file outbox in ``tmp_path``, an account "Acme" (owning
    customer.test) with ``chat``, and ``webhooks``."""
    outbound = dataclasses.replace(settings.outbound, folder=str(tmp_path / "outbox"))
    acme = CustomerSetting("Acme", domains=("customer.test",), chat=chat)
    return dataclasses.replace(settings, outbound=outbound, customers=(acme,), webhooks=webhooks)


def open_ticket(store: Store, settings: Settings) -> int:
    """A ticket opened by mail whose subject and body hold ``MARKER``; its number."""
    raw = build(
        sender=f"Zed {MARKER} <zed@customer.test>",
        subject=f"Invoice {MARKER} overdue",
        body=f"The secret word is {MARKER}.",
    )
    result = deliver(store, settings, raw, fixed_clock(T0))
    assert result.ticket_number is not None
    return result.ticket_number


def add_notice(
    store: Store,
    *,
    channel: str,
    kind: str = "agent_replied",
    detail: dict[str, Any] | None = None,
    ticket_id: int | None = 1,
    language: str = "en",
) -> int:
    """An outbox row as the write side makes it for a chat channel or a webhook."""
    n = next(_serial)
    webhook = kind == "webhook"
    with store.transaction() as session:
        row = Notice(
            ticket_id=ticket_id,
            kind=kind,
            channel=channel,
            recipient=f"{'webhook' if webhook else 'chat'}:{channel}",
            language=language,
            cause=f"test:{channel}:{kind}:{n}",
            message_id=f"test.{n}.{id(store)}@example.com",
            created_at=T0,
            detail=detail if detail is not None else {"status": "Open"},
        )
        session.add(row)
        session.flush()
        return row.id


def notice(store: Store, notice_id: int) -> Notice:
    with store.transaction() as session:
        return session.get_one(Notice, notice_id)
