"""The HTTP request for a chat or webhook outbox row, and the operator's test message.

A row with a ``channel`` names a chat channel (``chat = [...]`` on an account or a team)
or a ``[[webhooks]]`` entry. The URL and the signing secret are read from the
environment variables the config names, when the row is sent: they are never stored,
never logged, and no error says more of them than the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.core.chat import channels
from mailgate.core.chat_payloads import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    ChatLine,
    chat_payload,
    check_line,
    encode,
    signature,
    webhook_body,
)
from mailgate.core.errors import NotFound, PermanentFailure
from mailgate.core.notices import WEBHOOK
from mailgate.core.settings import Settings
from mailgate.db.models import Notice, Ticket, TicketMessage
from mailgate.outbound.chat_transport import from_env, post_json, url_from_env
from mailgate.outbound.notice_message import values_for
from mailgate.outbound.render import Renderer

# A [[webhooks]] entry among the chat kinds (slack, mattermost, teams, webhook): a chat
# channel of kind "webhook" gets plain unsigned JSON, this one a signed event.
SIGNED_WEBHOOK = "signed_webhook"
# The messages an include_content webhook may carry: what the customer and the agents
# wrote to each other, never an internal note or the supplier side.
CONTENT_DIRECTIONS = ("inbound", "outbound")


@dataclass(frozen=True)
class Target:
    """A chat channel or a webhook, as the operator's tools show it."""

    name: str
    kind: str  # slack | mattermost | teams | webhook | signed_webhook
    url_env: str
    secret_env: str = ""


def targets(settings: Settings) -> dict[str, Target]:
    """Every chat channel and webhook by name (a chat channel first, should one name
    both: configuration checks refuse that)."""
    found = {name: Target(name, c.kind, c.url_env) for name, c in channels(settings).items()}
    for hook in settings.webhooks:
        found.setdefault(
            hook.name, Target(hook.name, SIGNED_WEBHOOK, hook.url_env, hook.secret_env)
        )
    return found


@dataclass(frozen=True)
class Post:
    """One request ready to go; the URL is kept out of its repr (tracebacks, logs)."""

    url: str = field(repr=False)
    body: bytes
    headers: Mapping[str, str]
    at: datetime

    def send(self) -> int:
        return post_json(self.url, self.body, headers=self.headers, now=self.at)


def prepare(
    session: Session,
    notice: Notice,
    ticket: Ticket | None,
    *,
    settings: Settings,
    renderer: Renderer,
    at: datetime,
    environ: Mapping[str, str] | None = None,
) -> Post:
    """The request for a claimed chat or webhook row; PermanentFailure when its channel
    is no longer configured or a variable it names is not set."""
    env = os.environ if environ is None else environ
    if notice.kind == WEBHOOK:  # a chat row has the kind of the notice it stands for
        return _webhook(session, notice, ticket, settings=settings, at=at, environ=env)
    channel = channels(settings).get(notice.channel)
    if channel is None:
        raise PermanentFailure(f"chat channel {notice.channel!r} is not in the configuration")
    url = url_from_env(channel.url_env, env)
    values = values_for(notice, ticket, settings)
    line = ChatLine(
        kind=notice.kind,
        text=renderer.subject(notice.kind, notice.language, values),
        link=values.url,
        number=values.number,
        reference=values.tag,
        words={"status": values.status, "due": values.due, "due_at": values.due_at},
        notice_id=notice.id,
    )
    return Post(url, encode(chat_payload(channel.kind, line)), {}, at)


def _webhook(
    session: Session,
    notice: Notice,
    ticket: Ticket | None,
    *,
    settings: Settings,
    at: datetime,
    environ: Mapping[str, str],
) -> Post:
    hook = next((w for w in settings.webhooks if w.name == notice.channel), None)
    if hook is None:
        raise PermanentFailure(f"webhook {notice.channel!r} is not in the configuration")
    url = url_from_env(hook.url_env, environ)
    secret = from_env(hook.secret_env, environ, what="signing secret")
    detail = dict(notice.detail)
    if ticket is not None and ticket.number is not None:
        detail.setdefault("url", settings.ticket_url(ticket.number))
    message = latest_message(session, ticket.id) if hook.include_content and ticket else None
    body = webhook_body(
        detail, delivery_id=notice.id, created_at=_iso(notice.created_at), message=message
    )
    return Post(url, body, _signed(secret, at, body, str(notice.id)), at)


def _signed(secret: str, at: datetime, body: bytes, delivery: str) -> dict[str, str]:
    return {
        SIGNATURE_HEADER: signature(secret, int(at.timestamp()), body),
        DELIVERY_HEADER: delivery,
    }


def latest_message(session: Session, ticket_id: int) -> dict[str, Any] | None:
    """The newest message between the customer and the agents, read when the webhook
    is sent (the outbox row never holds it): for ``include_content`` only."""
    row = session.scalars(
        select(TicketMessage)
        .where(
            TicketMessage.ticket_id == ticket_id,
            TicketMessage.direction.in_(CONTENT_DIRECTIONS),
        )
        .order_by(TicketMessage.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {
        "id": row.id,
        "direction": row.direction,
        "subject": row.subject,
        "text": row.body_reply or row.body_text,
    }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def send_test(
    settings: Settings,
    name: str,
    *,
    now: datetime,
    environ: Mapping[str, str] | None = None,
) -> int:
    """POST the test message to chat channel or webhook ``name`` now, not through the
    outbox; the HTTP status. NotFound (listing the names there are) for an unknown one."""
    env = os.environ if environ is None else environ
    known = targets(settings)
    target = known.get(name)
    if target is None:
        names = f"known: {', '.join(sorted(known))}" if known else "none is configured"
        raise NotFound(f"no chat channel or webhook named {name!r} ({names})")
    url = url_from_env(target.url_env, env)
    home = settings.web.base_url.rstrip("/") + "/"
    if target.kind != SIGNED_WEBHOOK:
        return Post(url, encode(chat_payload(target.kind, check_line(home))), {}, now).send()
    secret = from_env(target.secret_env, env, what="signing secret")
    delivery = f"test-{int(now.timestamp())}"
    body = encode(
        {"event": "test", "id": delivery, "created_at": _iso(now), "text": check_line(home).text}
    )
    return Post(url, body, _signed(secret, now, body, delivery), now).send()
