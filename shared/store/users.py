"""Console users (the name is the ``_id``: unique by MongoDB's own index) and the audit of
every change made to a user or a token."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.models.messages import utcnow
from shared.models.users import Role, UserAuditRecord, UserRecord
from shared.store._base import Doc
from shared.store._errors import Repo


class UserRepo(Repo):
    """``users`` and ``user_log``."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._users = db["users"]
        self._log = db["user_log"]

    async def add(self, *, user: UserRecord) -> bool:
        """Store a new user; False when the name is taken (the one duplicate key that has a
        meaning here; any other store error is mapped by :class:`Repo`)."""
        try:
            await self._users.insert_one(user.model_dump(by_alias=True))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, *, name: str) -> UserRecord | None:
        """One user, or None."""
        doc = await self._users.find_one({"_id": name})
        return UserRecord.model_validate(doc) if doc else None

    async def all(self) -> list[UserRecord]:
        """Every user, by name."""
        return [UserRecord.model_validate(d) async for d in self._users.find({}).sort("_id", 1)]

    async def count(self, *, role: Role) -> int:
        """How many users have ``role``."""
        return await self._users.count_documents({"role": role})

    async def set_role(self, *, name: str, role: Role) -> UserRecord | None:
        """Give the user another role; the user as it is now, or None when there is none."""
        return await self._update(name, {"role": role, "updated_at": utcnow()})

    async def set_email(self, *, name: str, email: str | None) -> UserRecord | None:
        """Set or clear the user's mail address; the user as it is now, or None."""
        return await self._update(name, {"email": email, "updated_at": utcnow()})

    async def set_password(self, *, name: str, password_hash: str) -> UserRecord | None:
        """Replace the password hash; the failed-login count and any lock-out end with it."""
        now = utcnow()
        fields = {
            "password_hash": password_hash,
            "password_changed_at": now,
            "updated_at": now,
            "failed_logins": 0,
            "locked_until": None,
        }
        return await self._update(name, fields)

    async def count_failure(self, *, name: str) -> UserRecord | None:
        """Count one wrong password (atomically: concurrent guesses all count)."""
        doc = await self._users.find_one_and_update(
            {"_id": name},
            {"$inc": {"failed_logins": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return UserRecord.model_validate(doc) if doc else None

    async def lock(self, *, name: str, until: datetime) -> None:
        """Refuse password checks for the user until ``until``."""
        await self._users.update_one({"_id": name}, {"$set": {"locked_until": until}})

    async def login_succeeded(
        self, *, name: str, at: datetime, rehashed: str | None = None
    ) -> None:
        """A right password: the failure count and lock-out start over; ``rehashed`` replaces
        the hash of the same password (made with today's hashing parameters)."""
        fields: Doc = {"failed_logins": 0, "locked_until": None, "last_login_at": at}
        if rehashed is not None:
            fields["password_hash"] = rehashed
        await self._users.update_one({"_id": name}, {"$set": fields})

    async def unlock(self, *, name: str) -> UserRecord | None:
        """End a lock-out and forget the failures."""
        return await self._update(name, {"failed_logins": 0, "locked_until": None})

    async def remove(self, *, name: str) -> bool:
        """Delete the user; False when there was none."""
        result = await self._users.delete_one({"_id": name})
        return result.deleted_count == 1

    async def audit(self, *, entry: UserAuditRecord) -> None:
        """Record a change to a user or a token."""
        await self._log.insert_one(entry.model_dump(by_alias=True))

    async def log(self, *, user: str | None = None, limit: int = 100) -> list[UserAuditRecord]:
        """The latest audit entries (of one user, or all), newest first."""
        query = {} if user is None else {"user": user}
        cursor = self._log.find(query).sort([("at", -1), ("_id", -1)]).limit(limit)
        return [UserAuditRecord.model_validate(d) async for d in cursor]

    async def _update(self, name: str, fields: Doc) -> UserRecord | None:
        doc = await self._users.find_one_and_update(
            {"_id": name}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )
        return UserRecord.model_validate(doc) if doc else None
