"""The JMAP server of the shared mailbox contract suite: a session-scoped private Cyrus (with
the SMTP relay behind its submission) and, per test, a fresh user with an empty INBOX.

The suite (``tests/integration/mailbox_contract/``) imports ``jmap_server`` and the fixtures
it needs (``cyrus``, ``relay``) from here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local.cyrus import Cyrus, start_cyrus
from shared.models.config import IncomingAccount
from tests.integration.jmap.helpers import emails, fresh_user, jmap_account
from tests.integration.jmap.relay import Relay, start_relay


@dataclass(frozen=True)
class Remaining:
    """A mail left on the server."""

    message_id: str | None
    seen: bool


class JmapContractServer:
    """One fresh Cyrus user, seen through the contract suite's ``ContractServer`` protocol."""

    name = "jmap"

    def __init__(self, cyrus: Cyrus) -> None:
        self._cyrus = cyrus
        self._user, self._password = fresh_user(cyrus)

    def account(self, *, keep: bool = False, **fields: object) -> IncomingAccount:
        """A JMAP account on the user's INBOX; ``keep``: disposal seen, else delete."""
        # The seam's after_fetch when it is there, else today's delete_read_messages.
        if "after_fetch" in IncomingAccount.model_fields:
            disposal: dict[str, object] = {"after_fetch": "seen" if keep else "delete"}
        else:
            disposal = {"delete_read_messages": "no" if keep else "yes"}
        return jmap_account(self._cyrus, self._user, self._password, **{**disposal, **fields})

    async def deliver(self, raw: bytes) -> None:
        """Deliver ``raw`` into the INBOX over LMTP."""
        await asyncio.to_thread(self._cyrus.deliver, self._user, raw)

    async def remaining(self) -> list[Remaining]:
        """What is left in the user's mailboxes (every folder: a moved mail stays)."""
        found = await asyncio.to_thread(emails, self._cyrus, self._user)
        return [
            Remaining(
                message_id=f"<{e['messageId'][0]}>" if e.get("messageId") else None,
                seen=bool(e.get("keywords", {}).get("$seen")),
            )
            for e in found
        ]


@pytest.fixture(scope="session")
def relay() -> Iterator[Relay]:
    """The SMTP server Cyrus hands submitted mail to."""
    handler, controller = start_relay()
    yield handler
    controller.stop()


@pytest.fixture(scope="session")
def cyrus(state_dir: Path, relay: Relay) -> Iterator[Cyrus]:
    """Cyrus 3.6 with JMAP on 127.0.0.1; EmailSubmission relays to ``relay``."""
    server = start_cyrus(state_dir, {}, smtp_port=relay.port)
    yield server
    server.stop()


@pytest.fixture
def jmap_server(cyrus: Cyrus) -> JmapContractServer:
    """A fresh, empty JMAP mailbox on the session's Cyrus."""
    return JmapContractServer(cyrus)
