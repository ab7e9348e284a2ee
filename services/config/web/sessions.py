"""Console sessions: started by a right password, kept server-side, ended by signing out.

The cookie holds a random 256-bit value; MongoDB keeps only its SHA-256 (a copy of the
database does not hand out sessions), the user's name and the session's CSRF token. A session
ends after :data:`IDLE` without a request and after :data:`LONGEST` in any case; resetting a
user's password or deleting the user ends all of theirs (``services/config/users.py``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from shared.models.messages import utcnow
from shared.models.users import WebSessionRecord
from shared.runtime import Runtime

COOKIE = "mailroom_session"
IDLE = timedelta(hours=8)
"""A session nobody used for this long has ended (a working day)."""
LONGEST = timedelta(hours=24)
"""No session lives longer, however busy: the password is asked for every day."""
TOUCH_EVERY = timedelta(minutes=5)
"""Activity is written at most this often: a page view need not cost a database write."""


@dataclass(frozen=True)
class Started:
    """A new session: ``cookie`` goes to the browser, once; ``record`` is what is kept."""

    cookie: str
    record: WebSessionRecord


def _key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


async def start_session(rt: Runtime, *, user: str) -> Started:
    """A new session for ``user`` (whose password was just checked)."""
    cookie = secrets.token_urlsafe(32)
    now = utcnow()
    record = WebSessionRecord(
        id=_key(cookie),
        user=user,
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        last_seen=now,
        expires_at=now + IDLE,
    )
    await rt.store.web_sessions.add(session=record)
    return Started(cookie=cookie, record=record)


async def session_of(rt: Runtime, cookie: str) -> WebSessionRecord | None:
    """The live session the cookie names, its idle time extended; None when there is none."""
    if not cookie or len(cookie) > 128:
        return None
    now = utcnow()
    record = await rt.store.web_sessions.get(key=_key(cookie), now=now)
    if record is None:
        return None
    if now - record.last_seen >= TOUCH_EVERY:
        expires = min(now + IDLE, record.created_at + LONGEST)
        await rt.store.web_sessions.extend(key=record.id, seen=now, expires_at=expires)
    return record


async def end_session(rt: Runtime, cookie: str) -> None:
    """Sign the cookie's session out (nothing happens for an unknown cookie)."""
    if cookie and len(cookie) <= 128:
        await rt.store.web_sessions.end(key=_key(cookie))
