"""Console users: add, list, change role, reset password, unlock, delete, and the password
check with lock-out (``services.config.passwords``).

Every change is audited in ``user_log`` with who made it: the signed-in user's or token
owner's name, ``api:admin``/``api:operator`` for the service tokens, ``cli`` for the command
line. No password or hash leaves this module except to the store.

Decisions:

* User names are lower-case (``Alice`` signs in as ``alice``): 1-64 letters, digits and
  ``. _ @ + -``, so an e-mail address works. They never contain ``:``, so they never collide
  with the service tokens' ``api:…`` in the audit.
* The last admin user cannot be demoted or deleted: the console would have no one left to
  manage it (the service token still could, but a console user should not have to know).
  Two admins demoting each other at the same moment can still both succeed.
* A user's ``email`` is optional and validated as a mail address; a user name that is an
  address stands in for it where an address is needed (Test Account).
* An unknown name is checked against a dummy hash, so it takes as long to refuse as a wrong
  password; lock-out is recorded per existing user only.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from typing import Self

from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError

from services.config.errors import Conflict
from services.config.passwords import (
    LOCKOUT,
    check_strength,
    dummy_hash,
    hash_password,
    rehashed,
    verify_password,
)
from shared.errors import ConfigRejected, MailroomError, NotFound
from shared.models.messages import utcnow
from shared.models.users import Role, UserAction, UserAuditRecord, UserRecord
from shared.runtime import Runtime

log = logging.getLogger(__name__)

USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,63}$")
SIGN_IN = "sign-in"
"""``who`` of the audit entries the password check writes (a lock-out)."""


class SignInRefused(MailroomError):
    """A password check failed: wrong name or password, or the user is locked out
    (``locked_until`` then says until when). The message never says which name exists."""

    def __init__(self, message: str, *, locked_until: datetime | None = None) -> None:
        super().__init__(message)
        self.locked_until = locked_until


class UserSummary(BaseModel):
    """A user as the API and the CLI show it: everything but the password hash."""

    name: str
    role: Role
    email: str | None = None
    created_at: datetime
    updated_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None
    failed_logins: int
    locked_until: datetime | None

    @classmethod
    def of(cls, user: UserRecord) -> Self:
        """The summary of a stored user."""
        return cls.model_validate(user.model_dump(include=set(cls.model_fields)))


def normal_name(name: str) -> str:
    """The user name as stored (lower case), or ConfigRejected saying what a name may be."""
    normal = name.strip().lower()
    if not USER_NAME.match(normal):
        raise ConfigRejected(
            f"invalid user name {name[:70]!r}: use 1-64 letters, digits, '.', '_', '@', '+', "
            "'-', starting with a letter or digit"
        )
    return normal


async def _audit(rt: Runtime, who: str, action: UserAction, user: str, detail: str = "") -> None:
    entry = UserAuditRecord(who=who, action=action, user=user, detail=detail)
    await rt.store.users.audit(entry=entry)
    log.info("user %s: %s by %s %s", user, action, who, detail)


async def _stored(rt: Runtime, name: str) -> UserRecord:
    user = await rt.store.users.get(name=normal_name(name))
    if user is None:
        raise NotFound(f"no user {name[:70]!r}")
    return user


async def _keep_an_admin(rt: Runtime, user: UserRecord, change: str) -> None:
    if user.role == "admin" and await rt.store.users.count(role="admin") <= 1:
        raise ConfigRejected(f"{user.name!r} is the last admin user: add another before {change}")


_ADDRESS: TypeAdapter[str] = TypeAdapter(EmailStr)


def normal_email(email: str | None) -> str | None:
    """The mail address as stored (None for none or an empty one), or ConfigRejected naming
    the field ``email``."""
    text = (email or "").strip()
    if not text:
        return None
    try:
        return _ADDRESS.validate_python(text)
    except ValidationError:
        raise ConfigRejected(f"email: {text[:70]!r} is not a mail address") from None


async def add_user(
    rt: Runtime, *, name: str, role: Role, password: str, who: str, email: str | None = None
) -> UserSummary:
    """Create a user (409 Conflict when the name is taken)."""
    normal = normal_name(name)
    address = normal_email(email)
    check_strength(password)
    hashed = await asyncio.to_thread(hash_password, password)
    user = UserRecord(name=normal, role=role, password_hash=hashed, email=address)
    if not await rt.store.users.add(user=user):
        raise Conflict(f"user {normal!r} already exists")
    await _audit(rt, who, "user_added", normal, f"role {role}")
    return UserSummary.of(user)


async def list_users(rt: Runtime) -> list[UserSummary]:
    """Every user, by name."""
    return [UserSummary.of(u) for u in await rt.store.users.all()]


async def get_user(rt: Runtime, *, name: str) -> UserSummary:
    """One user (NotFound when there is none)."""
    return UserSummary.of(await _stored(rt, name))


async def set_role(rt: Runtime, *, name: str, role: Role, who: str) -> UserSummary:
    """Give a user another role (not the last admin's away)."""
    user = await _stored(rt, name)
    if user.role == role:
        return UserSummary.of(user)
    if role != "admin":
        await _keep_an_admin(rt, user, "taking the role away")
    changed = await rt.store.users.set_role(name=user.name, role=role)
    if changed is None:
        raise NotFound(f"no user {user.name!r}")
    await _audit(rt, who, "role_changed", user.name, f"{user.role} -> {role}")
    return UserSummary.of(changed)


async def set_email(rt: Runtime, *, name: str, email: str | None, who: str) -> UserSummary:
    """Set a user's mail address, or clear it with None or an empty one."""
    user = await _stored(rt, name)
    address = normal_email(email)
    if user.email == address:
        return UserSummary.of(user)
    changed = await rt.store.users.set_email(name=user.name, email=address)
    if changed is None:
        raise NotFound(f"no user {user.name!r}")
    await _audit(rt, who, "email_changed", user.name, address or "cleared")
    return UserSummary.of(changed)


async def address_of(rt: Runtime, *, user: str | None) -> str:
    """Where a test mail for the signed-in ``user`` goes: their ``email``, else their user
    name when it is a mail address; ConfigRejected naming both fields when there is none."""
    if user:
        stored = await rt.store.users.get(name=normal_name(user))
        if stored is not None and stored.email:
            return stored.email
        try:
            return _ADDRESS.validate_python(user)
        except ValidationError:
            pass
    who = f"user {user!r} has no email" if user else "no user is signed in to take it from"
    raise ConfigRejected(f"to: {who}; give the address to send to, or set the user's email")


async def reset_password(rt: Runtime, *, name: str, password: str, who: str) -> UserSummary:
    """Set a new password; ends any lock-out."""
    user = await _stored(rt, name)
    check_strength(password)
    hashed = await asyncio.to_thread(hash_password, password)
    changed = await rt.store.users.set_password(name=user.name, password_hash=hashed)
    if changed is None:
        raise NotFound(f"no user {user.name!r}")
    # Whoever knew the old password may be signed in with it: those sessions end now.
    await rt.store.web_sessions.end_all(user=user.name)
    await _audit(rt, who, "password_reset", user.name)
    return UserSummary.of(changed)


async def change_own_password(rt: Runtime, *, name: str, current: str, new: str) -> UserSummary:
    """A user's own change: the current password first (a wrong one counts towards the
    lock-out like a wrong sign-in), then as :func:`reset_password` (which ends the user's
    sessions), audited as the user's."""
    try:
        await check_password(rt, name=name, password=current)
    except SignInRefused as refused:
        raise ConfigRejected(f"current password: {refused}") from None
    return await reset_password(rt, name=name, password=new, who=normal_name(name))


async def unlock(rt: Runtime, *, name: str, who: str) -> UserSummary:
    """End a user's lock-out and forget the wrong passwords counted so far."""
    user = await _stored(rt, name)
    changed = await rt.store.users.unlock(name=user.name)
    if changed is None:
        raise NotFound(f"no user {user.name!r}")
    await _audit(rt, who, "user_unlocked", user.name)
    return UserSummary.of(changed)


async def delete_user(rt: Runtime, *, name: str, who: str) -> None:
    """Delete a user and revoke every token of theirs (not the last admin)."""
    user = await _stored(rt, name)
    await _keep_an_admin(rt, user, "deleting it")
    revoked = await rt.store.api_tokens.remove_user(user=user.name)
    await rt.store.web_sessions.end_all(user=user.name)
    await rt.store.users.remove(name=user.name)
    await _audit(rt, who, "user_deleted", user.name, f"{revoked} token(s) revoked")


async def user_log(
    rt: Runtime, *, name: str | None = None, limit: int = 100
) -> list[UserAuditRecord]:
    """The latest changes to users and tokens (of one user, or all), newest first."""
    user = None if name is None else normal_name(name)
    return await rt.store.users.log(user=user, limit=limit)


async def check_password(
    rt: Runtime, *, name: str, password: str, now: datetime | None = None
) -> UserSummary:
    """The user when ``password`` is theirs; otherwise SignInRefused, counting the failure
    and locking the user out by :data:`~services.config.passwords.LOCKOUT`."""
    now = now or utcnow()
    wrong = SignInRefused("wrong user name or password")
    try:
        normal = normal_name(name)
    except ConfigRejected:
        normal = ""
    user = await rt.store.users.get(name=normal) if normal else None
    if user is None:
        await asyncio.to_thread(verify_password, dummy_hash(), password)
        raise wrong
    if LOCKOUT.is_locked(user.locked_until, now):
        raise _locked(user.locked_until)
    if await asyncio.to_thread(verify_password, user.password_hash, password):
        newer = await asyncio.to_thread(rehashed, user.password_hash, password)
        await rt.store.users.login_succeeded(name=user.name, at=now, rehashed=newer)
        return UserSummary.of(user.model_copy(update={"failed_logins": 0, "locked_until": None}))
    counted = await rt.store.users.count_failure(name=user.name)
    if counted is None:  # deleted meanwhile
        raise wrong
    until = LOCKOUT.locked_until(counted.failed_logins, now)
    if until is None:
        raise wrong
    await rt.store.users.lock(name=user.name, until=until)
    await _audit(
        rt, SIGN_IN, "locked_out", user.name, f"after {counted.failed_logins} wrong passwords"
    )
    raise _locked(until)


def _locked(until: datetime | None) -> SignInRefused:
    when = until.strftime("%Y-%m-%d %H:%M:%S UTC") if until else "later"
    return SignInRefused(f"too many wrong passwords: try again after {when}", locked_until=until)
