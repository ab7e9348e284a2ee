"""Signing in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.config.api.deps import RuntimeDep
from services.config.users import SignInRefused, check_password
from services.config.web.auth import ViewerForm
from services.config.web.responses import after_post
from services.config.web.sessions import COOKIE, LONGEST, end_session, start_session
from services.config.web.templates import CONSOLE, render

router = APIRouter(prefix=CONSOLE, include_in_schema=False)


def _local(next_url: str) -> str:
    """``next_url`` when it is a console page, else the console's home: the sign-in page
    must not send anyone off the site (an open redirect)."""
    local = next_url.startswith(CONSOLE + "/") and not next_url.startswith("//")
    if local and "\\" not in next_url:
        return next_url
    return CONSOLE + "/"


@router.get("/signin")
async def signin_page(request: Request, next: str = "") -> HTMLResponse:
    """The sign-in form."""
    return render(request, "signin.html", None, next_url=_local(next), username="", error="")


@router.post("/signin")
async def signin(
    request: Request,
    rt: RuntimeDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the password; on success start a session and go where the user was going."""
    try:
        user = await check_password(rt, name=username, password=password)
    except SignInRefused as refused:
        return render(
            request,
            "signin.html",
            None,
            status_code=401,
            next_url=_local(next),
            username=username[:64],
            error=str(refused),
        )
    started = await start_session(rt, user=user.name)
    response = RedirectResponse(_local(next), status_code=303)
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


@router.post("/signout")
async def signout(request: Request, rt: RuntimeDep, _: ViewerForm) -> Response:
    """End the session here and in the store."""
    await end_session(rt, request.cookies.get(COOKIE, ""))
    response = after_post(request, f"{CONSOLE}/signin", "Signed out.")
    response.delete_cookie(COOKIE, path="/")
    return response
