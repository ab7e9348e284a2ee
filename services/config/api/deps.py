"""Dependencies of the API routes: the runtime, who is calling, and the role a route needs.

A route declares its role once, by the alias it takes (``who: Operator``): ``Viewer``
(read only), ``Operator`` (the failed-mail desk, cases, outbox, activating, deactivating and
testing accounts) or ``Admin`` (everything else). Each alias gives the caller's name for the
audit. ``SignedIn`` gives the whole :class:`Caller` to routes that act on the caller's own
things (their API tokens).

Bearer tokens, checked in this order:

* ``MAILROOM_API_TOKEN``: the service token, admin (audited as ``api:admin``);
* ``MAILROOM_OPERATOR_TOKEN``: operator (``api:operator``);
* a user's API token (``mailroom tokens create``): the user's role now, audited with the
  user's name.

Without MAILROOM_API_TOKEN the API refuses everything (503): an unprotected settings API
would hand out the mailboxes.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.config.api_tokens import owner_of
from shared.models.users import Role, allows
from shared.runtime import Runtime

_bearer = HTTPBearer(auto_error=False)


def get_runtime(request: Request) -> Runtime:
    """The process's runtime, set on the app at start."""
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass(frozen=True)
class Caller:
    """Who sent the request: ``name`` for the audit, ``role``, and ``user`` when the token
    is a user's (None for the service tokens)."""

    name: str
    role: Role
    user: str | None = None


def _same(given: str, token: str) -> bool:
    """Constant-time comparison of SHA-256 digests: neither the content nor the length of
    the token shows in the time a wrong guess takes."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest()
    )


async def current_caller(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller the bearer token names, or a 401/503 that says what is wrong."""
    admin = rt.settings.api_token
    if admin is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the API is disabled: set MAILROOM_API_TOKEN for the config service",
        )
    given = credentials.credentials if credentials else ""
    if _same(given, admin.get_secret_value()):
        return Caller(name="api:admin", role="admin")
    operator = rt.settings.operator_token
    if operator is not None and _same(given, operator.get_secret_value()):
        return Caller(name="api:operator", role="operator")
    owner = await owner_of(rt, given) if given else None
    if owner is not None:
        return Caller(name=owner.user, role=owner.role, user=owner.user)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or wrong bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


SignedIn = Annotated[Caller, Depends(current_caller)]
"""Any valid token, whatever its role: the caller in full."""


def _needs(caller: Caller, role: Role) -> str:
    if not allows(caller.role, role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {role} role")
    return caller.name


def require_viewer(caller: SignedIn) -> str:
    """Admit every role (read-only routes); returns who is calling."""
    return _needs(caller, "viewer")


def require_operator(caller: SignedIn) -> str:
    """Admit operator and admin; returns who is calling."""
    return _needs(caller, "operator")


def require_admin(caller: SignedIn) -> str:
    """Admit only admin; returns who is calling."""
    return _needs(caller, "admin")


Viewer = Annotated[str, Depends(require_viewer)]
"""Read only: any role. The value is the caller's name."""
Operator = Annotated[str, Depends(require_operator)]
"""The failed-mail desk, cases, outbox, account activate/deactivate/test: operator or admin."""
Admin = Annotated[str, Depends(require_admin)]
"""Everything else (configuration, users): admin only."""

ROUTE_ROLES: tuple[tuple[object, str], ...] = (
    (require_admin, "admin"),
    (require_operator, "operator"),
    (require_viewer, "viewer"),
    (current_caller, "signed-in"),
)
"""Each dependency and the role it stands for, strongest first: a route needs the role of the
first one it depends on (the route-by-route tests read the routes with it)."""
