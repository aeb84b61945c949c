"""Cross-field checks on converted settings: choices, references between sections (rules
and triggers: ``rule_checks``; chat channels and webhooks: ``chat_checks``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from mailgate.core.chat_checks import check_channels
from mailgate.core.rule_checks import check_rules, check_triggers
from mailgate.core.settings import SYSTEM_LINK_KINDS, Settings

STATUS_CATEGORIES = ("new", "active", "waiting", "on_hold", "closed")
ASSIGNMENT_STRATEGIES = ("account_owner", "round_robin", "least_open", "none")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
Bad = Callable[[str, str], None]


def validate(settings: Settings, where: str, *, from_file: bool) -> list[str]:
    """Every problem in ``settings`` as ``where: section.key: expected ...`` lines."""
    problems: list[str] = []

    def bad(key: str, text: str) -> None:
        problems.append(f"{where}: {key}: {text}")

    def choice(key: str, value: str, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        if value not in allowed:
            bad(key, f"expected one of {', '.join(allowed)}, got {value!r}")

    s = settings
    if not s.database.url.startswith(("sqlite://", "postgresql")):
        bad(
            "database.url",
            f"expected a sqlite:/// or postgresql+psycopg:// URL, got {s.database.url!r}",
        )
    if s.queue.broker != "embedded" and not s.queue.broker.startswith(
        ("redis://", "rediss://", "amqp://", "amqps://")
    ):
        bad("queue.broker", f"expected embedded, redis://... or amqp://..., got {s.queue.broker!r}")
    if s.queue.max_attempts < 1:
        bad("queue.max_attempts", "expected an integer of at least 1")
    _check_queue(s, bad)
    _check_listen(s.smtp.listen, bad)
    _check_web(s, bad, choice)
    _check_run(s, bad)
    choice("smtp.protocol", s.smtp.protocol, ("smtp", "lmtp"))
    choice("smtp.tls", s.smtp.tls, ("none", "starttls", "implicit"))
    if s.smtp.tls != "none" and not (s.smtp.tls_cert and s.smtp.tls_key):
        bad("smtp.tls_cert", f"required (with smtp.tls_key) when smtp.tls = {s.smtp.tls!r}")
    for i, address in enumerate(s.smtp.addresses):
        if not _is_address(address):
            bad(f"smtp.addresses[{i}]", f"expected an email address, got {address!r}")
    for key in ("max_message_bytes", "max_recipients", "max_connections", "max_connections_per_ip"):
        if getattr(s.smtp, key) < 1:
            bad(f"smtp.{key}", "expected a positive integer")
    _check_imap(s, bad, choice)
    _check_smtp_session(s, bad)
    choice("outbound.transport", s.outbound.transport, ("file", "smtp"))
    choice("outbound.smtp.security", s.outbound.smtp.security, ("tls", "starttls", "none"))
    if not _is_address(s.outbound.from_address):
        bad("outbound.from", f"expected an email address, got {s.outbound.from_address!r}")
    if s.portal.ticket_url and "{number}" not in s.portal.ticket_url:
        bad("portal.ticket_url", "expected a URL containing {number}")
    if from_file and not s.security.secret:
        bad(
            "security.secret",
            "required: a long random string (mailgate init writes one), "
            "or set $MAILGATE_SECURITY_SECRET",
        )
    elif s.security.secret and len(s.security.secret) < 16:
        bad("security.secret", "expected at least 16 characters")
    choice("intake.policy", s.intake.policy, ("anyone", "known", "admins"))
    choice("logging.level", s.logging.level.upper(), _LOG_LEVELS)
    choice("logging.format", s.logging.format, ("text", "json"))
    _check_tickets(s, bad)
    _check_sla(s, bad)
    _check_people(s, bad)
    check_rules(s, bad)
    check_triggers(s, bad)
    check_channels(s, bad)
    return problems


def warnings(settings: Settings, where: str) -> list[str]:
    """Settings that are valid but most likely wrong, as ``where: section.key: why`` lines
    (``check-config`` prints them; they stop nothing)."""
    found = _web_address(settings)
    if found is not None and found[0] == "warning":
        return [f"{where}: web.base_url: {found[1]}"]
    return []


def _is_address(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    # No whitespace or control characters: a CR/LF would smuggle a header into mail.
    clean = not any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value)
    return bool(local) and bool(domain) and clean


def _check_listen(listen: str, bad: Bad, key: str = "smtp.listen", port_hint: int = 2525) -> None:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        bad(key, f"expected HOST:PORT such as 127.0.0.1:{port_hint}, got {listen!r}")


RUN_ROLES = ("smtp", "imap", "worker", "web")


def _check_run(s: Settings, bad: Bad) -> None:
    for i, role in enumerate(s.run.roles):
        if role not in RUN_ROLES:
            bad(f"run.roles[{i}]", f"expected one of {', '.join(RUN_ROLES)}, got {role!r}")
    if not s.run.roles:
        bad("run.roles", "expected at least one role")
    for key in ("max_deaths", "death_window_seconds", "stop_timeout_seconds"):
        if getattr(s.run, key) < 1:
            bad(f"run.{key}", "expected an integer of at least 1")
    for key in ("restart_delay_ms", "restart_max_delay_ms"):
        if getattr(s.run, key) < 0:
            bad(f"run.{key}", "expected an integer of at least 0")


def _check_web(s: Settings, bad: Bad, choice: Callable[[str, str, Iterable[str]], None]) -> None:
    _check_listen(s.web.listen, bad, "web.listen", 8080)
    if not s.web.base_url.startswith(("http://", "https://")) or s.web.base_url.endswith("/"):
        bad(
            "web.base_url",
            f"expected http(s)://host[:port][/path] without a trailing /, got {s.web.base_url!r}",
        )
    found = _web_address(s)
    if found is not None and found[0] == "error":
        bad("web.base_url", found[1])
    choice("web.cookie_secure", s.web.cookie_secure, ("auto", "always", "never"))
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", s.web.cookie_name):
        bad("web.cookie_name", f"expected letters, digits, - or _, got {s.web.cookie_name!r}")
    for key in (
        "session_hours",
        "sign_in_link_minutes",
        "sign_in_requests_per_address_per_hour",
        "sign_in_requests_per_ip_per_hour",
        "password_failures_per_address_per_hour",
        "password_failures_per_ip_per_hour",
    ):
        if getattr(s.web, key) < 1:
            bad(f"web.{key}", "expected a positive integer")
    # A slow-down, not a lock: an outsider must not be able to keep an agent out for long.
    if not 1 <= s.web.password_delay_max_seconds <= 3600:
        bad("web.password_delay_max_seconds", "expected an integer from 1 to 3600")
    for i, net in enumerate(s.web.metrics_allow):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            bad(f"web.metrics_allow[{i}]", f"expected an IP address or network, got {net!r}")


_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
_ANY_ADDRESS = ("", "0.0.0.0", "::", "*")  # noqa: S104 - names, not a bind


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _web_address(s: Settings) -> tuple[str, str] | None:
    """``("error" | "warning", why)`` when links built on ``web.base_url`` cannot reach
    the portal on ``web.listen``; None when they can, or might through a proxy.

    Only a plain ``http://`` base_url on another port of the same host is suspect
    (``mailgate web`` speaks no TLS, so an ``https://`` one has a proxy in front; another
    host may be one). Both on loopback and apart is certainly wrong: an error.
    """
    base = urlsplit(s.web.base_url)
    host, sep, port = s.web.listen.rpartition(":")
    if base.scheme != "http" or not sep or not port.isdigit():
        return None
    try:
        base_port = base.port or 80
    except ValueError:
        return None
    base_host, host = (base.hostname or "").lower(), host.strip("[]").lower()
    if base_port == int(port):
        return None
    why = (
        f"{s.web.base_url!r} (port {base_port}) does not reach web.listen = {s.web.listen!r}: "
        "notices and sign-in links would point elsewhere (set web.base_url to the address "
        "people reach the portal at)"
    )
    if _is_loopback(base_host) and _is_loopback(host):
        return "error", why
    if base_host == host or (host in _ANY_ADDRESS and _is_loopback(base_host)):
        return "warning", why
    return None


def _check_imap(s: Settings, bad: Bad, choice: Callable[[str, str, Iterable[str]], None]) -> None:
    names: set[str] = set()
    for i, box in enumerate(s.imap.mailboxes):
        at = f"imap.mailboxes[{i}]"
        if box.name in names:
            bad(f"{at}.name", f"duplicate mailbox name {box.name!r}")
        names.add(box.name)
        choice(f"{at}.security", box.security, ("tls", "starttls", "none"))
        choice(f"{at}.after_store", box.after_store, ("move", "seen"))
        if box.batch_size < 1 or box.poll_interval < 1:
            bad(f"{at}.batch_size", "batch_size and poll_interval must be positive")
        if box.after_store == "move" and box.processed_folder == box.folder:
            bad(f"{at}.processed_folder", "must differ from folder when after_store = 'move'")


def _check_queue(s: Settings, bad: Bad) -> None:
    q = s.queue
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,62}", q.name):
        bad(
            "queue.name",
            f"expected a letter or '_', then letters, digits, '_' or '-', got {q.name!r}",
        )
    if q.reconcile_after_seconds < 1:
        bad("queue.reconcile_after_seconds", "expected a positive integer")
    if q.retry_base_seconds < 1:
        bad("queue.retry_base_seconds", "expected a positive integer")
    if q.retry_max_seconds < q.retry_base_seconds:
        bad("queue.retry_max_seconds", "expected at least queue.retry_base_seconds")


def _check_smtp_session(s: Settings, bad: Bad) -> None:
    for key in ("idle_timeout", "data_timeout"):
        if getattr(s.smtp, key) < 1:
            bad(f"smtp.{key}", "expected a positive number of seconds")
    for key in (
        "auth_max_failures_per_connection",
        "auth_max_failures_per_client",
        "auth_failure_window_seconds",
        "max_idle_commands",
        "max_session_seconds",
    ):
        if getattr(s.smtp, key) < 1:
            bad(f"smtp.{key}", "expected a positive integer")
    if not 0 <= s.smtp.auth_failure_delay_ms <= 30_000:
        bad("smtp.auth_failure_delay_ms", "expected milliseconds from 0 to 30000")
    if s.smtp.auth_username and s.smtp.tls == "none":
        # AUTH is never offered in the clear, so nobody could ever submit.
        bad("smtp.auth_username", "needs smtp.tls = starttls or implicit (AUTH only over TLS)")
    if s.smtp.auth_username and not s.smtp.auth_password:
        bad("smtp.auth_password", "required with smtp.auth_username")


def _check_tickets(s: Settings, bad: Bad) -> None:
    seen: set[str] = set()
    for i, status in enumerate(s.tickets.statuses):
        if status.category not in STATUS_CATEGORIES:
            bad(
                f"tickets.statuses[{i}].category",
                f"expected one of {', '.join(STATUS_CATEGORIES)}, got {status.category!r}",
            )
        if status.name in seen:
            bad(f"tickets.statuses[{i}].name", f"duplicate status {status.name!r}")
        seen.add(status.name)
    categories = {st.category for st in s.tickets.statuses}
    for needed in ("new", "active", "closed"):
        if needed not in categories:
            bad("tickets.statuses", f"needs at least one status in category {needed!r}")
    if not s.tickets.types:
        bad("tickets.types", "expected at least one type")
    if not s.tickets.priorities:
        bad("tickets.priorities", "expected at least one priority")
    if s.defaults.type not in s.tickets.types:
        bad("defaults.type", f"{s.defaults.type!r} is not in tickets.types")
    if s.defaults.priority not in s.tickets.priorities:
        bad("defaults.priority", f"{s.defaults.priority!r} is not in tickets.priorities")
    _check_link_kinds(s, bad)
    if not s.tickets.activity_types:
        bad("tickets.activity_types", "expected at least one activity type")
    for i, name in enumerate(s.tickets.activity_types):
        if not name.strip() or len(name) > MAX_ACTIVITY_TYPE:
            bad(f"tickets.activity_types[{i}]", f"expected 1 to {MAX_ACTIVITY_TYPE} characters")


# ticket_links.kind is VARCHAR(32); the system's own kinds ("referenced", "merged into",
# "merged from") are written by mailgate itself and cannot be configured.
MAX_LINK_KIND = 32
RESERVED_LINK_KINDS = SYSTEM_LINK_KINDS
MAX_ACTIVITY_TYPE = 64  # activities.type


def _check_link_kinds(s: Settings, bad: Bad) -> None:
    for name, reverse in s.tickets.link_kinds.items():
        key = f"tickets.link_kinds.{_toml_key(name)}"
        for value in (name, reverse):
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_LINK_KIND:
                bad(key, f"expected a name of 1 to {MAX_LINK_KIND} characters, got {value!r}")
            elif value in RESERVED_LINK_KINDS:
                bad(key, f"{value!r} is the system's own link kind")


def _check_sla(s: Settings, bad: Bad) -> None:
    if s.sla.check_interval_seconds < 1:
        bad("sla.check_interval_seconds", "expected a positive integer")
    for table in ("first_response_minutes", "resolution_minutes"):
        for priority, minutes in getattr(s.sla, table).items():
            key = f"sla.{table}.{_toml_key(priority)}"
            if priority not in s.tickets.priorities:
                known = ", ".join(s.tickets.priorities)
                bad(key, f"unknown priority {priority!r} (known: {known})")
            if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
                bad(key, f"expected a positive number of minutes, got {minutes!r}")


def _toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it can be, else quoted (``"On Hold"``)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def _check_people(s: Settings, bad: Bad) -> None:
    teams = {t.name for t in s.teams}
    if s.defaults.team not in teams:
        bad("defaults.team", f"{s.defaults.team!r} is not a team declared in [[teams]]")
    for i, team in enumerate(s.teams):
        if team.assignment not in ASSIGNMENT_STRATEGIES:
            bad(
                f"teams[{i}].assignment",
                f"expected one of {', '.join(ASSIGNMENT_STRATEGIES)}, got {team.assignment!r}",
            )
        if team.cap < 0:
            bad(f"teams[{i}].cap", "expected 0 (no cap) or a positive integer")
    agents = {a.email.lower() for a in s.agents}
    for i, agent in enumerate(s.agents):
        if not _is_address(agent.email):
            bad(f"agents[{i}].email", f"expected an email address, got {agent.email!r}")
        for team_name in agent.teams:
            if team_name not in teams:
                bad(f"agents[{i}].teams", f"unknown team {team_name!r}")
    for i, customer in enumerate(s.customers):
        if customer.owner and customer.owner.lower() not in agents:
            bad(f"customers[{i}].owner", f"{customer.owner!r} is not an agent in [[agents]]")
        if not customer.domains and not customer.addresses:
            bad(f"customers[{i}]", "expected domains or addresses to match its mail")
    _check_suppliers(s, bad)


_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


def _check_suppliers(s: Settings, bad: Bad) -> None:
    names: set[str] = set()
    for i, supplier in enumerate(s.suppliers):
        if not supplier.name.strip() or len(supplier.name) > MAX_SUPPLIER_NAME:
            bad(f"suppliers[{i}].name", f"expected 1 to {MAX_SUPPLIER_NAME} characters")
        elif supplier.name in names:
            bad(f"suppliers[{i}].name", f"duplicate supplier {supplier.name!r}")
        names.add(supplier.name)
        if not supplier.addresses:
            bad(f"suppliers[{i}].addresses", "expected at least one email address")
        for j, address in enumerate(supplier.addresses):
            if not _is_address(address):
                bad(f"suppliers[{i}].addresses[{j}]", f"expected an email address, got {address!r}")
        if supplier.language and not _LANGUAGE_CODE.fullmatch(supplier.language):
            bad(
                f"suppliers[{i}].language",
                f"expected a language code such as en or fr, got {supplier.language!r}",
            )


MAX_SUPPLIER_NAME = 255  # suppliers.name
