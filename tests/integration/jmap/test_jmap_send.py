"""Sending through JMAP submission on a real Cyrus: the built bytes reach the SMTP server with
Mailroom's headers intact, the envelope is the one given, and a refused recipient is recorded
as a refusal of that recipient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest

from deploy.local.cyrus import Cyrus
from services.sender.transports.jmap import JmapTransport
from shared.errors import Permanent
from shared.models.config import OutgoingConnection
from tests.integration.jmap.helpers import fresh_user
from tests.integration.jmap.relay import Relay

pytestmark = pytest.mark.integration


@pytest.fixture
async def transport() -> AsyncIterator[JmapTransport]:
    sender = JmapTransport()
    yield sender
    await sender.close()


def connection(cyrus: Cyrus, user: str, password: str) -> OutgoingConnection:
    return OutgoingConnection.model_validate(
        {
            "protocol": "jmap",
            "host": "127.0.0.1",
            "jmap_url": cyrus.base_url,
            "username": user,
            "password": password,
        }
    )


def answer(n: int, *to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Helpdesk <helpdesk@example.org>"
    message["To"] = ", ".join(to)
    message["Subject"] = f"[Ticket#{n}] Re: printer"
    message["Message-ID"] = f"<answer{n}@mailroom.test>"
    message["In-Reply-To"] = "<question@example.net>"
    message["References"] = "<question@example.net>"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("We are on it.\n")
    return message


async def test_submission_keeps_headers_and_envelope(
    cyrus: Cyrus, relay: Relay, transport: JmapTransport
) -> None:
    user, password = fresh_user(cyrus)
    message = answer(1, "bob@example.net", "carol@example.net")
    started: list[bool] = []

    async def starting() -> None:
        started.append(True)

    reply = await transport.send(
        message,
        connection(cyrus, user, password),
        ["bob@example.net", "dave@example.net"],
        starting=starting,
    )
    assert started == [True]
    assert reply.reply is not None and reply.refused == {}
    (got,) = [m for m in relay.mails if b"<answer1@mailroom.test>" in m.data]
    assert got.mail_from == "helpdesk@example.org"
    assert got.rcpt_tos == ["bob@example.net", "dave@example.net"]
    for header in (
        b"Message-ID: <answer1@mailroom.test>",
        b"In-Reply-To: <question@example.net>",
        b"References: <question@example.net>",
        b"Auto-Submitted: auto-replied",
        b"Subject: [Ticket#1] Re: printer",
    ):
        assert header in got.data
    # A copy is kept in the account's Sent mailbox.
    sent = cyrus.call(user, "Email/query", {})["ids"]
    assert len(sent) == 1


async def test_a_refused_recipient_fails_the_submission_naming_why(
    cyrus: Cyrus, relay: Relay, transport: JmapTransport
) -> None:
    # Cyrus 3.6 refuses the whole submission when the relay refuses one RCPT (it reports
    # tooManyRecipients): nothing is sent, and the sender records a permanent failure.
    user, password = fresh_user(cyrus)
    relay.refuse.add("nobody@example.net")
    try:
        with pytest.raises(Permanent, match=r"EmailSubmission/set .* failed"):
            await transport.send(
                answer(2, "bob@example.net", "nobody@example.net"),
                connection(cyrus, user, password),
            )
    finally:
        relay.refuse.discard("nobody@example.net")
    assert not [m for m in relay.mails if b"<answer2@mailroom.test>" in m.data]


async def test_wrong_password_is_permanent_and_never_shown(
    cyrus: Cyrus, transport: JmapTransport
) -> None:
    user, _ = fresh_user(cyrus)
    with pytest.raises(Permanent) as refused:
        await transport.send(
            answer(3, "bob@example.net"), connection(cyrus, user, "Not-The-Password-9")
        )
    assert "Not-The-Password-9" not in str(refused.value)
