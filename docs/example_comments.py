"""What config.example.toml says of each setting, for docs/configuration.md (docs/gen.py):
its comments, read per table and key, and the descriptions of the keys it leaves without
one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from docs.markdown import code as _code

_HEADER = re.compile(r"^(#\s*)?\[(\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^(#\s*)?([A-Za-z0-9_-]+)\s*=\s*(.*)$")


@dataclass
class Comments:
    """What config.example.toml says: per table an introduction, per key a description
    and its position (so keys are listed in the order the file explains them)."""

    preamble: list[str] = field(default_factory=list)  # paragraphs above the first table
    intro: dict[str, str] = field(default_factory=dict)
    description: dict[str, str] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)


def _split_value(rest: str) -> tuple[str, int]:
    """The inline comment of ``rest`` (what follows ``key =``) and the bracket depth its
    value leaves open; a ``#`` inside a string is part of the value."""
    depth, quote, i = 0, "", 0
    while i < len(rest):
        ch = rest[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "#":
            return rest[i + 1 :].strip(), depth
        i += 1
    return "", depth


def _uncomment(line: str) -> str:
    return re.sub(r"^#\s?", "", line.strip())


def _joined(block: list[str]) -> str:
    return " ".join(line for line in block if line)


def _paragraphs(block: list[str]) -> list[str]:
    """A comment block as paragraphs: an empty comment line (``#``) separates them."""
    out, current = [], []
    for line in [*block, ""]:
        if line:
            current.append(line)
        elif current:
            out.append(" ".join(current))
            current = []
    return out


def read_example(text: str, keys: dict[str, set[str]]) -> Comments:
    """Attach each comment block to the header or key right below it (no blank line
    between), and each inline comment to its key.

    A block above a key that also names later keys of the same group (no blank line
    between) is pointed to from those keys: "See `first_key` above.".

    ``keys``: per table path ("" for the top level), the names of its keys."""
    out = Comments()
    table = ""
    block: list[str] = []
    group_first, group_text = "", ""  # the key that owns the block of the current group
    started = False  # past the first table header
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        line = lines[n].strip()
        n += 1
        if not line:
            if block and not started:
                out.preamble += _paragraphs(block)
            block, group_first, group_text = [], "", ""
            continue
        header = _HEADER.match(line)
        if header and (not header.group(1) or header.group(3) in keys):
            table, started = header.group(3), True
            if block:
                out.intro[table] = _joined(block)
            block, group_first, group_text = [], "", ""
            continue
        key = _KEY.match(line)
        if key and (not key.group(1) or key.group(2) in keys.get(table, ())):
            name = key.group(2)
            inline, depth = _split_value(key.group(3))
            while depth > 0 and n < len(lines):  # a value over several lines
                more = _uncomment(lines[n]) if key.group(1) else lines[n]
                n += 1
                _, opened = _split_value(more)
                depth += opened
            dotted = f"{table}.{name}" if table else name
            out.position.setdefault(dotted, n)
            parts = []
            if block:
                parts.append(_joined(block))
                group_first, group_text = name, _joined(block)
            elif group_first and re.search(rf"\b{re.escape(name)}\b", group_text):
                parts.append(f"See {_code(group_first)} above.")
            if inline:
                parts.append(_uncomment("# " + inline))
            if parts and dotted not in out.description:
                out.description[dotted] = " ".join(parts)
            block = []
            continue
        if line.startswith("#"):
            block.append(_uncomment(line))
            # A comment line ends the group: what follows has its own block.
            group_first, group_text = "", ""
    return out


# ---------------------------------------------------------------------------------------
# Keys config.example.toml leaves without a comment of their own


def more() -> dict[str, str]:
    """Descriptions for keys that config.example.toml does not comment on. The file wins:
    once it describes one of these keys, docs/gen.py refuses to run until the entry
    here is deleted, and an entry for a key that no longer exists is refused too."""
    from mailgate.core.validation import STATUS_CATEGORIES

    return {
        "smtp.listen": "HOST:PORT the receiver (`mailgate smtp`, and `mailgate run`'s smtp "
        "role) listens on.",
        "smtp.max_recipients": "Recipients per message; the next `RCPT` gets `452 4.5.3` "
        "and the client sends the rest later.",
        "smtp.max_connections_per_ip": "Connections from one client address at once; beyond "
        "this, new ones get 421.",
        "imap.mailboxes.name": "Names the mailbox in logs, in the database (its lease and "
        "cursor) and in `MAILGATE_IMAP_<NAME>_PASSWORD`; unique.",
        "imap.mailboxes.host": "The IMAP server.",
        "imap.mailboxes.port": "993 for `tls`, usually 143 for `starttls`.",
        "imap.mailboxes.username": "The login name.",
        "imap.mailboxes.folder": "The folder read for new mail.",
        "outbound.from": "From and envelope sender of every notice, so bounces come back to "
        "mailgate; its domain is the domain of the Message-IDs mailgate mints, and "
        "`local+token@domain` the signed Reply-To.",
        "outbound.smtp.host": "The smarthost.",
        "outbound.smtp.port": "25 or 587 for `starttls`, 465 for `tls`.",
        "outbound.smtp.username": "AUTH user name; empty: no AUTH.",
        "outbound.smtp.timeout": "Seconds to wait for the smarthost (connecting, each reply).",
        "web.cookie_name": "The name of the session cookie.",
        "web.sign_in_requests_per_ip_per_hour": "See `sign_in_requests_per_address_per_hour` "
        "above.",
        "limits.max_headers": "Header fields in one message; a message over any of these "
        "limits is stored, then quarantined with the limit named.",
        "tickets.types": "The types a ticket can have; at least one.",
        "tickets.priorities": "The priorities a ticket can have; at least one. `[sla]` "
        "targets are set per priority.",
        "tickets.statuses.name": "The status as agents see and set it; unique.",
        "tickets.statuses.category": "One of "
        + ", ".join(f"`{c}`" for c in STATUS_CATEGORIES)
        + ". `new`, `active` and `closed` need at least one status each; new tickets take the "
        "first `new` "
        "one, a customer's reply moves a `waiting` ticket back to the status it had before "
        "it waited (the first `active` one when that was a `new` one or its history does not "
        "say), and a "
        "ticket in a `closed` status never changes again.",
        "defaults.type": "The type of a new ticket no rule sets; one of `tickets.types`.",
        "defaults.priority": "The priority of a new ticket no rule sets; one of "
        "`tickets.priorities`.",
        "defaults.language": "The language of notices to agents, and to customers when "
        "neither their account nor their message names one; of the portal when neither its "
        "switcher, the account nor the browser names en, fr or es.",
        "teams.name": "The team's name, as `defaults.team`, rules and agents name it.",
        "agents.email": "The agent's address: their sign-in name and where their notices go.",
        "agents.name": "Display name.",
        "agents.teams": "The teams (names from `[[teams]]`) the agent is a member of; a "
        "team's `assignment` chooses among its members.",
        "customers.name": "The account's name, as the rules' `customer` condition names it.",
        "customers.domains": "Mail domains whose senders belong to the account (exactly "
        "these domains); of two accounts listing a domain, the one made first.",
        "customers.addresses": "Single addresses that belong to the account; an address "
        "listed by an account wins over a domain listed by another.",
        "customers.language": "The language of notices to the account's people, and of "
        "the portal for them.",
        "customers.admins": "Addresses that see every ticket of the account in the portal; "
        'under `intake.policy = "admins"`, the only ones who may open tickets.',
        "rules.name": "Unique; the ticket history names the rules that matched.",
        "rules.when": "Conditions, all of which must match (see above).",
        "rules.set": "Actions (see above).",
    }
