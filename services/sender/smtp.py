"""The SMTP adapter of ``transport.OutgoingTransport``: opening an aiosmtplib session, and
its errors translated at the edge (the sessions are pooled and reused in ``pool``).

aiosmtplib error                           → Mailroom error
├── 4xx reply (any command, AUTH included) → Transient
├── 5xx reply                              → Permanent, with the server's reply text
│   └── AUTH refused                       → Permanent naming user and host, never the password
├── all recipients refused                 → per-recipient refusals in the reply (send);
│                                            Transient if any was 4xx, else Permanent (translate)
├── certificate not trusted                → Permanent (only a configuration change helps)
├── timeout, refused or dropped connection → Transient
└── feature missing (STARTTLS, AUTH, UTF-8) → Permanent
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import aiosmtplib

from shared.auth.oauth import MsalTokenProvider, OAuthCredentials
from shared.errors import MailroomError, Permanent, Transient, cert_error
from shared.mailbox._tls import tls_context
from shared.models.config import OutgoingConnection, SystemConfig

log = logging.getLogger(__name__)


def server_name(conn: OutgoingConnection) -> str:
    """``host:port`` of the connection, for messages."""
    return f"{conn.host}:{conn.effective_port}"


def _by_code(code: int, text: str) -> MailroomError:
    return Permanent(text) if 500 <= code < 600 else Transient(text)


def translate(exc: Exception, connection: OutgoingConnection) -> MailroomError | None:
    """The Mailroom error for an exception of a send, or None when it is not an SMTP failure."""
    where = server_name(connection)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return _by_code(
            exc.code,
            f"SMTP server {where} refused the login of user {connection.username!r}: "
            f"{exc.code} {exc.message}",
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        temporary = any(400 <= r.code < 500 for r in exc.recipients)
        text = f"SMTP server {where} refused all recipients: {refusals}"
        return Transient(text) if temporary else Permanent(text)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return _by_code(
            exc.code, f"SMTP server {where} refused sender {exc.sender}: {exc.code} {exc.message}"
        )
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return _by_code(
            exc.code, f"SMTP server {where} refused the message: {exc.code} {exc.message}"
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, f"SMTP server {where} answered {exc.code} {exc.message}")
    cert = cert_error(exc)
    if cert is not None:
        return Permanent(
            f"TLS certificate of SMTP server {where} is not trusted: {cert.verify_message}; "
            "set ca_file to the CA that signed it"
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return Transient(f"SMTP server {where} timed out: {exc}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | OSError):
        return Transient(f"SMTP server {where} unreachable or disconnected: {exc}")
    if isinstance(exc, aiosmtplib.SMTPException):
        # Missing STARTTLS, AUTH or SMTPUTF8: the configuration and the server disagree.
        return Permanent(f"SMTP server {where}: {exc.message}")
    if isinstance(exc, ValueError):
        return Permanent(f"mail cannot be sent: {exc}")
    return None


@contextmanager
def translated(connection: OutgoingConnection) -> Iterator[None]:
    """Raise the Mailroom error for an SMTP failure inside the block (see ``translate``)."""
    try:
        yield
    except Exception as exc:
        error = translate(exc, connection)
        if error is None:
            raise
        raise error from exc


TokenSource = Callable[[], Awaitable[str]]


def effective_connection(config: SystemConfig) -> OutgoingConnection | None:
    """The outgoing connection with ``credentials_from`` resolved to that account's."""
    conn = config.outgoing
    if conn is None or conn.credentials_from is None:
        return conn
    # SystemConfig refuses a credentials_from naming no account.
    return conn.with_credentials_of(config.accounts[conn.credentials_from])


def token_provider(conn: OutgoingConnection, *, scope: str | None = None) -> MsalTokenProvider:
    """An msal token provider for an ``auth: oauth2`` connection, asking for ``scope``
    (default: the connection's)."""
    scope = scope or conn.scope
    assert conn.client_id and conn.client_secret and conn.authority and scope
    return MsalTokenProvider(
        OAuthCredentials(
            client_id=conn.client_id,
            client_secret=conn.client_secret.get_secret_value(),
            authority=conn.authority,
            scope=scope,
            ca_file=conn.oauth_ca_file,
            timeout=conn.connect_timeout_ms / 1000,
        )
    )


async def open_connection(
    conn: OutgoingConnection, token: TokenSource | None = None
) -> aiosmtplib.SMTP:
    """A connected (secured, authenticated) SMTP session; raises the library's errors.

    With ``auth: oauth2`` the login is XOAUTH2 with tokens from ``token``. With security
    ``auto`` the session is upgraded when the server offers STARTTLS, and credentials are
    sent only over TLS: a server that offers no STARTTLS gets no password (Permanent).
    """
    tls: ssl.SSLContext | None = None
    if conn.security != "none":
        where = server_name(conn)
        # Reading a CA file is blocking file I/O.
        tls = await asyncio.to_thread(
            tls_context,
            conn.verify_tls,
            conn.ca_file,
            where=f"the SMTP server {where}",
            extra={"smtp_server": where},
        )
    elif conn.username:
        log.warning(
            "SMTP credentials are sent without TLS (security=none)",
            extra={"smtp_server": server_name(conn)},
        )
    oauth = conn.auth == "oauth2"
    if oauth and token is None:
        if conn.credential is not None:
            raise Permanent(f"credential {conn.credential!r}: no token source was given")
        token = token_provider(conn).token
    auto = conn.security == "auto"
    password = conn.password.get_secret_value() if conn.password and not oauth else None
    smtp = aiosmtplib.SMTP(
        hostname=conn.host,
        port=conn.effective_port,
        # With auto the login waits until the upgrade is known (aiosmtplib would log in
        # right after connecting, in clear when the server offered no STARTTLS).
        username=None if auto else conn.username,
        password=None if auto else password,
        oauth_token_generator=token if oauth and not auto else None,
        timeout=conn.connect_timeout_ms / 1000,
        use_tls=conn.security == "tls",
        # None upgrades when offered (auto); False, not None, otherwise: aiosmtplib would
        # upgrade on its own when offered.
        start_tls=None if auto else conn.security == "starttls",
        tls_context=tls,
    )
    await smtp.connect()
    if auto and conn.username:
        try:
            await _login_over_tls(smtp, conn, password, token if oauth else None)
        except BaseException:
            smtp.close()
            raise
    return smtp


def is_encrypted(smtp: aiosmtplib.SMTP) -> bool:
    """Whether the session runs over TLS (from the first byte or after STARTTLS)."""
    return smtp.get_transport_info("sslcontext") is not None


async def _login_over_tls(
    smtp: aiosmtplib.SMTP,
    conn: OutgoingConnection,
    password: str | None,
    token: TokenSource | None,
) -> None:
    """Security ``auto``'s login: only on an encrypted session (CSM's "Auto")."""
    assert conn.username is not None
    if not is_encrypted(smtp):
        raise Permanent(
            f"SMTP server {server_name(conn)} does not offer STARTTLS, and security is auto: "
            f"the credentials of {conn.username!r} are not sent in clear. Use security tls, "
            "or none if the network is trusted"
        )
    if token is not None:
        if smtp.is_ehlo_or_helo_needed:
            await smtp.ehlo()
        if "xoauth2" not in smtp.server_auth_methods:
            raise Permanent(f"SMTP server {server_name(conn)} does not offer AUTH XOAUTH2")
        await smtp.auth_xoauth2(conn.username, await token())
    else:
        await smtp.login(conn.username, password or "")
