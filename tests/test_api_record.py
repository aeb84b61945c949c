"""The JSON API on a ticket's record (issue 22, items 5 and 6): logging time and linking
tickets by kind, through the same write side as the CLI and the portal. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailgate.web import api_tokens
from tests.web_support import Site, _show, make_site


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


def _headers(site: Site, agent: str | None = None) -> dict[str, str]:
    with site.store.transaction() as session:
        token = api_tokens.add(session, "crm", site.clock(), agent=agent)
    return {"Authorization": f"Bearer {token}"}


def test_time_logged_through_the_api(site: Site) -> None:
    client, headers = site.client(), _headers(site, agent="ann@example.com")
    number = site.numbers["carol"]
    url = f"/api/tickets/{number}/activities"
    made = client.post(url, headers=headers, json={"type": "Call", "minutes": 25, "text": "Rang"})
    assert made.status_code == 201, made.text
    assert made.json() | {"at": None} == {
        "at": None,
        "actor": "ann@example.com",
        "type": "Call",
        "minutes": 25,
        "text": "Rang",
    }
    detail = client.get(f"/api/tickets/{number}", headers=headers).json()
    assert [(a["type"], a["minutes"]) for a in detail["activities"]] == [("Call", 25)]
    assert detail["history"][-1]["action"] == "activity"

    unknown = client.post(url, headers=headers, json={"type": "Golf", "minutes": 5})
    assert unknown.status_code == 400 and "unknown activity type 'Golf'" in unknown.text
    assert client.post(url, headers=headers, json={"type": "Call", "minutes": 0}).status_code == 422
    missing = client.post(
        "/api/tickets/999999/activities", headers=headers, json={"type": "Call", "minutes": 5}
    )
    assert missing.status_code == 404
    client.post(f"/api/tickets/{number}/status", headers=headers, json={"status": "Closed"})
    closed = client.post(url, headers=headers, json={"type": "Call", "minutes": 5})
    assert closed.status_code == 409
    assert len(_show(site, number)["activities"]) == 1


def test_links_by_kind_through_the_api(site: Site) -> None:
    client, headers = site.client(), _headers(site)
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    url = f"/api/tickets/{carol}/links"
    made = client.post(url, headers=headers, json={"other": dave, "kind": "duplicate of"})
    assert made.status_code == 201, made.text
    assert made.json() == [{"number": dave, "kind": "duplicate of"}]
    again = client.post(url, headers=headers, json={"other": dave, "kind": "duplicate of"})
    assert again.json() == [{"number": dave, "kind": "duplicate of"}]  # linking twice: once
    other = client.get(f"/api/tickets/{dave}", headers=headers).json()
    assert other["links"] == [{"number": carol, "kind": "duplicated by"}]
    for body, says in (
        ({"other": dave, "kind": "sibling of"}, "unknown link kind 'sibling of'"),
        ({"other": dave, "kind": "merged into"}, "made by mailgate itself"),
    ):
        refused = client.post(url, headers=headers, json=body)
        assert refused.status_code in (400, 422) and says in refused.text, (body, refused.text)
    itself = client.post(url, headers=headers, json={"other": carol})
    assert itself.status_code == 409 and "cannot be linked to itself" in itself.text
    nowhere = client.post(url, headers=headers, json={"other": 999999})
    assert nowhere.status_code == 404 and "no ticket #999999" in nowhere.text
    assert (
        client.post("/api/tickets/999999/links", headers=headers, json={"other": carol}).status_code
        == 404
    )
    assert client.post(url, json={"other": dave}).status_code == 401
