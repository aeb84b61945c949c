"""mailgate's own loop marker: every outbound notice carries it, and inbound mail
carrying it is never answered automatically (invariant 5)."""

from __future__ import annotations

LOOP_HEADER = "X-Mailgate-Loop"


def loop_marker(from_address: str) -> str:
    """The marker value: the sending address, so two mailgate installs can tell
    their own mail from each other's."""
    return from_address.lower()
