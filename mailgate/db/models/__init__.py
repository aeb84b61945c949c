"""Database tables, and nothing else: queries live in ``queries.py`` and ``store.py``.

The tables are in modules by what they are about; every one is imported here, so
``Base.metadata`` holds the whole schema (Alembic compares it with the migrations) and
``from mailgate.db.models import Ticket`` works for each."""

from mailgate.db.models.access import (
    AgentPassword,
    ApiToken,
    CannedResponse,
    ImapCursor,
    Lease,
    RateLimitHit,
    Rejection,
    SignInToken,
    WebSession,
)
from mailgate.db.models.base import (
    Base,
    BigId,
    UtcDateTime,
)
from mailgate.db.models.tickets import (
    Agent,
    Customer,
    CustomerKey,
    HistoryEvent,
    InboundMessage,
    MessageIdEntry,
    Notice,
    Participant,
    SlaEvent,
    StoredAttachment,
    Team,
    Ticket,
    TicketLink,
    TicketMessage,
)
from mailgate.db.models.work import (
    Activity,
    Supplier,
    TicketDepartment,
    TicketHelper,
    TicketSupplier,
    Todo,
)

__all__ = [
    "Activity",
    "Agent",
    "AgentPassword",
    "ApiToken",
    "Base",
    "BigId",
    "CannedResponse",
    "Customer",
    "CustomerKey",
    "HistoryEvent",
    "ImapCursor",
    "InboundMessage",
    "Lease",
    "MessageIdEntry",
    "Notice",
    "Participant",
    "RateLimitHit",
    "Rejection",
    "SignInToken",
    "SlaEvent",
    "StoredAttachment",
    "Supplier",
    "Team",
    "Ticket",
    "TicketDepartment",
    "TicketHelper",
    "TicketLink",
    "TicketMessage",
    "TicketSupplier",
    "Todo",
    "UtcDateTime",
    "WebSession",
]
