"""The ``Received:`` trace header a receiver prepends to a message (RFC 5321 §4.4). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

_MAX_HELO = 255
# An upper bound on received_header()'s size: HELO and host cut to 255 characters, a
# recipient within aiosmtpd's 512-octet command line, at most 4 octets per character.
MAX_TRACE_BYTES = 4 * (2 * _MAX_HELO + 512) + 256


@dataclass(frozen=True)
class Hop:
    """What one receiving hop knew about the client and the session."""

    helo: str
    client_ip: str
    by: str
    lmtp: bool = False
    extended: bool = True
    tls: bool = False
    authenticated: bool = False
    smtputf8: bool = False
    recipients: tuple[str, ...] = ()


def with_protocol(hop: Hop) -> str:
    """The ``with`` keyword: SMTP/ESMTP/LMTP plus S (TLS) and A (AUTH), RFC 3848, and the
    UTF8 prefix of RFC 6531 §3.7.3 when the session used SMTPUTF8."""
    base = "LMTP" if hop.lmtp else ("ESMTP" if hop.extended else "SMTP")
    suffix = ("S" if hop.tls else "") + ("A" if hop.authenticated else "")
    if hop.smtputf8:
        # RFC 6531 drops the E: UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA, UTF8LMTP...
        return "UTF8" + ("LMTP" if hop.lmtp else "SMTP") + suffix
    if suffix and base == "SMTP":
        # RFC 3848 defines the S/A forms only for ESMTP and LMTP.
        base = "ESMTP"
    return base + suffix


def _printable(text: str, limit: int) -> str:
    """The client's own words as one header token: no controls, spaces or comment
    characters (they would break the clause or fold the line), and bounded."""
    cleaned = "".join(
        c if c.isprintable() and not c.isspace() and c not in "()\\" else "?" for c in text
    )
    return cleaned[:limit] or "unknown"


def received_header(hop: Hop, at: datetime) -> bytes:
    """``Received: from HELO ([IP]) by HOST with PROTO [for <rcpt>]; DATE`` as CRLF bytes.

    The ``for`` clause names the recipient only when there is exactly one, so a copy
    of the message never discloses the other envelope recipients (RFC 5321 §7.2).
    """
    helo = _printable(hop.helo, _MAX_HELO)
    ip = hop.client_ip
    literal = f"IPv6:{ip}" if ":" in ip else ip
    lines = [
        f"Received: from {helo} ([{literal}])",
        f"\tby {_printable(hop.by, _MAX_HELO)} (mailgate) with {with_protocol(hop)}",
    ]
    if len(hop.recipients) == 1:
        lines.append(f"\tfor <{_printable(hop.recipients[0], 998 - 10)}>")
    lines[-1] += f"; {format_datetime(at)}"
    # UTF-8 survives only in an SMTPUTF8 session (RFC 6532); otherwise keep ASCII.
    encoding = "utf-8" if hop.smtputf8 else "ascii"
    return ("\r\n".join(lines) + "\r\n").encode(encoding, errors="replace")
