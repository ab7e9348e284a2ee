"""Your account: set your own email, change your own password, create and revoke your own
API tokens (a new token is shown on the answer to its form, once, and never again)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response

from services.config.api.deps import RuntimeDep
from services.config.api_tokens import NewToken, create_token, list_tokens, revoke_token
from services.config.users import change_own_password, get_user, set_email
from services.config.web.auth import ViewerForm, Viewing, Visitor
from services.config.web.responses import after_post
from services.config.web.sessions import COOKIE, LONGEST, start_session
from services.config.web.templates import CONSOLE, render
from shared.runtime import Runtime

router = APIRouter(prefix=f"{CONSOLE}/me", include_in_schema=False)

ME = f"{CONSOLE}/me"
TokenId = Annotated[str, Path(max_length=64)]


async def _page(
    request: Request, rt: Runtime, visitor: Visitor, new_token: NewToken | None = None
) -> HTMLResponse:
    return render(
        request,
        "me.html",
        visitor,
        title="Your account",
        user=await get_user(rt, name=visitor.name),
        tokens=await list_tokens(rt, user=visitor.name),
        new_token=new_token,
        status_code=201 if new_token else 200,
    )


@router.get("")
async def me_page(request: Request, rt: RuntimeDep, visitor: Viewing) -> HTMLResponse:
    """Your role, your password, your API tokens."""
    return await _page(request, rt, visitor)


@router.post("/email")
async def me_email(request: Request, rt: RuntimeDep, posted: ViewerForm) -> Response:
    """Set or remove your mail address, where Test Account sends by default."""
    name = posted.visitor.name
    user = await set_email(rt, name=name, email=posted.text("email"), who=name)
    return after_post(request, ME, f"Your email: {user.email or 'none'}.")


@router.post("/password")
async def me_password(request: Request, rt: RuntimeDep, posted: ViewerForm) -> Response:
    """Change your password: every session of yours ends, this browser gets a new one."""
    new = posted.text("new_password")
    if new != posted.text("repeat_password"):
        problem = {"type": "value_error", "loc": ("repeat_password",), "msg": "differs"}
        raise RequestValidationError([problem])
    name = posted.visitor.name
    await change_own_password(rt, name=name, current=posted.text("current_password"), new=new)
    started = await start_session(rt, user=name)
    response = after_post(request, ME, "Password changed; other sessions of yours ended.")
    response.set_cookie(
        COOKIE,
        started.cookie,
        max_age=int(LONGEST.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/tokens")
async def me_token_create(request: Request, rt: RuntimeDep, posted: ViewerForm) -> HTMLResponse:
    """A new API token of yours, with your role: shown on this answer only."""
    name = posted.visitor.name
    token = await create_token(rt, user=name, label=posted.text("label"), who=name)
    return await _page(request, rt, posted.visitor, new_token=token)


@router.post("/tokens/{token_id}/revoke")
async def me_token_revoke(
    request: Request, token_id: TokenId, rt: RuntimeDep, posted: ViewerForm
) -> Response:
    """Revoke one of your tokens."""
    name = posted.visitor.name
    await revoke_token(rt, token_id=token_id, user=name, who=name)
    return after_post(request, ME, f"Token {token_id} revoked.")
