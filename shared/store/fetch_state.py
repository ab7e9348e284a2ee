"""Per account and folder: the mailbox adapter's cursor (what has been taken; opaque here,
see ``shared.mailbox.base.Listing``).

Fencing: a fetcher that holds an account's lease first :meth:`FetchStateRepo.claim`\\ s the
position with its lease's token; every write it makes afterwards names that token and is
refused (``LeaseLost``) once a later holder has claimed the position with a newer one. The
check and the write are one atomic update, so a paused or partitioned former holder cannot
move the mark, whatever it believes about its lease.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.errors import LeaseLost
from shared.models.messages import utcnow
from shared.models.records import LEGACY_FETCH_FIELDS, FetchState
from shared.store._base import Doc
from shared.store._errors import Repo


class FetchStateRepo(Repo):
    """Fetch positions, one document per (account, folder)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["fetch_state"]

    async def get(self, *, account: str, folder: str) -> FetchState:
        """The stored position, or an empty one."""
        doc = await self._coll.find_one({"account": account, "folder": folder}, {"_id": 0})
        return FetchState.model_validate(doc) if doc else FetchState(account=account, folder=folder)

    async def claim(self, *, account: str, folder: str, token: int) -> None:
        """Accept writes only with ``token`` from now on; LeaseLost if a newer token has
        claimed the position already."""
        try:
            await self._coll.update_one(
                {
                    "account": account,
                    "folder": folder,
                    "$or": [{"fence_token": {"$lt": token}}, {"fence_token": None}],
                },
                {"$set": {"fence_token": token}},
                upsert=True,
            )
        except DuplicateKeyError:
            await self._refuse_unless_current(account=account, folder=folder, token=token)

    async def save_cursor(
        self, *, account: str, folder: str, cursor: str, fence: int | None = None
    ) -> None:
        """Store the adapter's cursor (dropping a position written before the seam).

        With ``fence`` (the writer's lease token, after :meth:`claim`) the write happens only
        while that token is the position's current one, else LeaseLost.
        """
        query: dict[str, Any] = {"account": account, "folder": folder}
        if fence is not None:
            query["fence_token"] = fence
        result = await self._coll.update_one(
            query,
            {
                "$set": {"cursor": cursor, "updated_at": utcnow()},
                "$unset": dict.fromkeys(LEGACY_FETCH_FIELDS, ""),
            },
            upsert=fence is None,
        )
        if fence is not None and result.matched_count == 0:
            await self._refuse_unless_current(account=account, folder=folder, token=fence)

    async def _refuse_unless_current(self, *, account: str, folder: str, token: int) -> None:
        doc = await self._coll.find_one({"account": account, "folder": folder}, {"fence_token": 1})
        current = doc.get("fence_token") if doc else None
        if current != token:
            raise LeaseLost(
                f"{account}: fetch state of {folder} belongs to lease token {current}, "
                f"not {token}; another fetcher took the account over"
            )
