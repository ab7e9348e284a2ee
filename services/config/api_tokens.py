"""Per-user API tokens: created (shown once), listed, revoked, and resolved to their owner
and the owner's current role on every API request.

A token is ``mrt_`` and 43 random URL-safe characters (256 bits). Only its SHA-256 is
stored: a token is never retrievable, a lost one is revoked and replaced. A token acts with
its user's role as it is at the time of the request, so a role change or a deletion takes
effect at once. Creating and revoking is audited in ``user_log`` (the token id and label,
never the token).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Self

from pydantic import BaseModel

from services.config.errors import Conflict
from services.config.users import normal_name
from shared.errors import ConfigRejected, NotFound
from shared.models.messages import utcnow
from shared.models.users import ApiTokenRecord, Role, UserAction, UserAuditRecord
from shared.runtime import Runtime

log = logging.getLogger(__name__)

TOKEN_PREFIX = "mrt_"  # noqa: S105 - a prefix, not a secret
"""Marks Mailroom user tokens (secret scanners and people recognise them; other bearer
values skip the store lookup)."""
MAX_TOKENS_PER_USER = 50
MAX_LABEL = 100
LAST_USED_GRANULARITY = timedelta(minutes=5)
"""``last_used_at`` is rewritten at most this often, not on every request."""


@dataclass(frozen=True)
class TokenOwner:
    """Who a token acts for, and with which role."""

    user: str
    role: Role


class TokenSummary(BaseModel):
    """A token as it is listed: never the token itself."""

    id: str
    user: str
    label: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiTokenRecord) -> Self:
        """The summary of a stored token."""
        return cls.model_validate(token.model_dump(include=set(cls.model_fields)))


class NewToken(TokenSummary):
    """A token just created, with its value: shown this once."""

    token: str


def token_hash(token: str) -> str:
    """The SHA-256 (hex) a token is stored and found by."""
    return hashlib.sha256(token.encode()).hexdigest()


def _label(label: str) -> str:
    clean = label.strip()
    if len(clean) > MAX_LABEL or not clean.isprintable():
        raise ConfigRejected(f"a token label has at most {MAX_LABEL} printable characters")
    return clean


async def _audit(rt: Runtime, who: str, action: UserAction, token: ApiTokenRecord) -> None:
    detail = f"token {token.id}" + (f" ({token.label})" if token.label else "")
    entry = UserAuditRecord(who=who, action=action, user=token.user, detail=detail)
    await rt.store.users.audit(entry=entry)
    log.info("user %s: %s by %s %s", token.user, action, who, detail)


async def create_token(rt: Runtime, *, user: str, label: str = "", who: str) -> NewToken:
    """A new token for ``user`` (who must exist); the only time its value is shown."""
    name = normal_name(user)
    if await rt.store.users.get(name=name) is None:
        raise NotFound(f"no user {user[:70]!r}")
    if len(await rt.store.api_tokens.of_user(user=name)) >= MAX_TOKENS_PER_USER:
        raise Conflict(f"{name!r} has {MAX_TOKENS_PER_USER} tokens: revoke one first")
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiTokenRecord(user=name, label=_label(label), token_hash=token_hash(value))
    await rt.store.api_tokens.add(token=record)
    await _audit(rt, who, "token_created", record)
    return NewToken(**TokenSummary.of(record).model_dump(), token=value)


async def list_tokens(rt: Runtime, *, user: str | None = None) -> list[TokenSummary]:
    """The tokens of one user, or of everyone, oldest first."""
    name = None if user is None else normal_name(user)
    return [TokenSummary.of(t) for t in await rt.store.api_tokens.of_user(user=name)]


async def revoke_token(rt: Runtime, *, token_id: str, who: str, user: str | None = None) -> None:
    """Revoke a token; with ``user``, only one of that user's (NotFound otherwise, so a user
    cannot learn the ids of others' tokens)."""
    token = await rt.store.api_tokens.get(token_id=token_id)
    if token is None or (user is not None and token.user != normal_name(user)):
        raise NotFound(f"no token {token_id[:40]!r}")
    if await rt.store.api_tokens.remove(token_id=token.id):
        await _audit(rt, who, "token_revoked", token)


async def owner_of(rt: Runtime, token: str, *, now: datetime | None = None) -> TokenOwner | None:
    """The user a token belongs to and their role now; None for an unknown or revoked
    token, or one whose user was deleted."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    record = await rt.store.api_tokens.by_hash(token_hash=token_hash(token))
    if record is None:
        return None
    user = await rt.store.users.get(name=record.user)
    if user is None:
        return None
    now = now or utcnow()
    if record.last_used_at is None or now - record.last_used_at >= LAST_USED_GRANULARITY:
        await rt.store.api_tokens.touch(token_id=record.id, at=now)
    return TokenOwner(user=user.name, role=user.role)
