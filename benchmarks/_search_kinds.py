"""Full-text search for benchmarks/scale.py and benchmarks/search.py: the rows a search
looks in that _scale_fill.py does not make (attachments, internal notes), a search as the
product runs it, and the kinds of search scale.py times at every size.

scale.py's fill adds these rows to each range of tickets it makes (``extra_rows``), so
both benchmarks search the same data: an attachment on one ticket in five (its first
message's, ``invoice-<t>.pdf`` or ``screenshot-<t>.png``) and an internal note on one in
ten ("Escalated to the vendor as case V<t>.").
"""

# ruff: noqa: S608 - statements of this file's constants and ticket numbers
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import _scale_fill as filler
import sqlalchemy as sa

from mailgate.db import search
from mailgate.db.models import Base, Ticket
from mailgate.db.store import Store
from mailgate.web import access

LIMIT = 50  # the best 50: `tickets search` and the agent's search box show as many
EVERY_TICKET = "certificate"  # in every ticket's first message (filler.BODY)
# Initech's account admin (scale.py's config): sees a quarter of all tickets, so a page
# of 50 at every size, where a requester's own tickets are 3 at 1 k and 2,500 at 1 M.
ACCOUNT_ADMIN = "admin@initech.test"


def extra_rows(conn: sa.Connection, sqlite: bool, lo: int, hi: int) -> None:
    """Tickets ``lo`` .. ``hi``'s attachments (one ticket in five) and internal notes (one
    in ten; the note's id in a free slot of its ticket's, t * 8 + 3), committed. The
    database's triggers index them for search as on every write."""
    false = "0" if sqlite else "FALSE"
    json = (lambda text: f"'{text}'") if sqlite else (lambda text: f"CAST('{text}' AS json)")
    attachment = {
        "id": "id", "ticket_message_id": "id",
        "filename": "CASE ticket_id % 2 WHEN 0 THEN 'invoice-' || ticket_id || '.pdf' "
                    "ELSE 'screenshot-' || ticket_id || '.png' END",
        "content_type": "'application/octet-stream'", "size": "1", "sha256": "''",
        "content_id": "''", "inline": false, "content": "NULL", "omitted": "''",
    }  # fmt: skip
    note = {
        "id": "id * 8 + 3", "ticket_id": "id", "inbound_id": "NULL", "direction": "'note'",
        "author_email": "'a0@example.com'", "author_name": "'Agent 0'", "to": json("[]"),
        "cc": json("[]"), "subject": "''",
        "body_text": "'Escalated to the vendor as case V' || id || '.'", "body_html": "''",
        "body_reply": "''", "message_id": "''", "content_sha256": "''",
        "in_reply_to": json("[]"), "references": json("[]"), "thread_method": "'portal'",
        "after_close": false, "screening": json("{}"), "created_at": "created_at",
    }  # fmt: skip
    for name, columns, rows in (
        ("attachments", attachment, "ticket_messages WHERE id % 8 = 0 AND ticket_id % 5 = 0 "
                                    f"AND ticket_id BETWEEN {lo} AND {hi}"),
        ("ticket_messages", note, f"tickets WHERE id % 10 = 3 AND id BETWEEN {lo} AND {hi}"),
    ):  # fmt: skip
        expected = set(Base.metadata.tables[name].c.keys())
        assert set(columns) == expected, (name, expected ^ set(columns))
        names = ", ".join(f'"{c}"' for c in columns)
        # ``%`` is modulo here, no placeholder: straight to the driver.
        filler._run(conn, f"INSERT INTO {name} ({names}) SELECT {', '.join(columns.values())} "
                          f"FROM {rows}")  # fmt: skip
    conn.connection.commit()  # the driver's own transaction: SQLAlchemy may have begun none


def find(store: Store, query: str, customer: str | None = None) -> int:
    """One search as the product runs it, and how many tickets it found: an agent's (as
    `mailgate tickets search` and the agent's search box: every ticket, notes too), or
    ``customer``'s (as their portal: only the tickets they may see, no notes)."""
    with store.transaction() as session:
        if customer is None:
            found = search.search(session, query, limit=LIMIT)
        else:
            visible = access.customer_scope(session, customer)
            found = search.search(session, query, within=visible, internal=False, limit=LIMIT)
    return len(found)


def scale_operations(store: Store, base: int) -> dict[str, Callable[[], object]]:
    """The searches scale.py times at each size, the same ones at every size: the words of
    one of the newest thousand tickets (below the open ones and those replied to), which
    are there at every size, and words that more tickets share as the history grows."""

    def ticket(remainder: int, modulus: int) -> int:
        """The newest ticket from ``base - 100`` down whose number leaves ``remainder``."""
        t = base - 100
        return t - (t - remainder) % modulus

    invoice = ticket(1, 4)  # its subject: "Invoice <t> looks wrong"
    with store.transaction() as session:
        requester = str(session.scalar(sa.select(Ticket.requester).where(Ticket.id == invoice)))
    searches: dict[str, tuple[str, str | None]] = {
        "invoice number (subject)": (f"Invoice {invoice}", None),
        "requester address (1 ticket in 400)": (requester, None),
        "attachment name": (f"invoice-{ticket(0, 10)}.pdf", None),
        "a word in every ticket": (EVERY_TICKET, None),
        "no such word": ("zebra123", None),
        "customer: invoice number": (f"Invoice {invoice}", requester),
        "customer: a word in every ticket": (EVERY_TICKET, requester),
        "account admin: a word in every ticket": (EVERY_TICKET, ACCOUNT_ADMIN),
        # In a quarter of all subjects, none of them Initech's (filler: t % 4).
        "account admin: a word in others' subjects": ("Invoice", ACCOUNT_ADMIN),
    }
    return {
        f"search: {name}": functools.partial(find, store, query, customer)
        for name, (query, customer) in searches.items()
    }


def found_counts(ops: dict[str, Callable[[], Any]]) -> str:
    """How many tickets each search found (at most LIMIT), for the table's notes."""
    return ", ".join(f"{name.removeprefix('search: ')} {fn()}" for name, fn in ops.items())
