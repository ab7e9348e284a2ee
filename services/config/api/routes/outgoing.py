"""The outgoing SMTP connection."""

from __future__ import annotations

from fastapi import APIRouter

from services.config.api.deps import Admin, RuntimeDep, Viewer
from services.config.api.schemas import OutgoingIn, OutgoingPublic
from services.config.properties import set_outgoing
from shared.errors import NotFound

router = APIRouter(prefix="/outgoing", tags=["outgoing"])


@router.get("")
async def get_outgoing(rt: RuntimeDep, _: Viewer) -> OutgoingPublic:
    """The configured connection."""
    config = rt.config
    if config.outgoing is None:
        raise NotFound("no outgoing connection is configured")
    return OutgoingPublic.of(config.outgoing)


@router.put("")
async def put_outgoing(body: OutgoingIn, rt: RuntimeDep, who: Admin) -> OutgoingPublic:
    """Set (or change) the connection; an omitted password is kept."""
    conn = await set_outgoing(rt, fields=body.model_dump(exclude_unset=True), who=who)
    return OutgoingPublic.of(conn)
