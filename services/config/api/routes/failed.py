"""The failed-mail desk: list and search, show (raw and parsed), replay, delete, audit."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Response

from services.config import desk
from services.config.api.deps import Operator, RuntimeDep, Viewer
from services.config.api.schemas import CountOut, DeskAuditOut, FailedMailPublic, ReplayOut
from shared.models.desk import DeskCursor, DeskFilter

router = APIRouter(prefix="/failed", tags=["failed-mail desk"])

FailedId = Annotated[str, Path(max_length=100)]

Filter = Annotated[DeskFilter, Query()]
"""The desk's filters as query parameters (``shared.models.desk``: one declaration for the
API, the CLI and the console)."""
After = Annotated[
    str | None,
    Query(max_length=200, description="Where the page starts (from the last page's Link)."),
]


@router.get("")
async def list_failed(
    rt: RuntimeDep,
    _: Viewer,
    filter: Filter,
    response: Response,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[FailedMailPublic]:
    """Desk entries, most recent failure first; text filters ignore case.

    Paged by position: when more entries follow, the answer has a ``Link: <…>; rel="next"``
    header with the URL of the next page (its ``after``)."""
    cursor = DeskCursor.decode(after) if after else None
    page = await rt.store.desk.page(filter=filter, after=cursor, limit=limit)
    if page.next is not None:
        query = urlencode({**filter.query(), "after": page.next.encode(), "limit": limit})
        response.headers["Link"] = f'<{router.prefix}?{query}>; rel="next"'
    return [FailedMailPublic.of(e) for e in page.entries]


@router.get("/count")
async def count_failed(rt: RuntimeDep, _: Viewer, filter: Filter) -> CountOut:
    """How many failed entries match the filter: what a replay of all of them would replay."""
    return CountOut(count=await desk.count_matching(rt, filter=filter))


@router.post("/replay")
async def replay_many(rt: RuntimeDep, who: Operator, filter: Filter) -> list[ReplayOut]:
    """Replay every failed entry matching the filter (all without a filter), at most
    10,000 per call; ``status`` does not apply: only failed entries are replayed."""
    results = await desk.replay_all(rt, who=who, filter=filter)
    return [ReplayOut(failed_id=r.failed_id, replayed=r.replayed, note=r.note) for r in results]


@router.get("/{failed_id}")
async def show_failed(failed_id: FailedId, rt: RuntimeDep, _: Viewer) -> FailedMailPublic:
    """One desk entry."""
    return FailedMailPublic.of(await rt.store.desk.get(failed_id=failed_id))


@router.get("/{failed_id}/raw", response_class=Response)
async def raw_failed(failed_id: FailedId, rt: RuntimeDep, _: Viewer) -> Response:
    """The mail exactly as fetched (message/rfc822)."""
    data = await desk.raw_of(rt, failed_id=failed_id)
    return Response(content=data, media_type="message/rfc822")


@router.get("/{failed_id}/parsed")
async def parsed_failed(failed_id: FailedId, rt: RuntimeDep, _: Viewer) -> dict[str, Any]:
    """The mail as the processor parses it (or why it does not parse)."""
    return await desk.parsed_of(rt, failed_id=failed_id)


@router.get("/{failed_id}/audit")
async def audit_failed(failed_id: FailedId, rt: RuntimeDep, _: Viewer) -> list[DeskAuditOut]:
    """Who replayed or deleted this entry, when, and with what outcome."""
    # 404 for an id that is not on the desk, not an empty audit that reads "never touched".
    await rt.store.desk.get(failed_id=failed_id)
    records = await rt.store.desk.replays(failed_id=failed_id)
    return [DeskAuditOut(**r.model_dump()) for r in records]


@router.post("/{failed_id}/replay")
async def replay_one(failed_id: FailedId, rt: RuntimeDep, who: Operator) -> ReplayOut:
    """Replay one entry (idempotent: a second replay does nothing)."""
    result = await desk.replay(rt, failed_id=failed_id, who=who)
    return ReplayOut(failed_id=result.failed_id, replayed=result.replayed, note=result.note)


@router.delete("/{failed_id}")
async def delete_failed(failed_id: FailedId, rt: RuntimeDep, who: Operator) -> ReplayOut:
    """Take an entry off the desk (the raw mail stays stored); audited."""
    deleted = await desk.delete(rt, failed_id=failed_id, who=who)
    return ReplayOut(
        failed_id=failed_id, replayed=False, note="deleted" if deleted else "already deleted"
    )
