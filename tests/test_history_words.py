"""The ticket history in words (issue 21 item 5): each event the write side records is one
sentence on the agent's page, people are named the same way everywhere, and a customer's
portal reply carries the name of her mails."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import mailgate
from mailgate.core.assignment import AgentView, choose
from mailgate.core.settings import TicketSettings
from mailgate.db.models import Ticket, TicketMessage
from mailgate.db.people import Names, display_name
from mailgate.web import history
from mailgate.web.pages import environment
from tests.mail import build
from tests.web_support import Site, form, sign_in_agent, sign_in_customer

CAROL = "carol@customer.test"
ANN = "ann@example.com"
BOB = "bob@example.com"
NAMES = Names({CAROL: "Carol Customer", ANN: "Ann", BOB: "Bob"}, frozenset({ANN, BOB}))
READER = history.Reader(
    gettext=lambda words: words,
    language="en",
    names=NAMES,
    tickets=TicketSettings(),
    when=environment("en").filters["when"],
)
AT = "2026-01-05T09:30:00+00:00"
LATER = "2026-01-06T09:00:00+00:00"
LATER_WORDS = "Jan 6, 2026, 9:00\u202fAM UTC"


def event(actor: str, action: str, **values: Any) -> dict[str, Any]:
    """A history event as ``queries.show_ticket`` lists it."""
    raw = {
        "at": AT,
        "actor": actor,
        "action": action,
        "field": "",
        "old": "",
        "new": "",
        "detail": {},
    }
    raw.update(values)
    return raw


def say(actor: str, action: str, **values: Any) -> str:
    return history.sentence(event(actor, action, **values), READER)


# One or more events of every action the write side records, and their sentence.
SENTENCES = [
    (event(CAROL, "created", detail={"via": "new", "thread": "no thread headers"}), "Carol Customer opened the ticket by mail"),
    (event(ANN, "created", detail={"via": "portal"}), "Ann opened the ticket in the portal"),
    (event("api:crm", "created", detail={"via": "api"}), "Integration “crm” opened the ticket through the API"),
    (event("cli", "created", detail={"via": "cli"}), "An operator opened the ticket from the command line"),
    (event(CAROL, "customer_reply", detail={"via": "references"}), "Carol Customer replied by mail"),
    (event(CAROL, "customer_reply", detail={"via": "portal"}), "Carol Customer replied in the portal"),
    (event(ANN, "agent_reply", detail={"message": "4"}), "Ann replied to the requester"),
    (event(ANN, "agent_reply", detail={"message": "4", "response": "thanks"}), "Ann replied with the canned response “thanks”"),
    (event(ANN, "note", detail={"message": "5"}), "Ann added an internal note"),
    (event(CAROL, "received_after_close"), "Carol Customer wrote after the ticket was closed"),
    (event("mailer-daemon@x.test", "automatic_received", detail={"reason": "bounce"}), "Automatic mail from mailer-daemon@x.test was filed without changing the ticket"),
    (event("cli", "accepted", detail={"policy": "override"}), "An operator let this mail in despite the intake policy"),
    (event("sam@parts.test", "supplier_message", detail={"supplier": "Parts"}), "sam@parts.test of supplier “Parts” wrote"),
    (event(ANN, "message_to_supplier", detail={"supplier": "Parts"}), "Ann wrote to supplier “Parts”"),
    (event(ANN, "status", field="status", old="Open", new="Waiting"), "Ann changed the status from Open to Waiting"),
    (event(ANN, "status", field="status", old="open", new="pending"), "Ann changed the status from Open to Pending"),
    (event(ANN, "status", field="status", old="Open", new="Closed"), "Closed by Ann"),
    (event("trigger:tidy", "status", field="status", old="Open", new="Closed"), "Closed by trigger “tidy”"),
    (event(ANN, "status", field="status", old="Open", new="Resolved"), "Ann closed the ticket as Resolved"),
    (event(CAROL, "status", field="status", old="Waiting", new="Open"), "Carol Customer replied, so the status went from Waiting to Open"),
    (event("trigger:vip", "priority", field="priority", old="Normal", new="High"), "Trigger “vip” changed the priority from Normal to High"),
    (event(ANN, "type", field="type", old="General", new="Technical"), "Ann changed the type from General to Technical"),
    (event(ANN, "team", field="team", old="support", new="billing"), "Ann moved the ticket from team support to team billing"),
    (event(ANN, "team", field="team", old="support", new=""), "Ann took the ticket out of team support"),
    (event(ANN, "tags", field="tags", old="vpn", new="vpn,urgent,eu"), "Tags added by Ann: urgent and eu"),
    (event(ANN, "tags", field="tags", old="vpn,eu", new="eu"), "Tags removed by Ann: vpn"),
    (event(ANN, "helpers", field="helpers", old="", new=BOB), "Helpers added by Ann: Bob"),
    (event(ANN, "departments", field="departments", old="billing", new=""), "Departments removed by Ann: billing"),
    (event(ANN, "suppliers", field="suppliers", old="", new="Parts"), "Suppliers attached by Ann: Parts"),
    (event(ANN, "date", field="follow_up", old="", new=LATER), f"Ann set the follow-up date to {LATER_WORDS}"),
    (event(ANN, "date", field="action_required", old=LATER, new=""), "Ann cleared the action-required date"),
    (event(ANN, "activity", detail={"type": "Call", "minutes": "15"}), "Ann logged time: Call, 15 min"),
    (event(ANN, "assigned", field="assignee", old="", new=BOB), "Ann assigned the ticket to Bob"),
    (event(ANN, "assigned", field="assignee", old="", new=ANN), "Ann took the ticket"),
    (event(ANN, "assigned", field="assignee", old=BOB, new=ANN), "Ann reassigned the ticket from Bob to Ann"),
    (event("api:crm", "assigned", field="assignee", old=BOB, new=""), "Integration “crm” unassigned the ticket from Bob"),
    (event("assignment", "assigned", field="assignee", new=BOB, detail={"reason": f"round robin in team support: {BOB}"}), "Assigned to Bob automatically: round robin in team support"),
    (event("assignment", "assigned", field="assignee", new=BOB, detail={"reason": "rule vip"}), "Assigned to Bob by rule “vip”"),
    (event("assignment", "assigned", field="assignee", new=BOB, detail={"reason": f"chosen by {ANN}"}), "Ann assigned the ticket to Bob"),
    (event("assignment", "unassigned", detail={"reason": "team support assigns nobody automatically"}), "Left unassigned: team support assigns nobody automatically"),
    (event(ANN, "linked", new="12", detail={"kind": "duplicate of"}), "Ann linked this ticket to #12 (duplicate of)"),
    (event("system", "linked", new="3", detail={"reason": "subject tag #3 but sender does not take part"}), "Linked to #3: this mail named it, but its sender takes no part in it"),
    (event(ANN, "merged_into", new="9"), "Ann merged this ticket into #9"),
    (event(ANN, "merged_from", new="8"), "Ann merged ticket #8 into this one"),
    (
        event("rules", "rules_applied", detail={"matched": ["vip"], "set": {"priority": {"old": "Normal", "new": "High", "rule": "vip"}, "tags": {"old": "", "new": "vip", "rule": "vip"}}}),
        "Rule “vip” set the priority to High. Tags added by rule “vip”: vip",
    ),
    (event("rules", "rules_applied", detail={"matched": ["a", "b"], "set": {}}), "Rules matched: “a” and “b”"),
    (event("trigger:tidy", "trigger", detail={"event": "customer_replied"}), "Trigger “tidy” ran on “customer_replied”"),
    (event("trigger:tidy", "trigger_failed", detail={"event": "created", "reason": "no active agent 'x@y'"}), "Trigger “tidy” could not make its changes: no active agent 'x@y'"),
    (event("sla", "sla_breached", field="first_response", new=LATER, detail={"summary": "SLA first response breached"}), f"The first-response target was missed (due {LATER_WORDS})"),
    (event("sla", "sla_breached", field="resolution", new=LATER, detail={"summary": "SLA resolution breached (met late)"}), f"The ticket was closed after its resolution target (due {LATER_WORDS})"),
    (event("sla", "date_reached", field="follow_up", new=LATER), f"The follow-up date was reached ({LATER_WORDS})"),
    (event(ANN, "todo_added", detail={"todo": "1", "title": "Call back", "assignee": BOB, "due_at": LATER}), f"Ann added the to-do “Call back” for Bob, due {LATER_WORDS}"),
    (event(ANN, "todo_done", detail={"todo": "1", "title": "Call back"}), "Ann marked the to-do “Call back” done"),
    (event("sla", "todo_due", detail={"todo": "1", "due_at": LATER}), f"A to-do fell due ({LATER_WORDS})"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "expected"), SENTENCES, ids=[e["action"] for e, _ in SENTENCES])
def test_each_event_is_one_sentence(raw: dict[str, Any], expected: str) -> None:
    assert history.sentence(raw, READER) == expected


def test_the_examples_cover_every_sentence() -> None:
    """Each action with a sentence has an example above, so none is only a fallback."""
    assert set(history.SENTENCES) <= {raw["action"] for raw, _ in SENTENCES}


def _literals(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        both = (_literals(node.body), _literals(node.orelse))
        return None if None in both else [v for side in both for v in side or []]
    return None


def _keyword_literals(trees: list[ast.Module], call: str, keyword: str) -> list[str]:
    """The literal ``keyword=`` arguments of every call of ``call`` (e.g. MemberKind)."""
    found = []
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) == call:
                found += [
                    v for k in node.keywords if k.arg == keyword for v in _literals(k.value) or []
                ]
    return found


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def recordable_actions() -> set[str]:
    """Every action name the package can record: the ``action`` of each ``history(...)``
    call (``tickets.records``) and ``HistoryEvent(...)`` row. Names computed at run time
    are followed where they come from; one this test does not know how to follow fails
    it, so a new way of recording cannot slip past."""
    package = Path(mailgate.__file__).parent
    files = [p for p in package.rglob("*.py") if "migrations" not in p.parts]
    trees = [ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in files]
    followed = {
        # members.change records ``kind.action``: the MemberKind declarations name them.
        "kind.action": _keyword_literals(trees, "MemberKind", "action"),
        # fields._set_choice records its ``field`` argument, "priority" or "type".
        "field": [
            v
            for tree in trees
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and _name(node.func) == "_set_choice"
            for v in _literals(node.args[2]) or []
        ],
    }
    actions: set[str] = set()
    unknown = []
    for path, tree in zip(files, trees, strict=True):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            expr = next((k.value for k in node.keywords if k.arg == "action"), None)
            if _name(node.func) == "history" and expr is None and len(node.args) >= 5:
                expr = node.args[4]
            if expr is None or _name(node.func) not in ("history", "HistoryEvent"):
                continue
            if path.name == "records.py" and ast.unparse(expr) == "action":
                continue  # records.history itself, writing the action it was given
            values = _literals(expr)
            if values is None:
                values = followed.get(ast.unparse(expr))
            if not values:
                unknown.append(f"{path}:{node.lineno}: {ast.unparse(expr)}")
            actions.update(values or [])
    assert not unknown, "history actions this test cannot follow:\n" + "\n".join(unknown)
    return actions


def test_every_action_the_write_side_records_has_a_sentence() -> None:
    actions = recordable_actions()
    # The scan works: it finds actions of every kind of call.
    assert {"created", "status", "helpers", "priority", "rules_applied", "date_reached"} <= actions
    missing = sorted(actions - set(history.SENTENCES))
    assert not missing, f"history actions without a sentence (web/history_*.py): {missing}"


def test_unknown_and_malformed_events_get_a_neutral_sentence() -> None:
    assert say(ANN, "reopened") == "Ann made a change (reopened)"
    assert say("", "escalated", field="level", old="1", new="2") == (
        "Someone changed level from 1 to 2"
    )
    # A row of an older shape: a detail that is not what this version writes.
    assert say("rules", "rules_applied", detail={"set": {"priority": "High"}}) == (
        "The rules made a change (rules_applied)"
    )
    assert say(ANN, "todo_added", detail=["not", "a", "mapping"]) == "Ann added the to-do “”"


def test_a_translation_with_wrong_placeholders_falls_back_to_english() -> None:
    broken = history.Reader(
        gettext=lambda words: "%(nope)s" if "%(" in words else words,
        language="fr",
        names=NAMES,
        tickets=TicketSettings(),
        when=str,
    )
    assert history.sentence(event(ANN, "note"), broken) == "Ann added an internal note"


def test_a_status_shows_its_configured_name_and_its_translation() -> None:
    french = history.Reader(
        gettext=lambda words: {"Open": "Ouvert", "Waiting": "En attente"}.get(words, words),
        language="fr",
        names=NAMES,
        tickets=TicketSettings(),
        when=str,
    )
    raw = event(ANN, "status", field="status", old="Open", new="Waiting")
    # The msgid itself is not in this small catalog: the English words, with French names.
    assert history.sentence(raw, french) == "Ann changed the status from Ouvert to En attente"


def test_every_assignment_reason_reads_as_words() -> None:
    """The reasons ``core.assignment`` writes are read back into their own sentences;
    a reason reworded there without its pattern here falls to the generic words."""
    bob = AgentView(2, BOB, True, False, ("support",))
    away = AgentView(3, "zed@example.com", True, True, ("support",))
    chosen = [
        choose("round_robin", team="support", agents=[bob]),
        choose("least_open", team="support", agents=[bob]),
        choose("account_owner", team="support", agents=[bob], owner=bob),
    ]
    for choice in chosen:
        raw = event("assignment", "assigned", new=BOB, detail={"reason": choice.reason})
        assert history.sentence(raw, READER) != "Assigned to Bob automatically", choice.reason
    left = [
        choose("none", team="support", agents=[bob]),
        choose("account_owner", team="support", agents=[bob]),
        choose("account_owner", team="support", agents=[bob], owner=away),
        choose("round_robin", team="sales", agents=[bob]),
        choose("least_open", team="support", agents=[bob], open_counts={2: 5}, cap=5),
    ]
    for choice in left:
        assert choice.agent_id is None
        raw = event("assignment", "unassigned", detail={"reason": choice.reason})
        assert history.sentence(raw, READER) != "Left unassigned", choice.reason
    ticket_has_no_team = event("assignment", "unassigned", detail={"reason": "ticket has no team"})
    assert history.sentence(ticket_has_no_team, READER) == "Left unassigned: the ticket has no team"


def test_display_names() -> None:
    names = {CAROL: "Carol Customer"}
    assert display_name(CAROL, names) == "Carol Customer"
    assert display_name("CAROL@customer.test ", names) == "Carol Customer"
    assert display_name("dave@customer.test", names, "Dave") == "Dave"
    assert display_name("dave@customer.test", names) == "dave@customer.test"


def test_the_agent_page_tells_the_history_in_words_and_names_carol_one_way(site: Site) -> None:
    """Carol Customer writes by mail, Ann sets the ticket to Waiting, Carol answers in the
    portal: the agent page reads as sentences, and her portal reply carries her name on
    both pages (and in the database), never her bare address."""
    number = site.ingest(
        build(
            sender=f"Carol Customer <{CAROL}>",
            subject="Scanner jammed",
            body="The scanner on floor 2 is jammed.\n",
        )
    )
    agent = sign_in_agent(site)
    page = f"/tickets/{number}"
    assert form(agent, f"/agent/tickets/{number}/status", page, status="Waiting").status_code == 303
    customer = sign_in_customer(site, CAROL)
    assert form(customer, f"/tickets/{number}/reply", page, body="Still jammed.").status_code == 303

    with site.store.transaction() as session:
        reply = session.scalars(
            select(TicketMessage)
            .join(Ticket, Ticket.id == TicketMessage.ticket_id)
            .where(Ticket.number == number)
            .order_by(TicketMessage.id.desc())
        ).first()
        assert reply is not None and reply.thread_method == "portal"
        assert (reply.author_email, reply.author_name) == (CAROL, "Carol Customer")

    seen = agent.get(page)
    assert seen.status_code == 200
    text = seen.text
    history_part = text[text.index('<ol class="history">', text.index("History</h2>")) :]
    for words in (
        "Carol Customer opened the ticket by mail",
        "Ann changed the status from New to Waiting",
        "Carol Customer replied, so the status went from Waiting to Open",
        "Carol Customer replied in the portal",
    ):
        assert words in history_part, words
    assert "customer_reply" not in history_part and "→" not in history_part
    assert f"<strong>{CAROL}</strong>" not in text
    assert text.count("<strong>Carol Customer</strong>") == 2  # her mail and her reply

    hers = customer.get(page).text
    assert hers.count("<strong>Carol Customer</strong>") == 2
    assert f"<strong>{CAROL}</strong>" not in hers
    # The customer's page shows no history: no internal events, no one's actions.
    assert "changed the status" not in hers and "History" not in hers
