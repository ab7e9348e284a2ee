"""Email configuration → Incoming scripts: the order they run in (move up, move down),
enable and disable, and the package that installed each. The changes go through the script
verbs of the CLI and the API, so the same guard refuses an order in which no script puts
mail into cases; the page shows the refusal."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.config.api.deps import RuntimeDep
from services.config.scripts import KINDS, Placement, enable_script, list_scripts, move_script
from services.config.web.auth import AdminForm, Viewing
from services.config.web.responses import after_post
from services.config.web.templates import CONSOLE, render
from shared.errors import ConfigRejected, NotFound

router = APIRouter(prefix=f"{CONSOLE}/email", include_in_schema=False)

SCRIPTS = f"{CONSOLE}/email/scripts"
KIND = KINDS["incoming"]


@router.get("/scripts")
async def scripts_page(request: Request, rt: RuntimeDep, visitor: Viewing) -> HTMLResponse:
    """The incoming scripts in the order they run, then those installed but not listed."""
    listing = await list_scripts(rt, KIND)
    return render(
        request,
        "email_scripts.html",
        visitor,
        title="Incoming scripts",
        tab="scripts",
        listing=listing,
        listed=sum(1 for s in listing.scripts if s.position is not None),
    )


Action = Literal["up", "down", "enable", "disable"]


@router.post("/scripts/{name}/{action}")
async def change(
    request: Request, name: str, action: Action, rt: RuntimeDep, posted: AdminForm
) -> Response:
    """Move a script one place up or down, or enable or disable it."""
    who = posted.visitor.name
    order = [s.name for s in (await list_scripts(rt, KIND)).scripts if s.position is not None]
    try:
        if action in ("enable", "disable"):
            await enable_script(rt, KIND, name, enabled=action == "enable", who=who)
        elif name not in order:
            raise NotFound(f"script {name!r} is not in the list; enable it first")
        else:
            at = order.index(name)
            if action == "up" and at > 0:
                await move_script(rt, KIND, name, Placement(before=order[at - 1]), who=who)
            elif action == "down" and at < len(order) - 1:
                await move_script(rt, KIND, name, Placement(after=order[at + 1]), who=who)
    except (ConfigRejected, NotFound) as refused:
        return after_post(request, SCRIPTS, f"Not changed: {refused}", error=True)
    done = {"up": "moved up", "down": "moved down", "enable": "enabled", "disable": "disabled"}
    return after_post(request, SCRIPTS, f"Script {name} {done[action]}.")
