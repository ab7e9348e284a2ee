"""Outbox: every outgoing mail with its state per recipient, and one mail's whole story."""

from __future__ import annotations

from typing import Annotated, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.config.api.deps import RuntimeDep
from services.config.outbox import (
    CURSOR_PATTERN,
    OutboxFilter,
    outbox_detail,
    outbox_page,
)
from services.config.web.auth import Viewing
from services.config.web.templates import CONSOLE, render

router = APIRouter(prefix=CONSOLE, include_in_schema=False)

PAGE = 50
STATUSES = get_args(OutboxFilter)


@router.get("/outbox")
async def outbox_list(
    request: Request,
    rt: RuntimeDep,
    visitor: Viewing,
    status: Annotated[str | None, Query(max_length=20)] = None,
    case: Annotated[str | None, Query(max_length=20, pattern=r"^\d*$")] = None,
    recipient: Annotated[str | None, Query(max_length=320)] = None,
    after: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
) -> HTMLResponse:
    """The outbox list; the filters are the URL's query."""
    chosen: OutboxFilter | None = next((s for s in STATUSES if s == status), None)
    form = {"status": chosen or "", "case": case or "", "recipient": recipient or ""}
    page = await outbox_page(
        rt,
        status=chosen,
        case_number=int(case) if case else None,
        recipient=recipient or None,
        after=after,
        limit=PAGE,
    )
    filters = {k: v for k, v in form.items() if v}
    next_url = (
        f"{CONSOLE}/outbox?{urlencode({**filters, 'after': page.next})}" if page.next else None
    )
    return render(
        request,
        "outbox.html",
        visitor,
        title="Outbox",
        page=page,
        form=form,
        statuses=STATUSES,
        next_url=next_url,
        first_url=f"{CONSOLE}/outbox?{urlencode(filters)}" if after else None,
    )


@router.get("/outbox/{mail_id}")
async def outbox_mail(
    request: Request, mail_id: str, rt: RuntimeDep, visitor: Viewing
) -> HTMLResponse:
    """One outgoing mail."""
    detail = await outbox_detail(rt, mail_id=mail_id)
    return render(request, "outbox_mail.html", visitor, title="Outgoing mail", mail=detail)
