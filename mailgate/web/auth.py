"""Who is asking: a signed-in customer or agent, or an agent named by a trusted proxy.

FastAPI dependencies guard the routes: ``signed_in``, ``agent_only``,
``customer_only``; ``require_csrf`` guards every form post.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import HTTPException
from sqlalchemy import select
from starlette.requests import Request

from mailgate.db.models import Agent
from mailgate.web import csrf, sessions
from mailgate.web.context import portal
from mailgate.web.i18n import N_

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    kind: str  # customer | agent
    email: str
    name: str = ""
    agent_id: int | None = None
    via: str = "session"  # session | proxy

    @property
    def is_agent(self) -> bool:
        return self.kind == "agent"


class SignInRequired(Exception):
    """Raised by a guard when nobody is signed in; answered with a redirect to sign-in."""

    def __init__(self, *, agent: bool) -> None:
        super().__init__("sign-in required")
        self.agent = agent


def peer(request: Request) -> str:
    return request.client.host if request.client else ""


def client_ip(request: Request) -> str:
    """The client's address for rate limits: the socket peer, or, behind a trusted
    proxy, the last address the proxy appended to ``web.client_ip_header``."""
    web = portal(request).settings.web
    address = peer(request)
    if web.client_ip_header and address in web.trusted_proxies:
        forwarded = request.headers.get(web.client_ip_header, "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return address


def sid(request: Request) -> str:
    value: str = getattr(request.state, "sid", "")
    return value


def csrf_token(request: Request) -> str:
    return csrf.token_for(portal(request).settings.security.secret, sid(request))


def current(request: Request) -> Principal | None:
    """The principal of this request, looked up once and kept on ``request.state``."""
    if hasattr(request.state, "principal"):
        found: Principal | None = request.state.principal
        return found
    principal = _from_proxy(request) or _from_session(request)
    request.state.principal = principal
    return principal


def _from_proxy(request: Request) -> Principal | None:
    p = portal(request)
    header = p.settings.web.trusted_proxy_header
    if not header or header not in request.headers:
        return None
    if peer(request) not in p.settings.web.trusted_proxies:
        log.warning("ignored %s from untrusted address %s", header, peer(request))
        return None
    email = request.headers[header].strip().lower()
    with p.store.transaction() as session:
        agent = session.scalar(select(Agent).where(Agent.email == email))
        if agent is None or not agent.active:
            raise HTTPException(403, N_("Your sign-in is not an active agent of this portal."))
        return Principal("agent", agent.email, agent.name, agent.id, "proxy")


def _from_session(request: Request) -> Principal | None:
    p = portal(request)
    with p.store.transaction() as session:
        row = sessions.find(session, sid(request), p.now())
        if row is None:
            return None
        if row.kind == "agent":
            agent = session.get(Agent, row.agent_id) if row.agent_id else None
            # A new password or being made inactive moves the generation on
            # (directory.end_agent_sessions): a session from before is signed out.
            if (
                agent is None
                or not agent.active
                or row.credential_generation != agent.credential_generation
            ):
                return None
            return Principal("agent", agent.email, agent.name, agent.id)
        return Principal("customer", row.email)


def signed_in(request: Request) -> Principal:
    """Guard: anyone signed in."""
    principal = current(request)
    if principal is None:
        raise SignInRequired(agent=request.url.path.startswith("/agent"))
    return principal


def agent_only(request: Request) -> Principal:
    """Guard: agents only; a customer gets 403."""
    principal = current(request)
    if principal is None:
        raise SignInRequired(agent=True)
    if not principal.is_agent:
        raise HTTPException(403, N_("This page is for agents."))
    return principal


def customer_only(request: Request) -> Principal:
    """Guard: customers only; an agent gets 403 (agents work tickets, they do not open them)."""
    principal = current(request)
    if principal is None:
        raise SignInRequired(agent=False)
    if principal.is_agent:
        raise HTTPException(403, N_("This page is for customers."))
    return principal


async def require_csrf(request: Request) -> None:
    """Guard for every form post: the form's token must match this browser's session."""
    form = await request.form()
    secret = portal(request).settings.security.secret
    if not csrf.is_valid(secret, sid(request), form.get(csrf.FIELD)):
        raise HTTPException(
            403,
            N_("This form has expired or came from another site. Go back, reload and try again."),
        )
