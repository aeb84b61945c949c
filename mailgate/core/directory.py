"""Who an address is: which customer account it belongs to. Pure over loaded values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CustomerView:
    id: int
    name: str
    domains: tuple[str, ...]
    addresses: tuple[str, ...]
    admins: tuple[str, ...]
    owner_id: int | None
    language: str


def match_customer(address: str, customers: Iterable[CustomerView]) -> CustomerView | None:
    """The account listing ``address`` itself, else the one listing its domain."""
    address = address.lower()
    domain = address.rpartition("@")[2]
    by_domain = None
    for customer in customers:
        if address in customer.addresses or address in customer.admins:
            return customer
        if by_domain is None and domain in customer.domains:
            by_domain = customer
    return by_domain


def base_address(address: str) -> str:
    """``support+tag@example.com`` → ``support@example.com`` (RFC 5233 subaddress dropped)."""
    local, _, domain = address.lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


def is_support_address(address: str, support: Iterable[str]) -> bool:
    """True for one of mailgate's own receiving addresses, plus-addressed or not."""
    return base_address(address) in {a.lower() for a in support}
