"""The one protocol every mailbox adapter (IMAP, POP3, fakes) implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol


@dataclass(frozen=True)
class MailboxStatus:
    """What the server says about the selected folder after login."""

    uidvalidity: int | None
    exists: int
    supports_idle: bool = False


@dataclass(frozen=True)
class MessageRef:
    """A message on the server. ``source_key`` is unique per account (IMAP
    ``uidvalidity:uid``, POP3 UIDL); ``uid`` orders IMAP messages; ``number`` is the POP3
    message number, valid only within the session that listed it."""

    source_key: str
    uid: int | None = None
    size: int | None = None
    number: int | None = None


@dataclass(frozen=True)
class FetchedMail:
    """A message's raw bytes, exactly as the server sent them; for a message above the
    maximum size only its header block (``complete`` False)."""

    ref: MessageRef
    data: bytes
    complete: bool = True


class Mailbox(Protocol):
    """An authenticated session on one folder of one account."""

    async def connect(self) -> MailboxStatus:
        """Connect, authenticate and select the folder.

        On a session that is still open it refreshes the folder's status instead (IMAP:
        SELECT again), so a fetch loop calls it at the start of every round.
        """
        ...

    async def list_new(self, *, after_uid: int) -> list[MessageRef]:
        """Messages newer than ``after_uid`` (IMAP), or all messages (POP3), oldest first."""
        ...

    def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        """The raw bytes of each message, in order, without marking them read; of a message
        larger than ``max_size`` only the header block (its ``ref.size`` says how large)."""
        ...

    async def start_mark(self, *, since: date | None) -> int:
        """Where a new account starts (IMAP): the highest UID now (``since`` None), or the
        UID just below the first message received on or after ``since``."""
        ...

    async def mark_seen(self, refs: Sequence[MessageRef]) -> None:
        """Flag the messages as read and keep them."""
        ...

    async def delete(self, refs: Sequence[MessageRef]) -> None:
        """Remove exactly these messages from the server."""
        ...

    async def wait_for_news(self, timeout: float) -> bool:
        """Block until the server announces new mail (IDLE) or ``timeout`` passes;
        True when new mail may be there. Without push support, sleep and return True."""
        ...

    async def close(self) -> None:
        """Log out and close the connection; never raises."""
        ...
