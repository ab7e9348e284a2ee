"""Cases and the mails of each case."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.models.messages import MailAddress, utcnow
from shared.models.records import Case, CaseMessage
from shared.store._base import Doc, next_sequence

CASE_COUNTER = "case_number"
FIRST_CASE_NUMBER = 10001


class CaseRepo:
    """``cases`` and ``messages``."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db
        self._cases = db["cases"]
        self._messages = db["messages"]

    async def get(self, *, number: int) -> Case | None:
        """A case by number."""
        doc = await self._cases.find_one({"number": number}, {"_id": 0})
        return Case.model_validate(doc) if doc else None

    async def create_for_raw(
        self, *, raw_id: str, subject: str, contact: MailAddress | None
    ) -> tuple[Case, bool]:
        """The case opened by raw mail ``raw_id``, creating it once.

        A crash after creating the case and before finishing the mail leads to a redelivery;
        the unique ``origin_raw_id`` then returns the same case instead of a second one.
        """
        existing = await self._cases.find_one({"origin_raw_id": raw_id}, {"_id": 0})
        if existing:
            return Case.model_validate(existing), False
        number = await next_sequence(self._db, CASE_COUNTER, start=FIRST_CASE_NUMBER)
        case = Case(number=number, subject=subject, contact=contact, origin_raw_id=raw_id)
        try:
            await self._cases.insert_one(case.model_dump())
        except DuplicateKeyError:
            existing = await self._cases.find_one({"origin_raw_id": raw_id}, {"_id": 0})
            if existing is None:
                raise
            return Case.model_validate(existing), False
        return case, True

    async def add_message(self, *, message: CaseMessage) -> bool:
        """Attach a mail to its case; False when it was attached before (a redelivery)."""
        try:
            await self._messages.insert_one(message.model_dump(by_alias=True))
        except DuplicateKeyError:
            return False
        await self._cases.update_one(
            {"number": message.case_number}, {"$set": {"updated_at": utcnow()}}
        )
        return True

    async def case_of_message_ids(self, *, message_ids: list[str]) -> int | None:
        """The case that holds any of these Message-IDs (the most recent one wins)."""
        if not message_ids:
            return None
        cursor = (
            self._messages.find({"message_id": {"$in": message_ids}}, {"case_number": 1})
            .sort("created_at", -1)
            .limit(1)
        )
        async for doc in cursor:
            return int(doc["case_number"])
        return None

    async def messages(self, *, case_number: int) -> list[CaseMessage]:
        """The mails of a case, oldest first."""
        cursor = self._messages.find({"case_number": case_number}, {"_id": 0}).sort("created_at", 1)
        return [CaseMessage.model_validate(d) async for d in cursor]

    async def recent(self, *, limit: int = 100) -> list[Case]:
        """The newest cases first."""
        cursor = self._cases.find({}, {"_id": 0}).sort("number", -1).limit(limit)
        return [Case.model_validate(d) async for d in cursor]
