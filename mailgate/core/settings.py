"""Typed, immutable settings: what a validated configuration file becomes.

Every field's default here is the built-in default documented in
``config.example.toml``; ``config.py`` turns TOML and the environment into these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailgate.core.channel_settings import ChatChannelSetting, WebhookSetting

# Defined in channel_settings (this file is long enough); imported from either module.
__all__ = ["ChatChannelSetting", "WebhookSetting"]


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///mailgate.db"
    sqlite_busy_timeout_ms: int = 30_000


@dataclass(frozen=True)
class QueueSettings:
    broker: str = "embedded"
    max_attempts: int = 5
    reconcile_after_seconds: int = 300
    # Queue names on the broker are <name>-inbound and <name>-notices.
    name: str = "mailgate"
    # Retry n waits about retry_base_seconds * 2**(n-1), at most retry_max_seconds.
    retry_base_seconds: int = 10
    retry_max_seconds: int = 3600


@dataclass(frozen=True)
class SmtpSettings:
    listen: str = "127.0.0.1:2525"
    protocol: str = "smtp"
    addresses: tuple[str, ...] = ("support@example.com",)
    max_message_bytes: int = 26_214_400
    max_recipients: int = 100
    hostname: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls: str = "none"
    auth_username: str = ""
    auth_password: str = ""
    max_connections: int = 200
    max_connections_per_ip: int = 20
    idle_timeout: int = 300
    data_timeout: int = 600
    # Failed AUTH (issue 19): a delay before each 535 that doubles (at most 30 s), 421 and
    # closed after so many on one connection, and a client address with so many within
    # the window is refused AUTH (421) before any password check.
    auth_max_failures_per_connection: int = 3
    auth_failure_delay_ms: int = 1000
    auth_max_failures_per_client: int = 10
    auth_failure_window_seconds: int = 900
    # Commands that move no mail (NOOP, RSET, HELP, VRFY, EXPN, a repeated EHLO, bad or
    # unknown ones) per session, counted again from 0 after each stored message.
    max_idle_commands: int = 20
    # A session is closed with 421 after this long (between transactions).
    max_session_seconds: int = 600


@dataclass(frozen=True)
class ImapMailbox:
    name: str
    host: str = "127.0.0.1"
    port: int = 993
    security: str = "tls"
    username: str = ""
    password: str = ""
    oauth2_token_env: str = ""
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    after_store: str = "move"
    idle: bool = True
    poll_interval: int = 60
    batch_size: int = 50


@dataclass(frozen=True)
class ImapSettings:
    mailboxes: tuple[ImapMailbox, ...] = ()


@dataclass(frozen=True)
class OutboundSmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "starttls"
    username: str = ""
    password: str = ""
    timeout: int = 30
    # A PEM file of CAs to trust for a smarthost with a private certificate.
    ca_file: str = ""


@dataclass(frozen=True)
class OutboundSettings:
    transport: str = "file"
    folder: str = "outbox"
    # The TOML key is ``from``, a Python keyword.
    from_address: str = field(default="support@example.com", metadata={"key": "from"})
    max_per_hour_per_address: int = 5
    templates: str = ""
    # Delivery attempts (4xx, connection refused) before a notice is marked failed.
    max_attempts: int = 12
    # Chat notices to one channel per hour (issue 24), counted like max_per_hour_per_address.
    chat_max_per_hour: int = 60
    smtp: OutboundSmtpSettings = field(default_factory=OutboundSmtpSettings)


@dataclass(frozen=True)
class PortalSettings:
    # Empty: this mailgate's own portal, web.base_url + "/tickets/{number}".
    ticket_url: str = ""


@dataclass(frozen=True)
class WebSettings:
    """The portal and HTTP API (``mailgate web``)."""

    listen: str = "127.0.0.1:8080"
    # The address people reach the portal at; sign-in links start with it.
    base_url: str = "http://127.0.0.1:8080"
    cookie_name: str = "mailgate_session"
    # auto: Secure when base_url is https; always | never to force it.
    cookie_secure: str = "auto"
    session_hours: int = 12
    sign_in_link_minutes: int = 15
    # Client addresses (the reverse proxy) whose identity and client-IP headers are believed.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    # Header naming the signed-in agent's email, set by the reverse proxy; empty = off.
    trusted_proxy_header: str = ""
    # Header carrying the client's address (e.g. X-Forwarded-For); empty = the socket peer.
    client_ip_header: str = ""
    sign_in_requests_per_address_per_hour: int = 5
    sign_in_requests_per_ip_per_hour: int = 20
    # Failed passwords per agent account in an hour before it slows down (never locks).
    password_failures_per_address_per_hour: int = 10
    # Failed passwords per client address in an hour before that address is refused.
    password_failures_per_ip_per_hour: int = 30
    # The longest an account that kept failing makes a failing client wait between checks.
    password_delay_max_seconds: int = 60
    # Client addresses or networks that may read /metrics; everyone else gets 404.
    metrics_allow: tuple[str, ...] = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class SecuritySettings:
    secret: str = ""
    old_secrets: tuple[str, ...] = ()
    trusted_authserv_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class IntakeSettings:
    policy: str = "anyone"


@dataclass(frozen=True)
class LimitsSettings:
    # The message size limit is smtp.max_message_bytes: one limit for every intake path.
    max_headers: int = 1000
    max_parts: int = 500
    max_depth: int = 20
    max_attachment_bytes: int = 20_971_520


@dataclass(frozen=True)
class StatusSetting:
    name: str
    category: str


DEFAULT_STATUSES = (
    StatusSetting("New", "new"),
    StatusSetting("Open", "active"),
    StatusSetting("Waiting", "waiting"),
    StatusSetting("On Hold", "on_hold"),
    StatusSetting("Resolved", "closed"),
    StatusSetting("Closed", "closed"),
)


DEFAULT_LINK_KINDS = {
    "related": "related",
    "duplicate of": "duplicated by",
    "parent of": "child of",
    "blocks": "blocked by",
    "follows": "followed by",
}

# The system's own link kinds, written by mailgate itself: "referenced" (a stranger's mail
# naming a ticket) and the pair a merge writes (`tickets merge`). Never in link_kinds, so
# no config can remove or rename them, and `tickets link` cannot make them by hand.
REFERENCED = "referenced"
MERGED_INTO = "merged into"
MERGED_FROM = "merged from"
SYSTEM_LINK_KINDS = (REFERENCED, MERGED_INTO, MERGED_FROM)


@dataclass(frozen=True)
class TicketSettings:
    statuses: tuple[StatusSetting, ...] = DEFAULT_STATUSES
    types: tuple[str, ...] = ("General", "Technical")
    priorities: tuple[str, ...] = ("Low", "Normal", "High", "Urgent")
    subject_tag_prefix: str = "#"
    # Kinds of links between tickets, each with the name the other ticket shows
    # (`tickets link --kind`); "referenced" is the system's own and not listed here.
    link_kinds: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LINK_KINDS))
    # What agents log time as (`tickets activity --type`).
    activity_types: tuple[str, ...] = ("Call", "Email", "Meeting", "Remote session", "Research")
    # Helpers (`tickets helpers`) get the "customer replied" notice as the owner does.
    notify_helpers: bool = True

    def link_pair(self, kind: str) -> tuple[str, str] | None:
        """(this ticket's kind, the other ticket's) for ``kind``, given by its name or
        by its reverse's; None when it is not a configured kind."""
        if kind in self.link_kinds:
            return kind, self.link_kinds[kind]
        for name, reverse in self.link_kinds.items():
            if reverse == kind:
                return reverse, name
        return None

    def category_of(self, status: str) -> str:
        """The category (``new``, ``active``, ...) of a configured status name."""
        for s in self.statuses:
            if s.name == status:
                return s.category
        raise KeyError(status)

    def first_status(self, category: str) -> str:
        """The first configured status in a category: where new and reopened tickets go."""
        for s in self.statuses:
            if s.category == category:
                return s.name
        raise KeyError(category)


