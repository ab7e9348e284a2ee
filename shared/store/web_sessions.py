"""Console sessions (``web_sessions``); MongoDB's TTL index removes the expired ones."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from shared.models.users import WebSessionRecord
from shared.store._base import Doc
from shared.store._errors import Repo


class WebSessionRepo(Repo):
    """``web_sessions``: one document per signed-in browser."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["web_sessions"]

    async def add(self, *, session: WebSessionRecord) -> None:
        """Store a new session."""
        await self._coll.insert_one(session.model_dump(by_alias=True))

    async def get(self, *, key: str, now: datetime) -> WebSessionRecord | None:
        """The session whose key (the cookie's digest) is ``key``, unless it has expired (the
        TTL monitor runs only once a minute)."""
        doc = await self._coll.find_one({"_id": key, "expires_at": {"$gt": now}})
        return WebSessionRecord.model_validate(doc) if doc else None

    async def extend(self, *, key: str, seen: datetime, expires_at: datetime) -> None:
        """Record activity: the session lives until ``expires_at``."""
        await self._coll.update_one(
            {"_id": key}, {"$set": {"last_seen": seen, "expires_at": expires_at}}
        )

    async def end(self, *, key: str) -> None:
        """Sign a session out."""
        await self._coll.delete_one({"_id": key})

    async def end_all(self, *, user: str) -> int:
        """Sign every session of ``user`` out (password reset, role change, deletion)."""
        result = await self._coll.delete_many({"user": user})
        return result.deleted_count
