"""An agent's portal sessions end with their credential: a new password, or made inactive."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from mailgate.db.models import Agent, WebSession
from mailgate.web import passwords, sessions
from tests.conftest import SECRET
from tests.web_support import ANN_PASSWORD, Site, csrf_from, make_site, sign_in_agent

pytestmark = pytest.mark.faults  # the security part of the fault suite (issue 19)


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    s = make_site(db_url)
    # The CLI (the `cli` fixture) works on the portal's database.
    (tmp_path / "mailgate.toml").write_text(
        f'[database]\nurl = "{db_url}"\n[security]\nsecret = "{SECRET}"\n'
    )
    yield s
    s.store.engine.dispose()


def _signed_in(client: TestClient) -> bool:
    page = client.get("/agent")
    assert page.status_code in (200, 303)
    return page.status_code == 200


def test_set_password_ends_every_session(site: Site, cli: Callable[..., Any]) -> None:
    """`mailgate agents set-password` signs the agent out of every browser; the new
    password signs in, the old one no longer does; other agents stay signed in."""
    laptop, phone, bob = (
        sign_in_agent(site),
        sign_in_agent(site),
        sign_in_agent(site, "bob@example.com"),
    )
    assert _signed_in(laptop) and _signed_in(phone) and _signed_in(bob)
    done = cli(
        "agents", "set-password", "ann@example.com", "--password-stdin", input="a new secret pw\n"
    )
    assert done.exit_code == 0, done.output
    assert not _signed_in(laptop) and not _signed_in(phone)
    assert _signed_in(bob)
    assert laptop.get("/agent").headers["location"].startswith("/agent/sign-in")
    old = _password(laptop, ANN_PASSWORD)
    assert old.status_code == 401
    assert _password(laptop, "a new secret pw").status_code == 303 and _signed_in(laptop)


def test_inactive_ends_every_session_for_good(site: Site, cli: Callable[..., Any]) -> None:
    """`mailgate agents set EMAIL --inactive` signs the agent out; made active again, the
    old sessions stay ended and the agent signs in anew."""
    laptop = sign_in_agent(site)
    assert _signed_in(laptop)
    assert cli("agents", "set", "ann@example.com", "--inactive").exit_code == 0
    assert not _signed_in(laptop)
    assert cli("agents", "set", "ann@example.com", "--active").exit_code == 0
    assert not _signed_in(laptop)
    assert _password(laptop, ANN_PASSWORD).status_code == 303 and _signed_in(laptop)
    # Going away is no credential change: the session stays.
    assert cli("agents", "set", "ann@example.com", "--away").exit_code == 0
    assert _signed_in(laptop)


def test_a_sign_in_racing_a_new_password_makes_a_dead_session(site: Site) -> None:
    """A sign-in that checked the old password before the new one committed, and stores its
    session after the old sessions were deleted, is still signed out: the session carries
    the generation read with the password."""
    at = site.clock()
    with site.store.transaction() as session:
        ann = session.scalar(select(Agent).where(Agent.email == "ann@example.com"))
        assert ann is not None and passwords.check_password(session, ann.email, ANN_PASSWORD, at)
        generation, agent_id = ann.credential_generation, ann.id
    with site.store.transaction() as session:
        passwords.set_password(session, "ann@example.com", "a new secret pw", at)
    with site.store.transaction() as session:  # the racing sign-in commits last
        sid = sessions.start(
            session,
            kind="agent",
            email="ann@example.com",
            agent_id=agent_id,
            at=at,
            hours=1,
            credential_generation=generation,
        )
    with site.store.transaction() as session:
        assert session.scalar(select(WebSession.id).where(WebSession.agent_id == agent_id))
    browser = site.client()
    browser.cookies.set(site.settings.web.cookie_name, sid)
    assert not _signed_in(browser)


def _password(client: TestClient, password: str) -> Any:
    data = {
        "email": "ann@example.com",
        "password": password,
        "csrf": csrf_from(client, "/agent/sign-in"),
    }
    return client.post("/agent/sign-in", data=data)
