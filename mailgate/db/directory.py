"""Agents, teams, customer accounts and suppliers as the CLI lists and changes them.

Listings are plain dicts with stable field names (add fields, never rename).
Entries declared in the config file are synced at start-up and the file wins
there; ``declared`` in a listing says which those are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailgate.core.assignment import STRATEGIES
from mailgate.core.directory import CustomerView, match_customer
from mailgate.core.errors import MailgateError, NotFound
from mailgate.core.settings import Settings
from mailgate.db import queries
from mailgate.db.models import Agent, Customer, CustomerKey, Supplier, Team, Ticket, WebSession


class Conflict(MailgateError):
    """Raised when a name or address to add already exists, or a reference is unknown."""


def _limited(query: Any, limit: int) -> Any:
    return query.limit(limit) if limit else query


def list_agents(session: Session, settings: Settings, *, limit: int = 50) -> list[dict[str, Any]]:
    """Agents newest first, with their open (not closed) ticket count."""
    # The open statuses by name: the count reads the open tickets from the status index
    # rather than every ticket (issue 23).
    counts = dict(
        session.execute(
            select(Ticket.assignee_id, func.count())
            .where(
                Ticket.assignee_id.is_not(None),
                Ticket.status.in_(queries.open_statuses(session, settings.tickets)),
            )
            .group_by(Ticket.assignee_id)
        ).all()
    )
    declared = {a.email.lower() for a in settings.agents}
    agents = session.scalars(_limited(select(Agent).order_by(Agent.id.desc()), limit))
    return [
        {
            "id": a.id,
            "email": a.email,
            "name": a.name,
            "teams": list(a.teams),
            "active": a.active,
            "away": a.away,
            "open_tickets": counts.get(a.id, 0),
            "declared": a.email in declared,
        }
        for a in agents
    ]


def _known_teams(session: Session, teams: Sequence[str]) -> list[str]:
    existing = set(session.scalars(select(Team.name)))
    unknown = [t for t in teams if t not in existing]
    if unknown:
        raise Conflict(f"unknown team(s): {', '.join(unknown)} (mailgate teams add NAME)")
    return list(dict.fromkeys(teams))


def add_agent(session: Session, email: str, *, name: str, teams: Sequence[str]) -> Agent:
    email = email.strip().lower()
    if "@" not in email:
        raise Conflict(f"{email!r} is not an email address")
    if session.scalar(select(Agent.id).where(Agent.email == email)) is not None:
        raise Conflict(f"agent {email} already exists (use mailgate agents set)")
    agent = Agent(
        email=email, name=name, teams=_known_teams(session, teams), active=True, away=False
    )
    session.add(agent)
    session.flush()
    return agent


def set_agent(
    session: Session,
    email: str,
    *,
    away: bool | None = None,
    active: bool | None = None,
    name: str | None = None,
    teams: Sequence[str] | None = None,
) -> Agent:
    """Change the given fields of agent ``email``; the others stay."""
    agent = session.scalar(select(Agent).where(Agent.email == email.strip().lower()))
    if agent is None:
        raise NotFound(f"no agent {email}")
    if away is not None:
        agent.away = away
    if active is not None:
        agent.active = active
        if not active:
            end_agent_sessions(session, agent)
    if name is not None:
        agent.name = name
    if teams is not None:
        agent.teams = _known_teams(session, teams)
    return agent


def end_agent_sessions(session: Session, agent: Agent) -> None:
    """Sign ``agent`` out of the portal everywhere: for a new password or when made inactive.

    The generation is what ends the sessions: one only counts while it carries the
    agent's current generation (web.auth), read in the transaction that checked the
    password. So a sign-in racing this change, that read the old password or the
    active flag before it committed, makes a session that is already dead; deleting
    the rows alone would miss that one. The rows go too, as they are of no more use.
    """
    agent.credential_generation = Agent.credential_generation + 1
    session.execute(delete(WebSession).where(WebSession.agent_id == agent.id))
    session.flush()


def list_teams(session: Session, settings: Settings, *, limit: int = 50) -> list[dict[str, Any]]:
    agents = list(session.scalars(select(Agent)))
    declared = {t.name for t in settings.teams}
    teams = session.scalars(_limited(select(Team).order_by(Team.id.desc()), limit))
    return [
        {
            "id": t.id,
            "name": t.name,
            "assignment": t.assignment,
            "cap": t.cap,
            "agents": [a.email for a in agents if t.name in a.teams],
            "declared": t.name in declared,
        }
        for t in teams
    ]


def add_team(session: Session, name: str, *, assignment: str, cap: int) -> Team:
    if assignment not in STRATEGIES:
        raise Conflict(f"assignment must be one of {', '.join(STRATEGIES)}")
    if cap < 0:
        raise Conflict("cap must be 0 (no cap) or more")
    if session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise Conflict(f"team {name} already exists")
    team = Team(name=name, assignment=assignment, cap=cap)
    session.add(team)
    session.flush()
    return team


def list_customers(
    session: Session, settings: Settings, *, limit: int = 50
) -> list[dict[str, Any]]:
    emails = dict(session.execute(select(Agent.id, Agent.email)).all())
    declared = {c.name for c in settings.customers}
    customers = session.scalars(_limited(select(Customer).order_by(Customer.id.desc()), limit))
    return [
        {
            "id": c.id,
            "name": c.name,
            "domains": list(c.domains),
            "addresses": list(c.addresses),
            "admins": list(c.admins),
            "owner": emails.get(c.owner_id) if c.owner_id else None,
            "language": c.language,
            "declared": c.name in declared,
        }
        for c in customers
    ]


def add_customer(
    session: Session,
    name: str,
    *,
    domains: Sequence[str],
    addresses: Sequence[str],
    admins: Sequence[str],
    owner: str | None,
    language: str,
) -> Customer:
    if not domains and not addresses and not admins:
        raise Conflict("give at least one --domain or --address to match its mail")
    if session.scalar(select(Customer.id).where(Customer.name == name)) is not None:
        raise Conflict(f"customer {name} already exists")
    owner_id = None
    if owner:
        owner_id = session.scalar(select(Agent.id).where(Agent.email == owner.strip().lower()))
        if owner_id is None:
            raise Conflict(f"owner {owner} is not an agent (mailgate agents add)")
    customer = Customer(
        name=name,
        domains=[d.strip().lower().lstrip("@") for d in domains],
        addresses=[a.strip().lower() for a in addresses],
        admins=[a.strip().lower() for a in admins],
        owner_id=owner_id,
        language=language,
    )
    session.add(customer)
    session.flush()
    return customer


def customer_of(session: Session, email: str) -> CustomerView | None:
    """The customer account ``email`` belongs to, if any (``match_customer``). Asked of
    the accounts that list the address or its domain (``customer_keys``), not of every
    account; once per address and transaction."""
    address = email.lower()
    look_up_customers(session, [address])
    known: dict[str, CustomerView | None] = session.info["customer_of"]
    return known[address]


def look_up_customers(session: Session, emails: Iterable[str]) -> None:
    """Find the accounts of ``emails`` in one statement, for ``customer_of`` to answer
    from in this transaction: a bulk import's group of a hundred messages asks once."""
    known: dict[str, CustomerView | None] = session.info.setdefault("customer_of", {})
    wanted = {email.lower() for email in emails} - known.keys()
    if not wanted:
        return
    keys = wanted | {address.rpartition("@")[2] for address in wanted}
    listing = select(CustomerKey.customer_id).where(CustomerKey.value.in_(keys))
    # The lowest id first: of two accounts listing the same domain, the older.
    listed = select(Customer).where(Customer.id.in_(listing)).order_by(Customer.id)
    # Only the accounts listing an address or its domain can match it: the answer among
    # these is the answer among all.
    views = [_view(c) for c in session.scalars(listed)]
    for address in wanted:
        known[address] = match_customer(address, views)


