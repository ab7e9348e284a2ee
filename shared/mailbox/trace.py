"""Protocol trace of one account's IMAP or POP3 conversation, for debugging a mailbox.

With an account's debug switch on (``IncomingAccount.debug`` yes, or inherit with the global
``debug_protocol`` on: whoever opens the mailbox resolves inherit, as the fetcher does), every
line the client sends (``C:``) and the server answers (``S:``) goes to the logger
``mailroom.trace.<account>`` at DEBUG. That logger is set to DEBUG itself, so the trace shows
while the service logs at INFO. With the switch off nothing is hooked and nothing is logged.

Redacted, whatever the server or the library does:

- the arguments of IMAP LOGIN, of POP3 USER, PASS and APOP, and the initial response of
  IMAP AUTHENTICATE / POP3 AUTH (the base64 XOAUTH2 or PLAIN payload);
- every line either side sends while an authentication is in progress: SASL continuations
  carry base64 credentials one way and the server's base64 verdict the other;
- every known secret (password, its quoted form, the current token) anywhere in a line.

Mail is never dumped: an IMAP literal (``{3021}``) and a POP3 RETR/TOP body appear as their
size only, and a line longer than ``MAX_LINE`` characters is cut.
"""

from __future__ import annotations

import logging
import poplib
import re
from collections.abc import Callable
from typing import Any

from shared.models.config import IncomingAccount

MAX_LINE = 2000
REDACTED = "<redacted>"
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")
_IMAP_SECRET_ARGS = frozenset({"LOGIN"})
_POP3_SECRET_ARGS = frozenset({"USER", "PASS", "APOP"})
_SASL = frozenset({"AUTHENTICATE", "AUTH"})
_POP3_BODIES = frozenset({"RETR", "TOP"})


def _same(text: str) -> str:
    return text


