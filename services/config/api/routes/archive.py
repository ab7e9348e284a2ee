"""The test archive: outgoing mail kept instead of sent on test systems (list and show)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.config.api.deps import RuntimeDep, Viewer
from services.config.api.schemas import ArchivedMailPublic, ArchivedMailSummary

router = APIRouter(prefix="/archive", tags=["test archive"])

MailId = Annotated[str, Path(max_length=100)]


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
