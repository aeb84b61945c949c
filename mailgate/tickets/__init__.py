"""The write side: one function per ticket change, used by every channel (mail, portal,
API, CLI, SLA check).

Nothing outside this package changes a ticket row or writes an outbox row.
"""