@dataclass(frozen=True)
class DefaultsSettings:
    team: str = "support"
    type: str = "General"
    priority: str = "Normal"
    language: str = "en"


@dataclass(frozen=True)
class TeamSetting:
    name: str
    assignment: str = "round_robin"
    cap: int = 0
    # Told of the team's tickets (and those it is a department of): the agents' notices.
    chat: tuple[ChatChannelSetting, ...] = ()


@dataclass(frozen=True)
class AgentSetting:
    email: str
    name: str = ""
    teams: tuple[str, ...] = ()
    away: bool = False
    active: bool = True


@dataclass(frozen=True)
class CustomerSetting:
    name: str
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    owner: str = ""
    language: str = ""
    admins: tuple[str, ...] = ()
    # Told of the account's tickets: the notices its people get by mail.
    chat: tuple[ChatChannelSetting, ...] = ()


@dataclass(frozen=True)
class SupplierSetting:
    """``[[suppliers]]`` (issue 22): a third party attached to tickets. Mail from one of
    its ``addresses`` to a ticket it is attached to is kept as a supplier message."""

    name: str
    addresses: tuple[str, ...] = ()
    # The language of its notices; empty: defaults.language.
    language: str = ""


@dataclass(frozen=True)
class RuleSetting:
    name: str
    when: dict[str, Any] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerSetting:
    """``[[triggers]]``: on ``event``, when the ticket matches ``when``, ``set`` fields
    (``core.triggers`` says which events, conditions and fields there are)."""

    name: str
    event: str
    when: dict[str, Any] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "text"
    file: str = ""


