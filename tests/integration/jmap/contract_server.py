"""The JMAP server of the shared mailbox contract suite: a session-scoped private Cyrus (with
the SMTP relay behind its submission) and, per test, a fresh user with an empty INBOX.

The suite (``tests/integration/mailbox_contract/``) imports ``jmap_server`` and the fixtures
it needs (``cyrus``, ``relay``) from here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy.local.cyrus import Cyrus, start_cyrus
from shared.models.config import IncomingAccount
from tests.integration.jmap.helpers import emails, fresh_user, import_mail, jmap_account
from tests.integration.jmap.relay import Relay, start_relay
from tests.integration.mailbox_contract.contract import Remaining


class JmapContractServer:
    """One fresh Cyrus user, seen through the contract suite's ``ContractServer`` protocol."""

    name = "jmap"

    def __init__(self, cyrus: Cyrus) -> None:
        self._cyrus = cyrus
        self._user, self._password = fresh_user(cyrus)

    def account(self, *, keep: bool = False, **fields: object) -> IncomingAccount:
        """A JMAP account on the user's INBOX; ``keep``: disposal seen, else delete."""
        disposal: dict[str, object] = {"after_fetch": "seen" if keep else "delete"}
        return jmap_account(self._cyrus, self._user, self._password, **{**disposal, **fields})

    async def deliver(self, raw: bytes) -> None:
        """Put ``raw`` into the INBOX byte for byte (``Email/import``: LMTP would add a
        Return-Path and Received header, and the suite compares the bytes stored)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        await asyncio.to_thread(import_mail, self._cyrus, self._user, raw, now)

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
