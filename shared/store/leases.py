"""Per-account leases of the fetcher fleet, each with a fencing token.

Every write is one atomic MongoDB operation on the account's document, conditioned on who
holds it: renewing needs the same holder (instance id and process session), taking over
needs an expired lease, and a change of holder increments the token. Documents are never
deleted, so an account's token only ever grows, across releases, removals and re-adds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.models.fetchers import Lease
from shared.store._base import Doc
from shared.store._errors import Repo


class LeaseRepo(Repo):
    """One lease document per account (``_id`` is the account name)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["leases"]

    async def acquire(
        self, *, account: str, owner: str, session: str, until: datetime, now: datetime
    ) -> Lease | None:
        """Hold ``account`` until ``until``: renew it if this holder has it, take it over if
        it expired (or never existed) with the token incremented; None if another holds it."""
        mine = await self._coll.find_one_and_update(
            {"_id": account, "owner": owner, "session": session},
            {"$set": {"expires_at": until}},
            return_document=ReturnDocument.AFTER,
        )
        if mine is not None:
            return Lease.model_validate(mine)
        try:
            taken = await self._coll.find_one_and_update(
                {"_id": account, "expires_at": {"$lte": now}},
                {
                    "$set": {
                        "owner": owner,
                        "session": session,
                        "expires_at": until,
                        "acquired_at": now,
                    },
                    "$inc": {"token": 1},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            # The document exists and has not expired: another holder has it.
            return None
        return Lease.model_validate(taken) if taken is not None else None

    async def renew(
        self, *, accounts: Iterable[str], owner: str, session: str, until: datetime
    ) -> dict[str, int]:
        """Extend every lease of ``accounts`` this holder still has; returns those (account →
        token). A lease missing from the answer was taken over: its work must stop."""
        names = sorted(accounts)
        if not names:
            return {}
        query = {"_id": {"$in": names}, "owner": owner, "session": session}
        await self._coll.update_many(query, {"$set": {"expires_at": until}})
        return {doc["_id"]: int(doc["token"]) async for doc in self._coll.find(query)}

    async def release(
        self, *, accounts: Iterable[str], owner: str, session: str, now: datetime
    ) -> None:
        """Give up the leases of ``accounts`` at once (the next holder need not wait)."""
        names = sorted(accounts)
        if names:
            await self._coll.update_many(
                {"_id": {"$in": names}, "owner": owner, "session": session},
                {"$set": {"owner": None, "session": None, "expires_at": now}},
            )

    async def holds(
        self, *, account: str, owner: str, session: str, token: int, valid_after: datetime
    ) -> bool:
        """Whether this holder still has the lease with ``token``, valid beyond
        ``valid_after``."""
        doc = await self._coll.find_one(
            {
                "_id": account,
                "owner": owner,
                "session": session,
                "token": token,
                "expires_at": {"$gt": valid_after},
            },
            {"_id": 1},
        )
        return doc is not None

    async def get(self, *, account: str) -> Lease | None:
        """The lease document of ``account`` (None before anyone held it)."""
        doc = await self._coll.find_one({"_id": account})
        return Lease.model_validate(doc) if doc is not None else None

    async def all(self) -> list[Lease]:
        """Every lease document, by account."""
        return [Lease.model_validate(doc) async for doc in self._coll.find({}).sort("_id", 1)]
