"""Attachment downloads, for customers who may see the ticket and for agents.

The image parts a message shows in place (``cid:``, see ``web.message_body``) come
from here too, through the same checks: ``inline`` and as their image type."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import select
from starlette.responses import Response

from mailgate.core.states import INTERNAL_DIRECTIONS, SUPPLIER_DIRECTIONS
from mailgate.db.models import StoredAttachment, Ticket, TicketMessage
from mailgate.web import access
from mailgate.web.auth import Principal
from mailgate.web.context import Portal
from mailgate.web.downloads import content_disposition, inline_image_type, safe_content_type
from mailgate.web.i18n import N_


def attachment_response(
    p: Portal, principal: Principal, number: int, attachment_id: int
) -> Response:
    """The file as a download (an image its message draws: inline), or 404 when it is
    not on a message this principal may read."""
    with p.store.transaction() as session:
        if principal.is_agent:
            ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        else:
            ticket = access.customer_ticket(session, principal.email, number)
            supplier_side = False
            if ticket is None:  # a supplier's contact: the supplier side only (issue 22)
                ticket = access.supplier_ticket(session, principal.email, number)
                supplier_side = True
        if ticket is None:
            raise HTTPException(404, N_("There is no such file."))
        found = session.execute(
            select(StoredAttachment, TicketMessage.direction)
            .join(TicketMessage, StoredAttachment.ticket_message_id == TicketMessage.id)
            .where(StoredAttachment.id == attachment_id, TicketMessage.ticket_id == ticket.id)
        ).first()
        if found is None or not (principal.is_agent or _readable(found[1], supplier_side)):
            raise HTTPException(404, N_("There is no such file."))
        row = found[0]
        if row.content is None:
            raise HTTPException(
                404, N_("This file was too large to keep here; the original mail still has it.")
            )
        content, filename, content_type = row.content, row.filename, row.content_type
        # Only a part a message can point at (a Content-ID) is ever drawn in a page;
        # any other file stays a download, whatever it is.
        image = inline_image_type(content_type, content) if row.content_id else None
    return Response(
        content,
        headers={
            # Set as a header, not media_type, so Starlette adds no charset it cannot know.
            "Content-Type": image or safe_content_type(content_type),
            "Content-Disposition": content_disposition(filename, inline=image is not None),
            "X-Content-Type-Options": "nosniff",
            # Even opened directly, the file runs no script and reads no cookie.
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


def _readable(direction: str, supplier_side: bool) -> bool:
    """Whether a customer (or, ``supplier_side``, a supplier's contact) may read a
    message of ``direction``."""
    if supplier_side:
        return direction in SUPPLIER_DIRECTIONS
    return direction not in INTERNAL_DIRECTIONS
