"""A headless Chromium driven over the DevTools protocol on a pipe, and a real HTTP server.

``--remote-debugging-pipe`` makes Chromium read commands on fd 3 and write answers
and events on fd 4, NUL-separated JSON: no WebSocket client, no driver binary.
Waiting is on events (a page's load), never on sleeps.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import uvicorn

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Screenshots as wide as the window, however long the page (no scrollbar taken off).
    "--hide-scrollbars",
    # Belt and braces: no name resolves, so nothing can be fetched off this machine.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-pipe",
)
TIMEOUT = 30.0


def find_chromium() -> str | None:
    """Debian's real binary (its /usr/bin/chromium wrapper only adds flags), else on PATH."""
    for candidate in ("/usr/lib/chromium/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


class Chromium:
    """One browser with one page; ``call`` sends a command and returns its result."""

    def __init__(self, binary: str, profile: Path, log: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:
            # fd 3 = commands in, fd 4 = messages out, as --remote-debugging-pipe expects.
            os.dup2(to_browser_r, 100)
            os.dup2(from_browser_w, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)

        with log.open("wb") as err:
            self.process = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                pass_fds=(3, 4),
                preexec_fn=wire_fds,  # noqa: PLW1509 - only dup2 calls, before exec
            )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._ids = itertools.count(1)
        self._answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        with self._lock:
                            box = self._answers.get(message["id"])
                        if box is not None:
                            box.put(message)
                    else:
                        self.events.put(message)

    def call(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True) -> Any:
        number = next(self._ids)
        box: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            self._answers[number] = box
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if page and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        answer = box.get(timeout=TIMEOUT)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def open_page(self, width: int = 1200, height: int = 900) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self.session = attached["sessionId"]
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def resize(self, width: int, height: int = 800, *, mobile: bool = False) -> None:
        """The same page in another window: ``mobile`` as a phone does it (the viewport
        meta applies, no scrollbars take room)."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def axe(self, source: str) -> list[dict[str, Any]]:
        """axe-core's violations on the page as it is. ``source`` (axe.min.js) goes in by
        Runtime.evaluate, not a <script>, so the page's CSP and script count stay as served."""
        if not self.run("typeof axe === 'object'"):
            self.run(source)
        result = self.call(
            "Runtime.evaluate",
            {
                "expression": "axe.run(document, {resultTypes: ['violations']})"
                ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
                " nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)})))",
                "awaitPromise": True,
                "returnByValue": True,
            },
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"axe failed: {result['exceptionDetails']}")
        found: list[dict[str, Any]] = result["result"]["value"]
        return found

    def _drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()

    def _wait_for(self, method: str) -> None:
        while True:
            event = self.events.get(timeout=TIMEOUT)
            if event.get("method") == method and event.get("sessionId") == self.session:
                return

    def goto(self, url: str) -> None:
        """Open ``url`` and return once its load event fired."""
        self._drain()
        self.call("Page.navigate", {"url": url})
        self._wait_for("Page.loadEventFired")

    def run(self, script: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": script, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def submit(self, script: str) -> None:
        """Run ``script`` (which fills and submits a form), then wait for the next page."""
        self._drain()
        self.run(script)
        self._wait_for("Page.loadEventFired")

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Choose ``paths`` in the file input at ``selector``, as a person does in the
        file picker: ``DOM.setFileInputFiles`` (a page script cannot fill a file input)."""
        found = self.call(
            "Runtime.evaluate", {"expression": f"document.querySelector({selector!r})"}
        )
        target = found["result"].get("objectId")
        if target is None:
            raise RuntimeError(f"no element {selector}")
        self.call("DOM.setFileInputFiles", {"files": [str(p) for p in paths], "objectId": target})

    def text(self) -> str:
        return str(self.run("document.body.innerText"))

    def screenshot(self, path: Path) -> bytes:
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        data = base64.b64decode(shot["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def close(self) -> None:
        with suppress(RuntimeError, queue.Empty, OSError):
            self.call("Browser.close", page=False)
        try:
            self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)


@contextmanager
def serving(app: Any, sock: socket.socket) -> Iterator[None]:
    """Serve ``app`` with uvicorn on an already listening socket: connections queue in its
    backlog until the server accepts them, so nobody waits for start-up."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock
