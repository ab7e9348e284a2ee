"""Who is looking at a console page, what their role lets them do, and the CSRF check of
every form they send.

A page declares its role once, by the alias it takes: ``Viewing`` (any signed-in user),
``Operating`` or ``Administering``. A form handler takes ``OperatorForm`` or ``AdminForm``
instead: the role check and the CSRF check in one, with the posted fields. The roles are the
API's (``services.config.api.deps``), so a page and the route behind the same action admit the
same people.

CSRF: every session has a random token; every form carries it in a hidden ``csrf_token``
field and htmx sends it as ``X-CSRF-Token`` (set once on ``<body>``). A post without the
session's token is refused with 403, before the handler runs. The session cookie is also
``SameSite=Strict``: a cross-site post does not even carry it.
"""

# No ``from __future__ import annotations``: the checks made per role below name their
# dependency through a local variable, which FastAPI can only see in an evaluated annotation.
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from services.config.api.deps import Caller, RuntimeDep
from services.config.web.sessions import COOKIE, session_of
from shared.models.users import ROLES, Role, allows

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class SignInRequired(Exception):
    """No live session: the browser goes to the sign-in page (and back to ``next`` after)."""

    def __init__(self, next_url: str) -> None:
        super().__init__("sign in first")
        self.next_url = next_url


class PageRefused(Exception):
    """The signed-in user may not do this (403), or the form lacked the session's CSRF token."""


@dataclass(frozen=True)
class Visitor:
    """The signed-in user of a page: ``caller`` as the API knows callers, ``csrf`` for the
    forms the page renders."""

    caller: Caller
    csrf: str

    @property
    def name(self) -> str:
        """The user's name, for the audit."""
        return self.caller.name

    def may(self, role: Role) -> bool:
        """Whether the user's role includes ``role`` (pages hide what the user may not do)."""
        return allows(self.caller.role, role)


async def current_visitor(request: Request, rt: RuntimeDep) -> Visitor:
    """The visitor whose session cookie came with the request; SignInRequired otherwise.
    The role is read from the user now, so a changed role counts from the next page on."""
    session = await session_of(rt, request.cookies.get(COOKIE, ""))
    user = await rt.store.users.get(name=session.user) if session else None
    if session is None or user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else request.url.path)
    caller = Caller(name=user.name, role=user.role, user=user.name)
    visitor = Visitor(caller=caller, csrf=session.csrf)
    request.state.visitor = visitor  # the error page shows the navigation too
    return visitor


def _role(role: Role) -> Callable[[Visitor], Visitor]:
    def check(visitor: Annotated[Visitor, Depends(current_visitor)]) -> Visitor:
        if not visitor.may(role):
            raise PageRefused(f"this needs the {role} role; you are {visitor.caller.role}")
        return visitor

    check.__name__ = f"console_{role}"
    return check


ROLE_CHECKS: dict[Role, Callable[[Visitor], Visitor]] = {role: _role(role) for role in ROLES}
"""The one check per role that every page and form of that role depends on (the
route-by-route tests find a page's role by it)."""

Viewing = Annotated[Visitor, Depends(ROLE_CHECKS["viewer"])]
Operating = Annotated[Visitor, Depends(ROLE_CHECKS["operator"])]
Administering = Annotated[Visitor, Depends(ROLE_CHECKS["admin"])]


@dataclass(frozen=True)
class Posted:
    """A form that passed the role and CSRF checks: who sent it and its fields."""

    visitor: Visitor
    data: FormData

    def text(self, field: str, default: str = "") -> str:
        """A text field (files and missing fields give ``default``)."""
        value = self.data.get(field)
        return value if isinstance(value, str) else default

    def values(self, field: str) -> list[str]:
        """Every value of a repeated field (check boxes, multi-selects)."""
        return [v for v in self.data.getlist(field) if isinstance(v, str)]


def csrf_ok(request: Request, data: FormData, visitor: Visitor) -> bool:
    """Whether the form or the htmx header carries the session's CSRF token."""
    given = data.get(CSRF_FIELD)
    token = given if isinstance(given, str) else request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(token.encode(), visitor.csrf.encode())


def _posted(role: Role) -> Callable[[Request, Visitor], Awaitable[Posted]]:
    async def check(
        request: Request, visitor: Annotated[Visitor, Depends(ROLE_CHECKS[role])]
    ) -> Posted:
        data = await request.form()
        if not csrf_ok(request, data, visitor):
            raise PageRefused("the form was refused: it did not come from this console")
        return Posted(visitor=visitor, data=data)

    check.__name__ = f"console_{role}_form"
    return check


ViewerForm = Annotated[Posted, Depends(_posted("viewer"))]
"""A form any signed-in user may send (their own settings, signing out)."""
OperatorForm = Annotated[Posted, Depends(_posted("operator"))]
AdminForm = Annotated[Posted, Depends(_posted("admin"))]
