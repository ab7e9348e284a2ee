"""The mailbox seam types, copied verbatim from the `seam` design note until that branch lands;
at merge this module is replaced by ``shared.mailbox.base`` (one import line)."""

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Disposal = Literal["seen", "move", "delete"]
"""What happens to a mail on the server once stored and announced: flagged read, moved to the
account's move_to_folder, or deleted."""


@dataclass(frozen=True)
class MailboxStatus:
    exists: int | None = None  # messages in the folder, when the server says
    supports_idle: bool = False  # wait_for_news is a real push (IDLE, EventSource, ...)
    uidvalidity: int | None = None  # IMAP only (kept for health pages)


@dataclass(frozen=True)
class MessageRef:
    source_key: str  # unique and stable per account: IMAP "uidvalidity:uid",
    # POP3 UIDL, Graph immutable id, JMAP email id
    handle: str | int | None = None  # adapter-private (UID, POP3 number, Graph id, blob id)
    size: int | None = None


@dataclass(frozen=True)
class FetchedMail:
    ref: MessageRef
    data: bytes  # raw RFC 5322 bytes; header block only if not complete
    complete: bool = True


@dataclass(frozen=True)
class Listing:
    refs: Sequence[MessageRef]  # oldest first
    twins_possible: bool  # same mail may be stored under another source_key
    cursor_after: Callable[[set[str]], str | None]
    """Cursor to store once the refs whose source_key is in the given set are stored,
    announced and disposed of; None leaves the stored cursor unchanged."""


class Mailbox(Protocol):
    async def connect(self) -> MailboxStatus: ...  # log in / refresh each round
    async def list_new(self, cursor: str | None) -> Listing: ...
    def fetch(
        self, refs: Sequence[MessageRef], *, max_size: int | None = None
    ) -> AsyncIterator[FetchedMail]: ...
    async def mark_done(self, refs: Sequence[MessageRef], *, disposal: Disposal) -> None: ...
    async def wait_for_news(self, timeout: float) -> bool: ...
    async def close(self) -> None: ...
