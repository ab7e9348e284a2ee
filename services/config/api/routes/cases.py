"""Cases: the list with its search, a case's thread, and answering on a case."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, status

from services.config.api.deps import Operator, RuntimeDep, Viewer
from services.config.cases import CasePage, CaseThread, case_page, case_thread
from services.config.replies import KEY_PATTERN, ReplyOut, ReplyRequest, send_reply

router = APIRouter(prefix="/cases", tags=["cases"])

TextQ = Annotated[str | None, Query(max_length=200)]


@router.get("")
async def list_cases(
    rt: RuntimeDep,
    _: Viewer,
    subject: TextQ = None,
    participant: TextQ = None,
    number: Annotated[int | None, Query(ge=1)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CasePage:
    """Cases, newest first. ``subject``: a piece of the subject (any case); ``participant``:
    an address that wrote or was written to in the case; ``number``: one case; ``since`` /
    ``until``: when the case was opened. The next page: ``before=<next>``. A subject or
    participant search looks through a bounded range of case numbers per page
    (``searched_to`` says how far): a short page with a ``next`` means search on."""
    return await case_page(
        rt,
        subject=subject,
        participant=participant,
        number=number,
        since=since,
        until=until,
        before=before,
        limit=limit,
    )


@router.get("/{number}")
async def show_case(number: int, rt: RuntimeDep, _: Viewer) -> CaseThread:
    """A case and its thread: every mail in and out, oldest first, with the rule that
    routed each incoming mail, each outgoing mail's delivery per recipient, attachments
    with their download paths, and bounces, auto-replies and complaints marked."""
    return await case_thread(rt, number=number)


@router.post("/{number}/reply", status_code=status.HTTP_202_ACCEPTED)
async def reply(
    number: int,
    body: ReplyRequest,
    rt: RuntimeDep,
    who: Operator,
    idempotency_key: Annotated[str | None, Header(pattern=KEY_PATTERN)] = None,
) -> ReplyOut:
    """Send an answer on a case through the same templates, addresses and outgoing-mail
    scripts as automatic mail; accepted for sending (follow it at ``outbox``). With an
    ``Idempotency-Key`` a retried call sends nothing more and gets the same answer."""
    return await send_reply(rt, number=number, reply=body, key=idempotency_key, who=who)
