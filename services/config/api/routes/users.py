"""Console users and API tokens: admins manage every user and token under ``/users``;
whoever calls manages their own tokens under ``/me/tokens``. Passwords are write-only and a
token's value is answered once, when it is created."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from services.config.api.deps import Admin, Caller, RuntimeDep, SignedIn
from services.config.api_tokens import (
    MAX_LABEL,
    NewToken,
    TokenSummary,
    create_token,
    list_tokens,
    revoke_token,
)
from services.config.passwords import MAX_LENGTH
from services.config.users import (
    UserSummary,
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
from shared.models.users import Role, UserAuditRecord

router = APIRouter(tags=["users"])

Name = Annotated[str, Path(max_length=64, description="The user's name.")]
TokenId = Annotated[str, Path(max_length=64, description="The token's id (not the token).")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(_In):
    """A new user; the password is never answered back."""

    name: str = Field(max_length=64)
    role: Role = "viewer"
    password: SecretStr = Field(max_length=MAX_LENGTH)
    email: str | None = Field(default=None, max_length=320)
    """The user's mail address (Test Account sends there); optional."""


class RoleIn(_In):
    """Another role for a user."""

    role: Role


class EmailIn(_In):
    """A user's mail address; null or empty removes it."""

    email: str | None = Field(max_length=320)


class PasswordIn(_In):
    """A new password (ends any lock-out)."""

    password: SecretStr = Field(max_length=MAX_LENGTH)


class TokenIn(_In):
    """A new token; the label says what it is for (``case system``, ``monitoring``)."""

    label: str = Field(default="", max_length=MAX_LABEL)


class AuditOut(BaseModel):
    """One change to a user or a token."""

    at: datetime
    who: str
    action: str
    user: str
    detail: str

    @classmethod
    def of(cls, entry: UserAuditRecord) -> Self:
        """The API's view of an audit record."""
        return cls.model_validate(entry.model_dump(include=set(cls.model_fields)))


class MeOut(BaseModel):
    """Who the token belongs to: a user, or one of the service tokens (``user`` null)."""

    name: str
    role: Role
    user: str | None


def _own_user(caller: Caller) -> str:
    if caller.user is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "a service token belongs to no user: manage tokens under /users/{name}/tokens",
        )
    return caller.user


@router.get("/users")
async def get_users(rt: RuntimeDep, _: Admin) -> list[UserSummary]:
    """Every user, by name (with lock-out state; never a password)."""
    return await list_users(rt)


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def post_user(body: UserIn, rt: RuntimeDep, who: Admin) -> UserSummary:
    """Add a user (409 when the name is taken, 422 for a weak password)."""
    password = body.password.get_secret_value()
    return await add_user(
        rt, name=body.name, role=body.role, password=password, who=who, email=body.email
    )


@router.get("/users/{name}")
async def get_one_user(name: Name, rt: RuntimeDep, _: Admin) -> UserSummary:
    """One user."""
    return await get_user(rt, name=name)


@router.put("/users/{name}/role")
async def put_role(name: Name, body: RoleIn, rt: RuntimeDep, who: Admin) -> UserSummary:
    """Change a user's role (the last admin keeps theirs); their tokens follow at once."""
    return await set_role(rt, name=name, role=body.role, who=who)


@router.put("/users/{name}/email")
async def put_email(name: Name, body: EmailIn, rt: RuntimeDep, who: Admin) -> UserSummary:
    """Set or remove a user's mail address (422 naming ``email`` when it is not one)."""
    return await set_email(rt, name=name, email=body.email, who=who)


@router.put("/users/{name}/password")
async def put_password(name: Name, body: PasswordIn, rt: RuntimeDep, who: Admin) -> UserSummary:
    """Set a new password for a user; ends any lock-out."""
    password = body.password.get_secret_value()
    return await reset_password(rt, name=name, password=password, who=who)


@router.post("/users/{name}/unlock")
async def post_unlock(name: Name, rt: RuntimeDep, who: Admin) -> UserSummary:
    """End a user's lock-out after wrong passwords."""
    return await unlock(rt, name=name, who=who)


@router.delete("/users/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_user(name: Name, rt: RuntimeDep, who: Admin) -> None:
    """Delete a user and revoke their tokens (not the last admin)."""
    await delete_user(rt, name=name, who=who)


@router.get("/users/{name}/audit")
async def get_user_audit(
    name: Name,
    rt: RuntimeDep,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    """Changes to this user and their tokens, newest first, with who made them."""
    await get_user(rt, name=name)
    return [AuditOut.of(e) for e in await user_log(rt, name=name, limit=limit)]


@router.get("/users/{name}/tokens")
async def get_user_tokens(name: Name, rt: RuntimeDep, _: Admin) -> list[TokenSummary]:
    """A user's tokens (ids and labels, never the tokens)."""
    await get_user(rt, name=name)
    return await list_tokens(rt, user=name)


@router.post("/users/{name}/tokens", status_code=status.HTTP_201_CREATED)
async def post_user_token(name: Name, body: TokenIn, rt: RuntimeDep, who: Admin) -> NewToken:
    """A new token for a user: its value is in this answer and nowhere else, ever."""
    return await create_token(rt, user=name, label=body.label, who=who)


@router.delete("/users/{name}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_user_token(name: Name, token_id: TokenId, rt: RuntimeDep, who: Admin) -> None:
    """Revoke one of a user's tokens."""
    await revoke_token(rt, token_id=token_id, user=name, who=who)


@router.get("/me")
async def get_me(caller: SignedIn) -> MeOut:
    """Who this token acts for, and with which role."""
    return MeOut(name=caller.name, role=caller.role, user=caller.user)


@router.put("/me/email")
async def put_my_email(body: EmailIn, rt: RuntimeDep, caller: SignedIn) -> UserSummary:
    """Set or remove the caller's own mail address, where Test Account sends by default."""
    return await set_email(rt, name=_own_user(caller), email=body.email, who=caller.name)


@router.get("/me/tokens")
async def get_my_tokens(rt: RuntimeDep, caller: SignedIn) -> list[TokenSummary]:
    """The caller's own tokens."""
    return await list_tokens(rt, user=_own_user(caller))


@router.post("/me/tokens", status_code=status.HTTP_201_CREATED)
async def post_my_token(body: TokenIn, rt: RuntimeDep, caller: SignedIn) -> NewToken:
    """A new token for the caller, with the caller's role: its value is in this answer only."""
    user = _own_user(caller)
    return await create_token(rt, user=user, label=body.label, who=caller.name)


@router.delete("/me/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_my_token(token_id: TokenId, rt: RuntimeDep, caller: SignedIn) -> None:
    """Revoke one of the caller's own tokens (404 for anyone else's)."""
    await revoke_token(rt, token_id=token_id, user=_own_user(caller), who=caller.name)
