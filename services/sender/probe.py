"""The outgoing connection test (the "test" button): connect, secure, authenticate and,
when asked, send a test mail — reporting each step and the technical error, never a secret.

On a system whose flavour intercepts outgoing mail the connection is still tested (an
operator preparing production wants to know it works), but the test mail is not sent: the
report says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiosmtplib

from services.sender.compose import compose, envelope_sender
from services.sender.registry import AdapterDeps, Transports
from services.sender.smtp import is_encrypted, open_connection, translate
from services.sender.transport import CheckableTransport
from shared.auth import NamedTokenProvider
from shared.errors import MailroomError
from shared.models.config import OutgoingConnection, SystemConfig
from shared.models.messages import MailAddress, OutgoingMail, new_id
from shared.store.credentials import CredentialRepo

TEST_SUBJECT = "Mailroom test mail"
TEST_TEXT = (
    "This is a test mail from Mailroom's outgoing connection test.\n"
    "If you can read it, outgoing mail works.\n"
)


@dataclass
class ProbeReport:
    """What the test found; ``ok`` when every step asked for succeeded."""

    ok: bool
    server: str
    security: str
    steps: list[str] = field(default_factory=list)
    error: str | None = None
    intercepted: bool = False
    """True when the system flavour keeps outgoing mail in the test archive."""
    test_mail: str | None = None
    """What became of the test mail, when one was asked for."""


async def probe(
    connection: OutgoingConnection,
    config: SystemConfig,
    *,
    send_to: str | None = None,
    credentials: CredentialRepo | None = None,
) -> ProbeReport:
    """Test ``connection``; with ``send_to``, send a test mail there (unless intercepted).
    A connection naming a credential takes its tokens from ``credentials``."""
    if connection.protocol != "smtp":
        return await _probe_adapter(connection, config, send_to=send_to, credentials=credentials)
    report = ProbeReport(
        ok=False,
        server=f"{connection.host}:{connection.effective_port}",
        security=connection.security,
        intercepted=config.system.intercepts,
    )
    smtp: aiosmtplib.SMTP | None = None
    try:
        tokens = None
        if connection.credential is not None and credentials is not None:
            user = connection.username or ""
            tokens = NamedTokenProvider(credentials, connection.credential, user=user).token
        smtp = await open_connection(connection, tokens)
        report.steps.append(f"connected to {report.server}")
        if connection.security == "auto" and not is_encrypted(smtp):
            report.steps.append("no TLS: the server offers no STARTTLS (security auto)")
        elif connection.security != "none":
            report.steps.append(
                "TLS established, certificate verified"
                if connection.verify_tls
                else "TLS established, certificate NOT verified (verify_tls=false)"
            )
        if connection.username:
            how = "with an OAuth 2.0 token (XOAUTH2)" if connection.auth == "oauth2" else ""
            report.steps.append(f"authenticated as {connection.username} {how}".strip())
        if send_to is not None:
            report.test_mail = await _send_test(smtp, connection, config, send_to)
        report.ok = True
    except MailroomError as exc:
        report.error = str(exc)
    except Exception as exc:
        error = translate(exc, connection)
        if error is None:
            raise
        report.error = str(error)
    finally:
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit(timeout=2.0)
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                smtp.close()
    return report


async def _probe_adapter(
    connection: OutgoingConnection,
    config: SystemConfig,
    *,
    send_to: str | None,
    credentials: CredentialRepo | None,
) -> ProbeReport:
    """The test of a connection sent through a registered adapter (Graph, JMAP): its
    ``check`` (sign-in and what can be proven without sending), then, when asked, the test
    mail through the same adapter the sender uses."""
    report = ProbeReport(
        ok=False,
        server=connection.server,
        security=connection.server.split(":", 1)[0],  # the URL's scheme: https (http: loopback)
        intercepted=config.system.intercepts,
    )
    deps = AdapterDeps(credentials=(lambda: credentials) if credentials is not None else None)
    transports = Transports(deps)
    adapter = transports.adapter(connection.protocol)
    try:
        if isinstance(adapter, CheckableTransport):
            sender = envelope_sender(compose(_test_mail(send_to or "probe@example.org"), config))
            report.steps += await adapter.check(connection, sender=sender)
        if send_to is not None:
            report.test_mail = await _send_test(transports, connection, config, send_to)
        report.ok = True
    except MailroomError as exc:
        report.error = str(exc)
    finally:
        await transports.close()
    return report


def _test_mail(send_to: str) -> OutgoingMail:
    return OutgoingMail(
        mail_id=f"test-{new_id()}",
        kind="notification",
        automatic=True,
        to=[MailAddress(address=send_to)],
        subject=TEST_SUBJECT,
        text=TEST_TEXT,
    )


async def _send_test(
    via: aiosmtplib.SMTP | Transports,
    connection: OutgoingConnection,
    config: SystemConfig,
    send_to: str,
) -> str:
    if config.system.intercepts:
        return (
            f"not sent: system flavour {config.system.flavour!r} is a test-archive flavour, "
            "so outgoing mail is kept in the test archive instead of being sent"
        )
    message = compose(_test_mail(send_to), config)
    if isinstance(via, Transports):
        result = await via.send(message, connection, [send_to])
        if result.reply is None or result.refused:
            return f"refused: {'; '.join(f'{r}: {e}' for r, e in result.refused.items())}"
        return f"sent to {send_to}: {result.reply}"
    refused, reply = await via.send_message(message, timeout=connection.send_timeout_ms / 1000)
    if refused:
        return f"refused: {'; '.join(f'{r}: {e.code} {e.message}' for r, e in refused.items())}"
    return f"sent to {send_to}: 250 {reply}"
