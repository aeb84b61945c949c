"""Remake the README's pictures of the portal: docs/screenshots/queue.png and ticket.png.

Run from the repository root, after a change to how the portal looks:

    python3 -m docs.screenshots        (or: python3 docs/screenshots.py)

It needs what the browser tests need (Debian's ``chromium``; ``pip install -e ".[test]"``):
a portal on a throwaway SQLite database, seeded by tests/showcase.py as a support team's
morning, photographed by headless Chromium 1280 px wide as agent Ann sees it.
tests/test_web_phones.py runs it into a temporary folder, so it cannot rot unseen.
"""

from __future__ import annotations

import base64
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
OUT = DOCS / "screenshots"
WIDTH = 1280
# The top of each page, where what it is about shows; whole pages would be 3000 px tall.
HEIGHTS = {"queue": 1000, "ticket": 1100}


def make(out: Path = OUT) -> list[Path]:
    """Write queue.png and ticket.png into ``out``; returns their paths."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # tests/ is where the site and the browser are built
    from tests.browser import Chromium, find_chromium, listening_socket, serving
    from tests.showcase import seed_showcase
    from tests.web_support import ANN_PASSWORD, make_site

    binary = find_chromium()
    if binary is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        sock = listening_socket()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        site = make_site(f"sqlite:///{tmp}/mailgate.db", base_url=base)
        seed_showcase(site)
        browser = None
        try:
            with serving(site.app, sock):
                browser = Chromium(binary, Path(tmp) / "profile", Path(tmp) / "chromium.log")
                browser.open_page(WIDTH, 900)
                browser.goto(f"{base}/agent/sign-in")
                browser.submit(
                    "document.querySelector('#email').value = 'ann@example.com';"
                    f"document.querySelector('#password').value = {ANN_PASSWORD!r};"
                    "document.querySelector('form[action=\"/agent/sign-in\"] button').click()"
                )
                pages = {"queue": "/agent", "ticket": f"/tickets/{site.numbers['carol']}"}
                for name, path in pages.items():
                    browser.goto(base + path)
                    clip = {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHTS[name], "scale": 1}
                    shot = browser.call(
                        "Page.captureScreenshot",
                        {"format": "png", "captureBeyondViewport": True, "clip": clip},
                    )
                    target = out / f"{name}.png"
                    target.write_bytes(base64.b64decode(shot["data"]))
                    written.append(target)
        finally:
            if browser is not None:
                browser.close()
            site.store.engine.dispose()
    return written


if __name__ == "__main__":
    for path in make():
        print(f"{path.relative_to(REPO)}: {path.stat().st_size // 1024} KiB")
