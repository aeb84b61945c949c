"""The JSON API's schema as a client sees it: the values this installation accepts
(statuses, types, priorities, teams, agents, accounts, link kinds) named in it, and
the methods a path serves, for a 405's ``Allow``."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from mailgate.core.settings import Settings
from mailgate.db import ticket_filters
from mailgate.db.models import Agent, Customer, Supplier, Team
from mailgate.db.store import Store


def name_the_choices(app: FastAPI, settings: Settings, store: Store) -> None:
    """Make the OpenAPI schema list this installation's statuses, types, priorities,
    teams and active agents, so a client (and schemathesis) knows the values the server
    accepts. Teams and agents are read when the schema is asked for: they change."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = build()["components"]["schemas"]
            statuses = [s.name for s in settings.tickets.statuses]
            schemas["StatusIn"]["properties"]["status"]["enum"] = statuses
            schemas["ReplyIn"]["properties"]["status"]["anyOf"][0]["enum"] = statuses
            fields = schemas["TicketCreate"]["properties"]
            fields["type"]["anyOf"][0]["enum"] = list(settings.tickets.types)
            fields["priority"]["anyOf"][0]["enum"] = list(settings.tickets.priorities)
            patch = schemas["TicketPatch"]["properties"]
            patch["status"]["anyOf"][0]["enum"] = statuses
            patch["type"]["anyOf"][0]["enum"] = list(settings.tickets.types)
            patch["priority"]["anyOf"][0]["enum"] = list(settings.tickets.priorities)
            activity = schemas["ActivityIn"]["properties"]
            activity["type"]["enum"] = list(settings.tickets.activity_types)
            kinds = settings.tickets.link_kinds
            link = schemas["LinkIn"]["properties"]
            link["kind"]["enum"] = list(dict.fromkeys([*kinds, *kinds.values()]))
            categories = list(dict.fromkeys(s.category for s in settings.tickets.statuses))
            _query_enum(
                app.openapi_schema,
                status=[*statuses, *categories, ticket_filters.OPEN, ticket_filters.ALL],
                type=list(settings.tickets.types),
                priority=list(settings.tickets.priorities),
            )
        schema = app.openapi_schema
        assert schema is not None  # built just above
        patch = schema["components"]["schemas"]["TicketPatch"]["properties"]
        with store.transaction() as session:
            teams = list(session.scalars(select(Team.name).order_by(Team.name)))
            agents = list(
                session.scalars(select(Agent.email).where(Agent.active).order_by(Agent.email))
            )
            customers = list(session.scalars(select(Customer.name).order_by(Customer.name)))
            suppliers = list(session.scalars(select(Supplier.name).order_by(Supplier.name)))
        patch["team"]["anyOf"][0]["enum"] = teams
        patch["assignee"]["anyOf"][0]["enum"] = agents
        patch["helpers"]["anyOf"][0]["items"]["enum"] = agents
        patch["departments"]["anyOf"][0]["items"]["enum"] = teams
        patch["suppliers"]["anyOf"][0]["items"]["enum"] = suppliers
        reply = schema["components"]["schemas"]["ReplyIn"]["properties"]
        reply["to_supplier"]["anyOf"][0]["enum"] = suppliers
        # "me" is left out: it needs an agent's token, and the schema is the same for all.
        _query_enum(
            schema,
            team=[*teams, ticket_filters.NONE],
            assignee=[*agents, ticket_filters.NONE],
            customer=customers,
        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _query_enum(schema: dict[str, Any] | None, **choices: list[str]) -> None:
    """List the values of ``GET /api/tickets``'s query parameters named in ``choices``."""
    assert schema is not None
    for parameter in schema["paths"]["/api/tickets"]["get"]["parameters"]:
        if parameter["name"] in choices:
            parameter["schema"]["anyOf"][0]["enum"] = choices[parameter["name"]]


def allowed_methods(app: FastAPI, path: str) -> str:
    """Every method the API serves at ``path``, for a 405's ``Allow`` (RFC 9110 section
    15.5.6): Starlette names only those of the first route whose path matched."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods.update(m.upper() for m in operations)
    return ", ".join(sorted(methods))
