"""aiosmtplib's exceptions → Transient / Permanent, with the reply text and no secret."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from services.sender.smtp import translate
from shared.errors import MailroomError, Permanent, Transient
from shared.models.config import OutgoingConnection

CONN = OutgoingConnection(
    host="smtp.example.com", port=587, username="mailroom", password="s3cret-pw"
)


def refused(code: int, rcpt: str) -> aiosmtplib.SMTPRecipientRefused:
    return aiosmtplib.SMTPRecipientRefused(code, "mailbox unavailable", rcpt)


def cert_failure() -> aiosmtplib.SMTPConnectError:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    error = aiosmtplib.SMTPConnectError("Error connecting to smtp.example.com on port 465")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (aiosmtplib.SMTPResponseException(421, "closing"), Transient, "421 closing"),
        (aiosmtplib.SMTPResponseException(554, "no"), Permanent, "554 no"),
        (aiosmtplib.SMTPDataError(552, "too big"), Permanent, "refused the message: 552 too big"),
        (aiosmtplib.SMTPDataError(451, "try later"), Transient, "451 try later"),
        (
            aiosmtplib.SMTPSenderRefused(553, "not yours", "a@example.com"),
            Permanent,
            "refused sender a@example.com: 553 not yours",
        ),
        (aiosmtplib.SMTPConnectResponseError(554, "go away"), Permanent, "554 go away"),
        (aiosmtplib.SMTPHeloError(421, "busy"), Transient, "421 busy"),
        (
            aiosmtplib.SMTPRecipientsRefused([refused(550, "a@x.org"), refused(551, "b@x.org")]),
            Permanent,
            "a@x.org: 550 mailbox unavailable; b@x.org: 551 mailbox unavailable",
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([refused(550, "a@x.org"), refused(450, "b@x.org")]),
            Transient,
            "refused all recipients",
        ),
        (aiosmtplib.SMTPServerDisconnected("lost"), Transient, "disconnected: lost"),
        (aiosmtplib.SMTPConnectError("refused"), Transient, "smtp.example.com:587"),
        (aiosmtplib.SMTPConnectTimeoutError("slow"), Transient, "timed out"),
        (aiosmtplib.SMTPReadTimeoutError("slow"), Transient, "timed out"),
        (ConnectionResetError("reset"), Transient, "reset"),
        (cert_failure(), Permanent, "not trusted: self-signed certificate; set ca_file"),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 missing"), Permanent, "SMTPUTF8 missing"),
        (aiosmtplib.SMTPException("AUTH not offered"), Permanent, "AUTH not offered"),
        (ValueError("no recipients"), Permanent, "cannot be sent: no recipients"),
    ],
)
def test_classification(exc: Exception, kind: type[MailroomError], text: str) -> None:
    error = translate(exc, CONN)

    assert type(error) is kind
    assert text in str(error)


@pytest.mark.parametrize(("code", "kind"), [(535, Permanent), (454, Transient)])
def test_auth_failure_names_user_and_host_never_the_password(
    code: int, kind: type[MailroomError]
) -> None:
    error = translate(aiosmtplib.SMTPAuthenticationError(code, "authentication failed"), CONN)

    assert type(error) is kind
    text = str(error)
    assert "'mailroom'" in text and "smtp.example.com:587" in text and str(code) in text
    assert "s3cret-pw" not in text


def test_anything_else_is_not_an_smtp_failure() -> None:
    assert translate(RuntimeError("bug"), CONN) is None
