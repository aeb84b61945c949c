"""Who may open a ticket by email (``intake.policy``), and whether a refused sender may
be answered at all. Pure: values in, a ``Verdict`` out."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.directory import CustomerView
from mailgate.loop import LOOP_HEADER
from mailgate.message import ParsedMessage

POLICIES = ("anyone", "known", "admins")
_ROBOT_LOCAL_PARTS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


def admits(policy: str, sender: str, customer: CustomerView | None) -> Verdict:
    """May ``sender`` (matched to ``customer``, or None) open a new ticket by email?

    Replies to existing tickets never come here: their participants always pass.
    """
    if policy == "anyone":
        return Verdict(True, "intake.policy is anyone")
    if customer is None:
        return Verdict(False, f"{sender or 'the sender'} belongs to no customer account")
    if policy == "known":
        return Verdict(True, f"sender belongs to customer account {customer.name}")
    if policy == "admins":
        if sender.lower() in customer.admins:
            return Verdict(True, f"sender is an admin of customer account {customer.name}")
        return Verdict(False, f"{sender} is not an admin of customer account {customer.name}")
    raise ValueError(f"unknown intake policy {policy!r}")


def automatic_reason(parsed: ParsedMessage) -> str:
    """Why ``parsed`` looks machine-sent and must get no automatic answer (invariant 5),
    or ``""``. A minimal check until the screening module is merged: RFC 3834
    ``Auto-Submitted``, list and bulk markers, DSNs, robot senders, our loop marker."""
    auto = parsed.header("auto-submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto} (RFC 3834)"
    if parsed.header("precedence").strip().lower() in {"bulk", "list", "junk"}:
        return "Precedence: " + parsed.header("precedence").strip().lower()
    if parsed.header("list-id"):
        return "mailing list (List-Id)"
    if parsed.header(LOOP_HEADER):
        return f"carries our loop marker {LOOP_HEADER}"
    if parsed.content_type == "multipart/report":
        return "delivery or read report (multipart/report)"
    local = parsed.sender.email.lower().rpartition("@")[0] if parsed.sender else ""
    if not local:
        return "no sender address"
    if local.startswith(_ROBOT_LOCAL_PARTS):
        return f"robot sender {local}@"
    return ""
