"""Users' API tokens, found by the SHA-256 of the token (unique index ``token_hash``)."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from shared.models.users import ApiTokenRecord
from shared.store._base import Doc
from shared.store._errors import Repo


class ApiTokenRepo(Repo):
    """``api_tokens``."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._tokens = db["api_tokens"]

    async def add(self, *, token: ApiTokenRecord) -> None:
        """Store a new token's record."""
        await self._tokens.insert_one(token.model_dump(by_alias=True))

    async def by_hash(self, *, token_hash: str) -> ApiTokenRecord | None:
        """The token whose SHA-256 is ``token_hash``, or None."""
        doc = await self._tokens.find_one({"token_hash": token_hash})
        return ApiTokenRecord.model_validate(doc) if doc else None

    async def get(self, *, token_id: str) -> ApiTokenRecord | None:
        """One token by its id, or None."""
        doc = await self._tokens.find_one({"_id": token_id})
        return ApiTokenRecord.model_validate(doc) if doc else None

    async def of_user(self, *, user: str | None = None) -> list[ApiTokenRecord]:
        """The tokens of one user (or of all), oldest first."""
        query = {} if user is None else {"user": user}
        cursor = self._tokens.find(query).sort([("created_at", 1), ("_id", 1)])
        return [ApiTokenRecord.model_validate(d) async for d in cursor]

    async def touch(self, *, token_id: str, at: datetime) -> None:
        """Note when the token was last used."""
        await self._tokens.update_one({"_id": token_id}, {"$set": {"last_used_at": at}})

    async def remove(self, *, token_id: str) -> bool:
        """Revoke one token; False when there was none."""
        result = await self._tokens.delete_one({"_id": token_id})
        return result.deleted_count == 1

    async def remove_user(self, *, user: str) -> int:
        """Revoke every token of a user; how many there were."""
        result = await self._tokens.delete_many({"user": user})
        return result.deleted_count
