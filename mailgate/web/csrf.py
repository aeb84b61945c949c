"""CSRF protection: every form carries a token bound to the browser's session cookie.

The token is HMAC(security.secret, session id), so nothing is stored and a new
session (sign-in, sign-out) gets a new token. A page from another origin can
neither read the cookie nor compute the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

FIELD = "csrf"


def token_for(secret: str, sid: str) -> str:
    """The token forms of session ``sid`` must send back."""
    digest = hmac.new(secret.encode(), f"csrf:{sid}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def is_valid(secret: str, sid: str, sent: object) -> bool:
    """True when ``sent`` is the token of session ``sid`` (constant-time comparison)."""
    if not sid or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(token_for(secret, sid).encode(), sent.encode())
