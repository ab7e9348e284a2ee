"""The one protocol every mailbox adapter (IMAP, POP3, Graph, JMAP, fakes) implements.

Nothing here knows a protocol: an adapter's cursor is an opaque string only the adapter
reads, and its handles ride in ``MessageRef.handle`` (see docs/transports.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Disposal = Literal["seen", "move", "delete"]
"""What happens to a mail on the server once stored and announced: flagged read, moved to the
account's move_to_folder, or deleted."""

Guard = Callable[[], Awaitable[None]]
"""Awaited by ``mark_done`` right before each command that changes mail on the server; it
raises (``LeaseLost``) when this process may no longer change the account's mail (see
``services.fetcher.fence``), so a command after a long pause is never sent."""


async def unguarded() -> None:
    """The guard of a caller that holds no lease: every command is allowed."""


@dataclass(frozen=True)
class MailboxStatus:
    """What the server says about the folder after login."""

    exists: int | None = None
    """Messages in the folder, when the server says."""
    supports_idle: bool = False
    """``wait_for_news`` is a real push (IDLE, EventSource, ...)."""
    uidvalidity: int | None = None
    """IMAP only (kept for health pages)."""


@dataclass(frozen=True)
class MessageRef:
    """A message on the server. ``source_key`` is unique and stable per account (IMAP
    ``uidvalidity:uid``, POP3 UIDL, Graph immutable id, JMAP email id); ``handle`` is the
    adapter's own (UID, POP3 number, Graph id, blob id)."""

    source_key: str
    handle: str | int | None = None
    size: int | None = None


@dataclass(frozen=True)
class FetchedMail:
    """A message's raw RFC 5322 bytes, exactly as the server sent them; for a message above
    the maximum size only its header block (``complete`` False)."""

    ref: MessageRef
    data: bytes
    complete: bool = True


@dataclass(frozen=True)
class Listing:
    """What ``list_new`` found."""

    refs: Sequence[MessageRef]
    """Oldest first."""
    twins_possible: bool
    """The same mail may be stored under another source key (the fetcher then looks stored
    twins up by Message-ID and sha256)."""
    cursor_after: Callable[[set[str]], str | None]
    """Cursor to store once the refs whose source_key is in the given set are stored,
    announced and disposed of; None leaves the stored cursor unchanged."""
    cursor_every_batch: bool = True
    """Store the cursor after every batch (False: once, after the round's last batch). A
    cursor that grows with the mailbox (POP3's set of kept UIDLs) written after every batch
    of a first sync costs writes in the square of the mailbox's size; one whose mails the
    fetcher finds again by their twins loses nothing when a crash leaves it unsaved."""


class Mailbox(Protocol):
    """An authenticated session on one folder of one account."""

    async def connect(self) -> MailboxStatus:
        """Connect, authenticate and open the folder; on a session still open, refresh it
        instead, so a fetch loop calls it at the start of every round."""
        ...

    async def list_new(self, cursor: str | None) -> Listing:
        """The messages not yet taken according to ``cursor`` (None: never fetched, the
        adapter applies the account's start position itself), oldest first."""
        ...

    def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]:
        """The raw bytes of each message, in order, without marking them read; of a message
        larger than ``max_size`` only the header block (its ``ref.size`` says how large).
        Messages gone from the server meanwhile are skipped."""
        ...

    async def mark_done(
        self, refs: Sequence[MessageRef], *, disposal: Disposal, guard: Guard = unguarded
    ) -> None:
        """Flag the messages read (``seen``), move them to the account's move_to_folder
        (``move``) or delete exactly them (``delete``), awaiting ``guard`` before each
        command that does so."""
        ...

    async def wait_for_news(self, timeout: float) -> bool:
        """Block until the server announces new mail or ``timeout`` passes; True when new
        mail may be there. Without push support, sleep and return True."""
        ...

    async def close(self) -> None:
        """Log out and close the connection; never raises."""
        ...
