"""Corpus cases for RFC 3464 delivery status notifications (see ``generate.py``)."""

from __future__ import annotations

from tests.data.mail.corpus import CRLF, Case, header_block, mail, multipart, part

DAEMON = b"Mail Delivery System <MAILER-DAEMON@mx.example.net>"


def _original(message_id: str, rcpt: str) -> bytes:
    return CRLF.join(
        [
            b"From: Support <support@example.com>",
            b"To: " + rcpt.encode(),
            b"Subject: Your case [Case#10001]",
            b"Message-ID: " + message_id.encode(),
            b"Auto-Submitted: auto-generated",
            b"",
            b"Thank you, we opened case 10001.",
        ]
    )


def _status_block(rcpt: str, action: str, status: str, diag: str) -> bytes:
    return CRLF.join(
        [
            b"Final-Recipient: rfc822; " + rcpt.encode(),
            b"Original-Recipient: rfc822;" + rcpt.encode(),
            b"Action: " + action.encode(),
            b"Status: " + status.encode(),
            b"Remote-MTA: dns; mx.example.net",
            b"Diagnostic-Code: smtp; " + diag.encode(),
        ]
    )


def dsn(
    name: str,
    *,
    subject: bytes,
    sender: bytes,
    human: bytes,
    blocks: list[tuple[str, str, str, str]],
    returned: str | None = "rfc822",
    report_type: bool = True,
    extra: tuple[bytes, ...] = (),
) -> tuple[bytes, list[list[object]]]:
    """An RFC 3464 report: human text, delivery-status, and the returned mail or headers."""
    original_id = f"<ack-{name}@example.com>"
    status = b"Reporting-MTA: dns; mx.example.net" + CRLF + b"Arrival-Date: " + b"Mon, 23 Nov 2026"
    for block in blocks:
        status += CRLF + CRLF + _status_block(*block)
    parts = [part(b"text/plain; charset=us-ascii", human), part(b"message/delivery-status", status)]
    attachments: list[list[object]] = [[None, "message/delivery-status", None]]
    original = _original(original_id, blocks[-1][0])
    if returned == "rfc822":
        parts.append(part(b"message/rfc822", original))
        attachments.append(["Your case [Case#10001].eml", "message/rfc822", len(original)])
    elif returned == "headers":
        headers = original.split(CRLF + CRLF)[0] + CRLF
        parts.append(part(b"text/rfc822-headers", headers))
        attachments.append([None, "text/rfc822-headers", len(headers)])
    ctype = b"multipart/report; " + (b"report-type=delivery-status; " if report_type else b"")
    head = header_block(
        name, subject=subject, sender=sender, content_type=ctype + b'boundary="R"', extra=extra
    )
    return mail(head, multipart(b"R", *parts)), attachments


