"""To-dos (issue 22, item 4): tasks on a ticket or standalone, added, listed and marked
done through the CLI, the agent portal (forms with the CSRF token) and the API, each a
history event on the ticket of a ticket's to-do. SQLite and PostgreSQL: the CLI runs
against the portal's own database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select

from mailgate.db.models import HistoryEvent, Ticket, Todo
from mailgate.tickets import changes
from mailgate.tickets.actors import Actor
from mailgate.web import api_tokens
from tests.conftest import SECRET
from tests.web_support import Site, form, make_site, sign_in_agent

Cli = Callable[..., Result]
ANN, BOB = "ann@example.com", "bob@example.com"
# Far enough ahead of the real clock (the CLI's) and the portal's test clock alike.
LATER = "2099-01-31T14:00:00+00:00"


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


@pytest.fixture
def mg(site: Site, cli: Cli, tmp_path: Path) -> Cli:
    """`mailgate` with a config file for the portal's database (SQLite or PostgreSQL)."""
    (tmp_path / "mailgate.toml").write_text(
        f'[database]\nurl = "{site.settings.database.url}"\n[security]\nsecret = "{SECRET}"\n'
    )
    return cli


def _todo_history(site: Site, number: int) -> list[tuple[str, str, dict[str, Any]]]:
    with site.store.transaction() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
        return [
            (e.actor, e.action, e.detail)
            for e in session.scalars(
                select(HistoryEvent)
                .where(HistoryEvent.ticket_id == ticket_id, HistoryEvent.action.like("todo%"))
                .order_by(HistoryEvent.id)
            )
        ]


def _listed(mg: Cli, *args: str) -> list[dict[str, Any]]:
    result = mg("todos", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


# --- the CLI --------------------------------------------------------------------------


def test_cli_adds_lists_and_marks_done_with_history(site: Site, mg: Cli) -> None:
    """add on a ticket and standalone; list all, --mine, --ticket, --overdue, --all;
    done once (a history event) and again (nothing changes)."""
    n = site.numbers["carol"]
    on_ticket = mg(
        "todos", "add", "--ticket", str(n), "--title", "Call Carol back",
        "--assignee", BOB, "--due", LATER, "--as", ANN,
    )  # fmt: skip
    assert on_ticket.exit_code == 0, on_ticket.output
    assert f"to-do 1 added on ticket #{n}, for {BOB}, due {LATER}" in on_ticket.output
    alone = mg("todos", "add", "--title", "Renew the certificate", "--assignee", ANN, "--due", "2d")
    assert alone.exit_code == 0 and "to-do 2 added standalone, for ann" in alone.output
    assert mg("todos", "add", "--title", "Someday", "--json").exit_code == 0
    assert _todo_history(site, n) == [
        (
            ANN,
            "todo_added",
            {"todo": "1", "title": "Call Carol back", "assignee": BOB, "due_at": LATER},
        )
    ]
    everything = _listed(mg)
    # Open ones by due date, those without one last.
    assert [(t["id"], t["ticket"], t["assignee"]) for t in everything] == [
        (2, None, ANN),
        (1, n, BOB),
        (3, None, None),
    ]
    assert everything[1]["created_by"] == ANN and everything[0]["created_by"] == "cli"
    assert [t["id"] for t in _listed(mg, "--mine", "--as", ANN)] == [2]
    assert [t["id"] for t in _listed(mg, "--ticket", str(n))] == [1]
    assert _listed(mg, "--overdue") == []
    # A task noted late is allowed, and overdue at once.
    late = mg("todos", "add", "--title", "Missed call", "--due", "2001-01-01", "--as", BOB)
    assert late.exit_code == 0 and "due 2001-01-01T00:00:00+00:00" in late.output
    assert [(t["id"], t["overdue"]) for t in _listed(mg, "--overdue")] == [(4, True)]
    assert mg("todos", "done", "4").exit_code == 0
    table = mg("todos", "list")
    assert "Renew the certificate" in table.output and f"#{n}" in table.output

    done = mg("todos", "done", "1", "--as", BOB)
    assert done.exit_code == 0 and "to-do 1 done" in done.output
    again = mg("todos", "done", "1", "--as", ANN)
    assert again.exit_code == 0 and "to-do 1 was already done" in again.output
    assert [a for a, action, _ in _todo_history(site, n) if action == "todo_done"] == [BOB]
    assert [t["id"] for t in _listed(mg)] == [2, 3]
    finished = _listed(mg, "--all")[2:]
    assert [(t["id"], t["done_by"], t["overdue"]) for t in finished] == [
        (4, "cli", False),
        (1, BOB, False),
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("add", "--title", "x", "--assignee", "nobody@example.com"), "no active agent"),
        (("add", "--title", "x", "--due", "soon"), "cannot read 'soon' as a date"),
        (("add", "--title", "x", "--due", "999999w"), "outside the dates"),
        (("add", "--title", "   "), "a to-do needs a title"),
        (("add", "--title", "two\nlines"), "one line"),
        (("add", "--title", "x", "--ticket", "4040"), "no ticket #4040"),
        (("done", "4040"), "no to-do 4040"),
        (("list", "--mine"), "'cli' is no agent"),
    ],
)
def test_cli_refusals_are_one_line(mg: Cli, args: tuple[str, ...], words: str) -> None:
    result = mg("todos", *args)
    assert result.exit_code == 1
    assert words in result.output and "Traceback" not in result.output


