"""Signed reply tokens (invariant 6): in the Message-IDs mailgate mints and in
plus-addresses, so a reply finds its ticket and nobody can forge one.

Token text is ``<number>-<signature>``; a Message-ID is
``<mg.<number>.<nonce>.<signature>@<domain>>``. Signatures are truncated
HMAC-SHA256 (80 bits, base32), checked against the current secret and every
old secret still listed in ``security.old_secrets`` (key rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

_SIG_CHARS = 16  # 80 bits of base32
_TOKEN = re.compile(r"^(\d{1,12})-([a-z2-7]{16})$")
_MESSAGE_ID = re.compile(r"^mg\.(\d{1,12})\.([a-z0-9]{1,32})\.([a-z2-7]{16})@", re.IGNORECASE)


def _sign(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_SIG_CHARS]


def _valid(secrets_: Sequence[str], payload: str, signature: str) -> bool:
    return any(hmac.compare_digest(_sign(s, payload), signature.lower()) for s in secrets_ if s)


def reply_token(number: int, secret: str) -> str:
    """The token for ticket ``number``, for a plus-address: ``support+<token>@domain``."""
    return f"{number}-{_sign(secret, f'addr:{number}')}"


def read_reply_token(token: str, secrets_: Sequence[str]) -> int | None:
    """The ticket number in a token, or None if it is malformed or not signed by any secret."""
    match = _TOKEN.match(token.lower())
    if not match:
        return None
    number = int(match.group(1))
    return number if _valid(secrets_, f"addr:{number}", match.group(2)) else None


def mint_message_id(number: int, secret: str, domain: str, nonce: str | None = None) -> str:
    """A Message-ID (without angle brackets) that names ticket ``number``, signed."""
    nonce = (nonce or secrets.token_hex(8)).lower()
    signature = _sign(secret, f"mid:{number}.{nonce}")
    return f"mg.{number}.{nonce}.{signature}@{domain}"


def read_message_id(message_id: str, secrets_: Sequence[str]) -> int | None:
    """The ticket number in a Message-ID mailgate minted, or None if forged or foreign."""
    match = _MESSAGE_ID.match(message_id)
    if not match:
        return None
    number, nonce, signature = int(match.group(1)), match.group(2).lower(), match.group(3)
    return number if _valid(secrets_, f"mid:{number}.{nonce}", signature) else None


def plus_token(address: str) -> str | None:
    """The part after ``+`` in the local part of ``address``, if any (RFC 5233 subaddress)."""
    local = address.rpartition("@")[0]
    _, plus, detail = local.partition("+")
    return detail if plus and detail else None
