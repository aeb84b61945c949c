"""The ticket record from the agent's ticket page (issue 22): a link of a configured
kind, with its reverse on the other ticket, and time logged as an activity; each a
form post with the CSRF token through the write side. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailgate.db.models import Activity
from tests.web_support import Site, form, make_site, sign_in_agent


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


def test_link_of_a_kind_from_the_ticket_page(site: Site) -> None:
    client = sign_in_agent(site)
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    page = f"/tickets/{carol}"
    assert '<option value="duplicated by">' in client.get(page).text
    sent = form(client, f"/agent/tickets/{carol}/link", page, other=str(dave), kind="parent of")
    assert (sent.status_code, sent.headers["location"].split("?")[0]) == (303, page)
    assert f"#{dave}</a> (parent of)" in client.get(page).text
    assert f"#{carol}</a> (child of)" in client.get(f"/tickets/{dave}").text
    refused = form(client, f"/agent/tickets/{carol}/link", page, other=str(dave), kind="x")
    assert refused.status_code == 400 and "unknown link kind" in refused.text


def test_time_logged_from_the_ticket_page(site: Site) -> None:
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    page = f"/tickets/{n}"
    assert f'action="/agent/tickets/{n}/activity"' in client.get(page).text
    sent = form(
        client, f"/agent/tickets/{n}/activity", page, type="Call", minutes="20", text="rang"
    )
    assert (sent.status_code, sent.headers["location"].split("?")[0]) == (303, page)
    assert "Call, 20 min: rang" in client.get(page).text  # listed on the page
    with site.store.transaction() as session:
        logged = session.scalars(select(Activity)).one()
        assert (logged.type, logged.minutes, logged.text, logged.actor) == (
            "Call",
            20,
            "rang",
            "ann@example.com",
        )
    for bad, words in (({"minutes": "ten"}, "whole number"), ({"type": "Nap"}, "unknown activity")):
        fields = {"type": "Call", "minutes": "5", "text": "", **bad}
        refused = form(client, f"/agent/tickets/{n}/activity", page, **fields)
        assert refused.status_code == 400 and words in refused.text
