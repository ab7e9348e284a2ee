"""The IMAP adapter's cursor: the folder's UIDVALIDITY and the UID mark below which every
mail was taken, as JSON ``{"uidvalidity": 7, "mark": 42, "renumbered": false}``.

``renumbered`` stays True once the folder's UIDVALIDITY changed: mail stored under the old
numbering may come again under new keys, so the fetcher looks up twins from then on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from shared.mailbox.base import MessageRef


@dataclass(frozen=True)
class ImapCursor:
    """Where fetching an IMAP folder stands."""

    uidvalidity: int
    mark: int
    renumbered: bool = False

    @classmethod
    def parse(cls, cursor: str | None) -> ImapCursor | None:
        """The cursor stored before, or None for a folder never fetched."""
        value = None if cursor is None else json.loads(cursor)
        if not isinstance(value, dict) or "uidvalidity" not in value:
            return None  # never fetched (or fetched by another protocol's adapter)
        return cls(
            uidvalidity=int(value["uidvalidity"]),
            mark=int(value["mark"]),
            renumbered=bool(value.get("renumbered", False)),
        )

    def dump(self) -> str:
        """The cursor as stored."""
        return json.dumps(
            {"uidvalidity": self.uidvalidity, "mark": self.mark, "renumbered": self.renumbered},
            separators=(",", ":"),
        )

    def moved_to(self, mark: int) -> ImapCursor:
        """This cursor with the mark at ``mark``, never lower than it is."""
        return replace(self, mark=max(self.mark, mark))


def contiguous_mark(refs: Sequence[MessageRef], done: set[str]) -> int | None:
    """The highest UID of ``refs`` (ascending) up to which every mail is in ``done``."""
    mark: int | None = None
    for ref in refs:
        if not isinstance(ref.handle, int) or ref.source_key not in done:
            break
        mark = ref.handle
    return mark
