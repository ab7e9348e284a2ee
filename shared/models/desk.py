"""Which entries of the failed-mail desk to list, count or replay, and where a page of them
ends.

:class:`DeskFilter` is the one declaration of the desk's filters: the API takes it as query
parameters, the CLI derives its options from it (``services.config.cli.model_options``) and
the console's filter form posts the same names. Adding a filter here adds it everywhere; its
meaning (:meth:`DeskFilter.matches`) is written once too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.errors import ConfigRejected
from shared.models.records import FailedMail

DeskStatus = Literal["failed", "replayed", "deleted", "all"]
"""``all``: failed and replayed (a deleted entry is only listed when asked for by name)."""


class DeskFilter(BaseModel):
    """A filter over desk entries; every field left empty matches everything."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    account: str | None = Field(
        default=None, max_length=64, description="The incoming account (its exact name)."
    )
    sender: str | None = Field(
        default=None, max_length=200, description="Text the sender address contains (any case)."
    )
    error: str | None = Field(
        default=None, max_length=200, description="Text the error contains (any case)."
    )
    since: datetime | None = Field(
        default=None, description="Failed at or after this time (ISO 8601; UTC unless given)."
    )
    until: datetime | None = Field(
        default=None, description="Failed at or before this time (ISO 8601; UTC unless given)."
    )
    status: DeskStatus = Field(
        default="failed", description="failed (waiting), replayed, deleted, or all but deleted."
    )

    @field_validator("account", "sender", "error", "since", "until", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # A filter form sends every field, the unused ones empty.
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # The console shows UTC, and a naive time cannot be compared with stored ones.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @property
    def statuses(self) -> tuple[str, ...]:
        """The stored statuses this filter lists."""
        return ("failed", "replayed") if self.status == "all" else (self.status,)

    @property
    def by_text(self) -> bool:
        """Whether a text filter applies (matched while reading, not by an index)."""
        return bool(self.sender or self.error)

    def _texts(self) -> dict[str, str]:
        return {k: v for k, v in (("sender", self.sender), ("error", self.error)) if v}

    def matches(self, entry: FailedMail) -> bool:
        """Whether ``entry`` passes the text filters, as a page reads it (status, account and
        times are the index's part of the filter, applied by the query)."""
        values = {"sender": entry.sender, "error": entry.error}
        return all(n.casefold() in (values[k] or "").casefold() for k, n in self._texts().items())

    def text_query(self) -> dict[str, Any]:
        """The text filters as a MongoDB query, for a count that reads every entry anyway
        (the same test as :meth:`matches`: the text anywhere, any case)."""
        return {k: {"$regex": re.escape(n), "$options": "i"} for k, n in self._texts().items()}

    def query(self) -> dict[str, str]:
        """The filter as query parameters (the set ones), for links that keep it."""
        return {
            k: v.isoformat() if isinstance(v, datetime) else str(v)
            for k, v in self.model_dump(exclude_defaults=True).items()
            if v is not None
        }


CURSOR_SEP = "_"


class DeskCursor(BaseModel):
    """A position in the desk's order (last failure, newest first; then id, descending):
    a page lists the entries after it. Encoded as ``<epoch ms>_<id>`` in URLs."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    id: str = ""
    """With the empty id the position is just before ``at``: every entry failed at ``at`` or
    later is behind it."""

    def key(self) -> tuple[datetime, str]:
        """The sort key; an entry comes after the cursor when its key is smaller."""
        return (self.at, self.id)

    def encode(self) -> str:
        """The cursor as the ``after`` query parameter."""
        millis = round(self.at.timestamp() * 1000)
        return f"{millis}{CURSOR_SEP}{self.id}"

    @classmethod
    def decode(cls, text: str) -> Self:
        """The cursor of an ``after`` parameter; ConfigRejected naming it when malformed."""
        millis, sep, ident = text.partition(CURSOR_SEP)
        try:
            at = datetime.fromtimestamp(int(millis) / 1000, UTC) if sep else None
        except (ValueError, OverflowError, OSError):
            at = None
        if at is None:
            raise ConfigRejected("after: not a desk position (take it from a page's next link)")
        return cls(at=at, id=ident)

    @classmethod
    def of(cls, entry: FailedMail) -> Self:
        """The position of ``entry`` (the next page starts after it)."""
        return cls(at=entry.last_failed_at, id=entry.id)

    @classmethod
    def before(cls, at: datetime) -> Self:
        """The position just before ``at`` (entries failed at ``at`` or later are behind)."""
        return cls(at=at)


ONE_MS = timedelta(milliseconds=1)
"""MongoDB keeps times to the millisecond."""
