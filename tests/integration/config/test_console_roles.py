"""Page by page over the whole console: without a session every page leads to the sign-in,
every form needs the session's CSRF token, a viewer changes nothing and an operator nothing
an admin must do. Each page's role is read from its dependencies
(``services.config.web.auth.ROLE_CHECKS``), so a new page is covered without being listed."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import httpx

from services.config.api.main import create_api
from services.config.users import add_user
from shared.models.users import Role
from shared.runtime import Runtime
from shared.service import Stack
from shared.settings import SharedSettings
from tests.integration.config.api_routes import page_roles
from tests.secret_scan import SCAN
from tests.support import console_client, sign_in

PASSWORD = SCAN.secret("password of a console user", "console-roles-password-0123")
OPEN = {
    ("GET", "/"),
    ("GET", "/console"),
    ("GET", "/console/"),
    ("GET", "/console/signin"),
    ("POST", "/console/signin"),
}
"""What answers without a session: the sign-in and the redirects to it."""

TABLE = page_roles(create_api(Runtime(SharedSettings())))


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_page_but_the_sign_in_declares_a_role() -> None:
    assert {key for key, role in TABLE.items() if role == ""} == OPEN
    assert set(TABLE.values()) <= {"", "viewer", "operator", "admin"}
    assert ("GET", "/console/health") in TABLE


async def test_without_a_session_every_page_leads_to_the_sign_in(config_stack: Stack) -> None:
    async with console_client(config_stack) as anonymous:
        for method, path in sorted(set(TABLE) - OPEN):
            answer = await anonymous.request(method, _url(path))
            assert answer.status_code == 303, f"{method} {path}: {answer.status_code}"
            assert answer.headers["location"].startswith("/console/signin?next="), path


@contextlib.asynccontextmanager
async def _signed_in(stack: Stack, role: Role) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    await add_user(stack.rt, name=role, role=role, password=PASSWORD, who="test")
    async with console_client(stack) as client:
        yield client, await sign_in(client, role, PASSWORD)


async def test_every_form_needs_the_sessions_csrf_token(config_stack: Stack) -> None:
    async with _signed_in(config_stack, "admin") as (client, _):
        for method, path in sorted(TABLE):
            if method == "GET" or (method, path) in OPEN:
                continue
            answer = await client.request(method, _url(path), data={"name": "x"})
            assert answer.status_code == 403, f"{method} {path}: {answer.status_code}"
            assert "did not come from this console" in answer.text, path


async def test_a_viewer_sees_every_page_and_changes_nothing(config_stack: Stack) -> None:
    async with _signed_in(config_stack, "viewer") as (client, csrf):
        for (method, path), role in sorted(TABLE.items()):
            if (method, path) in OPEN or (role == "viewer" and method != "GET"):
                continue
            answer = await client.request(
                method, _url(path), data=None if method == "GET" else {"csrf_token": csrf}
            )
            if role == "viewer":
                assert answer.status_code in (200, 404), f"{method} {path}: {answer.status_code}"
            else:
                assert answer.status_code == 403, f"{method} {path} ({role}): {answer.status_code}"
                assert f"this needs the {role} role" in answer.text


async def test_an_operator_does_no_admin_work(config_stack: Stack) -> None:
    async with _signed_in(config_stack, "operator") as (client, csrf):
        for (method, path), role in sorted(TABLE.items()):
            if role != "admin":
                continue
            answer = await client.request(
                method, _url(path), data=None if method == "GET" else {"csrf_token": csrf}
            )
            assert answer.status_code == 403, f"{method} {path}: {answer.status_code}"
