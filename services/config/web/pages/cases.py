"""Cases: the list with its search form, a case's thread read like a ticket's history, and
the answer form for operators. The pages call the same functions as the API."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.datastructures import UploadFile
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError

from services.config.api.deps import RuntimeDep
from services.config.api.routes.attachments import attachment_content
from services.config.cases import case_page, case_thread
from services.config.replies import ReplyAttachment, ReplyRequest, send_reply
from services.config.web.auth import OperatorForm, Viewing
from services.config.web.responses import after_post
from services.config.web.templates import CONSOLE, render
from shared.errors import ConfigRejected, NotFound
from shared.models.messages import new_id

router = APIRouter(prefix=CONSOLE, include_in_schema=False)

TextQ = Annotated[str | None, Query(max_length=200)]
PAGE = 50


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    """A date of the search form (``YYYY-MM-DD``, UTC; ``end``: the day after, so that the
    day itself is included) or None when empty."""
    if not value:
        return None
    return datetime.fromisoformat(value) + (timedelta(days=1) if end else timedelta())


@router.get("/cases")
async def cases_page(
    request: Request,
    rt: RuntimeDep,
    visitor: Viewing,
    subject: TextQ = None,
    participant: TextQ = None,
    number: Annotated[str | None, Query(max_length=20, pattern=r"^\d*$")] = None,
    since: Annotated[str | None, Query(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = None,
    until: Annotated[str | None, Query(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """The case list; the filters are the URL's query."""
    form = {
        "subject": subject or "",
        "participant": participant or "",
        "number": number or "",
        "since": since or "",
        "until": until or "",
    }
    page = await case_page(
        rt,
        subject=subject,
        participant=participant,
        number=int(number) if number else None,
        since=_day(since),
        until=_day(until, end=True),
        before=before,
        limit=PAGE,
    )
    filters = {k: v for k, v in form.items() if v}
    next_url = (
        f"{CONSOLE}/cases?{urlencode({**filters, 'before': page.next})}" if page.next else None
    )
    return render(
        request,
        "cases.html",
        visitor,
        title="Cases",
        page=page,
        form=form,
        next_url=next_url,
        first_url=f"{CONSOLE}/cases?{urlencode(filters)}" if before else None,
    )


@router.get("/cases/{number}")
async def case_page_one(
    request: Request, number: int, rt: RuntimeDep, visitor: Viewing
) -> HTMLResponse:
    """A case's thread, and the answer form for operators."""
    thread = await case_thread(rt, number=number)
    return render(
        request,
        "case.html",
        visitor,
        title=f"Case {number}",
        thread=thread,
        reply_key=new_id(),
    )


@router.get("/cases/{number}/messages/{raw_id}/attachments/{index}")
async def attachment_download(
    number: int,
    raw_id: Annotated[str, Path(max_length=64)],
    index: Annotated[int, Path(ge=0)],
    rt: RuntimeDep,
    visitor: Viewing,
) -> StreamingResponse:
    """An attachment of an incoming mail, as the API serves it (always a download)."""
    return await attachment_content(number, raw_id, index, rt, visitor.name)


async def _attachment(upload: object) -> list[ReplyAttachment]:
    """The uploaded file as an attachment (none when no file was chosen)."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return []
    data = await upload.read()
    return [
        ReplyAttachment(
            filename=upload.filename,
            content_type=upload.content_type or "application/octet-stream",
            content_base64=base64.b64encode(data).decode(),
        )
    ]


def _addresses(text: str) -> list[dict[str, str]]:
    return [{"address": a.strip()} for a in text.replace(";", ",").split(",") if a.strip()]


@router.post("/cases/{number}/reply")
async def reply_form(
    request: Request, number: int, rt: RuntimeDep, posted: OperatorForm
) -> Response:
    """Send the answer; back to the thread with what happened."""
    back = f"{CONSOLE}/cases/{number}"
    try:
        reply = ReplyRequest.model_validate(
            {
                "to": _addresses(posted.text("to")),
                "cc": _addresses(posted.text("cc")),
                "subject": posted.text("subject") or None,
                "text": posted.text("text") or None,
                "attachments": await _attachment(posted.data.get("attachment")),
            }
        )
        key = posted.text("idempotency_key")[:200] or None
        sent = await send_reply(rt, number=number, reply=reply, key=key, who=posted.visitor.name)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        return after_post(request, back, f"Not sent: {problems}", error=True)
    except (ConfigRejected, NotFound) as exc:
        return after_post(request, back, f"Not sent: {exc}", error=True)
    return after_post(request, back, f"Answer queued for sending ({sent.mail_id}).")
