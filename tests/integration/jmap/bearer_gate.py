"""A bearer-token gate in front of the local Cyrus, for the static-token tests.

Fastmail and Stalwart take an API token as ``Authorization: Bearer <token>``; the local Cyrus
takes only Basic auth. The gate stands where such a server's front door would be: it refuses
every request whose Authorization is not ``Bearer <the token it expects>`` (401, with a
plain-text reason, as a server says it), and forwards the others to Cyrus with the user's
Basic credentials. So the adapter's requests carry the bearer token, and what answers them is
the real Cyrus. Every Authorization header it received is kept for the tests to assert on.

Cyrus' session gives relative URLs (``/jmap/``, ``/jmap/download/...``), which the adapter
resolves against the gate's session URL: every later request comes through the gate too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from deploy.local.cyrus import Cyrus

_HOP = frozenset({"authorization", "host", "connection", "content-length", "transfer-encoding"})


@dataclass
class BearerGate:
    """What the gate expects and what it saw."""

    cyrus: Cyrus
    user: str
    token: str
    seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def session_url(self) -> str:
        """The JMAP session resource behind the gate."""
        return f"http://127.0.0.1:{self.port}/jmap"


def _handler(gate: BearerGate, upstream: httpx.Client) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            given = self.headers.get("Authorization", "")
            with gate.lock:
                gate.seen.append(given)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if given != f"Bearer {gate.token}":
                self._answer(401, b"invalid API token\n", "text/plain; charset=utf-8")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            answer = upstream.request(
                self.command,
                self.path,
                content=body,
                headers={**headers, **gate.cyrus.auth_header(gate.user)},
            )
            self._answer(answer.status_code, answer.content, answer.headers.get("content-type"))

        def _answer(self, status: int, body: bytes, kind: str | None) -> None:
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _forward

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests assert on ``seen``."""

    return Handler


@contextmanager
def bearer_gate(cyrus: Cyrus, user: str, token: str) -> Iterator[BearerGate]:
    """A gate on a free local port expecting ``token`` for ``user``, stopped afterwards."""
    gate = BearerGate(cyrus=cyrus, user=user, token=token)
    with httpx.Client(base_url=cyrus.base_url, timeout=60) as upstream:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(gate, upstream))
        gate.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield gate
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
