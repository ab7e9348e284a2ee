"""Per account and folder: which UIDVALIDITY and highest UID have been taken (IMAP), and which
UIDLs were taken and left on the server (POP3 with ``leave_on_server``).

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
from shared.models.records import FetchState
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

    async def advance(
        self,
        *,
        account: str,
        folder: str,
        uidvalidity: int,
        last_uid: int,
        fence: int | None = None,
    ) -> None:
        """Move the mark forward; a lower UID for the same UIDVALIDITY never moves it back.

        With ``fence`` (the writer's lease token, after :meth:`claim`) the write happens only
        while that token is the position's current one, else LeaseLost.
        """
        query: dict[str, Any] = {
            "account": account,
            "folder": folder,
            "$or": [{"uidvalidity": {"$ne": uidvalidity}}, {"last_uid": {"$lt": last_uid}}],
        }
        if fence is not None:
            query["fence_token"] = fence
        try:
            result = await self._coll.update_one(
                query,
                {
                    "$set": {
                        "uidvalidity": uidvalidity,
                        "last_uid": last_uid,
                        "updated_at": utcnow(),
                    }
                },
                upsert=fence is None,
            )
        except DuplicateKeyError:
            # The document exists with this UIDVALIDITY and an equal or higher mark.
            return
        if fence is not None and result.matched_count == 0:
            # Either the mark is already there or the token is no longer current.
            await self._refuse_unless_current(account=account, folder=folder, token=fence)

    async def mark_renumbered(self, *, account: str, folder: str, fence: int | None = None) -> None:
        """Remember that the folder was renumbered (see ``FetchState.renumbered``); with
        ``fence`` only while that token is current, else LeaseLost."""
        query: dict[str, Any] = {"account": account, "folder": folder}
        if fence is not None:
            query["fence_token"] = fence
        result = await self._coll.update_one(
            query,
            {"$set": {"renumbered": True, "updated_at": utcnow()}},
            upsert=fence is None,
        )
        if fence is not None and result.matched_count == 0:
            await self._refuse_unless_current(account=account, folder=folder, token=fence)

    async def remember_uidls(
        self, *, account: str, folder: str, uidls: list[str], fence: int | None = None
    ) -> None:
        """Add POP3 UIDLs taken and left on the server; with ``fence`` only while that token
        is current, else LeaseLost."""
        await self._update_uidls(
            account, folder, {"$addToSet": {"uidls": {"$each": uidls}}}, fence=fence
        )

    async def forget_uidls(
        self, *, account: str, folder: str, uidls: list[str], fence: int | None = None
    ) -> None:
        """Drop UIDLs no longer in the maildrop (deleted by someone else), so the list stays
        as long as the maildrop; with ``fence`` as :meth:`remember_uidls`."""
        await self._update_uidls(account, folder, {"$pull": {"uidls": {"$in": uidls}}}, fence=fence)

    async def _update_uidls(
        self, account: str, folder: str, change: dict[str, Any], *, fence: int | None
    ) -> None:
        query: dict[str, Any] = {"account": account, "folder": folder}
        if fence is not None:
            query["fence_token"] = fence
        result = await self._coll.update_one(
            query, {**change, "$set": {"updated_at": utcnow()}}, upsert=fence is None
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
