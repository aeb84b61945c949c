"""A message's HTML as a page shows it: its own images in place, nothing from elsewhere.

``<img src="cid:X">`` points at the part of the same message whose Content-ID is X
(RFC 2392); that part is served by the ticket's attachment route, with its checks.
Only raster images (``downloads.may_show_inline``) are drawn; any other part, SVG
included, stays a download and its ``<img>`` shows the alt text.

Images drawn in place are still listed with the message's files, marked as shown
above (the template's choice, unlike Zammad or RT, which hide them): nothing a
customer sent becomes unreachable, the list stays the full record of the mail, and
the link opens the picture at full size when the message scales it down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from mailgate.core.html import content_id_key, for_display
from mailgate.web.downloads import may_show_inline


@dataclass(frozen=True)
class MessageBody:
    html: Markup
    # Ids of the attachments drawn in the message.
    inline_ids: frozenset[int]
    # The mail asked for images from other sites, which were left out: the page says so.
    remote_images: bool


def _field(attachment: Any, name: str) -> Any:
    # The customer page passes attachment rows, the agent page the dicts of show_ticket.
    if isinstance(attachment, Mapping):
        return attachment.get(name)
    return getattr(attachment, name, None)


def message_body(markup: str, attachments: Iterable[Any], number: int) -> MessageBody:
    """``markup`` sanitized (stored HTML is sanitized again at every showing, so no row
    from an import, an old version or a bug is ever shown raw), with the message's own
    image parts in place, served from ticket ``number``."""
    images: dict[str, tuple[str, int]] = {}
    for a in attachments:
        key = content_id_key(_field(a, "content_id") or "")
        kept = not _field(a, "omitted")  # a part too large to keep cannot be drawn
        if key and kept and may_show_inline(_field(a, "content_type") or ""):
            ident = int(_field(a, "id"))
            # The first part with a Content-ID wins, as in mail clients.
            images.setdefault(key, (f"/tickets/{int(number)}/attachments/{ident}", ident))
    shown = for_display(markup, {key: url for key, (url, _) in images.items()})
    return MessageBody(
        Markup(shown.html),  # noqa: S704 - the sanitizer's output is the safe HTML
        frozenset(images[key][1] for key in shown.inline),
        shown.remote_images,
    )
