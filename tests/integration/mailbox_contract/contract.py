"""What a transport's contract-test fixture provides (see docs/transports.md, "Contract suite").

A transport plugs into the suite with a pytest fixture ``<name>_server`` (a session-scoped
server behind it, a fresh empty mailbox for each test) returning a :class:`ContractServer`,
and its name in :data:`SERVERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.models.config import IncomingAccount

SERVERS = ["imap", "pop3", "graph", "jmap"]
"""Fixture-name stems: the suite runs once against each ``<name>_server`` fixture."""


@dataclass(frozen=True)
class Remaining:
    """A mail still on the server."""

    message_id: str | None
    seen: bool


class ContractServer(Protocol):
    """One transport's server, as the contract suite drives it."""

    name: str
    """``imap``, ``pop3``, ``graph``, ``jmap``."""

    def account(self, *, keep: bool = False, **fields: object) -> IncomingAccount:
        """An account on this test's fresh, empty mailbox; ``keep``: disposal ``seen``
        (mail stays on the server), else ``delete``; ``fields`` override the account's."""
        ...

    async def deliver(self, raw: bytes) -> None:
        """Put one mail into that mailbox."""
        ...

    async def remaining(self) -> list[Remaining]:
        """What is left in that mailbox on the server."""
        ...
