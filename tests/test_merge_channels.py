"""Merging tickets from each channel (issue 20, item 7): `mailgate tickets merge NUMBER
INTO`, the agent portal's merge form (a confirmation first, CSRF on every post) and
`POST /api/tickets/{number}/merge`, all through `tickets.merge.merge`. SQLite and
PostgreSQL; what a merge does is tests/test_merge.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from mailgate.core.settings import MERGED_FROM, MERGED_INTO
from tests.conftest import SECRET
from tests.test_merge import _show, _with_outbox
from tests.test_web_api import _bearer
from tests.web_support import Site, form, make_site, sign_in_agent

Cli = Callable[..., Result]


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    """The seeded portal (tests/test_merge.py's): Carol's and Dave's tickets (Acme), Eve's."""
    s = make_site(db_url, adjust=_with_outbox(tmp_path / "outbox"))
    yield s
    s.store.engine.dispose()


@pytest.fixture
def desk(site: Site, cli: Cli, tmp_path: Path) -> Cli:
    """The CLI on the site's database."""
    (tmp_path / "mailgate.toml").write_text(
        f'[database]\nurl = "{site.settings.database.url}"\n[security]\nsecret = "{SECRET}"\n'
        f'[outbound]\nfolder = "{tmp_path / "outbox"}"\n'
    )
    return cli


def test_cli_merges_and_refuses_in_one_line(site: Site, desk: Cli) -> None:
    carol, dave, eve = site.numbers["carol"], site.numbers["dave"], site.numbers["eve"]
    done = desk("tickets", "merge", str(carol), str(dave), "--as", "ann@example.com")
    assert done.exit_code == 0, done.output
    assert done.output == (
        f"ticket #{carol} merged into #{dave} (messages moved: 2, participants added: 1); "
        f"#{carol} is Closed\n"
    )
    assert _show(site, carol)["history"][-1]["actor"] == "ann@example.com"
    for args, words in (
        ((carol, dave), f"mailgate: ticket #{carol} was merged into #{dave}\n"),
        ((dave, dave), f"mailgate: ticket #{dave} cannot be merged into itself\n"),
        ((dave, 99), "mailgate: no ticket #99\n"),
        ((dave, eve), "belong to different customer accounts"),
    ):
        refused = desk("tickets", "merge", *map(str, args))
        assert refused.exit_code == 1 and words in refused.output, refused.output
        assert "Traceback" not in refused.output
    linked = desk("tickets", "link", str(dave), str(eve), "--kind", MERGED_INTO)
    assert linked.exit_code == 1 and "made by mailgate itself" in linked.output


def test_check_config_keeps_the_merge_kinds_for_the_system(
    site: Site, desk: Cli, tmp_path: Path
) -> None:
    config = tmp_path / "mailgate.toml"
    config.write_text(
        config.read_text()
        + '[tickets.link_kinds]\n"merged into" = "absorbs"\nmine = "merged from"\n'
    )
    result = desk("check-config")
    assert result.exit_code == 2
    for key, kind in (('"merged into"', "merged into"), ("mine", "merged from")):
        assert f"{config}: tickets.link_kinds.{key}: {kind!r} is the system's own" in result.output


def test_cli_json_prints_the_target(site: Site, desk: Cli) -> None:
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    done = desk("tickets", "merge", str(carol), str(dave), "--json")
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    assert (shown["number"], shown["links"]) == (dave, [{"number": carol, "kind": MERGED_FROM}])
    assert shown["history"][-1]["actor"] == "cli"


def test_portal_merges_after_a_confirmation(site: Site) -> None:
    """The ticket page's form asks first (showing both tickets), then merges and goes to
    the target; every post needs the session's CSRF token."""
    carol, dave = site.numbers["carol"], site.numbers["dave"]
    client = sign_in_agent(site)
    page = f"/tickets/{carol}"
    assert f'action="/agent/tickets/{carol}/merge"' in client.get(page).text
    asked = form(client, f"/agent/tickets/{carol}/merge", page, into=f"#{dave}")
    assert asked.status_code == 200
    assert f"Merge #{carol} into #{dave}?" in asked.text and "VPN is down" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert _show(site, carol)["status"] == "New"  # asking changed nothing
    no_token = client.post(
        f"/agent/tickets/{carol}/merge", data={"into": str(dave), "confirm": "yes"}
    )
    assert no_token.status_code == 403 and _show(site, carol)["status"] == "New"
    done = form(client, f"/agent/tickets/{carol}/merge", page, into=str(dave), confirm="yes")
    assert (done.status_code, done.headers["location"]) == (303, f"/tickets/{dave}?done=merge")
    assert _show(site, carol)["links"] == [{"number": dave, "kind": MERGED_INTO}]
    assert _show(site, carol)["history"][-1]["actor"] == "ann@example.com"
    shown = client.get(page).text
    assert f'action="/agent/tickets/{carol}/merge"' not in shown  # closed: no more forms
    again = form(
        client, f"/agent/tickets/{carol}/merge", f"/tickets/{dave}", into=str(dave), confirm="yes"
    )
    assert again.status_code == 409 and "was merged into" in again.text


@pytest.mark.parametrize(
    ("into", "code", "words"),
    [
        ("soon", 400, "Give the number of another ticket to merge into."),
        ("²", 400, "Give the number of another ticket to merge into."),
        ("1", 400, "Give the number of another ticket to merge into."),
        ("99", 400, "There is no ticket #99 to merge into."),
    ],
)
def test_portal_explains_a_wrong_target(site: Site, into: str, code: int, words: str) -> None:
    carol = site.numbers["carol"]
    client = sign_in_agent(site)
    response = form(client, f"/agent/tickets/{carol}/merge", f"/tickets/{carol}", into=into)
    assert response.status_code == code and words in response.text
    assert f'href="/tickets/{carol}"' in response.text


def test_portal_refusal_comes_back_as_a_page(site: Site) -> None:
    carol, eve = site.numbers["carol"], site.numbers["eve"]
    client = sign_in_agent(site)
    page = f"/tickets/{carol}"
    refused = form(client, f"/agent/tickets/{carol}/merge", page, into=str(eve), confirm="yes")
    assert refused.status_code == 409 and "different customer accounts" in refused.text
    assert _show(site, carol)["status"] == "New"


def test_api_merges_and_answers_with_the_target(site: Site) -> None:
    carol, dave, eve = site.numbers["carol"], site.numbers["dave"], site.numbers["eve"]
    bearer = _bearer(site)
    client = site.client()
    assert client.post(f"/api/tickets/{carol}/merge", json={"into": dave}).status_code == 401
    done = client.post(f"/api/tickets/{carol}/merge", headers=bearer, json={"into": dave})
    assert done.status_code == 200, done.text
    assert (done.json()["number"], done.json()["status"]) == (dave, "New")
    merged = client.get(f"/api/tickets/{carol}", headers=bearer).json()
    assert (merged["status"], merged["links"]) == (
        "Closed",
        [{"number": dave, "kind": MERGED_INTO}],
    )
    assert merged["history"][-1]["actor"] == "api:crm"
    for number, body, code in (
        (carol, {"into": dave}, 409),
        (dave, {"into": dave}, 409),
        (dave, {"into": 99}, 404),
        (dave, {"into": eve}, 409),
        (dave, {"into": 0}, 422),
        (dave, {}, 422),
    ):
        response = client.post(f"/api/tickets/{number}/merge", headers=bearer, json=body)
        assert response.status_code == code, (body, response.text)
    schema = client.get("/api/openapi.json").json()
    assert "/api/tickets/{number}/merge" in schema["paths"]
