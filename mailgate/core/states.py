"""The named states of the pipeline's rows: inbound messages, their outcomes, notices.

``StrEnum`` members are their strings: they are what the database stores and what
``--json`` prints, so a member compares equal to the bare word and scripts keep working.
"""

from __future__ import annotations

from enum import StrEnum


class InboundState(StrEnum):
    """Where a stored inbound message is in the pipeline."""

    RECEIVED = "received"  # committed, waiting for processing
    PROCESSED = "processed"  # turned into a ticket change (see its Outcome)
    QUARANTINED = "quarantined"  # not processable (over a limit, not parseable): kept
    FAILED = "failed"  # failed processing too often; `mailgate inbound retry` resets it


# A row in one of these states is done until an operator retries it.
FINAL_INBOUND_STATES = (InboundState.PROCESSED, InboundState.QUARANTINED, InboundState.FAILED)


class Outcome(StrEnum):
    """What processing did with an inbound message."""

    NONE = ""  # not processed yet
    NEW_TICKET = "new_ticket"
    REPLY = "reply"  # a customer message on an open ticket
    CLOSED_TICKET = "closed_ticket"  # kept on a closed ticket, which did not change
    AUTOMATIC = "automatic"  # a bounce or auto-reply filed on its ticket
    SUPPLIER = "supplier"  # a supplier's message on a ticket it is attached to (agents only)
    DUPLICATE = "duplicate"  # the same message again (MTA retry, second route)
    REFUSED_POLICY = "refused_policy"  # intake.policy: the sender may not open tickets
    REFUSED = "refused"  # quarantined: see the row's last_error


class NoticeState(StrEnum):
    """Where an outbox row is: pending → sent | failed | bounced, or suppressed at once."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # a permanent failure (5xx), or could not be composed
    BOUNCED = "bounced"  # a DSN reported it undeliverable
    SUPPRESSED = "suppressed"  # decided not to send; the reason is in last_error


# The key under which a transaction's ``session.info`` lists the ids of the pending
# notices it wrote: the store's after-commit hooks hand them to a queue.
PENDING_NOTICES = "mailgate.pending_notices"


# Directions of ticket messages (``ticket_messages.direction``) besides the customer's
# conversation (inbound, outbound): an internal note, and the supplier side (issue 22),
# a supplier's mail and an agent's message to a supplier. Only agents see these: the
# customer's pages, downloads and search leave them out.
NOTE = "note"
FROM_SUPPLIER = "supplier"
TO_SUPPLIER = "to_supplier"
SUPPLIER_DIRECTIONS = (FROM_SUPPLIER, TO_SUPPLIER)
INTERNAL_DIRECTIONS = (NOTE, *SUPPLIER_DIRECTIONS)
