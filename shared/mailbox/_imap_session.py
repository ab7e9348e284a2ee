"""One aioimaplib connection: every command under a timeout, raced against the connection's
loss, and its failures translated into Mailroom's errors.

failure                                              → Mailroom error
├── LOGIN/AUTHENTICATE answered NO/BAD               → AuthFailed "login refused for user@host"
│   └── with an RFC 5530 "later" code ([UNAVAILABLE]) → Transient
├── SELECT answered NO/BAD (no such folder, no rights) → Permanent
├── server certificate not trusted                   → Permanent
├── argument IMAP cannot carry (CR, LF, NUL)         → Permanent
├── answer that breaks the protocol (truncated literal, no UID) → Transient
├── other NO/BAD answers                             → Transient
└── timeout, refused or dropped connection, TLS failure → Transient

aioimaplib leaves a command waiting forever when the server hangs up, and some of its
commands ignore its timeout; hence the race. After a timeout or a loss the connection's
state is unknown, so the session is marked lost and never used again. Texts name user and
host, never the password: server answers and library texts are scrubbed of it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aioimaplib

from shared.errors import MailroomError, Permanent, Transient, cert_error
from shared.mailbox._imap_parse import (
    TEMPORARY_CODES,
    ImapProtocolError,
    quote,
    response_code,
    status_text,
)
from shared.mailbox.trace import ProtocolTrace, attach_imap

T = TypeVar("T")


class ConnectionLost(Exception):
    """The server closed the connection while a command was waiting for its answer."""


async def race(aw: Awaitable[T], lost: asyncio.Event, timeout: float | None) -> T:
    """``aw``'s result; TimeoutError after ``timeout``, ConnectionLost once ``lost`` is set."""
    task = asyncio.ensure_future(aw)
    watcher = asyncio.ensure_future(lost.wait())
    try:
        done, _ = await asyncio.wait(
            {task, watcher}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if task in done:
        return task.result()
    if watcher in done:
        raise ConnectionLost()
    raise TimeoutError()


def translate(exc: Exception, *, where: str, what: str, timeout: float) -> MailroomError | None:
    """The Mailroom error for a failure of command ``what`` at ``where``; None for a bug.

    aioimaplib's own exceptions are not handled here: their texts may quote a pending
    command with its arguments (see :meth:`Session.translated`).
    """
    cert = cert_error(exc)
    if cert is not None:
        return Permanent(
            f"TLS certificate of IMAP server {where} is not trusted: {cert.verify_message}; "
            "set ca_file to the CA that signed it"
        )
    if isinstance(exc, ConnectionLost):
        return Transient(f"IMAP server {where} closed the connection during {what}")
    if isinstance(exc, TimeoutError):
        return Transient(f"IMAP server {where} did not answer {what} within {timeout:g} s")
    if isinstance(exc, ImapProtocolError):
        return Transient(f"IMAP server {where} answered {what} wrongly: {exc}")
    if isinstance(exc, ssl.SSLError):
        return Transient(
            f"TLS with IMAP server {where} failed: {getattr(exc, 'reason', None) or exc}"
        )
    if isinstance(exc, OSError):
        return Transient(f"IMAP server {where} unreachable: {exc.strerror or exc}")
    if isinstance(exc, ValueError):  # aioimaplib refuses CR, LF and NUL in arguments
        return Permanent(f"cannot send {what} to IMAP server {where}: {exc}")
    return None


@dataclass
class Session:
    """An aioimaplib client and what is known about its connection."""

    client: Any  # aioimaplib.IMAP4 (untyped)
    where: str
    timeout: float
    secret: str = field(repr=False)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    capabilities: frozenset[str] = frozenset()
    uidvalidity: int = 0
    trace: ProtocolTrace | None = None
    """Set: the conversation is traced (hooked here, before the greeting arrives)."""

    def __post_init__(self) -> None:
        if self.trace is not None:
            self.trace.scrub = self.scrub
            attach_imap(self.client.protocol, self.trace)

    async def call(self, aw: Awaitable[T], what: str, *, bounded: bool = True) -> T:
        """Run one command; ``bounded=False`` leaves the timing to the command itself."""
        with self.translated(what):
            return await race(aw, self.lost, self.timeout if bounded else None)

    def check(
        self,
        response: Any,
        what: str,
        *,
        refused: str | None = None,
        permanent: bool | type[Permanent] = False,
    ) -> None:
        """Raise unless the server answered OK; ``permanent`` for refusals that will last
        (a Permanent subclass, e.g. AuthFailed, names what kind)."""
        if response.result == "OK":
            return
        text = self.scrub(status_text(response.lines))
        temporary = response_code(text) in TEMPORARY_CODES
        lasting = permanent if isinstance(permanent, type) else Permanent
        error = lasting if permanent and not temporary else Transient
        raise error(
            f"{refused or f'IMAP server {self.where} refused {what}'}: {response.result} {text}"
        )

    @contextmanager
    def translated(self, what: str) -> Iterator[None]:
        """Translate failures inside the block; any of them ends the session."""
        try:
            yield
        except MailroomError:
            raise
        except aioimaplib.AioImapException as exc:
            self.lost.set()
            if isinstance(exc, aioimaplib.CommandTimeout):
                text = f"IMAP server {self.where} did not answer {what} within {self.timeout:g} s"
            else:
                detail = self.scrub(str(exc)) or type(exc).__name__
                text = f"IMAP protocol error with {self.where} during {what}: {detail}"
            raise Transient(text) from None  # the cause's text may hold the password
        except Exception as exc:
            self.lost.set()
            error = translate(exc, where=self.where, what=what, timeout=self.timeout)
            if error is None:
                raise
            raise type(error)(self.scrub(str(error))) from exc

    def scrub(self, text: str) -> str:
        """``text`` without the password, plain or quoted."""
        if self.secret:
            for form in (self.secret, quote(self.secret)):
                text = text.replace(form, "***")
        return text

    def drop(self) -> None:
        """Close the transport and cancel aioimaplib's helper tasks."""
        self.lost.set()
        transport = self.client.protocol.transport
        if transport is not None:
            transport.close()
        connecting = getattr(self.client, "_client_task", None)
        for task in [connecting, *self.client.tasks, *self.client.protocol.tasks]:
            if task is not None and not task.done():
                task.cancel()
        if self.trace is not None:
            self.trace.note("connection closed")
