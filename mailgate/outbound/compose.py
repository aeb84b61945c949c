"""A rendered notice becomes an ``EmailMessage`` with the headers invariants 3, 5 and 6 ask for.

Built with the standard library's ``EmailMessage`` (policy SMTP), which refuses header
values with line breaks, so nothing can inject a header.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from mailgate.core.loop import LOOP_HEADER, loop_marker
from mailgate.core.notices import ANSWER_KINDS, CLOSED_TICKET, CUSTOMER_KINDS, SUPPLIER_KINDS
from mailgate.outbound.render import Rendered
from mailgate.threading.tokens import reply_token

# RFC 5322 §3.6.4 msg-id: dot-atom-text "@" dot-atom-text (or a domain literal). The
# customer's Message-ID is echoed so their client threads our notice (DESIGN §3); only
# an id of this strict shape is, so no free text can ride along.
_MSG_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,200}@[A-Za-z0-9.\[\]:-]{1,200}$")


class _Headers(HeaderRegistry):
    """The standard header registry, without its per-header costs in a batch of
    notices: it builds a new class on every lookup (twice per header set), and parses
    and folds the same values (our From, Auto-Submitted, the parts' Content-Type ...)
    for every notice. A parsed header is never changed afterwards (a new value is a new
    header), so one can be shared between messages and its folded text kept with it."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[type, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        base = self.registry.get(name.lower(), self.default_class)
        made = self._classes.get(base)
        if made is None:  # one per header class: a dozen at most
            # The class the standard registry makes, with ``fold`` remembering its result.
            made = type("_" + base.__name__, (base, self.base_class), {"fold": _fold})
            made = self._classes.setdefault(base, made)
        return made

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if type(value) is str:
            return _parsed(self, name, value)
        header: BaseHeader = super().__call__(name, value)
        return header


@functools.lru_cache(maxsize=512)  # bounded; lru_cache is safe across threads
def _parsed(registry: _Headers, name: str, value: str) -> BaseHeader:
    header: BaseHeader = HeaderRegistry.__call__(registry, name, value)
    return header


def _fold(header: BaseHeader, *, policy: Any) -> str:
    """``BaseHeader.fold``, once per header and line format: the result depends only on
    the header and these three policy settings (``_header_value_parser._refold_parse_tree``)."""
    key = (policy.max_line_length, policy.linesep, policy.utf8)
    folds: dict[tuple[Any, ...], str] = header.__dict__.setdefault("_mailgate_folds", {})
    folded = folds.get(key)
    if folded is None:
        folded = folds[key] = BaseHeader.fold(header, policy=policy)
    return folded


# Policy SMTP, with the registry above: what it writes is the same, byte for byte.
POLICY = SMTP.clone(header_factory=_Headers())


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
    msg = EmailMessage(policy=POLICY)
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