def test_a_closed_tickets_todo_can_be_done_but_not_added(site: Site, mg: Cli) -> None:
    """Closing is final: no new to-do on it; one already there may still be cleared."""
    n = site.numbers["eve"]
    assert mg("todos", "add", "--ticket", str(n), "--title", "Check invoice").exit_code == 0
    with site.store.transaction() as session:
        changes.close(
            session, settings=site.settings, number=n, actor=Actor("cli"), at=site.clock()
        )
    refused = mg("todos", "add", "--ticket", str(n), "--title", "One more")
    assert refused.exit_code == 1 and "is Closed" in refused.output
    assert mg("todos", "done", "1").exit_code == 0
    assert [action for _, action, _ in _todo_history(site, n)] == ["todo_added", "todo_done"]


# --- the agent portal -----------------------------------------------------------------


def test_portal_ticket_page_adds_lists_and_marks_done(site: Site) -> None:
    """The ticket page's to-do form and Done button, each back to the ticket."""
    client = sign_in_agent(site)
    n = site.numbers["carol"]
    page = f"/tickets/{n}"
    shown = client.get(page).text
    assert "No to-dos on this ticket." in shown
    assert f'action="/agent/tickets/{n}/todos"' in shown
    assert f'<option value="{ANN}" selected>' in shown  # for oneself unless changed
    added = form(
        client, f"/agent/tickets/{n}/todos", page, title="Ring Carol", due="2d", assignee=BOB
    )
    assert (added.status_code, added.headers["location"]) == (303, page + "?done=todos")
    [todo] = _rows(site)
    assert (todo.title, todo.assignee_id is not None, todo.created_by) == ("Ring Carol", True, ANN)
    assert todo.due_at is not None and todo.due_at.isoformat() == "2026-01-07T09:30:00+00:00"
    shown = client.get(page).text
    assert "Ring Carol" in shown and f'action="/agent/todos/{todo.id}/done"' in shown
    done = form(client, f"/agent/todos/{todo.id}/done", page, back="ticket")
    assert (done.status_code, done.headers["location"]) == (303, page + "?done=todo_done")
    assert [(a, action) for a, action, _ in _todo_history(site, n)] == [
        (ANN, "todo_added"),
        (ANN, "todo_done"),
    ]
    shown = client.get(page).text
    assert f'action="/agent/todos/{todo.id}/done"' not in shown and "Ring Carol" in shown


