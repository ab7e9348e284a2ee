"""Where the IMAP adapter's cursor moves to (the cursor's format: ``shared.models.cursors``)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.mailbox.base import MessageRef


def contiguous_mark(refs: Sequence[MessageRef], done: set[str]) -> int | None:
    """The highest UID of ``refs`` (ascending) up to which every mail is in ``done``."""
    mark: int | None = None
    for ref in refs:
        if not isinstance(ref.handle, int) or ref.source_key not in done:
            break
        mark = ref.handle
    return mark
