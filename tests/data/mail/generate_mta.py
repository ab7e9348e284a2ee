"""Corpus cases for the bounce formats MTAs invent, and look-alikes (see ``generate.py``)."""

from __future__ import annotations

from tests.data.mail.corpus import Case, header_block, mail

DAEMON = b"Mail Delivery System <MAILER-DAEMON@mx.example.net>"


def _plain_bounce(
    name: str, subject: bytes, sender: bytes, body: str, extra: tuple[bytes, ...] = ()
) -> bytes:
    head = header_block(
        name,
        subject=subject,
        sender=sender,
        content_type=b"text/plain; charset=us-ascii",
        extra=extra,
    )
    return mail(head, body.replace("\n", "\r\n").encode())


def _nonstandard() -> list[Case]:
    cases: list[Case] = []
    copy = (
        "Return-path: <support@example.com>\nFrom: support@example.com\n"
        "To: nobody@example.net\nSubject: Your case\nMessage-ID: <ack-{n}@example.com>\n\n"
        "Thank you.\n"
    )
    exim = (
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  nobody@example.net\n    host mx.example.net [192.0.2.1]\n"
        "    SMTP error from remote mail server after RCPT TO:<nobody@example.net>:\n"
        "    550 5.1.1 User unknown\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
    )
    qmail = (
        "Hi. This is the qmail-send program at mail.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<nobody@example.net>:\n192.0.2.1 does not like recipient.\n"
        "Remote host said: 550 5.1.1 User unknown\nGiving up on 192.0.2.1.\n\n"
        "--- Below this line is a copy of the message.\n\n"
    )
    postfix_old = (
        "This is the Postfix program at host mx.example.net.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        "                   The Postfix program\n\n"
        "<nobody@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1\n"
        "    <nobody@example.net>: Recipient address rejected: User unknown\n\n"
    )
    exchange = (
        "Your message did not reach some or all of the intended recipients.\n\n"
        "      Subject:\tYour case\n      Sent:\t11/23/2026 10:00 AM\n\n"
        "The following recipient(s) cannot be reached:\n\n"
        "      nobody@example.net on 11/23/2026 10:00 AM\n"
        "            The e-mail account does not exist at the organization.\n"
        "            <mx.example.net #5.1.1>\n\n"
    )
    yahoo = (
        "Sorry, we were unable to deliver your message to the following address.\n\n"
        "<nobody@example.net>:\nRemote host said: 550 5.1.1 unknown user [RCPT_TO]\n\n"
        "--- Below this line is a copy of the message.\n\n"
    )
    formats = [
        (
            "exim",
            b"Mail delivery failed: returning message to sender",
            DAEMON,
            exim,
            (b"X-Failed-Recipients: nobody@example.net", b"Auto-Submitted: auto-replied"),
        ),
        ("qmail", b"failure notice", b"MAILER-DAEMON@mail.example.net", qmail, ()),
        ("postfix-plain", b"Undelivered Mail Returned to Sender", DAEMON, postfix_old, ()),
        ("exchange-2003", b"Undeliverable: Your case", b"postmaster@contoso.example", exchange, ()),
        ("yahoo", b"Failure Notice", b"MAILER-DAEMON@yahoo.example", yahoo, ()),
    ]
    for short, subject, sender, body, extra in formats:
        name = f"bounce-{short}"
        raw = _plain_bounce(name, subject, sender, body + copy.format(n=name), extra)
        bounce = {
            "recipient": "nobody@example.net",
            "status": "5.1.1",
            "action": "failed",
            "original_message_id": f"<ack-{name}@example.com>",
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
                },
            )
        )
    name = "bounce-daemon-unknown-format"
    raw = _plain_bounce(
        name, b"Undeliverable mail", b"postmaster@example.net", "Sorry, it did not work.\n"
    )
    cases.append(
        (
            name,
            raw,
            {
                "subject": "Undeliverable mail",
                "from": ["postmaster@example.net"],
                "classification": "bounce",
                "bounce": {"recipient": None, "original_message_id": None, "action": "failed"},
            },
        )
    )
    name = "bounce-like-human"
    raw = _plain_bounce(
        name,
        b"Delivery failure of my parcel",
        b"Carl <carl@example.org>",
        "Hello, my parcel version 2.1.0 never arrived. Please help.\n",
    )
    cases.append(
        (
            name,
            raw,
            {
                "subject": "Delivery failure of my parcel",
                "from": ["carl@example.org"],
                "classification": "normal",
            },
        )
    )
    name = "postmaster-human"
    raw = _plain_bounce(
        name,
        b"Question about our account",
        b"postmaster@customer.example",
        "Hi, can you reset the password for our shared mailbox?\n",
    )
    cases.append(
        (
            name,
            raw,
            {
                "subject": "Question about our account",
                "from": ["postmaster@customer.example"],
                "classification": "normal",
            },
        )
    )
    return cases


def cases() -> list[Case]:
    """Every case of this module."""
    return _nonstandard()