def test_portal_my_todos_page(site: Site) -> None:
    """My to-dos: the signed-in agent's open ones, from every ticket and none; a
    standalone one added there; Done returns there; linked from the navigation."""
    client = sign_in_agent(site)
    n = site.numbers["dave"]
    # As a browser posts them: the assignee field is the agent's own address unless changed.
    page = f"/tickets/{n}"
    add = f"/agent/tickets/{n}/todos"
    form(client, add, page, title="VPN logs", assignee=ANN, due="1h")
    form(client, add, page, title="Part for Bob", assignee=BOB)
    form(client, add, page, title="Unassigned one", assignee="")
    mine = "/agent/todos"
    bad = form(client, mine, mine, title="Weekly report", assignee=ANN, due="next week")
    assert bad.status_code == 400 and "cannot read" in bad.text and f'href="{mine}"' in bad.text
    added = form(client, mine, mine, title="Weekly report", assignee=ANN, due="1w")
    assert (added.status_code, added.headers["location"]) == (303, "/agent/todos?done=todos")
    site.clock.advance(hours=2)  # the VPN one is overdue now
    mine = client.get("/agent/todos")
    assert mine.status_code == 200 and 'href="/agent/todos">My to-dos</a>' in mine.text
    text = mine.text
    assert text.index("VPN logs") < text.index("Weekly report")
    assert "Part for Bob" not in text and "Unassigned one" not in text
    assert "Part for Bob" in client.get(page).text
    assert f'<a href="/tickets/{n}">#{n}</a>' in text and "overdue" in text
    weekly = next(t for t in _rows(site) if t.title == "Weekly report")
    assert weekly.ticket_id is None
    done = form(client, f"/agent/todos/{weekly.id}/done", "/agent/todos", back="todos")
    assert (done.status_code, done.headers["location"]) == (303, "/agent/todos?done=todo_done")
    assert "Weekly report" not in client.get("/agent/todos").text


def test_portal_refusals(site: Site) -> None:
    """CSRF, a closed ticket, a bad value, an unknown to-do; customers get no to-dos."""
    client = sign_in_agent(site)
    n = site.numbers["eve"]
    page = f"/tickets/{n}"
    no_token = client.post(f"/agent/tickets/{n}/todos", data={"title": "x"})
    assert no_token.status_code == 403
    assert client.post("/agent/todos", data={"title": "x"}).status_code == 403
    bad = form(client, f"/agent/tickets/{n}/todos", page, title="x", due="someday")
    assert bad.status_code == 400 and "cannot read" in bad.text and f'href="{page}"' in bad.text
    unknown = form(client, "/agent/todos/4040/done", "/agent/todos")
    assert unknown.status_code == 404
    assert form(client, f"/agent/tickets/{n}/close", page, confirm="yes").status_code == 303
    refused = form(client, f"/agent/tickets/{n}/todos", page, title="late")
    assert refused.status_code == 409 and "closed" in refused.text
    assert f'action="/agent/tickets/{n}/todos"' not in client.get(page).text
    assert _rows(site) == []
    anonymous = site.client().get("/agent/todos")
    assert anonymous.status_code == 303 and "/agent/sign-in" in anonymous.headers["location"]


def _rows(site: Site) -> list[Todo]:
    with site.store.transaction() as session:
        return list(session.scalars(select(Todo).order_by(Todo.id)))


# --- the API --------------------------------------------------------------------------


def _bearer(site: Site, name: str = "crm", agent: str | None = None) -> dict[str, str]:
    with site.store.transaction() as session:
        token = api_tokens.add(session, name, site.clock(), agent=agent)
    return {"Authorization": f"Bearer {token}"}


