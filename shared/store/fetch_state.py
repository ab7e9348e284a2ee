"""Per account and folder: which UIDVALIDITY and highest UID have been taken."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.models.messages import utcnow
from shared.models.records import FetchState
from shared.store._base import Doc


class FetchStateRepo:
    """Fetch positions, one document per (account, folder)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["fetch_state"]

    async def get(self, *, account: str, folder: str) -> FetchState:
        """The stored position, or an empty one."""
        doc = await self._coll.find_one({"account": account, "folder": folder}, {"_id": 0})
        return FetchState.model_validate(doc) if doc else FetchState(account=account, folder=folder)

    async def advance(self, *, account: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        """Move the mark forward; a lower UID for the same UIDVALIDITY never moves it back."""
        try:
            await self._coll.update_one(
                {
                    "account": account,
                    "folder": folder,
                    "$or": [{"uidvalidity": {"$ne": uidvalidity}}, {"last_uid": {"$lt": last_uid}}],
                },
                {
                    "$set": {
                        "uidvalidity": uidvalidity,
                        "last_uid": last_uid,
                        "updated_at": utcnow(),
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            # The document exists with this UIDVALIDITY and an equal or higher mark.
            return

    async def mark_renumbered(self, *, account: str, folder: str) -> None:
        """Remember that the folder was renumbered (see ``FetchState.renumbered``)."""
        await self._coll.update_one(
            {"account": account, "folder": folder},
            {"$set": {"renumbered": True, "updated_at": utcnow()}},
            upsert=True,
        )
