"""``test_archive``: outgoing mail intercepted on test systems instead of being sent."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from shared.errors import NotFound
from shared.models.records import ArchivedMail
from shared.store._base import Doc
from shared.store._errors import Repo


class TestArchiveRepo(Repo):
    """One document per intercepted mail id."""

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db["test_archive"]

    async def keep(self, *, mail: ArchivedMail) -> None:
        """Store the mail once; a redelivery replaces it with the same content."""
        doc = mail.model_dump(by_alias=True)
        await self._coll.replace_one({"_id": mail.id}, doc, upsert=True)

    async def get(self, *, mail_id: str) -> ArchivedMail:
        """One archived mail; NotFound when there is none."""
        doc = await self._coll.find_one({"_id": mail_id})
        if doc is None:
            raise NotFound(f"no mail {mail_id!r} in the test archive")
        return ArchivedMail.model_validate(doc)

    async def recent(
        self, *, case_number: int | None = None, to: str | None = None, limit: int = 100
    ) -> list[ArchivedMail]:
        """The newest intercepted mails first, optionally of one case or to one address."""
        query: Doc = {}
        if case_number is not None:
            query["case_number"] = case_number
        if to is not None:
            query["to.address"] = to
        cursor = self._coll.find(query).sort("intercepted_at", -1).limit(limit)
        return [ArchivedMail.model_validate(d) async for d in cursor]
