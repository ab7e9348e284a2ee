"""Failed incoming emails: the desk's list with its filters and pages, a mail's page, and
the operators' Replay and Delete (one, selected, or all matching the filter).

Every action is the desk service's (``services.config.desk``), as for the API and the CLI;
bulk deletes and "replay all" ask on a page of their own first, so they work without
JavaScript too.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from services.config import desk
from services.config.api.deps import RuntimeDep
from services.config.web.auth import Operating, OperatorForm, Posted, Viewing
from services.config.web.responses import after_post
from services.config.web.templates import CONSOLE, render
from shared.errors import NotFound
from shared.models.desk import DeskCursor, DeskFilter
from shared.models.messages import utcnow

router = APIRouter(prefix=f"{CONSOLE}/failed", include_in_schema=False)

LIST = f"{CONSOLE}/failed"
PAGE_SIZE = 50
MAX_SELECTED = 500
"""Rows one form may name (a page shows :data:`PAGE_SIZE`)."""
REPLAY_ALL_AT_ONCE = 1000
"""The most one "Replay all matching" replays (about 10 s; the operator runs it again for
more). Its confirmation counts up to one more than this: an exact count of 100,000 waiting
mails would read all of them."""

FailedId = Annotated[str, Path(max_length=100)]
Filter = Annotated[DeskFilter, Query()]


def _back(posted: Posted) -> str:
    """Where the form came from, if it is a desk page (never off the desk)."""
    back = posted.text("back")
    return back if back.startswith(LIST) and "//" not in back else LIST


def _posted_filter(posted: Posted) -> DeskFilter:
    try:
        fields = {k: posted.text(k) for k in DeskFilter.model_fields if k in posted.data}
        return DeskFilter.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def _selected(posted: Posted) -> list[str]:
    ids = list(dict.fromkeys(i for i in posted.values("ids") if i and len(i) <= 100))
    if not ids:
        raise RequestValidationError([{"type": "missing", "loc": ("ids",), "msg": "select a mail"}])
    return ids[:MAX_SELECTED]


@router.get("")
async def failed_list(
    request: Request,
    rt: RuntimeDep,
    visitor: Viewing,
    filter: Filter,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The desk's entries, most recent failure first, a page at a time."""
    cursor = DeskCursor.decode(after) if after else None
    page = await rt.store.desk.page(filter=filter, after=cursor, limit=PAGE_SIZE)
    here = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        "failed_list.html",
        visitor,
        title="Failed incoming emails",
        filter=filter,
        query=filter.query(),
        page=page,
        first=cursor is None,
        here=here,
        operator=visitor.may("operator"),
    )


@router.get("/replay-all")
async def replay_all_confirm(
    request: Request, rt: RuntimeDep, visitor: Operating, filter: Filter
) -> HTMLResponse:
    """How many failed mails match the filter, and a button to replay them all."""
    # Mails that fail after this count are not part of what the operator confirms.
    until = min(filter.until, utcnow()) if filter.until else utcnow()
    fixed = filter.model_copy(update={"status": "failed", "until": until})
    count = await desk.count_matching(rt, filter=fixed, at_most=REPLAY_ALL_AT_ONCE + 1)
    return render(
        request,
        "failed_replay_all.html",
        visitor,
        title="Replay all matching",
        filter=fixed,
        query=fixed.query(),
        count=count,
        limit=REPLAY_ALL_AT_ONCE,
    )


@router.post("/replay-all")
async def replay_all(request: Request, rt: RuntimeDep, posted: OperatorForm) -> Response:
    """Replay every failed mail matching the confirmed filter."""
    filter = _posted_filter(posted)
    results = await desk.replay_all(
        rt, who=posted.visitor.name, filter=filter, limit=REPLAY_ALL_AT_ONCE
    )
    done = sum(r.replayed for r in results)
    more = " (the most one replay-all does: run it again for the rest)"
    note = more if len(results) >= REPLAY_ALL_AT_ONCE else ""
    back = f"{LIST}?{urlencode(filter.model_copy(update={'until': None}).query())}"
    return after_post(request, back, f"{done} of {len(results)} replayed{note}.")


@router.post("/replay")
async def replay_selected(request: Request, rt: RuntimeDep, posted: OperatorForm) -> Response:
    """Replay the selected mails (one from a mail's page)."""
    results = [
        await desk.replay(rt, failed_id=i, who=posted.visitor.name) for i in _selected(posted)
    ]
    if len(results) == 1:
        return after_post(request, _back(posted), f"{results[0].failed_id}: {results[0].note}")
    done = sum(r.replayed for r in results)
    return after_post(request, _back(posted), f"{done} of {len(results)} replayed.")


@router.post("/delete")
async def delete_selected(request: Request, rt: RuntimeDep, posted: OperatorForm) -> Response:
    """Ask first; once confirmed, take the selected mails off the desk."""
    ids = _selected(posted)
    back = _back(posted)
    if posted.text("confirmed") != "yes":
        return render(
            request,
            "failed_delete.html",
            posted.visitor,
            title="Delete failed mails",
            ids=ids,
            back=back,
        )
    deleted = [await desk.delete(rt, failed_id=i, who=posted.visitor.name) for i in ids]
    # A deleted mail's own page would now show it deleted: go back to the list from there.
    target = LIST if back.startswith(f"{LIST}/") else back
    return after_post(request, target, f"{sum(deleted)} of {len(ids)} deleted.")


@router.get("/{failed_id}/raw")
async def failed_raw(failed_id: FailedId, rt: RuntimeDep, _: Viewing) -> Response:
    """The mail exactly as fetched, as an .eml download."""
    data = await desk.raw_of(rt, failed_id=failed_id)
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in failed_id)
    return Response(
        data,
        media_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.eml"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/{failed_id}")
async def failed_mail(
    request: Request, failed_id: FailedId, rt: RuntimeDep, visitor: Viewing
) -> HTMLResponse:
    """One failed mail: why, its headers and parsed form, its audit, the case it became."""
    entry = await rt.store.desk.get(failed_id=failed_id)
    try:
        parsed = await desk.parse_entry(rt, failed_id=failed_id)
        has_raw = True
    except NotFound:  # an outgoing mail, or its raw form is gone
        parsed, has_raw = None, False
    return render(
        request,
        "failed_mail.html",
        visitor,
        title=f"Failed mail {entry.subject or entry.id}",
        entry=entry,
        mail=None if isinstance(parsed, str) else parsed,
        parse_error=parsed if isinstance(parsed, str) else "",
        has_raw=has_raw,
        case=await desk.case_of(rt, entry=entry),
        audit=await rt.store.desk.replays(failed_id=failed_id),
        here=f"{LIST}/{failed_id}",
        operator=visitor.may("operator"),
    )
