"""POP3 (plain or STLS) and POP3S mailboxes on stdlib ``poplib``, run in a worker thread.

poplib is blocking, so every call runs in ``asyncio.to_thread``; the socket timeout bounds
each read and write. A cancelled call shuts the socket down, which ends the thread's read
at once instead of leaving it blocked until the timeout.

POP3 has no flags and no stable numbering across sessions: the UIDL is the source key, and
every round is a session of its own, because the server shows the maildrop as it was at
login. Deletion is two-phase in POP3 itself: ``DELE`` only marks a message, and ``QUIT``
commits. ``mark_done(delete)`` marks exactly the messages that were stored and confirmed,
and ``close()`` (after the round, before waiting) commits them with QUIT. A crash before QUIT
leaves them on the server; the next round finds them stored and announced under their UIDL
and marks them again, so nothing is lost and nothing is announced twice.

Mail left on the server (``mark_done(seen)``: POP3 has no flags) is told apart by its UIDL:
the cursor (``shared.models.cursors``) holds the UIDLs taken and still in the maildrop,
which are never listed again. UIDLs can change unnoticed (a server migration), so every
listing says ``twins_possible``.

failure                                          → Mailroom error
├── USER/PASS or AUTH answered -ERR              → AuthFailed "login refused for user@host"
│   └── with [SYS/TEMP] or [IN-USE] (RFC 3206)   → Transient
├── server without UIDL                          → Permanent
├── server certificate not trusted               → Permanent
└── other -ERR, timeout, refused or dropped connection, TLS failure → Transient
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import poplib
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import TypeVar

from shared.auth import AuthFailed, CredentialHealth, TokenProvider, xoauth2
from shared.errors import MailroomError, Permanent, Transient, cert_error
from shared.mailbox._tls import account_tls_context, wants_starttls
from shared.mailbox.base import (
    Disposal,
    FetchedMail,
    Guard,
    Listing,
    MailboxStatus,
    MessageRef,
    unguarded,
)
from shared.mailbox.trace import attach_pop3, protocol_trace
from shared.models.config import IncomingAccount
from shared.models.cursors import pop3_cursor, pop3_taken

log = logging.getLogger(__name__)

# poplib refuses lines above 2,048 bytes; real mail has longer ones (unwrapped HTML,
# base64 without line breaks). The line is read into memory anyway, so a high bound costs
# nothing beyond what the mail itself needs.
poplib._MAXLINE = max(poplib._MAXLINE, 256 * 1024 * 1024)  # type: ignore[attr-defined]

TEMPORARY_CODES = ("[SYS/TEMP]", "[IN-USE]", "[LOGIN-DELAY]")
T = TypeVar("T")


class Pop3Mailbox:
    """The maildrop of one POP3/POP3S account (implements ``shared.mailbox.Mailbox``)."""

    def __init__(
        self, account: IncomingAccount, *, timeout: float, tokens: TokenProvider | None = None
    ) -> None:
        self._account = account
        self._timeout = timeout
        self._tokens = tokens  # set: AUTH XOAUTH2 instead of USER/PASS
        self._where = f"{account.host}:{account.effective_port}"
        self._who = f"{account.username}@{account.host}"
        self._secret = account.password.get_secret_value() if account.password else ""
        self._pop: poplib.POP3 | None = None
        self._current: poplib.POP3 | None = None  # the session being opened, if any
        self._token = ""
        self._kept: set[str] = set()  # UIDLs left on the server by mark_done(seen)
        self._trace = protocol_trace(account)
        if self._trace is not None:
            self._trace.scrub = self._scrub

    @property
    def credential_health(self) -> CredentialHealth | None:
        """The OAuth 2.0 credential's health; None for Basic auth."""
        return self._tokens.health if self._tokens is not None else None

    @property
    def tokens(self) -> TokenProvider | None:
        """The OAuth 2.0 token source; None for Basic auth."""
        return self._tokens

    async def connect(self) -> MailboxStatus:
        """Open a new session (committing the previous one's deletions) and log in."""
        await self.close()
        self._kept = set()
        token = await self._tokens.token() if self._tokens is not None else None
        self._token = token or ""
        pop = await self._call(partial(self._open, token), "connect")
        self._pop = pop
        count, _size = await self._call(pop.stat, "STAT")
        return MailboxStatus(exists=count)

    async def list_new(self, cursor: str | None) -> Listing:
        """Every message in the maildrop whose UIDL the cursor does not hold, in maildrop
        order; UIDLs no longer listed are dropped from the next cursor."""
        pop = self._require()
        uidls = await self._call(pop.uidl, "UIDL")
        sizes = await self._call(pop.list, "LIST")
        size_of = dict(_pairs(sizes[1]))
        taken = pop3_taken(cursor)
        listed = _pairs(uidls[1])
        present = {uidl for _number, uidl in listed}
        refs = [
            MessageRef(source_key=uidl, handle=int(number), size=_int_or_none(size_of.get(number)))
            for number, uidl in listed
            if uidl not in taken
        ]

        def cursor_after(done: set[str]) -> str | None:
            keep = (taken & present) | (done & self._kept)
            if keep == taken:
                return None
            return pop3_cursor(keep)

        return Listing(
            refs=refs, twins_possible=True, cursor_after=cursor_after, cursor_every_batch=False
        )

    async def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        """Each message's bytes with CRLF line ends, as POP3 transmits them; of a message
        above ``max_size`` (by LIST) only the header block (TOP n 0)."""
        pop = self._require()
        for ref in refs:
            number = ref.handle
            if not isinstance(number, int):
                continue
            whole = max_size is None or ref.size is None or ref.size <= max_size
            call = partial(pop.retr, number) if whole else partial(pop.top, number, 0)
            _resp, lines, _octets = await self._call(call, "RETR" if whole else "TOP")
            # retr() strips every line end; POP3 sends CRLF, so that is what comes back.
            lines.append(b"")
            yield FetchedMail(ref=ref, data=b"\r\n".join(lines), complete=whole)

    async def mark_done(
        self, refs: Sequence[MessageRef], *, disposal: Disposal, guard: Guard = unguarded
    ) -> None:
        """``delete``: mark exactly these messages for deletion, ``guard`` before each DELE
        (``close()`` commits with QUIT); otherwise (POP3 has no flags nor folders) leave
        them, and the next cursor holds their UIDLs."""
        if disposal != "delete":
            self._kept.update(ref.source_key for ref in refs)
            return
        pop = self._require()
        for ref in refs:
            if isinstance(ref.handle, int):
                await guard()
                await self._call(partial(pop.dele, ref.handle), "DELE")

    async def wait_for_news(self, timeout: float) -> bool:
        """End the session (POP3 has no push, and a held session sees no new mail), sleep."""
        await self.close()
        await asyncio.sleep(timeout)
        return True

    async def close(self) -> None:
        """QUIT (which commits the deletions) and drop the connection; never raises."""
        pop, self._pop = self._pop, None
        if pop is None:
            return
        try:
            await self._call(pop.quit, "QUIT")
        except MailroomError as exc:
            log.debug("POP3 QUIT at %s failed: %s", self._where, exc)
            pop.close()
        except asyncio.CancelledError:
            pop.close()
            raise
        finally:
            if self._trace is not None:
                self._trace.note("connection closed")

    def _open(self, token: str | None) -> poplib.POP3:
        """Connect, STLS if the security policy asks for it, log in (in the worker thread)."""
        account = self._account
        pop: poplib.POP3
        if account.uses_tls:
            context = account_tls_context(account, where=self._where)
            pop = poplib.POP3_SSL(
                account.host, account.effective_port, timeout=self._timeout, context=context
            )
        else:
            pop = poplib.POP3(account.host, account.effective_port, timeout=self._timeout)
        try:
            self._current = pop  # lets a cancellation shut the socket down
            if self._trace is not None:
                attach_pop3(pop, self._trace)
            caps = _capabilities(pop)
            if wants_starttls(account, offered="STLS" in caps, where=self._where):
                pop.stls(account_tls_context(account, where=self._where))
                caps = _capabilities(pop)
            if caps and "UIDL" not in caps:
                raise Permanent(
                    f"POP3 server {self._where} does not offer UIDL: without unique ids, "
                    "Mailroom cannot tell fetched mail from new mail"
                )
            self._login(pop, token)
        except BaseException:
            pop.close()
            raise
        finally:
            self._current = None
        return pop

    def _login(self, pop: poplib.POP3, token: str | None) -> None:
        try:
            if token is None:
                pop.user(self._account.username)
                pop.pass_(self._secret)
            else:
                _xoauth2(pop, self._account.username, token)
        except poplib.error_proto as exc:
            if self._tokens is not None:
                self._tokens.invalidate()  # revoked or expired early: ask for a new one
            text = self._scrub(_text(exc))
            error = Transient if any(c in text for c in TEMPORARY_CODES) else AuthFailed
            raise error(f"login refused for {self._who}: {text}") from None

    async def _call(self, fn: Callable[[], T], what: str) -> T:
        """Run one blocking poplib call in a thread, its failures translated."""
        try:
            return await asyncio.to_thread(fn)
        except asyncio.CancelledError:
            self._shutdown()
            raise
        except MailroomError:
            raise
        except Exception as exc:
            self._shutdown()
            raise self._translate(exc, what) from None  # texts may quote the password

    def _translate(self, exc: Exception, what: str) -> MailroomError:
        cert = cert_error(exc)
        if cert is not None:
            return Permanent(
                f"TLS certificate of POP3 server {self._where} is not trusted: "
                f"{cert.verify_message}; set ca_file to the CA that signed it"
            )
        if isinstance(exc, poplib.error_proto):
            return Transient(f"POP3 server {self._where} refused {what}: {self._scrub(_text(exc))}")
        if isinstance(exc, TimeoutError):
            return Transient(
                f"POP3 server {self._where} did not answer {what} within {self._timeout:g} s"
            )
        if isinstance(exc, ssl.SSLError):
            reason = getattr(exc, "reason", None) or exc
            return Transient(f"TLS with POP3 server {self._where} failed: {reason}")
        if isinstance(exc, OSError):
            return Transient(f"POP3 server {self._where} unreachable: {exc.strerror or exc}")
        return Transient(f"POP3 {what} with {self._where} failed: {type(exc).__name__}")

    def _shutdown(self) -> None:
        """Unblock a worker thread stuck in a read; the session is unusable afterwards."""
        for pop in (self._pop, self._current):
            sock = getattr(pop, "sock", None) if pop is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._pop = None

    def _require(self) -> poplib.POP3:
        if self._pop is None:
            raise Transient(f"POP3 session with {self._where} is not open: connect() first")
        return self._pop

    def _scrub(self, text: str) -> str:
        for secret in (self._secret, self._token):
            if secret:
                text = text.replace(secret, "***")
        return text


