"""The failed-mail desk: list and search, show (raw and parsed), replay, delete, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from services.config import desk
from services.config.api.deps import Operator, RuntimeDep, Viewer
from services.config.api.schemas import DeskAuditOut, FailedMailPublic, ReplayOut

router = APIRouter(prefix="/failed", tags=["failed-mail desk"])

FailedId = Annotated[str, Path(max_length=100)]

AccountQ = Annotated[str | None, Query(max_length=64)]
TextQ = Annotated[str | None, Query(max_length=200)]


@router.get("")
async def list_failed(
    rt: RuntimeDep,
    _: Viewer,
    account: AccountQ = None,
    error: TextQ = None,
    sender: TextQ = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: Annotated[str | None, Query(pattern="^(failed|replayed|deleted)$")] = "failed",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[FailedMailPublic]:
    """Desk entries, most recent failure first; text filters ignore case."""
    entries = await rt.store.desk.search(
        status=status,
        account=account,
        error_contains=error,
        sender_contains=sender,
        since=since,
        until=until,
        limit=limit,
    )
    return [FailedMailPublic.of(e) for e in entries]


@router.post("/replay")
async def replay_many(
    rt: RuntimeDep,
    who: Operator,
    account: AccountQ = None,
    error: TextQ = None,
    sender: TextQ = None,
) -> list[ReplayOut]:
    """Replay every failed entry matching the filter (all without a filter)."""
    results = await desk.replay_all(
        rt, who=who, account=account, error_contains=error, sender_contains=sender
    )
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
