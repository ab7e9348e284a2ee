"""Fixtures for the Graph adapter and transport: the stand-in, a fresh mailbox per test, and
the check that every request Mailroom made is a documented Graph endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from deploy.local.graph_standin import GraphStandin, documented
from shared.auth import TokenProvider
from shared.mailbox.graph import GraphMailbox, open_graph_mailbox
from shared.models.config import IncomingAccount
from tests.integration.graph import contract_server

# The contract server's fixtures, for these tests too.
graph_standin = contract_server.graph_standin
graph_server = contract_server.graph_server

MailboxMaker = Callable[..., GraphMailbox]


@pytest.fixture(autouse=True)
def only_documented_requests(graph_standin: GraphStandin) -> Iterator[None]:
    """After each test: every request made to the stand-in was a documented endpoint."""
    start = len(graph_standin.requests)
    yield
    made = graph_standin.requests[start:]
    undocumented = [f"{r.method} {r.path}" for r in made if not documented(r.method, r.path)]
    assert not undocumented, f"requests outside the documented Graph endpoints: {undocumented}"


@pytest.fixture
async def open_mailbox() -> AsyncIterator[MailboxMaker]:
    """Open an account's Graph mailbox (closed after the test)."""
    made: list[GraphMailbox] = []

    def make(
        account: IncomingAccount, timeout: float = 10.0, tokens: TokenProvider | None = None
    ) -> GraphMailbox:
        mailbox = open_graph_mailbox(account, timeout=timeout, tokens=tokens)
        assert isinstance(mailbox, GraphMailbox)
        made.append(mailbox)
        return mailbox

    yield make
    for mailbox in made:
        await mailbox.close()