class ProtocolTrace:
    """Renders and logs one connection's lines, redacted (see the module docstring)."""

    def __init__(self, account: str, protocol: str, where: str) -> None:
        self.log = logging.getLogger(f"mailroom.trace.{account}")
        self.log.setLevel(logging.DEBUG)
        self.scrub: Callable[[str], str] = _same
        """Replaces known secrets; the adapter sets it to its own scrubber."""
        self._account = account
        self._protocol = protocol
        self._where = where
        self._imap = protocol.startswith("IMAP")
        self._reset()

    def start(self) -> None:
        """A new connection begins: forget the state of the previous one."""
        self._reset()
        self.note(f"connecting to {self._where} ({self._protocol})")

    def _reset(self) -> None:
        self._auth: str | None = None  # IMAP: tag of the running LOGIN/AUTHENTICATE; POP3: "AUTH"
        self._buffer = bytearray()
        self._literal = 0  # bytes of the current IMAP literal still to come
        self._literal_size = 0
        self._body: tuple[int, int] | None = None  # POP3 body in progress: lines, bytes
        self._body_due = False  # a RETR/TOP was sent; its status line comes next

    def note(self, text: str) -> None:
        """Log an event of the connection (connect, TLS upgrade) rather than a line."""
        self._emit("*", text)

    def client(self, line: str | bytes) -> None:
        """A line the client sends, without its CRLF."""
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        self._emit("C", self._client_text(text.rstrip("\r\n")))

    def server_data(self, data: bytes) -> None:
        """Bytes from an IMAP server as they arrive: split into lines, literals skipped."""
        self._buffer += data
        while self._buffer:
            if self._literal:
                taken = min(self._literal, len(self._buffer))
                del self._buffer[:taken]
                self._literal -= taken
                if self._literal:
                    return
                self._emit("S", f"<literal of {self._literal_size} bytes>")
                continue
            end = self._buffer.find(b"\r\n")
            if end < 0:
                return
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            self.server_line(line)
            literal = _LITERAL.search(line)
            if literal is not None:
                self._literal = self._literal_size = int(literal.group(1))
                if not self._literal:
                    self._emit("S", "<literal of 0 bytes>")

    def server_line(self, line: bytes) -> None:
        """One whole line from the server, without its CRLF."""
        if self._body is not None:  # POP3 RETR/TOP: count, never show
            if line == b".":
                lines, size = self._body
                self._body = None
                self._emit("S", f"<message of {lines} lines, {size} bytes>")
                self._emit("S", ".")
            else:
                self._body = (self._body[0] + 1, self._body[1] + len(line) + 2)
            return
        text = line.decode("utf-8", "replace")
        if self._body_due:
            self._body_due = False
            if text.startswith("+OK"):
                self._body = (0, 0)
        self._emit("S", self._server_text(text))

    def _client_text(self, text: str) -> str:
        if self._auth is not None:
            return REDACTED if text else text
        words = text.split(" ", 2 if self._imap else 1)
        tag = f"{words[0]} " if self._imap else ""
        rest = words[1:] if self._imap else words
        command = rest[0].upper() if rest else ""
        arguments = rest[1] if len(rest) > 1 else ""
        if self._imap and command in _IMAP_SECRET_ARGS:
            self._auth = words[0]
            return f"{tag}{command} {REDACTED}"
        if not self._imap and command in _POP3_SECRET_ARGS:
            return f"{command} {REDACTED}"
        if command in _SASL:
            self._auth = words[0] if self._imap else "AUTH"
            mechanism, _, initial = arguments.partition(" ")
            return f"{tag}{command} {mechanism}" + (f" {REDACTED}" if initial else "")
        if not self._imap and command in _POP3_BODIES:
            self._body_due = True
        return text

    def _server_text(self, text: str) -> str:
        if self._auth is None:
            return text
        if self._imap and text.startswith(f"{self._auth} "):
            self._auth = None
            return text
        if not self._imap and text.startswith(("+OK", "-ERR")):
            self._auth = None
            return text
        if text.startswith("+"):
            return f"+ {REDACTED}"
        return text

    def _emit(self, direction: str, text: str) -> None:
        text = self.scrub(text)
        if len(text) > MAX_LINE:
            text = f"{text[:MAX_LINE]}... ({len(text)} characters)"
        self.log.debug(
            "%s %s", direction, text, extra={"account": self._account, "direction": direction}
        )


def protocol_trace(account: IncomingAccount) -> ProtocolTrace | None:
    """A trace for the account's connection when its debug switch is yes; None otherwise
    (``inherit`` counts as off here: the caller resolves it, see the module docstring)."""
    if account.debug != "yes":
        return None
    return ProtocolTrace(account.name, account.protocol, f"{account.host}:{account.effective_port}")


def attach_imap(protocol: Any, trace: ProtocolTrace) -> None:
    """Trace an aioimaplib protocol (before its connection delivers the greeting): every
    command it sends and everything its transport receives, a TLS upgrade included."""
    trace.start()
    send, received = protocol.send, protocol.data_received

    def traced_send(line: str, scrub: str | None = None) -> None:
        trace.client(line)
        send(line, scrub)

    def traced_received(data: bytes) -> None:
        trace.server_data(data)
        received(data)

    protocol.send = traced_send
    protocol.data_received = traced_received


def attach_pop3(pop: poplib.POP3, trace: ProtocolTrace) -> None:
    """Trace a connected poplib session (each round opens one): its greeting, then every
    line either way."""
    trace.start()
    trace.server_line(pop.welcome)
    putline, getline = pop._putline, pop._getline  # type: ignore[attr-defined]

    def traced_put(line: bytes) -> None:
        trace.client(line)
        putline(line)

    def traced_get() -> tuple[bytes, int]:
        line, octets = getline()
        trace.server_line(line)
        return line, octets

    pop._putline = traced_put  # type: ignore[attr-defined]
    pop._getline = traced_get  # type: ignore[attr-defined]
