"""The sender's SMTP connections: per outgoing server (the global connection, and each
account's own, see ``IncomingAccount.outgoing_connection``) ``concurrency`` sessions used in
parallel, each reused across mails.

A mail takes an idle session (or opens one while fewer than ``concurrency`` exist), sends,
and gives it back; when all are busy it waits. A session is reopened when the server dropped
it, when it fails a NOOP after being idle, or after a timeout or dropped connection left its
state unknown. New connection settings (the config broadcast changed ``outgoing/smtp``)
rebuild the pool: idle sessions are closed at once, busy ones when their mail is done, and
the new ``concurrency`` applies to the next mail. A server's pool unused for ten minutes
is closed (its account moved to another server, or was deleted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from services.sender.compose import envelope_recipients, envelope_sender, wire_bytes
from services.sender.smtp import open_connection, server_name, translated
from services.sender.tokens import TokenProviders
from services.sender.transport import OutcomeUnknown, Refusal, SendResult, Starting
from shared.auth import TokenProvider, judge_sign_in
from shared.errors import Permanent, Transient
from shared.models.config import OutgoingConnection

IDLE_PROBE_S = 5.0
"""A connection idle for longer is probed with NOOP first: servers drop idle clients."""


class _Session:
    """One SMTP connection, opened on first use and reused until it fails."""

    def __init__(self, providers: TokenProviders) -> None:
        self._smtp: aiosmtplib.SMTP | None = None
        self._settings: OutgoingConnection | None = None
        self._last_used = 0.0
        self._providers = providers

    async def send(
        self, message: EmailMessage, conn: OutgoingConnection, recipients: Sequence[str] | None
    ) -> SendResult:
        handover = _Handover()
        try:
            with translated(conn):
                smtp = await self._connection(conn)
                try:
                    refused, reply = await _transmit(smtp, message, conn, recipients, handover)
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    # Not a failure of the transaction: each recipient has its own fate
                    # (aiosmtplib sent RSET, the session stays usable).
                    self._last_used = time.monotonic()
                    return SendResult(
                        reply=None,
                        refused={r.recipient: Refusal(r.code, r.message) for r in exc.recipients},
                    )
        except Permanent:
            raise  # a refusal leaves the session usable (aiosmtplib sent RSET)
        except Transient as exc:
            self.close()
            if handover.whole:
                raise OutcomeUnknown(
                    f"{exc}, after the whole mail was handed over: it may have been accepted"
                ) from exc
            raise
        except BaseException:
            # After a timeout, a drop or a cancellation mid-command the session state is
            # unknown: start clean next time.
            self.close()
            raise
        self._last_used = time.monotonic()
        # aiosmtplib raises unless DATA was answered 250, and returns only the text.
        return SendResult(
            reply=f"250 {reply}",
            refused={rcpt: Refusal(r.code, r.message) for rcpt, r in refused.items()},
        )

    async def quit(self) -> None:
        """Say QUIT and close; safe when nothing is open."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit(timeout=1.0)
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()

    def close(self) -> None:
        """Close without QUIT (the server may be gone or the session out of step)."""
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None

    async def _connection(self, conn: OutgoingConnection) -> aiosmtplib.SMTP:
        smtp = self._smtp
        if smtp is not None and (conn != self._settings or not await self._alive(smtp, conn)):
            self.close()
            smtp = None
        if smtp is None:
            provider = self._provider(conn)
            try:
                smtp = await open_connection(conn, provider.token if provider else None)
            except aiosmtplib.SMTPAuthenticationError as exc:
                if provider is None:
                    raise
                # The token may have been revoked or expired early: ask anew next time.
                provider.invalidate()
                text = (
                    f"SMTP server {server_name(conn)} refused the token (XOAUTH2) for user "
                    f"{conn.username!r}: {exc.code} {exc.message}"
                )
                # A static token has no issuer to ask again: this refusal is its verdict.
                await judge_sign_in(provider, refused=text)
                raise Transient(text) from exc
            await judge_sign_in(provider)
            self._smtp, self._settings = smtp, conn
        return smtp

    def _provider(self, conn: OutgoingConnection) -> TokenProvider | None:
        return self._providers.provider(conn) if conn.auth == "oauth2" else None

    async def _alive(self, smtp: aiosmtplib.SMTP, conn: OutgoingConnection) -> bool:
        if not smtp.is_connected:
            return False
        if time.monotonic() - self._last_used < IDLE_PROBE_S:
            return True
        try:
            await smtp.noop(timeout=conn.connect_timeout_ms / 1000)
        except (aiosmtplib.SMTPException, OSError):
            return False
        return True


class _Handover:
    """Whether the whole message (up to the final ``.``) was written to the server."""

    whole = False

    def watch(self, protocol: SMTPProtocol) -> Callable[[], None]:
        """Note on ``protocol`` when the end of the message is written; returns the undo.

        aiosmtplib writes DATA's payload and then waits for the reply in one call, so a drop
        while waiting looks like a drop before DATA; only the write tells them apart.
        """
        write = protocol.write

        def noting(data: bytes) -> None:
            write(data)
            if data.endswith(b"\r\n.\r\n"):
                self.whole = True

        protocol.write = noting  # type: ignore[method-assign]
        return lambda: setattr(protocol, "write", write)


