"""The JMAP adapter's cursor and the pure decisions of a listing (no I/O: unit-tested)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import Permanent


@dataclass(frozen=True)
class Cursor:
    """What the fetcher stores for a JMAP account: the account's Email state string after
    which every change has been handled (RFC 8620 §5.2 ``sinceState``), and the start
    position's floor: mail received before it was left alone when the account started, and
    a resync (state too old) leaves it alone too."""

    state: str
    floor: str | None = None
    """``receivedAt`` (RFC 3339 UTC) mail must be after to count: the start date with
    ``since``, the newest mail already there with ``new``; None with ``all``."""

    def dump(self) -> str:
        """The stored form (JSON, versioned)."""
        data: dict[str, object] = {"v": 1, "email_state": self.state}
        if self.floor is not None:
            data["floor"] = self.floor
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def load(cls, text: str) -> Cursor:
        """Read a stored cursor; Permanent if it is not one of this adapter's."""
        try:
            data = json.loads(text)
            state, floor = data["email_state"], data.get("floor")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Permanent(f"stored cursor is not a JMAP cursor: {text[:80]!r}") from exc
        if data.get("v") != 1 or not isinstance(state, str) or not isinstance(floor, str | None):
            raise Permanent(f"stored cursor is not a JMAP cursor: {text[:80]!r}")
        return cls(state, floor)


def after_second(received_at: str) -> str:
    """The RFC 3339 UTC time one second after ``received_at`` (whole seconds, ``Z``)."""
    moment = datetime.fromisoformat(received_at.replace("Z", "+00:00")).astimezone(UTC)
    return (moment.replace(microsecond=0) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_candidate(email: dict[str, Any], mailbox_id: str, *, created: bool) -> bool:
    """Whether a changed email is new mail in the folder.

    Created emails count when they are in the folder. Updated ones (a mail moved into the
    folder keeps its id) count only when they are in it and not ``$seen``: an update is
    also what our own ``$seen`` keyword or a move out of the folder looks like, and those
    mails were taken already.
    """
    if not email.get("mailboxIds", {}).get(mailbox_id):
        return False
    return created or not email.get("keywords", {}).get("$seen")


def oldest_first(emails: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Emails ordered by ``receivedAt`` (RFC 3339 UTC strings sort as times), then id."""
    return sorted(emails, key=lambda e: (str(e.get("receivedAt", "")), str(e["id"])))


def _path(mailbox: dict[str, Any], by_id: dict[Any, dict[str, Any]]) -> str:
    """The mailbox's full name, ``Parent/Child``."""
    parts, seen = [str(mailbox.get("name", ""))], {mailbox["id"]}
    parent = mailbox.get("parentId")
    while parent in by_id and parent not in seen:
        seen.add(parent)
        parts.append(str(by_id[parent].get("name", "")))
        parent = by_id[parent].get("parentId")
    return "/".join(reversed(parts))


def mailbox_paths(mailboxes: list[dict[str, Any]]) -> list[str]:
    """The folder names an account setting can take: ``INBOX`` for the inbox (role), the
    others by full name, sorted."""
    by_id = {m["id"]: m for m in mailboxes}
    inbox = [m for m in mailboxes if m.get("role") == "inbox"]
    rest = sorted(_path(m, by_id) for m in mailboxes if m.get("role") != "inbox")
    return (["INBOX"] if inbox else []) + rest


def find_mailbox(mailboxes: list[dict[str, Any]], folder: str) -> dict[str, Any] | None:
    """The mailbox a folder setting names: ``INBOX`` (any case) is the one with role inbox;
    otherwise the full name (``Parent/Child``), the name, or a role of that name."""
    if folder.upper() == "INBOX":
        return next((m for m in mailboxes if m.get("role") == "inbox"), None)
    by_id = {m["id"]: m for m in mailboxes}

    for match in (
        lambda m: _path(m, by_id) == folder,
        lambda m: m.get("name") == folder,
        lambda m: m.get("role") == folder.lower(),
    ):
        found = [m for m in mailboxes if match(m)]
        if len(found) == 1:
            return found[0]
    return None
