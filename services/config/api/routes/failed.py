"""The failed-mail desk."""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.config.api.deps import CallerDep, RuntimeDep
from services.config.api.schemas import FailedMailPublic, ReplayOut
from services.config.desk import replay, replay_all

router = APIRouter(prefix="/failed", tags=["failed-mail desk"])


@router.get("")
async def list_failed(
    rt: RuntimeDep,
    _: CallerDep,
    account: str | None = Query(default=None, max_length=64),
    error: str | None = Query(default=None, max_length=200),
    status: str | None = Query(default="failed", pattern="^(failed|replayed)$"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[FailedMailPublic]:
    """Desk entries, most recent failure first."""
    entries = await rt.store.desk.search(
        status=status, account=account, error_contains=error, limit=limit
    )
    return [FailedMailPublic.of(e) for e in entries]


@router.get("/{failed_id}")
async def show_failed(failed_id: str, rt: RuntimeDep, _: CallerDep) -> FailedMailPublic:
    """One desk entry."""
    return FailedMailPublic.of(await rt.store.desk.get(failed_id=failed_id))


@router.post("/{failed_id}/replay")
async def replay_one(failed_id: str, rt: RuntimeDep, who: CallerDep) -> ReplayOut:
    """Replay one entry (idempotent)."""
    result = await replay(rt, failed_id=failed_id, who=who)
    return ReplayOut(failed_id=result.failed_id, replayed=result.replayed, note=result.note)


@router.post("/replay")
async def replay_many(
    rt: RuntimeDep,
    who: CallerDep,
    account: str | None = Query(default=None, max_length=64),
    error: str | None = Query(default=None, max_length=200),
) -> list[ReplayOut]:
    """Replay every failed entry matching the filter (all without a filter)."""
    results = await replay_all(rt, who=who, account=account, error_contains=error)
    return [ReplayOut(failed_id=r.failed_id, replayed=r.replayed, note=r.note) for r in results]
