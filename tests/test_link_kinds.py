"""Link kinds (issue 22, item 6): `[tickets] link_kinds`, each with its reverse;
`tickets link NUMBER OTHER --kind K` shows K on NUMBER and the reverse on OTHER."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from mailgate.core.settings import DEFAULT_LINK_KINDS, TicketSettings
from mailgate.db.store import Store
from tests.test_ticket_cli import Cli, desk, show  # noqa: F401 - desk is a fixture


def _links(cli: Cli, number: int) -> list[tuple[int, str]]:
    return [(link["number"], link["kind"]) for link in show(cli, number)["links"]]


def test_a_kind_and_its_reverse_both_ways(desk: Cli) -> None:  # noqa: F811
    linked = desk("tickets", "link", "2", "1", "--kind", "duplicate of", "--as", "ann@example.com")
    assert linked.exit_code == 0, linked.output
    assert "ticket #2 duplicate of #1; #1 duplicated by #2" in linked.output
    assert _links(desk, 2) == [(1, "duplicate of")]
    assert _links(desk, 1) == [(2, "duplicated by")]
    # The reverse's name works too, from the other side; twice changes nothing.
    assert desk("tickets", "link", "1", "2", "--kind", "duplicated by").exit_code == 0
    assert _links(desk, 1) == [(2, "duplicated by")]
    history = [e for e in show(desk, 2)["history"] if e["action"] == "linked"]
    assert [(e["actor"], e["new"], e["detail"]["kind"]) for e in history] == [
        ("ann@example.com", "1", "duplicate of")
    ]


def test_default_is_related_and_an_unknown_kind_is_refused(desk: Cli) -> None:  # noqa: F811
    assert desk("tickets", "link", "1", "2").exit_code == 0
    assert _links(desk, 1) == [(2, "related")] and _links(desk, 2) == [(1, "related")]
    refused = desk("tickets", "link", "1", "2", "--kind", "cousin of")
    assert refused.exit_code == 1
    assert "unknown link kind 'cousin of' (known: related, duplicate of" in refused.output


def test_configured_kinds_replace_the_defaults(desk: Cli, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "mailgate.toml"
    config.write_text(config.read_text() + '\n[tickets.link_kinds]\n"caused by" = "causes"\n')
    assert desk("tickets", "link", "1", "2", "--kind", "causes").exit_code == 0
    assert _links(desk, 1) == [(2, "causes")] and _links(desk, 2) == [(1, "caused by")]
    assert desk("tickets", "link", "1", "2", "--kind", "duplicate of").exit_code == 1


def test_check_config_names_a_bad_kind_with_its_file_and_key(
    desk: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = tmp_path / "mailgate.toml"
    config.write_text(
        config.read_text()
        + '\n[tickets.link_kinds]\n"a name far longer than thirty-two chars" = "x"\n'
        + 'mine = "referenced"\n'
    )
    result = desk("check-config")
    assert result.exit_code == 2
    assert (
        f'{config}: tickets.link_kinds."a name far longer than thirty-two chars": '
        "expected a name of 1 to 32 characters" in result.output
    )
    assert f"{config}: tickets.link_kinds.mine: 'referenced' is the system's own" in result.output


def test_link_pair_finds_a_kind_by_either_name() -> None:
    tickets = TicketSettings()
    assert tickets.link_kinds == DEFAULT_LINK_KINDS
    assert tickets.link_pair("parent of") == ("parent of", "child of")
    assert tickets.link_pair("child of") == ("child of", "parent of")
    assert tickets.link_pair("related") == ("related", "related")
    assert tickets.link_pair("sibling of") is None


def test_upgrade_renames_the_follow_up_links_already_there(db_url: str) -> None:
    """0012 gives the follow-up links the portal wrote before ("followed_by") the name
    the default link kinds use ("followed by"); other kinds stay."""
    store = Store(db_url)
    try:
        store.upgrade("0011_created_at_index")
        at = datetime(2026, 1, 5, tzinfo=UTC)
        with store.engine.begin() as conn:
            for number in (1, 2):
                conn.execute(
                    sa.text(
                        "INSERT INTO tickets (id, number, requester, requester_name, subject, "
                        "type, priority, status, language, tags, created_at, updated_at) VALUES "
                        "(:n, :n, 'c@x.test', '', 's', 'General', 'Normal', 'New', 'en', '[]', "
                        ":at, :at)"
                    ),
                    {"n": number, "at": at},
                )
            for ticket, other, kind in (
                (2, 1, "follows"),
                (1, 2, "followed_by"),
                (1, 2, "related"),
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO ticket_links (ticket_id, other_ticket_id, kind) "
                        "VALUES (:t, :o, :k)"
                    ),
                    {"t": ticket, "o": other, "k": kind},
                )
        store.upgrade()
        with store.engine.connect() as conn:
            kinds = sorted(conn.execute(sa.text("SELECT kind FROM ticket_links")).scalars())
        assert kinds == ["followed by", "follows", "related"]
    finally:
        store.engine.dispose()