@dataclass(frozen=True)
class RunSettings:
    """``mailgate run``: which roles it supervises and when it gives up on one."""

    # imap runs only when [[imap.mailboxes]] are configured.
    roles: tuple[str, ...] = ("smtp", "imap", "worker", "web")
    # A role that exits more than max_deaths times within death_window_seconds
    # stops everything, and mailgate run exits 1.
    max_deaths: int = 5
    death_window_seconds: int = 60
    # A dead role is restarted after a backoff from restart_delay_ms up to restart_max_delay_ms.
    restart_delay_ms: int = 500
    restart_max_delay_ms: int = 30_000
    # How long roles get to drain on SIGTERM before they are killed.
    stop_timeout_seconds: int = 30


@dataclass(frozen=True)
class SlaSettings:
    """Service-level targets and due dates: the worker's periodic check (``mailgate/sla.py``).

    Targets run in calendar time from the ticket's creation; a priority not listed has none.
    """

    enabled: bool = True
    check_interval_seconds: int = 60
    first_response_minutes: dict[str, int] = field(default_factory=dict)
    resolution_minutes: dict[str, int] = field(default_factory=dict)


DEFAULT_TEAMS = (TeamSetting("support"),)


@dataclass(frozen=True)
class Settings:
    """The whole configuration, loaded once by the CLI and passed down."""

    source: str = "<built-in defaults>"
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    portal: PortalSettings = field(default_factory=PortalSettings)
    web: WebSettings = field(default_factory=WebSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    tickets: TicketSettings = field(default_factory=TicketSettings)
    defaults: DefaultsSettings = field(default_factory=DefaultsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    run: RunSettings = field(default_factory=RunSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    teams: tuple[TeamSetting, ...] = DEFAULT_TEAMS
    agents: tuple[AgentSetting, ...] = ()
    customers: tuple[CustomerSetting, ...] = ()
    suppliers: tuple[SupplierSetting, ...] = ()
    rules: tuple[RuleSetting, ...] = ()
    triggers: tuple[TriggerSetting, ...] = ()
    webhooks: tuple[WebhookSetting, ...] = ()

    def ticket_url(self, number: int) -> str:
        """The portal link for ticket ``number``: ``portal.ticket_url``, else this portal."""
        template = self.portal.ticket_url or self.web.base_url.rstrip("/") + "/tickets/{number}"
        return template.replace("{number}", str(number))
