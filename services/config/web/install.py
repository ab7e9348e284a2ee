"""Put the console on the config service's app: its static files, its pages, and the way a
page's refusal is answered (the sign-in page, or an error page instead of JSON)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.config.web.auth import PageRefused, SignInRequired
from services.config.web.pages import (
    cases,
    email_accounts,
    email_addresses,
    email_credentials,
    email_scripts,
    email_settings,
    failed,
    health,
    me,
    outbox,
    signin,
    users,
)
from services.config.web.responses import error_page, signin_redirect
from services.config.web.templates import CONSOLE, STATIC, package_dir

PAGES = (
    signin,
    health,
    email_accounts,
    email_credentials,
    email_settings,
    email_addresses,
    email_scripts,
    failed,
    users,
    me,
    cases,
    outbox,
)
"""Every page module; each has a ``router``."""


def install_console(api: FastAPI) -> None:
    """Serve the console under ``/console`` (and send ``/`` there)."""
    api.mount(STATIC, StaticFiles(directory=package_dir("static")), name="console-static")
    for module in PAGES:
        api.include_router(module.router)

    @api.get("/", include_in_schema=False)
    @api.get(CONSOLE, include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{CONSOLE}/health", status_code=307)

    @api.get(f"{CONSOLE}/", include_in_schema=False)
    async def console_home() -> RedirectResponse:
        return RedirectResponse(f"{CONSOLE}/health", status_code=307)

    @api.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return signin_redirect(request, exc.next_url)

    @api.exception_handler(PageRefused)
    async def refused(request: Request, exc: PageRefused) -> Response:
        return error_page(request, 403, str(exc))
