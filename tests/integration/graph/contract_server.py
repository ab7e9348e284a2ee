"""The Graph stand-in as a contract-suite server: ``graph_standin`` (session) and
``graph_server`` (a fresh, empty mailbox per test), per notes/seam-types.md."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.graph_standin import GraphStandin, start_graph_standin
from deploy.local.oauth_issuer import OAuthIssuer
from shared.models.config import IncomingAccount
from tests.integration.mailbox_contract.contract import Remaining
from tests.secret_scan import SCAN

APP_SECRET = SCAN.secret("client secret of the Graph test app", "graph-app-secret-4711")


class GraphContractServer:
    """One fresh mailbox on the stand-in, with an app registration allowed to use it."""

    name = "graph"

    def __init__(self, standin: GraphStandin, issuer: OAuthIssuer) -> None:
        self.standin = standin
        self.issuer = issuer
        tag = uuid.uuid4().hex[:10]
        self.upn = f"box-{tag}@contoso.test"
        self.client_id = f"graph-app-{tag}"
        self.app_user = f"app-{tag}@apps.contoso.test"
        standin.add_mailbox(self.upn)
        issuer.add_client(self.client_id, APP_SECRET, self.app_user)
        standin.allow(self.app_user, self.upn)

    def sign_in(self) -> dict[str, object]:
        """The fields of an account or outgoing connection that reach this mailbox as the
        app (OAuth 2.0 client credentials), with the stand-in's URL and CA files."""
        return {
            "username": self.upn,
            "auth": "oauth2",
            "client_id": self.client_id,
            "client_secret": APP_SECRET,
            "authority": self.issuer.authority(),
            "oauth_ca_file": str(self.issuer.ca_file),
            "graph_url": self.standin.url,
            "ca_file": str(self.standin.ca_file),
        }

    def account(self, *, keep: bool = False, **fields: object) -> IncomingAccount:
        """An account on this mailbox; ``keep``: mail stays on the server, flagged read."""
        values: dict[str, object] = {
            "name": f"graph-{self.upn.split('@')[0]}",
            "protocol": "GRAPH",
            **self.sign_in(),
            "after_fetch": "seen" if keep else "delete",
        }
        values.update(fields)
        return IncomingAccount.model_validate(values)

    async def deliver(self, raw: bytes) -> None:
        """Put one mail into the mailbox's inbox."""
        await asyncio.to_thread(self.standin.deliver, self.upn, raw)

    async def remaining(self) -> list[Remaining]:
        """What is left in the inbox."""
        left = await asyncio.to_thread(self.standin.remaining, self.upn)
        return [Remaining(message_id, seen) for message_id, seen in left]


@pytest.fixture(scope="session")
def graph_standin(state_dir: Path, oauth_issuer: OAuthIssuer) -> Iterator[GraphStandin]:
    """The local Graph stand-in, checking tokens with the local OAuth issuer."""
    standin = start_graph_standin(state_dir, oauth_issuer.introspect)
    yield standin
    standin.stop()


@pytest.fixture
def graph_server(graph_standin: GraphStandin, oauth_issuer: OAuthIssuer) -> GraphContractServer:
    """A fresh, empty Graph mailbox (the contract suite's server for ``graph``)."""
    return GraphContractServer(graph_standin, oauth_issuer)
