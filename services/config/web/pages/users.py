"""Users (admins only): every console user with their role and email; add one, change a
role or an email, set a new password, end a lock-out, delete (after a confirmation page).
The rules (name, email, password strength, the last admin) are ``services.config.users``'s,
as for the API and the CLI."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response

from services.config.api.deps import RuntimeDep
from services.config.api_tokens import list_tokens, revoke_token
from services.config.users import (
    add_user,
    delete_user,
    get_user,
    list_users,
    reset_password,
    set_email,
    set_role,
    unlock,
    user_log,
)
from services.config.web.auth import AdminForm, Administering, Posted
from services.config.web.responses import after_post
from services.config.web.templates import CONSOLE, render
from shared.models.users import ROLES, Role

router = APIRouter(prefix=f"{CONSOLE}/users", include_in_schema=False)

LIST = f"{CONSOLE}/users"
Name = Annotated[str, Path(max_length=64)]
TokenId = Annotated[str, Path(max_length=64)]
AUDIT_SHOWN = 100


def posted_role(posted: Posted) -> Role:
    """The role a form chose; 422 naming the field for anything else."""
    value = posted.text("role")
    for role in get_args(Role):
        if value == role:
            return role  # type: ignore[no-any-return]
    problem = {"type": "literal_error", "loc": ("role",), "msg": f"one of {', '.join(ROLES)}"}
    raise RequestValidationError([problem])


@router.get("")
async def users_page(request: Request, rt: RuntimeDep, visitor: Administering) -> HTMLResponse:
    """Every user, with the forms to change them."""
    return render(
        request, "users.html", visitor, title="Users", users=await list_users(rt), roles=ROLES
    )


@router.post("")
async def user_add(request: Request, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Add a user."""
    user = await add_user(
        rt,
        name=posted.text("name"),
        role=posted_role(posted),
        password=posted.text("password"),
        who=posted.visitor.name,
        email=posted.text("email"),
    )
    return after_post(request, LIST, f"User {user.name} added as {user.role}.")


@router.get("/{name}")
async def user_page(
    request: Request, name: Name, rt: RuntimeDep, visitor: Administering
) -> HTMLResponse:
    """One user: role, sign-in state, their API tokens, and every change to them."""
    user = await get_user(rt, name=name)
    return render(
        request,
        "user.html",
        visitor,
        title=f"User {user.name}",
        user=user,
        tokens=await list_tokens(rt, user=user.name),
        audit=await user_log(rt, name=user.name, limit=AUDIT_SHOWN),
    )


@router.post("/{name}/tokens/{token_id}/revoke")
async def user_token_revoke(
    request: Request, name: Name, token_id: TokenId, rt: RuntimeDep, posted: AdminForm
) -> Response:
    """Revoke one of a user's tokens."""
    await revoke_token(rt, token_id=token_id, user=name, who=posted.visitor.name)
    return after_post(request, f"{LIST}/{name}", f"Token {token_id} revoked.")


@router.post("/{name}/email")
async def user_email(request: Request, name: Name, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Set or remove a user's mail address."""
    user = await set_email(rt, name=name, email=posted.text("email"), who=posted.visitor.name)
    done = f"Email of {user.name}: {user.email or 'none'}."
    return after_post(request, f"{LIST}/{user.name}", done)


@router.post("/{name}/role")
async def user_role(request: Request, name: Name, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Give a user another role."""
    user = await set_role(rt, name=name, role=posted_role(posted), who=posted.visitor.name)
    return after_post(request, LIST, f"{user.name} is now {user.role}.")


@router.post("/{name}/password")
async def user_password(
    request: Request, name: Name, rt: RuntimeDep, posted: AdminForm
) -> Response:
    """Set a new password for a user (their sessions end)."""
    password = posted.text("password")
    user = await reset_password(rt, name=name, password=password, who=posted.visitor.name)
    return after_post(request, LIST, f"New password set for {user.name}; their sessions ended.")


@router.post("/{name}/unlock")
async def user_unlock(request: Request, name: Name, rt: RuntimeDep, posted: AdminForm) -> Response:
    """End a user's lock-out after wrong passwords."""
    user = await unlock(rt, name=name, who=posted.visitor.name)
    return after_post(request, LIST, f"{user.name} may sign in again.")


@router.post("/{name}/delete")
async def user_delete(request: Request, name: Name, rt: RuntimeDep, posted: AdminForm) -> Response:
    """Ask first; once confirmed, delete the user and revoke their tokens."""
    user = await get_user(rt, name=name)
    if posted.text("confirmed") != "yes":
        return render(request, "user_delete.html", posted.visitor, title="Delete user", user=user)
    await delete_user(rt, name=user.name, who=posted.visitor.name)
    return after_post(request, LIST, f"User {user.name} deleted; their tokens are revoked.")
