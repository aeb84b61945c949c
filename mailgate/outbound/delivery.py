"""What one claimed notice becomes: composed (a message's bytes, or a chat POST), then
handed over to its transport; sent, retried with backoff, or failed with the reason.

The two steps are apart so that a batch can compose its notices before it claims them
(``sender._send_batch``): composing only reads.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime

import jinja2
from sqlalchemy.orm import Session

from mailgate.core.backoff import next_attempt
from mailgate.core.errors import PermanentFailure, TemporaryFailure
from mailgate.core.settings import Settings
from mailgate.core.states import NoticeState
from mailgate.db.models import Notice, Ticket
from mailgate.outbound import chat_delivery
from mailgate.outbound.chat_transport import RetryAfter
from mailgate.outbound.notice_message import build_message, own_link
from mailgate.outbound.render import Renderer
from mailgate.outbound.transport import Transport

log = logging.getLogger(__name__)
SENT, FAILED = NoticeState.SENT, NoticeState.FAILED

# What hands a composed notice over (a send of its bytes, or a chat POST), or why it
# could not be composed.
Composed = Callable[[], object] | Exception


def compose(
    session: Session,
    notice: Notice,
    ticket: Ticket | None,
    *,
    settings: Settings,
    transport: Transport,
    renderer: Renderer,
    at: datetime,
) -> Composed:
    """What hands ``notice`` over (a send of the composed bytes, or a chat POST), or
    why it could not be composed. Reads, never writes: ``sender._send_batch`` composes before
    it claims."""
    try:
        if notice.channel:
            post = chat_delivery.prepare(
                session, notice, ticket, settings=settings, renderer=renderer, at=at
            )
            return post.send
        message = build_message(
            notice,
            ticket,
            settings=settings,
            renderer=renderer,
            now=at,
            link=own_link(session, settings, notice),
        )
        # Headers are checked when written out: fail here, not mid-send.
        data = message.as_bytes()
    except Exception as exc:  # noqa: BLE001 - hand_over decides what each cause means
        return exc
    return functools.partial(
        transport.send,
        notice.id,
        message,
        sender=settings.outbound.from_address,
        recipient=notice.recipient,
        data=data,
    )


def hand_over(
    notice: Notice,
    composed: Composed,
    *,
    settings: Settings,
    at: datetime,
) -> str:
    """Hand over a claimed notice as ``compose`` left it; its state afterwards."""
    if isinstance(composed, jinja2.TemplateError):
        # A broken template is the operator's to fix (check-config names it); retry.
        _retry_later(notice, f"{type(composed).__name__}: {composed}", at, settings)
        return notice.state
    if isinstance(composed, PermanentFailure):
        return _fail(notice, str(composed))
    if isinstance(composed, Exception):
        # Retrying cannot help (e.g. a header value the email package refuses): failed
        # at once with the reason, so it neither loops nor blocks the rest of a batch.
        return _fail(notice, f"cannot be composed: {type(composed).__name__}: {composed}")
    try:
        composed()
    except PermanentFailure as exc:
        _fail(notice, str(exc))
    except RetryAfter as exc:
        _retry_later(notice, f"{type(exc).__name__}: {exc}", at, settings, exc.not_before)
    except TemporaryFailure as exc:
        _retry_later(notice, f"{type(exc).__name__}: {exc}", at, settings)
    else:
        notice.state, notice.sent_at, notice.last_error = SENT, at, ""
        notice.next_attempt_at = None
        log.info("notice %s (%s%s) sent", notice.id, notice.kind, _to(notice))
    return notice.state


def _to(notice: Notice) -> str:
    """Where a notice went, for the log: a channel's name, never its URL."""
    return f" to {notice.channel}" if notice.channel else ""


def _fail(notice: Notice, reason: str) -> str:
    notice.state, notice.last_error, notice.next_attempt_at = FAILED, reason[:2000], None
    log.warning("notice %s failed permanently: %s", notice.id, reason.split(":", 1)[0])
    return notice.state


def _retry_later(
    notice: Notice,
    error: str,
    at: datetime,
    settings: Settings,
    not_before: datetime | None = None,
) -> None:
    """Pending again, due after the backoff, or at ``not_before`` (a 429's Retry-After)
    when that is later."""
    notice.last_error = error[:2000]
    if notice.attempts >= settings.outbound.max_attempts:
        notice.state, notice.next_attempt_at = FAILED, None
        notice.last_error = f"gave up after {notice.attempts} attempts: {error}"[:2000]
        log.warning("notice %s failed after %s attempts", notice.id, notice.attempts)
        return
    backoff = next_attempt(notice.attempts, at)
    notice.next_attempt_at = max(backoff, not_before) if not_before else backoff
    log.info("notice %s will be retried: %s", notice.id, error)
