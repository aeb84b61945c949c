"""Real SMTP servers on loopback for outbound tests (aiosmtpd), with scripted replies."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.ports import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Smarthost:
    """Answers DATA from ``replies`` in turn (the last one repeats); records what it took."""

    replies: list[str] = field(default_factory=lambda: ["250 OK"])
    received: list[Received] = field(default_factory=list)
    on_message: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
            if reply.startswith("250"):
                item = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
                self.received.append(item)
            else:
                item = None
        if item is not None and self.on_message is not None:
            self.on_message(item)
        return reply


@contextmanager
def running(handler: Smarthost, port: int | None = None, **options: Any) -> Iterator[int]:
    """Run ``handler`` on 127.0.0.1 until the block ends; yields the port. ``options``
    go to aiosmtpd's Controller (TLS contexts, authenticator)."""
    port = port or free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