def test_api_adds_lists_and_marks_done(site: Site) -> None:
    client, crm = site.client(), _bearer(site)
    n = site.numbers["carol"]
    body = {
        "title": "Send the RMA form",
        "ticket": n,
        "assignee": BOB,
        "due_at": "2026-01-05T14:30+01:00",
    }
    made = client.post("/api/todos", headers=crm, json=body)
    assert made.status_code == 201, made.text
    todo = made.json()
    assert (todo["ticket"], todo["assignee"], todo["created_by"]) == (n, BOB, "api:crm")
    assert todo["due_at"] == "2026-01-05T13:30:00+00:00" and todo["overdue"] is False
    alone = client.post("/api/todos", headers=crm, json={"title": "Audit tokens"}).json()
    assert alone["ticket"] is None and alone["due_at"] is None
    assert [t["id"] for t in client.get("/api/todos", headers=crm).json()] == [
        todo["id"],
        alone["id"],
    ]
    by_bob = client.get("/api/todos", headers=crm, params={"assignee": BOB}).json()
    assert [t["id"] for t in by_bob] == [todo["id"]]
    nobody = client.get("/api/todos", headers=crm, params={"assignee": "x@example.com"})
    assert nobody.status_code == 200 and nobody.json() == []
    on_ticket = client.get("/api/todos", headers=crm, params={"ticket": n}).json()
    assert [t["id"] for t in on_ticket] == [todo["id"]]
    site.clock.advance(hours=5)
    late = client.get("/api/todos", headers=crm, params={"overdue": "true"}).json()
    assert [(t["id"], t["overdue"]) for t in late] == [(todo["id"], True)]
    # Bob's own token acts as Bob, and "me" is Bob.
    bob = _bearer(site, "bobs", agent=BOB)
    assert [t["id"] for t in client.get("/api/todos?assignee=me", headers=bob).json()] == [
        todo["id"]
    ]
    done = client.post(f"/api/todos/{todo['id']}/done", headers=bob)
    assert done.status_code == 200 and done.json()["done_by"] == BOB
    again = client.post(f"/api/todos/{todo['id']}/done", headers=crm)
    assert again.status_code == 200 and again.json()["done_by"] == BOB
    assert [t["id"] for t in client.get("/api/todos", headers=crm).json()] == [alone["id"]]
    with_done = client.get("/api/todos", headers=crm, params={"done": "true"}).json()
    assert [t["id"] for t in with_done] == [alone["id"], todo["id"]]
    assert [(a, action) for a, action, _ in _todo_history(site, n)] == [
        ("api:crm", "todo_added"),
        (BOB, "todo_done"),
    ]


def test_api_errors(site: Site) -> None:
    client, crm = site.client(), _bearer(site)
    n = site.numbers["eve"]
    assert client.get("/api/todos").status_code == 401
    for body, code, words in (
        ({"title": "x", "assignee": "nobody@example.com"}, 400, "no active agent"),
        ({"title": "x", "due_at": "0001-01-01T00:30+01:00"}, 400, "outside the dates"),
        ({"title": "x", "due_at": "2026-01-31T14:00"}, 422, "timezone"),
        ({"title": "x", "due_at": "2d"}, 422, ""),
        ({"title": "x", "ticket": 4040}, 404, "no ticket #4040"),
        ({"title": "two\nlines"}, 422, ""),
        ({"title": ""}, 422, ""),
    ):
        answer = client.post("/api/todos", headers=crm, json=body)
        assert answer.status_code == code and words in answer.text, body
    assert client.post("/api/todos/4040/done", headers=crm).status_code == 404
    assert client.get("/api/todos?mine=1", headers=crm).status_code == 400
    assert client.get("/api/todos?ticket=1&ticket=2", headers=crm).status_code == 400
    me = client.get("/api/todos?assignee=me", headers=crm)
    assert me.status_code == 403 and "agent's token" in me.text
    client.post(f"/api/tickets/{n}/status", headers=crm, json={"status": "Closed"})
    closed = client.post("/api/todos", headers=crm, json={"title": "late", "ticket": n})
    assert closed.status_code == 409 and "closed" in closed.text
    assert _rows(site) == []


def test_openapi_describes_the_todo_operations(site: Site) -> None:
    schema = site.client().get("/api/openapi.json").json()
    assert {"/api/todos", "/api/todos/{todo_id}/done"} <= set(schema["paths"])
    post = schema["paths"]["/api/todos"]["post"]
    assert {"201", "400", "401", "404", "409", "422"} <= set(post["responses"])
