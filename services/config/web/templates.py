"""The console's one Jinja2 environment and the page renderer every page uses."""

from __future__ import annotations

from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.config.web.auth import CSRF_FIELD, CSRF_HEADER, Visitor
from shared.models.users import Role

CONSOLE = "/console"
"""Where the pages live; the API keeps the other paths."""
STATIC = f"{CONSOLE}/static"
FLASH = "mailroom_flash"
"""A cookie holding the message the next page shows once ("Account copied"); a leading
:data:`FLASH_ERROR` marks an error."""
FLASH_ERROR = "!"


def package_dir(name: str) -> Path:
    """A directory shipped inside this package (templates, static)."""
    return Path(str(files("services.config.web") / name))


NAV: tuple[tuple[str, str, Role], ...] = (
    ("Health", f"{CONSOLE}/health", "viewer"),
    ("Email configuration", f"{CONSOLE}/email/accounts", "viewer"),
    ("Failed incoming emails", f"{CONSOLE}/failed", "viewer"),
    ("Cases", f"{CONSOLE}/cases", "viewer"),
    ("Outbox", f"{CONSOLE}/outbox", "viewer"),
    ("Users", f"{CONSOLE}/users", "admin"),
)
"""The top navigation: label, path, least role that sees it."""


def _when(value: datetime | None, empty: str = "—") -> str:
    """A time as the console shows it: UTC, to the second."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else empty


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(package_dir("templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.globals.update(
        CONSOLE=CONSOLE, STATIC=STATIC, CSRF_FIELD=CSRF_FIELD, CSRF_HEADER=CSRF_HEADER
    )
    return env


templates = Jinja2Templates(env=_environment())


def render(
    request: Request,
    template: str,
    visitor: Visitor | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page: ``template`` with the visitor, the navigation, the one-time message the
    last form left (then cleared) and ``context``."""
    nav = [(label, href) for label, href, role in NAV if visitor and visitor.may(role)]
    flash = unquote(request.cookies.get(FLASH, ""))
    kind = "error" if flash.startswith(FLASH_ERROR) else "ok"
    response = templates.TemplateResponse(
        request,
        template,
        {
            "visitor": visitor,
            "nav": nav,
            "path": request.url.path,
            "flash": flash.removeprefix(FLASH_ERROR),
            "flash_kind": kind,
            **context,
        },
        status_code=status_code,
    )
    if flash:
        response.delete_cookie(FLASH, path=CONSOLE)
    return response
