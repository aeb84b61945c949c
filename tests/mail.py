"""Build test emails in code, so each test shows the bytes it feeds in."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid


def build(
    *,
    sender: str = "Carol Customer <carol@customer.test>",
    to: str = "support@example.com",
    subject: str = "Printer on fire",
    body: str = "The printer in room 4 is on fire.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    cc: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = "Mon, 05 Jan 2026 09:00:00 +0000"
    msg["Message-ID"] = message_id or make_msgid(domain="customer.test")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(body)
    # After set_content, which drops any Content-* header set before it.
    for name, value in (headers or {}).items():
        msg[name] = value
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments or []:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(msg)