def cases() -> list[Case]:
    """DSNs from the big MTAs and providers, and the non-standard formats."""
    cases: list[Case] = []
    rcpt = "nobody@example.net"
    standard = [
        (
            "postfix",
            b"Undelivered Mail Returned to Sender",
            DAEMON,
            "headers",
            "5.1.1",
            "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown",
        ),
        (
            "postfix-full",
            b"Undelivered Mail Returned to Sender",
            DAEMON,
            "rfc822",
            "5.2.2",
            "552 5.2.2 Mailbox full",
        ),
        (
            "postfix-policy",
            b"Undelivered Mail Returned to Sender",
            DAEMON,
            "rfc822",
            "5.7.1",
            "554 5.7.1 Service unavailable; Client host blocked",
        ),
        (
            "sendmail",
            b"Returned mail: see transcript for details",
            b"Mail Delivery Subsystem <MAILER-DAEMON@mail.example.net>",
            "rfc822",
            "5.1.1",
            "550 5.1.1 <nobody@example.net>... User unknown",
        ),
        (
            "exchange",
            b"Undeliverable: Your case [Case#10001]",
            b"Microsoft Outlook <postmaster@contoso.example>",
            "rfc822",
            "5.1.10",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        ),
        (
            "gmail",
            b"Delivery Status Notification (Failure)",
            b"Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
            "rfc822",
            "5.1.1",
            "550-5.1.1 The email account that you tried to reach does not exist.",
        ),
        (
            "office365",
            b"Undeliverable: Your case",
            b"Microsoft Outlook <MicrosoftExchange329e71ec88ae@contoso.example>",
            "rfc822",
            "5.4.1",
            "550 5.4.1 Recipient address rejected: Access denied",
        ),
        (
            "exim-dsn",
            b"Mail delivery failed: returning message to sender",
            DAEMON,
            "headers",
            "5.0.0",
            "550 Unrouteable address",
        ),
        (
            "no-returned",
            b"Delivery Status Notification",
            DAEMON,
            None,
            "5.1.2",
            "550 5.1.2 Host unknown",
        ),
        (
            "no-daemon-from",
            b"Report",
            b"Some Relay <relay@example.net>",
            "rfc822",
            "5.3.0",
            "553 5.3.0 Rejected",
        ),
    ]
    for short, subject, sender, returned, status, diag in standard:
        name = f"bounce-dsn-{short}"
        raw, atts = dsn(
            name,
            subject=subject,
            sender=sender,
            human=b"This is the mail system. Your message could not be delivered.",
            blocks=[(rcpt, "failed", status, diag)],
            returned=returned,
            extra=(b"Auto-Submitted: auto-replied",),
        )
        bounce = {
            "recipient": rcpt,
            "status": status,
            "action": "failed",
            "diagnostic": diag,
            "original_message_id": None if returned is None else f"<ack-{name}@example.com>",
        }
        cases.append(
            (
                name,
                raw,
                {
                    "subject": subject.decode(),
                    "from": [sender.split(b"<")[-1].rstrip(b">").decode()],
                    "classification": "bounce",
                    "bounce": bounce,
                    "attachments": atts,
                    "text": ["could not be delivered"],
                },
            )
        )
    name = "bounce-dsn-delayed"
    raw, atts = dsn(
        name,
        subject=b"Delayed Mail (still being retried)",
        sender=DAEMON,
        human=b"Delivery is delayed.",
        blocks=[(rcpt, "delayed", "4.4.1", "connect to mx.example.net: Connection timed out")],
        returned="headers",
    )
    cases.append(
        (
            name,
            raw,
            {
                "subject": "Delayed Mail (still being retried)",
                "from": ["MAILER-DAEMON@mx.example.net"],
                "classification": "bounce",
                "attachments": atts,
                "bounce": {
                    "recipient": rcpt,
                    "status": "4.4.1",
                    "action": "delayed",
                    "original_message_id": f"<ack-{name}@example.com>",
                },
            },
        )
    )
    # VERP: the bounce went to the envelope sender local+<outbox id>@domain; the MTA returned
    # nothing of the mail, so that address is all that tells which mail bounced.
    name = "bounce-dsn-verp"
    raw, atts = dsn(
        name,
        subject=b"Undelivered Mail Returned to Sender",
        sender=DAEMON,
        human=b"Your message could not be delivered.",
        blocks=[(rcpt, "failed", "5.1.1", "550 5.1.1 User unknown")],
        returned=None,
        extra=(b"Delivered-To: bounces+ack-1f3a9c@example.com",),
    )
    cases.append(
        (
            name,
            raw,
            {
                "subject": "Undelivered Mail Returned to Sender",
                "from": ["MAILER-DAEMON@mx.example.net"],
                "classification": "bounce",
                "attachments": atts,
                "bounce": {
                    "recipient": rcpt,
                    "status": "5.1.1",
                    "original_message_id": None,
                    "verp_tokens": ["ack-1f3a9c"],
                },
            },
        )
    )
    name = "bounce-dsn-multiple"
    raw, atts = dsn(
        name,
        subject=b"Delivery Status Notification",
        sender=DAEMON,
        human=b"Partial delivery.",
        blocks=[
            ("ok@example.net", "delivered", "2.0.0", "250 OK"),
            ("gone@example.net", "failed", "5.1.1", "550 5.1.1 gone"),
        ],
    )
    cases.append(
        (
            name,
            raw,
            {
                "subject": "Delivery Status Notification",
                "from": ["MAILER-DAEMON@mx.example.net"],
                "classification": "bounce",
                "attachments": atts,
                "bounce": {
                    "recipient": "gone@example.net",
                    "status": "5.1.1",
                    "action": "failed",
                    "original_message_id": f"<ack-{name}@example.com>",
                },
            },
        )
    )
    name = "bounce-dsn-no-report-type"
    raw, atts = dsn(
        name,
        subject=b"failure",
        sender=DAEMON,
        human=b"Failed.",
        blocks=[(rcpt, "failed", "5.0.0", "550 no")],
        report_type=False,
    )
    cases.append(
        (
            name,
            raw,
            {
                "subject": "failure",
                "from": ["MAILER-DAEMON@mx.example.net"],
                "classification": "bounce",
                "attachments": atts,
                "bounce": {
                    "recipient": rcpt,
                    "status": "5.0.0",
                    "original_message_id": f"<ack-{name}@example.com>",
                },
            },
        )
    )
    return cases
