"""The property catalogue: every property with type, default, description and value (secrets
as set / not set); get, set and reset one by name (``module/key``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.config.api.deps import Admin, RuntimeDep, Viewer
from services.config.api.force import ForceDep
from services.config.api.schemas import PropertyIn, VersionOut
from services.config.catalogue import (
    PropertyState,
    get_catalogued,
    list_catalogue,
    reset_catalogued,
    set_catalogued,
)

router = APIRouter(prefix="/catalogue", tags=["properties"])

Module = Annotated[str, Path(max_length=64, description="e.g. settings, outgoing")]
Key = Annotated[str, Path(max_length=200, description="e.g. poll_interval_seconds, smtp.host")]


@router.get("")
async def list_properties(
    rt: RuntimeDep,
    _: Viewer,
    module: Annotated[str | None, Query(max_length=64)] = None,
) -> list[PropertyState]:
    """Every property (of ``module``) with its type, default, description and value."""
    return await list_catalogue(rt, module=module)


@router.get("/{module}/{key}")
async def get_property(module: Module, key: Key, rt: RuntimeDep, _: Viewer) -> PropertyState:
    """One property; an unknown name is refused with the module's known properties."""
    return await get_catalogued(rt, module=module, key=key)


@router.put("/{module}/{key}")
async def set_property(
    module: Module,
    key: Key,
    body: PropertyIn,
    rt: RuntimeDep,
    who: Admin,
    force: ForceDep = False,
) -> VersionOut:
    """Set one property; validated with the whole configuration, audited and broadcast."""
    return VersionOut(
        version=await set_catalogued(
            rt, module=module, key=key, value=body.value, who=who, force=force
        )
    )


@router.delete("/{module}/{key}")
async def reset_property(
    module: Module, key: Key, rt: RuntimeDep, who: Admin, force: ForceDep = False
) -> VersionOut:
    """Back to the default (audited and broadcast; the version is unchanged when the default
    applied already)."""
    return VersionOut(
        version=await reset_catalogued(rt, module=module, key=key, who=who, force=force)
    )
