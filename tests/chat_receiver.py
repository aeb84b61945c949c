"""A chat service or webhook receiver on 127.0.0.1 for tests: a real HTTP server in a
thread that records every request and answers from a script (status, headers, body),
then 200 once the script is used up. It plays Slack, Mattermost, Teams or a webhook
integration: only the recorded bodies tell them apart."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.ports import free_port


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: a service too slow to wait for


class Receiver:
    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self.port = 0

    def url(self, path: str = "/hooks/T0001/B0002/s3cr3tt0k3n") -> str:
        """A URL whose path holds a token, as Slack's and Teams' do."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    def _answer(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            return self.replies.pop(0) if self.replies else Reply()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            self._reply(receiver._answer(_recorded(self, body)))

        def do_HEAD(self) -> None:
            self._reply(receiver._answer(_recorded(self, b"")))

        do_GET = do_OPTIONS = do_HEAD

        def _reply(self, reply: Reply) -> None:
            time.sleep(reply.delay)
            data = reply.body.encode()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # quiet: pytest shows what the test asserts

    return Handler


def _recorded(handler: BaseHTTPRequestHandler, body: bytes) -> Recorded:
    headers = {name.lower(): value for name, value in handler.headers.items()}
    return Recorded(handler.command, handler.path, headers, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (the sender's timeout) closes first: not a test failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def receiving(receiver: Receiver, port: int = 0) -> Iterator[Receiver]:
    """Serve ``receiver`` on 127.0.0.1 (a free port unless given) while the block runs."""
    server = _Server(("127.0.0.1", port or free_port()), _handler(receiver))
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