async def _transmit(
    smtp: aiosmtplib.SMTP,
    message: EmailMessage,
    conn: OutgoingConnection,
    recipients: Sequence[str] | None,
    handover: _Handover,
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    """MAIL, RCPT, DATA: the message flattened once, the envelope from what we know already
    (``send_message`` would copy the message and parse its address headers again)."""
    timeout = conn.send_timeout_ms / 1000
    sender = envelope_sender(message)
    rcpts = list(recipients) if recipients is not None else envelope_recipients(message)
    utf8 = not (sender + "".join(rcpts)).isascii()
    if utf8:
        if smtp.is_ehlo_or_helo_needed:
            await smtp.ehlo(timeout=timeout)
        if not smtp.supports_extension("smtputf8"):
            raise Permanent(
                f"SMTP server {server_name(conn)} does not support SMTPUTF8, which the "
                "non-ASCII addresses of this mail need"
            )
    undo = handover.watch(smtp.protocol) if smtp.protocol else (lambda: None)
    try:
        return await smtp.sendmail(
            sender,
            rcpts,
            wire_bytes(message, utf8=utf8),
            mail_options=["SMTPUTF8"] if utf8 else [],
            timeout=timeout,
        )
    finally:
        undo()


ServerKey = tuple[str, int, str | None]
"""An outgoing server as the pools tell them apart: host, port and the login on it."""


def server_key(conn: OutgoingConnection) -> ServerKey:
    """The pool ``conn`` belongs to: one per server and login."""
    return (conn.host.lower(), conn.effective_port, conn.username)


class _Pool:
    """The sessions of one outgoing server: ``concurrency`` at most, each reused."""

    def __init__(self, new_session: Callable[[], _Session]) -> None:
        self._settings: OutgoingConnection | None = None
        self._slots = asyncio.Semaphore(1)
        self._idle: list[_Session] = []
        self._new_session = new_session
        self._out = 0  # sessions a mail holds
        self.last_used = time.monotonic()

    async def checkout(self, conn: OutgoingConnection) -> tuple[asyncio.Semaphore, _Session]:
        """A free session under ``conn``'s limit, waiting while all are busy."""
        self.last_used = time.monotonic()
        if conn != self._settings:
            for session in self.rebuild(conn):
                session.close()
        while True:
            slots = self._slots
            await slots.acquire()
            if slots is self._slots:
                break
            # The pool was rebuilt while this mail waited: queue up under the new limit.
            slots.release()
        self._out += 1
        return slots, self._idle.pop() if self._idle else self._new_session()

    def checkin(self, slots: asyncio.Semaphore, session: _Session) -> None:
        """Give a session back (closed if the pool was rebuilt meanwhile)."""
        self.last_used = time.monotonic()
        self._out -= 1
        slots.release()
        if slots is self._slots:
            self._idle.append(session)
        else:
            session.close()  # opened under settings that no longer hold

    def rebuild(self, conn: OutgoingConnection | None) -> list[_Session]:
        """Start over with ``conn``'s concurrency; the idle sessions, to be closed."""
        idle, self._idle = self._idle, []
        self._settings = conn
        self._slots = asyncio.Semaphore(conn.concurrency if conn is not None else 1)
        return idle

    @property
    def busy(self) -> bool:
        """Whether a mail holds one of the sessions."""
        return self._out > 0


UNUSED_POOL_S = 600.0
"""A server's pool unused this long is closed: its account changed server or was removed."""


class AiosmtplibTransport:
    """SMTP over aiosmtplib: one pool per outgoing server (the global connection and each
    account's own), each with ``concurrency`` connections reused across messages."""

    def __init__(self, tokens: TokenProviders | None = None) -> None:
        """``tokens`` signs in with OAuth 2.0 (default: clients only, no named credentials)."""
        self._pools: dict[ServerKey, _Pool] = {}
        # Shared by the sessions, so tokens are reused.
        self._providers = TokenProviders() if tokens is None else tokens

    async def send(
        self,
        message: EmailMessage,
        connection: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SendResult:
        """Send ``message`` on a free session of ``connection``'s server; the server's
        answer to DATA and the refusals. ``starting`` is awaited once the session is taken."""
        await self._drop_unused()
        key = server_key(connection)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(self._new_session)
        slots, session = await pool.checkout(connection)
        try:
            if starting is not None:
                await starting()
            return await session.send(message, connection, recipients)
        finally:
            pool.checkin(slots, session)

    async def close(self) -> None:
        """Say QUIT on every idle session; busy ones close when their mail is done."""
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(s.quit() for p in pools for s in p.rebuild(None)))

    @property
    def servers(self) -> list[ServerKey]:
        """The servers a pool is kept for."""
        return list(self._pools)

    def _new_session(self) -> _Session:
        return _Session(self._providers)

    async def _drop_unused(self) -> None:
        now = time.monotonic()
        unused = [
            key
            for key, pool in self._pools.items()
            if now - pool.last_used > UNUSED_POOL_S and not pool.busy
        ]
        for key in unused:
            await asyncio.gather(*(s.quit() for s in self._pools.pop(key).rebuild(None)))
