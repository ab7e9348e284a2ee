"""The test archive: outgoing mail kept instead of sent on test systems (list and show)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from services.config.api.deps import RuntimeDep, Viewer
from shared.models.messages import MailAddress
from shared.models.records import ArchivedMail

router = APIRouter(prefix="/archive", tags=["test archive"])

MailId = Annotated[str, Path(max_length=100)]


class ArchivedMailSummary(BaseModel):
    """One line of the archive listing."""

    id: str
    message_id: str
    case_number: int | None
    kind: str
    to: list[MailAddress]
    subject: str
    flavour: str
    intercepted_at: datetime

    @classmethod
    def of(cls, mail: ArchivedMail) -> Self:
        """This view of an archived mail: the fields the class declares."""
        return cls.model_validate(mail.model_dump(include=set(cls.model_fields)))


class ArchivedMailPublic(ArchivedMailSummary):
    """An archived mail in full, with the message as it would have been sent."""

    model_config = ConfigDict(populate_by_name=True)

    from_: MailAddress = Field(alias="from")
    text: str
    raw: str


@router.get("")
async def list_archive(
    rt: RuntimeDep,
    _: Viewer,
    case: int | None = None,
    to: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ArchivedMailSummary]:
    """Intercepted mails, newest first; filter by case number or recipient address."""
    mails = await rt.store.test_archive.recent(case_number=case, to=to, limit=limit)
    return [ArchivedMailSummary.of(m) for m in mails]


@router.get("/{mail_id}")
async def show_archived(mail_id: MailId, rt: RuntimeDep, _: Viewer) -> ArchivedMailPublic:
    """One intercepted mail with its text and raw message."""
    return ArchivedMailPublic.of(await rt.store.test_archive.get(mail_id=mail_id))
