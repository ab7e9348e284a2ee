"""Route by route over the whole API: a viewer changes nothing, an operator nothing an admin
must do. Each route's role is read from its dependencies (``services.config.api.deps``), so
a new route is covered without being listed here."""

from __future__ import annotations

import re

from services.config.api.main import create_api
from services.config.api_tokens import create_token
from services.config.users import add_user
from shared.runtime import Runtime
from shared.service import Stack
from shared.settings import SharedSettings
from tests.integration.config.api_routes import route_roles
from tests.secret_scan import SCAN
from tests.support import api_client

PUBLIC = {"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/oauth/callback"}
"""Probes, metrics and the API documentation pages answer without a token."""
SELF_SERVICE = {
    ("POST", "/me/tokens"),
    ("DELETE", "/me/tokens/{token_id}"),
    ("PUT", "/me/email"),
}
"""Changes any signed-in user may make: to their own tokens and mail address."""
OPERATOR_CHANGES = {
    ("POST", "/failed/replay"),
    ("POST", "/failed/{failed_id}/replay"),
    ("DELETE", "/failed/{failed_id}"),
    ("POST", "/accounts/{name}/activate"),
    ("POST", "/accounts/{name}/deactivate"),
    ("POST", "/accounts/{name}/test"),
}
"""What an operator may change beyond a viewer (the issue's role table)."""
OPERATOR_AREAS = ("/failed", "/cases", "/outbox", "/suppressions")
"""Where else an operator may change something: the desk and the mail, never the
configuration or the users."""
ADMIN_READS = {"/users", "/users/{name}", "/users/{name}/audit", "/users/{name}/tokens"}
"""Reads only an admin may make: who the users are."""
PASSWORD = "roles-test-password-0123"


def _table() -> dict[tuple[str, str], str]:
    roles = route_roles(create_api(Runtime(SharedSettings())))
    return {key: role for key, role in roles.items() if key[1] not in PUBLIC}


TABLE = _table()


VALUES = {"module": "settings", "key": "poll_interval_seconds", "kind": "incoming"}
"""Path values that pass validation; any other parameter gets "1" (a valid name, id and
number that names nothing)."""


def _url(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: VALUES.get(m.group(1), "1"), path)


def test_every_route_declares_one_of_the_roles() -> None:
    assert len(TABLE) > 40
    assert {role for role in TABLE.values()} <= {"viewer", "operator", "admin", "signed-in"}
    changes = {key for key, role in TABLE.items() if key[0] != "GET"}
    assert {key for key in changes if TABLE[key] == "signed-in"} == SELF_SERVICE
    operator_changes = {key for key in changes if TABLE[key] == "operator"}
    assert operator_changes >= OPERATOR_CHANGES
    for method, path in operator_changes - OPERATOR_CHANGES:
        assert path.startswith(OPERATOR_AREAS), f"{method} {path} is an operator's?"
    admin_reads = {
        path for (method, path), role in TABLE.items() if method == "GET" and role == "admin"
    }
    assert admin_reads == ADMIN_READS


async def _tokens(stack: Stack) -> dict[str, str]:
    tokens = {}
    for role in ("viewer", "operator"):
        await add_user(stack.rt, name=role, role=role, password=PASSWORD, who="test")
        made = await create_token(stack.rt, user=role, who="test")
        tokens[role] = SCAN.secret("a user's API token", made.token)
    return tokens


async def test_a_viewer_reads_and_changes_nothing(config_stack: Stack) -> None:
    tokens = await _tokens(config_stack)
    async with api_client(config_stack, tokens["viewer"]) as viewer:
        for (method, path), role in sorted(TABLE.items()):
            if (method, path) in SELF_SERVICE:
                continue
            answer = await viewer.request(method, _url(path), json={} if method != "GET" else None)
            if method == "GET" and path not in ADMIN_READS:
                assert answer.status_code in (200, 404), f"{method} {path}: {answer.text}"
                if answer.status_code == 404:
                    assert answer.json()["error"] == "not_found", f"{method} {path}"
            else:
                assert answer.status_code == 403, f"{method} {path} ({role}): {answer.text}"
                assert answer.json()["error"] == "forbidden"


async def test_an_operator_does_the_desk_but_no_admin_work(config_stack: Stack) -> None:
    tokens = await _tokens(config_stack)
    async with api_client(config_stack, tokens["operator"]) as operator:
        for (method, path), role in sorted(TABLE.items()):
            if method == "GET" or (method, path) in SELF_SERVICE:
                continue
            answer = await operator.request(method, _url(path), json={})
            if role == "admin":
                assert answer.status_code == 403, f"{method} {path}: {answer.text}"
                assert answer.json() == {
                    "error": "forbidden",
                    "detail": "this needs the admin role",
                }
            else:
                assert answer.status_code not in (401, 403), f"{method} {path}: {answer.text}"
