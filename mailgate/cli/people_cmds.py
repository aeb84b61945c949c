"""``mailgate agents``, ``customers``, ``teams``, ``suppliers``: the directory, beside the
config file.

Entries declared in the config file are synced at every start and the file wins
there (except an agent's away and active flags, which only start from the file);
these commands warn when a change would be overwritten that way.
"""

from __future__ import annotations

import click

from mailgate.cli.context import Context
from mailgate.cli.output import emit_json, emit_table, limit_option
from mailgate.core.assignment import STRATEGIES
from mailgate.db import directory as people

pass_context = click.make_pass_decorator(Context)

json_option = click.option("--json", "as_json", is_flag=True, help="A JSON array, for scripts.")


@click.group()
def agents() -> None:
    """Agents: list, add, set away or inactive."""


@agents.command("list")
@limit_option("agents")
@json_option
@pass_context
def agents_list(ctx: Context, limit: int, as_json: bool) -> None:
    """Agents, newest first, with their open tickets."""
    with ctx.store.transaction() as session:
        rows = people.list_agents(session, ctx.settings, limit=limit)
    if as_json:
        emit_json(rows)
        return
    columns = (
        ("email", "EMAIL"),
        ("name", "NAME"),
        ("teams", "TEAMS"),
        ("active", "ACTIVE"),
        ("away", "AWAY"),
        ("open_tickets", "OPEN"),
    )
    emit_table(rows, columns, empty="no agents")


@agents.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option("--team", "teams", multiple=True, help="Team to join; repeatable.")
@pass_context
def agents_add(ctx: Context, email: str, name: str, teams: tuple[str, ...]) -> None:
    """Add an agent."""
    with ctx.store.transaction() as session:
        agent = people.add_agent(session, email, name=name, teams=teams)
        click.echo(f"agent {agent.email} added to {', '.join(agent.teams) or 'no team'}")


@agents.command("set")
@click.argument("email")
@click.option("--away/--back", default=None, help="Away agents get no new tickets.")
@click.option("--active/--inactive", default=None, help="Inactive agents get no new tickets.")
@click.option("--name", default=None, help="Display name.")
@click.option("--team", "teams", multiple=True, help="Replace the agent's teams; repeatable.")
@pass_context
def agents_set(
    ctx: Context,
    email: str,
    away: bool | None,
    active: bool | None,
    name: str | None,
    teams: tuple[str, ...],
) -> None:
    """Change an agent: away or back, active or inactive, name, teams."""
    with ctx.store.transaction() as session:
        agent = people.set_agent(
            session, email, away=away, active=active, name=name, teams=teams or None
        )
        state = "away" if agent.away else ("inactive" if not agent.active else "available")
        click.echo(f"agent {agent.email}: {state}, teams {', '.join(agent.teams) or '-'}")
    declared = email.strip().lower() in {a.email.lower() for a in ctx.settings.agents}
    if declared and (name is not None or teams):
        click.echo(
            f"note: {email} is declared in {ctx.settings.source}; its name and teams there "
            "win at the next start",
            err=True,
        )


@click.group()
def teams() -> None:
    """Teams and their assignment strategy: list, add."""


@teams.command("list")
@limit_option("teams")
@json_option
@pass_context
def teams_list(ctx: Context, limit: int, as_json: bool) -> None:
    """Teams, newest first."""
    with ctx.store.transaction() as session:
        rows = people.list_teams(session, ctx.settings, limit=limit)
    if as_json:
        emit_json(rows)
        return
    columns = (("name", "NAME"), ("assignment", "ASSIGNMENT"), ("cap", "CAP"), ("agents", "AGENTS"))
    emit_table(rows, columns, empty="no teams")


@teams.command("add")
@click.argument("name")
@click.option(
    "--assignment", type=click.Choice(STRATEGIES), default="round_robin", show_default=True
)
@click.option("--cap", default=0, show_default=True, help="least_open: most open tickets each.")
@pass_context
def teams_add(ctx: Context, name: str, assignment: str, cap: int) -> None:
    """Add a team."""
    with ctx.store.transaction() as session:
        team = people.add_team(session, name, assignment=assignment, cap=cap)
        click.echo(f"team {team.name} added ({team.assignment})")


@click.group()
def customers() -> None:
    """Customer accounts: list, add."""


@customers.command("list")
@limit_option("customers")
@json_option
@pass_context
def customers_list(ctx: Context, limit: int, as_json: bool) -> None:
    """Customer accounts, newest first."""
    with ctx.store.transaction() as session:
        rows = people.list_customers(session, ctx.settings, limit=limit)
    if as_json:
        emit_json(rows)
        return
    columns = (
        ("name", "NAME"),
        ("domains", "DOMAINS"),
        ("addresses", "ADDRESSES"),
        ("admins", "ADMINS"),
        ("owner", "OWNER"),
        ("language", "LANG"),
    )
    emit_table(rows, columns, empty="no customers")


@customers.command("add")
@click.argument("name")
@click.option("--domain", "domains", multiple=True, help="Mail domain of the account; repeatable.")
@click.option("--address", "addresses", multiple=True, help="Single address; repeatable.")
@click.option("--admin", "admins", multiple=True, help="Account admin address; repeatable.")
@click.option("--owner", default=None, help="Agent email: the account's point of contact.")
@click.option("--language", default="", help="Language for notices (e.g. fr).")
@pass_context
def customers_add(
    ctx: Context,
    name: str,
    domains: tuple[str, ...],
    addresses: tuple[str, ...],
    admins: tuple[str, ...],
    owner: str | None,
    language: str,
) -> None:
    """Add a customer account."""
    with ctx.store.transaction() as session:
        customer = people.add_customer(
            session,
            name,
            domains=domains,
            addresses=addresses,
            admins=admins,
            owner=owner,
            language=language,
        )
        click.echo(f"customer {customer.name} added")


@click.group()
def suppliers() -> None:
    """Suppliers, third parties attached to tickets: list, add."""


@suppliers.command("list")
@limit_option("suppliers")
@json_option
@pass_context
def suppliers_list(ctx: Context, limit: int, as_json: bool) -> None:
    """Suppliers, newest first."""
    with ctx.store.transaction() as session:
        rows = people.list_suppliers(session, ctx.settings, limit=limit)
    if as_json:
        emit_json(rows)
        return
    columns = (("name", "NAME"), ("addresses", "ADDRESSES"), ("language", "LANG"))
    emit_table(rows, columns, empty="no suppliers")


@suppliers.command("add")
@click.argument("name")
@click.option("--address", "addresses", multiple=True, help="Address it writes from; repeatable.")
@click.option("--language", default="", help="Language for its notices (e.g. fr).")
@pass_context
def suppliers_add(ctx: Context, name: str, addresses: tuple[str, ...], language: str) -> None:
    """Add a supplier; `tickets suppliers` attaches it to tickets."""
    with ctx.store.transaction() as session:
        supplier = people.add_supplier(session, name, addresses=addresses, language=language)
        click.echo(f"supplier {supplier.name} added")
