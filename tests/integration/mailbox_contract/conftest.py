"""The contract suite's fixtures: ``contract`` is each server of ``SERVERS`` in turn."""

from __future__ import annotations

import pytest

from tests.integration.fetcher.conftest import rt
from tests.integration.graph.contract_server import graph_server, graph_standin
from tests.integration.jmap.contract_server import cyrus, jmap_server, relay
from tests.integration.mailbox_contract.contract import SERVERS, ContractServer
from tests.integration.mailbox_contract.dovecot import imap_server, pop3_server

__all__ = [
    "contract",
    "cyrus",
    "graph_server",
    "graph_standin",
    "imap_server",
    "jmap_server",
    "pop3_server",
    "relay",
    "rt",
]


@pytest.fixture(params=SERVERS)
def contract(request: pytest.FixtureRequest) -> ContractServer:
    """The server named by the parameter, through its ``<name>_server`` fixture."""
    server: ContractServer = request.getfixturevalue(f"{request.param}_server")
    return server
