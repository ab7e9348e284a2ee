"""The Graph sender transport against the local Graph stand-in: sendMail with the MIME body
keeps Mailroom's headers, sends from a shared mailbox when allowed, reports a refused
recipient per recipient, and maps throttling to Transient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from deploy.local.graph_standin import GraphStandin
from services.sender.transports.graph import GraphTransport
from shared.errors import Permanent, Transient
from shared.models.config import OutgoingConnection
from tests.integration.graph.contract_server import GraphContractServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def transport() -> AsyncIterator[GraphTransport]:
    """A Graph transport, closed after the test."""
    made = GraphTransport()
    yield made
    await made.close()


def connection(server: GraphContractServer, **fields: object) -> OutgoingConnection:
    values: dict[str, object] = {
        "protocol": "graph",
        **server.sign_in(),
        **fields,
    }
    return OutgoingConnection.model_validate(values)


def answer(sender: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Helpdesk <{sender}>"
    message["To"] = to
    message["Subject"] = "Re: Drucker kaputt [Case#10042]"
    message["Message-ID"] = "<answer-1@mailroom.example>"
    message["In-Reply-To"] = "<question-1@example.org>"
    message["References"] = "<first@example.org> <question-1@example.org>"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("Grüße, wir kümmern uns.\n")
    return message


KEPT = ("Message-ID", "In-Reply-To", "References", "Auto-Submitted", "Subject")


async def test_sendmail_keeps_mailrooms_headers_and_delivers(
    graph_server: GraphContractServer, graph_standin: GraphStandin, transport: GraphTransport
) -> None:
    customer = f"customer-{graph_server.upn}"
    graph_standin.add_mailbox(customer)
    message = answer(graph_server.upn, customer)
    started: list[bool] = []

    async def starting() -> None:
        started.append(not graph_standin.sent(graph_server.upn))

    reply = await transport.send(message, connection(graph_server), starting=starting)
    assert started == [True]
    assert reply.refused == {}
    assert reply.reply is not None and reply.reply.startswith("202 Accepted request-id ")
    [sent] = graph_standin.sent(graph_server.upn)
    [(message_id, seen)] = graph_standin.remaining(customer)
    assert message_id == "<answer-1@mailroom.example>" and not seen
    got = message_from_bytes(sent, policy=policy.default)
    for name in KEPT:
        assert str(got[name]) == str(message[name])
    assert got.get_content().splitlines() == message.get_content().splitlines()
    post = [r for r in graph_standin.requests if r.path.endswith("/sendMail")]
    assert post[-1].status == 202


async def test_recipients_outside_the_headers_go_as_bcc(
    graph_server: GraphContractServer, graph_standin: GraphStandin, transport: GraphTransport
) -> None:
    hidden = f"hidden-{graph_server.upn}"
    graph_standin.add_mailbox(hidden)
    message = answer(graph_server.upn, "customer@example.org")
    await transport.send(message, connection(graph_server), ["customer@example.org", hidden])
    [sent] = graph_standin.sent(graph_server.upn)
    assert message_from_bytes(sent, policy=policy.default)["Bcc"] == hidden
    assert "Bcc" not in message  # the caller's message is left as it was
    [(message_id, _)] = graph_standin.remaining(hidden)
    assert message_id == "<answer-1@mailroom.example>"
    with pytest.raises(Permanent, match="cannot leave out"):
        await transport.send(message, connection(graph_server), [hidden])


async def test_a_shared_mailbox_sends_when_the_app_may(
    graph_server: GraphContractServer, graph_standin: GraphStandin, transport: GraphTransport
) -> None:
    shared = f"team-{graph_server.upn}"
    graph_standin.add_mailbox(shared)
    conn = connection(graph_server, graph_mailbox=shared)
    with pytest.raises(Permanent, match="403"):
        await transport.send(answer(shared, "customer@example.org"), conn)
    graph_standin.allow(graph_server.app_user, shared)
    reply = await transport.send(answer(shared, "customer@example.org"), conn)
    assert reply.refused == {}
    assert len(graph_standin.sent(shared)) == 1
    assert graph_standin.sent(graph_server.upn) == []


async def test_a_refused_recipient_is_a_permanent_refusal_of_every_recipient(
    graph_server: GraphContractServer, transport: GraphTransport
) -> None:
    message = answer(graph_server.upn, "someone@nowhere.invalid")
    message["Cc"] = "other@example.org"
    reply = await transport.send(message, connection(graph_server))
    assert reply.reply is None
    assert set(reply.refused) == {"someone@nowhere.invalid", "other@example.org"}
    assert all(r.permanent and "ErrorInvalidRecipients" in r.text for r in reply.refused.values())


async def test_throttling_and_5xx_are_transient(
    graph_server: GraphContractServer, graph_standin: GraphStandin, transport: GraphTransport
) -> None:
    conn = connection(graph_server)
    graph_standin.fail(graph_server.upn, 1, status=503)
    assert (await transport.send(answer(graph_server.upn, "a@example.org"), conn)).refused == {}
    graph_standin.throttle(graph_server.upn, 1, retry_after=300)
    with pytest.raises(Transient, match="429"):
        await transport.send(answer(graph_server.upn, "a@example.org"), conn)
    assert len(graph_standin.sent(graph_server.upn)) == 1
