"""The outbox: every outgoing mail and its delivery per recipient."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.config.api.deps import RuntimeDep, Viewer
from services.config.outbox import (
    CURSOR_PATTERN,
    OutboxDetail,
    OutboxFilter,
    OutboxPage,
    outbox_detail,
    outbox_page,
)

router = APIRouter(prefix="/outbox", tags=["outbox"])


@router.get("")
async def list_outbox(
    rt: RuntimeDep,
    _: Viewer,
    status: OutboxFilter | None = None,
    case: Annotated[int | None, Query(ge=1)] = None,
    recipient: Annotated[str | None, Query(max_length=320)] = None,
    after: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> OutboxPage:
    """Outgoing mails, newest first; ``status`` (``deferred``: a recipient waits for a
    retry), ``case`` and ``recipient`` filter. The next page: ``after=<next>``."""
    return await outbox_page(
        rt, status=status, case_number=case, recipient=recipient, after=after, limit=limit
    )


@router.get("/{mail_id}")
async def show_outbox(
    mail_id: Annotated[str, Path(max_length=200)], rt: RuntimeDep, _: Viewer
) -> OutboxDetail:
    """One outgoing mail: per recipient queued, sent (the server's answer), deferred (the
    next attempt), failed (the refusal) or bounced (the DSN); its retries and its case."""
    return await outbox_detail(rt, mail_id=mail_id)
