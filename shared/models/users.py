"""Console users, their API tokens and the audit of changes to them, as MongoDB keeps them.

Only hashes are stored: a password as an Argon2id hash, a token as its SHA-256 (a token is
random and long, so a fast hash suffices and lets the token itself be looked up).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.models.messages import new_id, utcnow

Role = Literal["admin", "operator", "viewer"]
"""admin: everything; operator: failed-mail desk, cases, outbox, account activate/deactivate
and test; viewer: read only."""

ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
"""Every role, from the least to the most allowed (each may do what the ones before may)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class UserRecord(_Record):
    """One console user. ``email`` is their mail address (Test Account sends there);
    ``failed_logins`` counts wrong passwords since the last right one; ``locked_until`` is
    when the next password check may be made again."""

    name: str = Field(alias="_id")
    role: Role
    email: str | None = None
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    password_changed_at: datetime = Field(default_factory=utcnow)
    failed_logins: int = 0
    locked_until: datetime | None = None
    last_login_at: datetime | None = None


class ApiTokenRecord(_Record):
    """A user's API token: the SHA-256 of the token, never the token."""

    id: str = Field(default_factory=new_id, alias="_id")
    user: str
    label: str = ""
    token_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None


UserAction = Literal[
    "user_added",
    "role_changed",
    "email_changed",
    "password_reset",
    "user_deleted",
    "user_unlocked",
    "locked_out",
    "token_created",
    "token_revoked",
]


class UserAuditRecord(_Record):
    """One change to a user or a token: who did it, to whom, and what (never a secret)."""

    id: str = Field(default_factory=new_id, alias="_id")
    at: datetime = Field(default_factory=utcnow)
    who: str
    action: UserAction
    user: str
    detail: str = ""


def allows(role: Role, needed: Role) -> bool:
    """Whether ``role`` may do what ``needed`` may (admin ⊃ operator ⊃ viewer)."""
    return ROLES.index(role) >= ROLES.index(needed)


class WebSessionRecord(_Record):
    """A signed-in console session. ``_id`` is the SHA-256 of the cookie's value, so a copy
    of the database does not hand out sessions; ``csrf`` is the token every form of the
    session must carry."""

    id: str = Field(alias="_id")
    user: str
    csrf: str
    created_at: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)
    expires_at: datetime
