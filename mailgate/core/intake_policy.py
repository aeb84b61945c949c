"""Who may open a ticket by email (``intake.policy``), and whether a refused sender may
be answered at all. Pure: values in, a ``Verdict`` out."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.core.directory import CustomerView

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
