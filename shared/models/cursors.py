"""The cursors the IMAP and POP3 adapters store in ``FetchState.cursor``, in one place: the
adapters read and write them, and the fetch-state record turns a position written before
the mailbox seam into them (``records.FetchState``), so neither writes the JSON by hand.

IMAP: the folder's UIDVALIDITY and the UID mark below which every mail was taken,
``{"uidvalidity": 7, "mark": 42, "renumbered": false}``. ``renumbered`` stays True once the
folder's UIDVALIDITY changed: mail stored under the old numbering may come again under new
keys, so the fetcher looks up twins from then on.

POP3 keeping mail: the UIDLs taken and still in the maildrop, ``{"taken": [uidl, ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


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
        return _dump(
            {"uidvalidity": self.uidvalidity, "mark": self.mark, "renumbered": self.renumbered}
        )

    def moved_to(self, mark: int) -> ImapCursor:
        """This cursor with the mark at ``mark``, never lower than it is."""
        return replace(self, mark=max(self.mark, mark))


def pop3_taken(cursor: str | None) -> frozenset[str]:
    """The UIDLs a POP3 cursor holds (none for a maildrop never fetched)."""
    return frozenset(json.loads(cursor).get("taken", ())) if cursor else frozenset()


def pop3_cursor(taken: Iterable[str]) -> str:
    """The POP3 cursor holding ``taken``."""
    return _dump({"taken": sorted(taken)})
