"""The SMTP/LMTP edge: check each recipient, commit the message through intake, reply.

An aiosmtpd handler, and nothing else: connections, TLS and limits live in
``smtp_protocol.py`` and ``smtp_server.py``. ``250`` is answered only after intake
has committed the raw bytes (invariant 1), through ``group_commit``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from mailgate.core.directory import is_support_address
from mailgate.core.errors import PermanentFailure, StorageFull, TemporaryFailure
from mailgate.inbound.group_commit import GroupCommit
from mailgate.inbound.intake import Envelope, check_is_email
from mailgate.inbound.smtp.trace import Hop, received_header

log = logging.getLogger(__name__)

# Named replies, with RFC 3463 enhanced status codes.
RCPT_OK = "250 2.1.5 OK"
STORED = "250 2.0.0 OK: stored as inbound #{id}"
NOT_OURS = "550 5.1.1 <{address}>: recipient not accepted here"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"  # RFC 5321 §4.5.3.1.10
NOT_STORED = "451 4.3.0 Could not store the message, try again later"
# RFC 5321 §4.2.3 452 "insufficient system storage"; RFC 3463 4.3.1 "mail system full".
NO_ROOM = "452 4.3.1 Insufficient system storage, try again later"
NOT_AN_EMAIL = "554 5.6.0 Message refused: {reason}"
INTERNAL_ERROR = "451 4.3.0 Internal error, try again later"

_MAX_HELO = 255  # inbound_messages.helo
_SCAN_ON_LOOP = 1 << 20  # bytes; scanning more would hold up every other session


def client_ip(peer: Any) -> str:
    """The address part of a socket peer name: ``('::1', 25, 0, 0)`` → ``'::1'``."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]


class IntakeHandler:
    """aiosmtpd handler hooks for mailgate's receiving addresses.

    Messages are committed through ``committer`` (a group commit off the event loop,
    so one slow transaction never stalls other sessions).
    """

    def __init__(
        self,
        committer: GroupCommit,
        *,
        addresses: tuple[str, ...],
        max_recipients: int,
        max_message_bytes: int,
        hostname: str,
        lmtp: bool,
        offer_auth: bool,
        now: Callable[[], datetime],
    ) -> None:
        self.committer = committer
        self.addresses = tuple(a.lower() for a in addresses)
        self.max_recipients = max_recipients
        self.max_message_bytes = max_message_bytes
        self.hostname = hostname
        self.lmtp = lmtp
        # Not named auth_*: aiosmtpd takes handler attributes so named as AUTH mechanisms.
        self.offer_auth = offer_auth
        self.now = now

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Advertise PIPELINING (RFC 2920; aiosmtpd reads commands strictly in order, so
        pipelined groups already work) and hide AUTH when no credentials are configured."""
        session.host_name = hostname  # the hook must set it (aiosmtpd handlers docs)
        lines = [r for r in responses[:-1] if self.offer_auth or not r.startswith("250-AUTH")]
        return [*lines, "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Only mailgate's own addresses (plus-addressed too): never an open relay."""
        if not is_support_address(address, self.addresses):
            return NOT_OURS.format(address=address)
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        """Commit the message with a ``Received:`` header, then answer (once per
        recipient in LMTP, RFC 2033 §4.2)."""
        recipients = tuple(envelope.rcpt_tos)
        ip = client_ip(session.peer)
        transport = server.transport
        hop = Hop(
            helo=session.host_name or "",
            client_ip=ip,
            by=self.hostname,
            lmtp=self.lmtp,
            extended=session.extended_smtp,
            tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
            authenticated=bool(session.authenticated),
            smtputf8=envelope.smtp_utf8,
            recipients=recipients,
        )
        trace = received_header(hop, self.now())
        stored = Envelope(
            # The null reverse-path of bounces (RFC 5321 §4.5.5) is stored as "".
            mail_from="" if envelope.mail_from in (None, "<>") else str(envelope.mail_from),
            rcpt_to=recipients,
            client_address=ip,
            helo=(session.host_name or "")[:_MAX_HELO],
        )
        content = envelope.original_content or b""
        try:
            # Judged as the client sent it: with our trace header on top any bytes would
            # pass for an email. Big ones are scanned off the loop.
            if len(content) > _SCAN_ON_LOOP:
                await asyncio.to_thread(check_is_email, content, max_bytes=self.max_message_bytes)
            else:
                check_is_email(content, max_bytes=self.max_message_bytes)
            accepted = await self.committer.accept(trace + content, stored)
        except PermanentFailure as exc:
            reply = NOT_AN_EMAIL.format(reason=_one_line(str(exc)))
        except StorageFull as exc:
            log.warning("smtp: no room to store a message from %s: %s", ip, _one_line(str(exc)))
            reply = NO_ROOM
        except TemporaryFailure as exc:
            log.warning("smtp: could not store a message from %s: %s", ip, _one_line(str(exc)))
            reply = NOT_STORED
        except Exception:
            log.exception("smtp: unexpected error storing a message from %s", ip)
            reply = NOT_STORED
        else:
            reply = STORED.format(id=accepted.inbound_id)
        if self.lmtp:
            return "\r\n".join(reply for _ in recipients)
        return reply

    async def handle_exception(self, error: Exception) -> str:
        """An error in any other command: logged, answered 4xx so the client retries
        (aiosmtpd would answer 500 with the exception's text)."""
        log.error("smtp: unexpected error in a session: %s", type(error).__name__, exc_info=error)
        return INTERNAL_ERROR
