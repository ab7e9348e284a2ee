"""Delivery through Microsoft Graph (the local stand-in): a connection lost after the
stand-in took a sendMail leaves the outcome unknown, so the redelivery checks the mail
instead of sending it twice; a throttled sendMail (nothing taken) is deferred and sent once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from deploy.local.graph_standin import GraphStandin
from services.sender.deliver import deliver
from services.sender.deps import SenderDeps
from services.sender.transport import OutcomeUnknown
from services.sender.transports.graph import GraphTransport
from shared.config_views import OUTGOING_KEY, OUTGOING_MODULE
from shared.errors import Transient
from shared.runtime import Runtime
from tests.integration.graph import contract_server
from tests.integration.graph.contract_server import GraphContractServer
from tests.integration.sender.helpers import (
    lost_after_handover_is_checked_not_resent,
    outgoing_mail,
)
from tests.integration.sender.test_sender_recipients import CAROL

pytestmark = pytest.mark.integration

# The Graph stand-in's fixtures, for these tests too.
graph_standin = contract_server.graph_standin
graph_server = contract_server.graph_server


@pytest.fixture
async def transport() -> AsyncIterator[GraphTransport]:
    """A Graph transport, closed after the test."""
    made = GraphTransport()
    yield made
    await made.close()


async def configure(rt: Runtime, server: GraphContractServer, **conn: Any) -> None:
    value = {"protocol": "graph", **server.sign_in(), **conn}
    await rt.store.properties.put(module=OUTGOING_MODULE, key=OUTGOING_KEY, value=value, who="t")
    await rt.reload_config()


async def test_a_connection_lost_after_sendmail_is_checked_not_sent_again(
    rt: Runtime,
    graph_server: GraphContractServer,
    graph_standin: GraphStandin,
    transport: GraphTransport,
) -> None:
    await configure(rt, graph_server)
    graph_standin.drop_after_send(graph_server.upn)
    await lost_after_handover_is_checked_not_resent(rt, outgoing_mail(to=[CAROL]), transport)
    assert len(graph_standin.sent(graph_server.upn)) == 1  # sent once, never a second time


async def test_a_throttled_sendmail_is_deferred_and_sent_once(
    rt: Runtime,
    graph_server: GraphContractServer,
    graph_standin: GraphStandin,
    transport: GraphTransport,
) -> None:
    await configure(rt, graph_server)
    graph_standin.throttle(graph_server.upn, retry_after=60)
    mail = outgoing_mail(to=[CAROL])
    with pytest.raises(Transient) as raised:
        await deliver(SenderDeps.of(rt), mail, transport)
    assert not isinstance(raised.value, OutcomeUnknown)
    deferred = await rt.store.outbox.get(mail_id=mail.mail_id)
    assert deferred is not None and deferred.sending_since is None  # an outcome: deferred
    assert [r.state for r in deferred.recipients] == ["deferred"]
    sent = await deliver(SenderDeps.of(rt), mail, transport)
    assert [r.state for r in sent.recipients] == ["sent"]
    assert len(graph_standin.sent(graph_server.upn)) == 1
