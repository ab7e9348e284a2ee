"""Incoming- and outgoing-mail scripts: list, enable, disable, move (order and enablement of
``processor/incoming_scripts`` and ``sender/outgoing_scripts``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from services.config.api.deps import Admin, RuntimeDep, Viewer
from services.config.api.force import ForceDep
from services.config.scripts import (
    KINDS,
    KindName,
    Placement,
    ScriptList,
    enable_script,
    list_scripts,
    move_script,
)

router = APIRouter(prefix="/scripts", tags=["scripts"])

Kind = Annotated[KindName, Path(description="incoming or outgoing")]
Name = Annotated[str, Path(max_length=100, description="The script's entry-point name")]


@router.get("/{kind}")
async def get_scripts(kind: Kind, rt: RuntimeDep, _: Viewer) -> ScriptList:
    """The scripts in the order they run, enabled or not, with the package that installed
    each; installed scripts that are not in the list (and do not run) come last."""
    return await list_scripts(rt, KINDS[kind])


@router.post("/{kind}/{name}/enable")
async def enable(
    kind: Kind, name: Name, rt: RuntimeDep, who: Admin, force: ForceDep = False
) -> ScriptList:
    """Enable a script; one installed but not listed is added at the bottom."""
    return await enable_script(rt, KINDS[kind], name, enabled=True, who=who, force=force)


@router.post("/{kind}/{name}/disable")
async def disable(
    kind: Kind, name: Name, rt: RuntimeDep, who: Admin, force: ForceDep = False
) -> ScriptList:
    """Disable a script; refused (422) for the last one that puts mail into cases unless
    ``force=true``."""
    return await enable_script(rt, KINDS[kind], name, enabled=False, who=who, force=force)


@router.post("/{kind}/{name}/move")
async def move(
    kind: Kind,
    name: Name,
    body: Placement,
    rt: RuntimeDep,
    who: Admin,
    force: ForceDep = False,
) -> ScriptList:
    """Move a script: ``{"before": X}``, ``{"after": X}`` or ``{"to": "top"|"bottom"}``."""
    return await move_script(rt, KINDS[kind], name, body, who=who, force=force)
