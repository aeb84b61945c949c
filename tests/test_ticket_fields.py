"""Change any field (issue 20, item 1): priority, type, team and tags from the CLI and
`PATCH /api/tickets/{number}`, each a history event, refused on a closed ticket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_ticket_cli import Cli, desk, show  # noqa: F401 - desk is a fixture
from tests.test_web_api import _bearer
from tests.web_support import Site, make_site


def _changes(ticket: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (e["actor"], e["field"], e["old"], e["new"])
        for e in ticket["history"]
        if e["action"] in ("priority", "type", "team", "tags")
    ]


def test_cli_changes_each_field_with_its_history(desk: Cli) -> None:  # noqa: F811
    assert desk("tickets", "priority", "1", "High", "--as", "ann@example.com").exit_code == 0
    assert desk("tickets", "type", "1", "Technical").exit_code == 0
    assert desk("tickets", "team", "1", "none").exit_code == 0
    tagged = desk("tickets", "tag", "1", "+vpn", "Urgent", "-nothing", "--as", "bob@example.com")
    assert tagged.exit_code == 0 and "vpn, urgent" in tagged.output
    assert desk("tickets", "tag", "1", "-urgent").exit_code == 0
    ticket = show(desk, 1)
    assert (ticket["priority"], ticket["type"], ticket["team"]) == ("High", "Technical", None)
    assert ticket["tags"] == ["vpn"]
    assert _changes(ticket) == [
        ("ann@example.com", "priority", "Normal", "High"),
        ("cli", "type", "General", "Technical"),
        ("cli", "team", "support", ""),
        ("bob@example.com", "tags", "", "vpn,urgent"),
        ("cli", "tags", "vpn,urgent", "vpn"),
    ]
    # The same value again changes nothing and records nothing.
    assert desk("tickets", "priority", "1", "High").exit_code == 0
    assert len(_changes(show(desk, 1))) == 5


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("priority", "1", "Sky-high"), "unknown priority 'Sky-high' (known: Low, Normal"),
        (("type", "1", "Gossip"), "unknown type 'Gossip' (known: General, Technical)"),
        (("team", "1", "nosuch"), "no team 'nosuch'"),
        (("tag", "1", "two words"), "a tag is one word"),
        (("priority", "99", "High"), "no ticket #99"),
    ],
)
def test_cli_refusals_are_one_line(desk: Cli, args: tuple[str, ...], words: str) -> None:  # noqa: F811
    result = desk("tickets", *args)
    assert result.exit_code == 1
    assert words in result.output and "Traceback" not in result.output


def test_cli_closed_ticket_refuses_changes_but_shows_its_tags(desk: Cli) -> None:  # noqa: F811
    assert desk("tickets", "tag", "2", "+billing").exit_code == 0
    assert desk("tickets", "close", "2").exit_code == 0
    refused = desk("tickets", "priority", "2", "Urgent")
    assert refused.exit_code == 1 and "is Closed" in refused.output
    assert desk("tickets", "tag", "2", "+late").exit_code == 1
    listed = desk("tickets", "tag", "2")
    assert listed.exit_code == 0 and "billing" in listed.output


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[Site, dict[str, str]]]:
    site = make_site(db_url)
    yield site, _bearer(site)
    site.store.engine.dispose()


def test_patch_changes_several_fields_at_once(api: tuple[Site, dict[str, str]]) -> None:
    site, bearer = api
    number = site.numbers["carol"]
    response = site.client().patch(
        f"/api/tickets/{number}",
        headers=bearer,
        json={
            "priority": "Urgent",
            "type": "Technical",
            "team": "billing",
            "assignee": "bob@example.com",
            "tags": ["printer", "Fire"],
            "status": "Waiting",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["priority"], body["type"], body["team"], body["assignee"]) == (
        "Urgent",
        "Technical",
        "billing",
        "bob@example.com",
    )
    assert (body["tags"], body["status"]) == (["printer", "fire"], "Waiting")
    detail = site.client().get(f"/api/tickets/{number}", headers=bearer).json()
    actions = [e["action"] for e in detail["history"] if e["actor"] == "api:crm"]
    assert actions == ["type", "priority", "team", "tags", "assigned", "status"]
    # null clears team and assignee; a field left out stays.
    cleared = site.client().patch(
        f"/api/tickets/{number}", headers=bearer, json={"team": None, "assignee": None}
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["team"], cleared.json()["assignee"]) == (None, None)
    assert cleared.json()["priority"] == "Urgent"


def test_patch_is_all_or_nothing(api: tuple[Site, dict[str, str]]) -> None:
    """One refused field (an unknown team) leaves every other field as it was."""
    site, bearer = api
    number = site.numbers["dave"]
    before = site.client().get(f"/api/tickets/{number}", headers=bearer).json()
    response = site.client().patch(
        f"/api/tickets/{number}",
        headers=bearer,
        json={"priority": "Low", "team": "nosuch", "tags": ["x"]},
    )
    assert response.status_code == 400 and "no team 'nosuch'" in response.json()["detail"]
    after = site.client().get(f"/api/tickets/{number}", headers=bearer).json()
    assert (after["priority"], after["tags"], after["history"]) == (
        before["priority"],
        before["tags"],
        before["history"],
    )


def test_patch_on_a_closed_ticket_is_409(api: tuple[Site, dict[str, str]]) -> None:
    site, bearer = api
    number = site.numbers["eve"]
    closed = site.client().patch(
        f"/api/tickets/{number}", headers=bearer, json={"status": "Closed"}
    )
    assert closed.status_code == 200
    refused = site.client().patch(
        f"/api/tickets/{number}", headers=bearer, json={"priority": "High"}
    )
    assert refused.status_code == 409
    missing = site.client().patch("/api/tickets/999", headers=bearer, json={"priority": "High"})
    assert missing.status_code == 404
    anonymous = site.client().patch(f"/api/tickets/{number}", json={"priority": "High"})
    assert anonymous.status_code == 401
