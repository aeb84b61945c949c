"""Signed webhooks POSTed to a real receiver on 127.0.0.1, checked by a receiver's own
verification written here from the documented scheme; and mail in → chat and webhook
POSTs that never carry what the customer wrote (unless a webhook asks for content)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mailgate.core.settings import ChatChannelSetting, Settings, WebhookSetting
from mailgate.db.store import Store
from mailgate.inbound.handoff import process_and_send
from mailgate.inbound.intake import Envelope, accept
from mailgate.outbound.sender import send_pending
from mailgate.tickets import messages
from mailgate.tickets.actors import Actor
from tests.builders import build
from tests.chat_receiver import Receiver, receiving
from tests.chat_support import MARKER, T0, add_notice, notice, open_ticket, with_channels
from tests.conftest import fixed_clock

ANN = Actor("ann@example.com", "ann@example.com", "Ann")
SECRET = "whsec_0123456789abcdef0123456789abcdef"
TOLERANCE = 300


def verify(headers: dict[str, str], body: bytes, secret: str, now: datetime) -> str:
    """What a receiver does (docs/chat.md): parse ``t`` and ``v1``, recompute the HMAC
    over "<t>.<raw body>", compare in constant time, refuse an old or future time; the
    delivery id to de-duplicate by."""
    fields = dict(part.split("=", 1) for part in headers["mailgate-signature"].split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), fields["v1"]):
        raise ValueError("bad signature")
    if abs(now.timestamp() - timestamp) > TOLERANCE:
        raise ValueError("stale signature")
    return headers["mailgate-delivery"]


def _hook(**changes: object) -> WebhookSetting:
    hook = WebhookSetting(name="crm", events=("*",), url_env="CRM_URL", secret_env="CRM_SECRET")
    return dataclasses.replace(hook, **changes)  # type: ignore[arg-type]


DETAIL = {
    "event": "ticket.status_changed",
    "ticket": 1,
    "status": "Waiting",
    "priority": "Normal",
    "type": "General",
    "team": "support",
    "assignee_id": None,
}


def test_signed_webhook_verifies_independently(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = open_ticket(store, settings)
    s = with_channels(settings, tmp_path, webhooks=(_hook(),))
    notice_id = add_notice(store, channel="crm", kind="webhook", detail=DETAIL)
    with receiving(Receiver()) as receiver:
        monkeypatch.setenv("CRM_URL", receiver.url("/mailgate/events"))
        monkeypatch.setenv("CRM_SECRET", SECRET)
        send_pending(store, settings=s, now=fixed_clock(T0))
    (post,) = receiver.posts
    assert verify(post.headers, post.body, SECRET, T0) == str(notice_id)
    assert post.headers["mailgate-signature"].startswith(f"t={int(T0.timestamp())},v1=")
    assert post.json() == {
        **DETAIL,
        "id": notice_id,
        "created_at": "2026-01-05T09:00:00Z",
        "url": s.ticket_url(number),
    }
    assert MARKER.encode() not in post.body
    with pytest.raises(ValueError, match="bad signature"):
        verify(post.headers, post.body.replace(b"Waiting", b"Closed!"), SECRET, T0)
    with pytest.raises(ValueError, match="bad signature"):
        verify(post.headers, post.body, "another secret", T0)
    with pytest.raises(ValueError, match="stale"):
        verify(post.headers, post.body, SECRET, T0 + timedelta(minutes=6))
    assert notice(store, notice_id).state == "sent"


def test_include_content_adds_the_latest_message_read_at_send_time(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, webhooks=(_hook(include_content=True),))
    add_notice(store, channel="crm", kind="webhook", detail=DETAIL)
    with receiving(Receiver()) as receiver:
        monkeypatch.setenv("CRM_URL", receiver.url())
        monkeypatch.setenv("CRM_SECRET", SECRET)
        send_pending(store, settings=s, now=fixed_clock(T0))
    (post,) = receiver.posts
    message = post.json()["message"]
    assert message["direction"] == "inbound" and MARKER in message["text"]
    assert MARKER in message["subject"]
    verify(post.headers, post.body, SECRET, T0)


@pytest.mark.parametrize(
    ("unset", "reason"),
    [
        ("CRM_SECRET", "$CRM_SECRET is not set (the signing secret is read from it)"),
        ("CRM_URL", "$CRM_URL is not set (the URL is read from it)"),
    ],
)
def test_webhook_without_its_variables_fails_naming_them(
    store: Store,
    settings: Settings,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    unset: str,
    reason: str,
) -> None:
    open_ticket(store, settings)
    s = with_channels(settings, tmp_path, webhooks=(_hook(),))
    notice_id = add_notice(store, channel="crm", kind="webhook", detail=DETAIL)
    monkeypatch.setenv("CRM_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("CRM_SECRET", SECRET)
    monkeypatch.delenv(unset)
    send_pending(store, settings=s, now=fixed_clock(T0))
    assert (notice(store, notice_id).state, notice(store, notice_id).last_error) == (
        "failed",
        reason,
    )


def _mail_in(store: Store, settings: Settings, raw: bytes) -> None:
    accepted = accept(
        store, raw, source="ingest", envelope=Envelope(), max_bytes=10**7, now=fixed_clock(T0)
    )
    process_and_send(store, accepted.inbound_id, settings=settings, now=fixed_clock(T0))


def test_mail_in_reaches_every_channel_without_what_the_customer_wrote(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: a customer's mail opens a ticket and an agent answers; the account's
    four chat channels and two webhooks are told. Only the include_content webhook
    carries the marker written in the subject, the bodies and the sender's name."""
    kinds = ("slack", "mattermost", "teams", "webhook")
    chat = tuple(ChatChannelSetting(kind=k, url_env=f"ACME_{k.upper()}_URL") for k in kinds)
    hooks = (_hook(), _hook(name="archive", include_content=True))
    s = with_channels(settings, tmp_path, *chat, webhooks=hooks)
    store.sync_directory(s)  # the account Acme, as a start with this config makes it
    receiver = Receiver()
    with receiving(receiver):
        for k in kinds:
            monkeypatch.setenv(f"ACME_{k.upper()}_URL", receiver.url(f"/{k}/T0K3N"))
        monkeypatch.setenv("CRM_URL", receiver.url("/crm/T0K3N"))
        monkeypatch.setenv("CRM_SECRET", SECRET)
        raw = build(
            sender=f"Zed {MARKER} <zed@customer.test>",
            subject=f"Invoice {MARKER} overdue",
            body=f"The secret word is {MARKER}.",
        )
        _mail_in(store, s, raw)
        with store.transaction() as session:  # an agent's answer, quoting the marker
            messages.reply(
                session,
                settings=s,
                number=1,
                actor=ANN,
                body=f"Your word {MARKER} is noted.",
                at=T0 + timedelta(minutes=5),
                status="Waiting",
            )
        send_pending(store, settings=s, now=fixed_clock(T0 + timedelta(hours=1)))
    by_path: dict[str, list[bytes]] = {}
    for post in receiver.posts:
        by_path.setdefault(post.path.split("/")[1], []).append(post.body)
    assert sorted(by_path) == ["crm", "mattermost", "slack", "teams", "webhook"]
    archive = [b for b in by_path["crm"] if b"message" in b]
    for path, bodies in by_path.items():
        for body in bodies:
            if body not in archive:
                assert MARKER.encode() not in body, path
    events = sorted(json.loads(b)["event"] for b in by_path["crm"] if b not in archive)
    assert events[0] == "ticket.created" and "ticket.replied" in events
    assert [MARKER in json.loads(b)["message"]["text"] for b in archive] == [True] * len(events)
    said = sorted(json.loads(b)["text"] for b in by_path["slack"])
    assert said == ["[#1] New reply to your request", "[#1] We received your request"]
