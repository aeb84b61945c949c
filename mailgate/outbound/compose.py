"""A rendered notice becomes an ``EmailMessage`` with the headers invariants 3, 5 and 6 ask for.

Built with the standard library's ``EmailMessage`` (policy SMTP), which refuses header
values with line breaks, so nothing can inject a header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from mailgate.core.loop import LOOP_HEADER, loop_marker
from mailgate.core.notices import ANSWER_KINDS, CLOSED_TICKET, CUSTOMER_KINDS, SUPPLIER_KINDS
from mailgate.outbound.render import Rendered
from mailgate.threading.tokens import reply_token

# RFC 5322 §3.6.4 msg-id: dot-atom-text "@" dot-atom-text (or a domain literal). The
# customer's Message-ID is echoed so their client threads our notice (DESIGN §3); only
# an id of this strict shape is, so no free text can ride along.
_MSG_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,200}@[A-Za-z0-9.\[\]:-]{1,200}$")


@dataclass(frozen=True)
class Envelope:
    """Who sends and receives one notice, and which ids thread it."""

    notice_id: int
    kind: str
    recipient: str
    ticket_number: int | None
    message_id: str
    in_reply_to: str = ""
    # The ticket is closed (or this notice says it was closed): nothing may lead back to it.
    ticket_closed: bool = False


def compose(
    envelope: Envelope,
    rendered: Rendered,
    *,
    from_address: str,
    secret: str,
    now: datetime,
) -> EmailMessage:
    """The notice as a message: text and HTML alternatives, our headers only."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = from_address
    msg["To"] = envelope.recipient
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{envelope.message_id}>"
    msg["Subject"] = rendered.subject
    # fullmatch: with match, ``$`` would let a trailing newline through.
    if _MSG_ID.fullmatch(envelope.in_reply_to):
        msg["In-Reply-To"] = f"<{envelope.in_reply_to}>"
        msg["References"] = f"<{envelope.in_reply_to}>"
    if (
        # A supplier's answer threads back the same way, and is kept as a supplier
        # message because its sender is one of the ticket's suppliers' addresses.
        (envelope.kind in CUSTOMER_KINDS or envelope.kind in SUPPLIER_KINDS)
        and envelope.kind != CLOSED_TICKET
        and not envelope.ticket_closed
        and envelope.ticket_number is not None
        and secret
    ):
        # A reply finds its ticket by this signed plus-address even if the client drops
        # every thread header (RFC 5233 subaddress). A closed ticket gets none, whatever
        # the notice (closed_ticket, "status changed to Closed"): it takes no reply, so
        # nothing should invite one back to it.
        local, _, domain = from_address.partition("@")
        token = reply_token(envelope.ticket_number, secret)
        msg["Reply-To"] = f"{local}+{token}@{domain}"
    # RFC 3834 §5: auto-replied for direct answers to a message, auto-generated otherwise.
    msg["Auto-Submitted"] = "auto-replied" if envelope.kind in ANSWER_KINDS else "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = loop_marker(from_address)
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    # After set_content, which drops Content-* headers set before it.
    msg["Content-Language"] = rendered.language
    return msg