def _view(c: Customer) -> CustomerView:
    return CustomerView(
        c.id, c.name, tuple(c.domains), tuple(c.addresses), tuple(c.admins), c.owner_id, c.language
    )


def list_suppliers(
    session: Session, settings: Settings, *, limit: int = 50
) -> list[dict[str, Any]]:
    declared = {s.name for s in settings.suppliers}
    suppliers = session.scalars(_limited(select(Supplier).order_by(Supplier.id.desc()), limit))
    return [
        {
            "id": s.id,
            "name": s.name,
            "addresses": list(s.addresses),
            "language": s.language,
            "declared": s.name in declared,
        }
        for s in suppliers
    ]


def add_supplier(
    session: Session, name: str, *, addresses: Sequence[str], language: str
) -> Supplier:
    name = name.strip()
    if not name or len(name) > 255:
        raise Conflict("a supplier's name is 1 to 255 characters")
    emails = [a.strip().lower() for a in addresses]
    if not emails:
        raise Conflict("give at least one --address: the supplier's mail comes from it")
    for email in emails:
        local, _, domain = email.rpartition("@")
        if not local or not domain or any(c.isspace() for c in email):
            raise Conflict(f"{email!r} is not an email address")
    if language and not (language.isascii() and language.isalpha() and 2 <= len(language) <= 3):
        raise Conflict(f"language must be a code such as en or fr, got {language!r}")
    if session.scalar(select(Supplier.id).where(Supplier.name == name)) is not None:
        raise Conflict(f"supplier {name} already exists")
    supplier = Supplier(name=name, addresses=list(dict.fromkeys(emails)), language=language.lower())
    session.add(supplier)
    session.flush()
    return supplier
