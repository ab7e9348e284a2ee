"""Dependencies of the API routes: the runtime and the bearer-token check."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.runtime import Runtime

_bearer = HTTPBearer(auto_error=False)


def get_runtime(request: Request) -> Runtime:
    """The process's runtime, set on the app at start."""
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


Role = Literal["admin", "operator"]


def _same(given: str, token: str) -> bool:
    """Constant-time comparison of SHA-256 digests: neither the content nor the length of
    the token shows in the time a wrong guess takes."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest()
    )


def _role_of(rt: Runtime, credentials: HTTPAuthorizationCredentials | None) -> Role:
    """The role the bearer token grants, or a 401/503 that says what is wrong.

    Without MAILROOM_API_TOKEN the API refuses everything: an unprotected settings API
    would hand out the mailboxes. Tokens are compared in constant time.
    """
    admin = rt.settings.api_token
    if admin is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the API is disabled: set MAILROOM_API_TOKEN for the config service",
        )
    given = credentials.credentials if credentials else ""
    if _same(given, admin.get_secret_value()):
        return "admin"
    operator = rt.settings.operator_token
    if operator is not None and _same(given, operator.get_secret_value()):
        return "operator"
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or wrong bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_admin(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Admit only the admin role; returns who is calling (for the audit)."""
    role = _role_of(rt, credentials)
    if role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the admin role")
    return "api:admin"


def require_reader(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Admit admin and operator (read-only views and the failed-mail desk)."""
    return f"api:{_role_of(rt, credentials)}"


CallerDep = Annotated[str, Depends(require_admin)]
"""Admin only: every route that changes the configuration."""
ReaderDep = Annotated[str, Depends(require_reader)]
"""Admin or operator: read-only views and the failed-mail desk."""
