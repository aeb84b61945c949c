"""Serve the portal with uvicorn: for ``mailgate web`` now, ``mailgate run`` later."""

from __future__ import annotations

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
    uvicorn.run(
        create_app(settings, store),
        host=host,
        port=port,
        # Our own access log redacts sign-in tokens; uvicorn's would write them.
        access_log=False,
        # The client address comes from web.client_ip_header, only from web.trusted_proxies.
        proxy_headers=False,
        server_header=False,
        log_level=settings.logging.level.lower(),
    )
