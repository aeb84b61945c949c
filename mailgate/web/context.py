"""What every request handler shares: settings, the store, the clock, the page renderer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request

from mailgate.core.settings import Settings
from mailgate.db.store import Store


@dataclass(frozen=True)
class Portal:
    settings: Settings
    store: Store
    now: Callable[[], datetime]

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies carry ``Secure``: on an https portal, unless forced either way."""
        mode = self.settings.web.cookie_secure
        if mode == "auto":
            return self.settings.web.base_url.startswith("https://")
        return mode == "always"


def portal(request: Request) -> Portal:
    found: Portal = request.app.state.portal
    return found
