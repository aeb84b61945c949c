"""A queue as a support team has it after a morning: more tickets than the three of
``make_site``, with owners, tags, replies, notes, time and to-dos, and the worst text a
phone has to fit (a long address, an unbroken word, a URL with no spaces).

tests/test_web_phones.py checks every page on it; docs/screenshots.py photographs it.
"""

from __future__ import annotations

from tests.mail import build
from tests.web_support import Site, form, sign_in_agent

LONG_ADDRESS = "accounts.payable.department.notifications@subsidiary-holdings.globex.test"
LONG_WORD = "Zugangsdatenwiederherstellungsproblembeschreibungsformular"
LONG_URL = (
    "https://intranet.acme.test/vpn/troubleshooting/client-configuration"
    "?profile=remote-workers-europe-west&session=9f86d081884c7d659a2feaa0c55ad015"
)


def seed_showcase(site: Site) -> dict[str, int]:
    """Add tickets and agents' work to a seeded ``make_site``; returns the new numbers by
    name (``site.numbers`` gains them too)."""
    clock = site.clock
    add = {
        "invoice": build(
            sender=f"Globex Accounts Payable <{LONG_ADDRESS}>",
            subject="Invoice 2026-0113 charged twice for the January subscription",
            body=(
                "Hello,\n\nour card was charged twice for invoice 2026-0113 (EUR 1,250.00"
                " each, on 2 and 3 January). Please refund the second charge.\n\n"
                "Kind regards,\nAccounts Payable\n"
            ),
        ),
        "password": build(
            sender="Dave <dave@acme.test>",
            subject=f"{LONG_WORD} rejects every new password",
            body=(
                "The reset form says 'password too weak' for everything, even 40 characters.\n"
                f"I followed {LONG_URL} step by step.\n"
            ),
        ),
        "laptop": build(
            sender="Carol <carol@acme.test>",
            subject="New laptop for Maria (starts on Monday)",
            body="Maria Lopez joins the sales team on Monday and needs a laptop and an account.\n",
        ),
        "shipment": build(
            sender="Eve <eve@globex.test>",
            subject="Shipment 4471 held at customs",
            body="Customs want a commercial invoice for shipment 4471. Can you send one?\n",
        ),
    }
    numbers: dict[str, int] = {}
    for name, raw in add.items():
        clock.advance(minutes=17)
        numbers[name] = site.ingest(raw)
    site.numbers.update(numbers)

    agent = sign_in_agent(site)
    n = site.numbers

    def act(number: int, action: str, **fields: str) -> None:
        clock.advance(minutes=6)
        done = form(agent, f"/agent/tickets/{number}/{action}", f"/tickets/{number}", **fields)
        assert done.status_code == 303, (action, done.status_code, done.text[:500])

    act(n["carol"], "assign", assignee="ann@example.com")
    act(n["carol"], "priority", priority="Urgent")
    act(n["carol"], "tags", add="hardware, fire, room-4")
    act(
        n["carol"],
        "reply",
        body=(
            "Facilities are on their way with an extinguisher. Please keep the door closed"
            " and do not use the printer again until we have replaced it."
        ),
        status="Open",
    )
    act(n["carol"], "activity", type="Call", minutes="15", text="Called facilities and Carol.")
    act(n["carol"], "link", kind="related", other=str(n["laptop"]))
    clock.advance(minutes=3)
    todo = form(
        agent,
        f"/agent/tickets/{n['carol']}/todos",
        f"/tickets/{n['carol']}",
        title="Order a replacement printer for room 4",
        assignee="ann@example.com",
        due="2d",
    )
    assert todo.status_code == 303, todo.text[:500]
    act(n["invoice"], "team", team="billing")
    act(n["invoice"], "assign", assignee="bob@example.com")
    act(n["invoice"], "priority", priority="High")
    act(n["invoice"], "tags", add="refund, card")
    act(n["password"], "assign", assignee="ann@example.com")
    act(n["password"], "tags", add="password")
    act(
        n["password"],
        "reply",
        body="Could you tell us which browser you use? We will try it here.",
        status="Waiting",
    )
    act(n["dave"], "team", team="support")
    act(n["dave"], "note", body="Same VPN gateway as last week's outage; checking the logs.")
    act(n["shipment"], "priority", priority="Low")
    act(n["shipment"], "status", status="On Hold")
    return numbers