def _xoauth2(pop: poplib.POP3, user: str, token: str) -> None:
    """AUTH XOAUTH2 with the initial response; poplib has no AUTH, so its command layer is
    used. A refusal comes as a ``+`` challenge (JSON error) that must be answered with an
    empty line before the server sends -ERR."""
    blob = base64.b64encode(xoauth2(user, token)).decode("ascii")
    answer: bytes = pop._shortcmd(f"AUTH XOAUTH2 {blob}")  # type: ignore[attr-defined]
    if answer.startswith(b"+OK"):
        return
    pop._putcmd("")  # type: ignore[attr-defined]
    pop._getresp()  # type: ignore[attr-defined]  # -ERR raises error_proto
    raise poplib.error_proto(b"-ERR XOAUTH2 refused")


def _capabilities(pop: poplib.POP3) -> dict[str, list[str]]:
    """CAPA (RFC 2449), or nothing from a server that predates it."""
    try:
        return pop.capa()
    except poplib.error_proto:
        return {}


def _pairs(lines: list[bytes]) -> list[tuple[str, str]]:
    """``b"1 abc"`` lines as (number, value) pairs."""
    pairs = []
    for line in lines:
        parts = line.decode("ascii", "replace").split()
        if len(parts) >= 2:
            pairs.append((parts[0], parts[1]))
    return pairs


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
