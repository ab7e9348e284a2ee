"""Global settings, addresses, processor settings and raw properties."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path

from services.config.api.deps import Admin, RuntimeDep, Viewer
from services.config.api.force import ForceDep
from services.config.api.schemas import PropertyIn, VersionOut
from services.config.properties import delete_property, list_properties, set_fields, set_property
from shared.models.records import Property

router = APIRouter(tags=["settings"])

Module = Annotated[str, Path(max_length=64)]
Key = Annotated[str, Path(max_length=200)]

FieldModule = Literal[
    "settings", "addresses", "processor", "conversation", "templates", "system", "sender"
]


@router.get("/settings/{module}")
async def get_fields(module: FieldModule, rt: RuntimeDep, _: Viewer) -> dict[str, Any]:
    """A typed view (``settings``, ``addresses`` or ``processor``) with defaults filled in."""
    config = rt.config
    view = getattr(config, module)
    data: dict[str, Any] = view.model_dump(mode="json")
    return data


@router.patch("/settings/{module}")
async def patch_fields(
    module: FieldModule,
    body: Annotated[dict[str, Any], Body(max_length=64)],
    rt: RuntimeDep,
    who: Admin,
    force: ForceDep = False,
) -> VersionOut:
    """Change several keys at once; all are validated together."""
    return VersionOut(
        version=await set_fields(rt, module=module, values=body, who=who, force=force)
    )


@router.get("/properties")
async def get_properties(rt: RuntimeDep, _: Viewer) -> list[Property]:
    """Every raw property, secrets as ``***``."""
    return await list_properties(rt)


@router.put("/properties/{module}/{key}")
async def put_property(
    module: Module,
    key: Key,
    body: PropertyIn,
    rt: RuntimeDep,
    who: Admin,
    force: ForceDep = False,
) -> VersionOut:
    """Set one raw property (validated like every other write)."""
    version = await set_property(rt, module=module, key=key, value=body.value, who=who, force=force)
    return VersionOut(version=version)


@router.delete("/properties/{module}/{key}")
async def remove_property(
    module: Module, key: Key, rt: RuntimeDep, who: Admin, force: ForceDep = False
) -> VersionOut:
    """Remove one raw property."""
    return VersionOut(
        version=await delete_property(rt, module=module, key=key, who=who, force=force)
    )
