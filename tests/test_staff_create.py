"""Staff open tickets for customers with a team and an assignee of their choosing
(issue 20, item 2): the choice wins over the rules and the team's strategy; the
requester is acknowledged and the chosen agent told, content-free as always."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_ticket_cli import Cli, desk, notices, show  # noqa: F401 - desk is a fixture


def _create(cli: Cli, *options: str) -> tuple[int, str]:
    result = cli(
        "tickets", "create", "--requester", "dora@customer.test", "--subject", "Invoice 7",
        *options, "-", input="Please check invoice 7.\n",
    )  # fmt: skip
    return result.exit_code, result.output


def test_chosen_team_and_assignee_with_their_notices(desk: Cli) -> None:  # noqa: F811
    code, output = _create(desk, "--assignee", "bob@example.com", "--as", "ann@example.com")
    assert code == 0, output
    number = int(output.strip())
    ticket = show(desk, number)
    assert (ticket["team"], ticket["assignee"]) == ("support", "bob@example.com")
    assigned = [e for e in ticket["history"] if e["action"] == "assigned"]
    assert [e["detail"]["reason"] for e in assigned] == ["chosen by ann@example.com"]
    assert "dora@customer.test" in [n["recipient"] for n in notices(desk, "acknowledgement")]
    assert [n["recipient"] for n in notices(desk, "assigned")] == ["bob@example.com"]


def test_unknown_team_or_agent_opens_nothing(desk: Cli) -> None:  # noqa: F811
    before = len(json.loads(desk("tickets", "list", "--json").output))
    assert _create(desk, "--team", "nosuch") == (1, "mailgate: no team 'nosuch'\n")
    code, output = _create(desk, "--assignee", "nobody@example.com")
    assert code == 1 and "no active agent 'nobody@example.com'" in output
    assert len(json.loads(desk("tickets", "list", "--json").output)) == before


def test_a_chosen_team_wins_over_the_rules(desk: Cli, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "mailgate.toml"
    config.write_text(
        config.read_text()
        + '[[teams]]\nname = "billing"\nassignment = "none"\n'
        + '[[rules]]\nname = "invoices"\nwhen = { subject = "(?i)invoice" }\n'
        + 'set = { team = "billing", priority = "High" }\n'
    )
    code, by_rule = _create(desk)
    assert code == 0, by_rule
    ruled = show(desk, int(by_rule.strip()))
    assert (ruled["team"], ruled["priority"]) == ("billing", "High")
    code, chosen = _create(desk, "--team", "support")
    assert code == 0, chosen
    kept = show(desk, int(chosen.strip()))
    assert (kept["team"], kept["priority"]) == ("support", "High")  # the rest of the rule holds
