"""Serve the portal with uvicorn: for ``mailgate web`` now, ``mailgate run`` later."""

from __future__ import annotations

import contextlib
import os
import socket

from mailgate.core.errors import ConfigError
from mailgate.core.settings import Settings
from mailgate.db.store import Store


def split_listen(listen: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` or ``[::1]:8080`` → (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def serve(settings: Settings, store: Store, *, listen: str | None = None) -> None:
    """Run until interrupted."""
    import logging

    import uvicorn

    from mailgate.web.app import create_app

    host, port = split_listen(listen or settings.web.listen)
    # One line per request at logging.level (INFO by default), sign-in tokens redacted.
    logging.getLogger("mailgate.web.access").setLevel(settings.logging.level.upper())
    app = create_app(settings, store)
    sock = _bind(host, port, f"{settings.source}: web.listen" if listen is None else "--listen")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # Our own access log redacts sign-in tokens; uvicorn's would write them.
        access_log=False,
        # The client address comes from web.client_ip_header, only from web.trusted_proxies.
        proxy_headers=False,
        server_header=False,
        log_level=settings.logging.level.lower(),
    )
    server = uvicorn.Server(config)
    # uvicorn raises a SIGINT it caught again once it has stopped (as uvicorn.run ignores).
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)  # uvicorn's startup failure, which it logged (as uvicorn.run exits)


def _bind(host: str, port: int, key: str) -> socket.socket:
    """The listening socket, bound here so a port in use is a ``ConfigError`` (one line,
    exit 2: ``mailgate run`` does not restart a role for it), not uvicorn's exit 1."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError([f"{key}: cannot listen on {host}:{port}: {reason}"]) from None
