"""Every endpoint of the config API refuses what it must, as structured JSON: no token or a
wrong one (401), the operator on admin routes (403), invalid values (422), oversize bodies
(413), unknown things (404), taken names (409); never a stack trace, never the input."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from services.config.api.limits import MAX_BODY_BYTES
from services.config.api.main import create_api
from services.config.service import build as config_service
from shared.runtime import Runtime
from shared.service import Stack
from shared.settings import SharedSettings
from tests.integration.config.api_routes import route_roles
from tests.support import API_TOKEN, OPERATOR_TOKEN, api_client, server_settings

PUBLIC = {"/healthz", "/readyz", "/metrics", "/oauth/callback"}
"""Probes and metrics answer without a token (orchestrators and Prometheus call them)."""


def _routes() -> list[tuple[str, str, str]]:
    """(method, path with placeholders filled, role) of every API route in the OpenAPI
    document; the role from the route's dependencies ("" when it has none)."""
    api = create_api(Runtime(SharedSettings()))
    roles = route_roles(api)
    out = []
    for path, operations in api.openapi()["paths"].items():
        if path in PUBLIC:
            continue
        for method in operations:
            role = roles.get((method.upper(), path), "")
            out.append((method.upper(), re.sub(r"\{[^}]+\}", "x", path), role))
    return out


ROUTES = _routes()


@pytest.fixture
async def roles_stack(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> AsyncIterator[Stack]:
    """The config service with an admin and an operator token."""
    settings = server_settings(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=mongo_db_name,
        instance="refusals",
        operator_token=OPERATOR_TOKEN,
    )
    stack = Stack([config_service], settings)
    await stack.start()
    yield stack
    await stack.stop()


def test_every_route_needs_a_token() -> None:
    unguarded = [f"{m} {p}" for m, p, role in ROUTES if not role]
    assert len(ROUTES) > 30 and unguarded == []


async def test_no_token_wrong_token_and_wrong_role_are_refused(roles_stack: Stack) -> None:
    async with (
        api_client(roles_stack, "wrong-token-0123456789") as wrong,
        api_client(roles_stack, OPERATOR_TOKEN) as operator,
    ):
        for method, path, role in ROUTES:
            nobody = await wrong.request(method, path, headers={"Authorization": ""})
            assert nobody.status_code == 401, f"{method} {path}"
            assert nobody.json()["error"] == "unauthorized"
            assert nobody.headers["www-authenticate"] == "Bearer"
            refused = await wrong.request(method, path, json={})
            assert refused.status_code == 401, f"{method} {path}"
            if role == "admin":
                forbidden = await operator.request(method, path, json={})
                assert forbidden.status_code == 403, f"{method} {path}"
                assert forbidden.json() == {
                    "error": "forbidden",
                    "detail": "this needs the admin role",
                }


async def test_oversize_bodies_are_refused_before_any_route(roles_stack: Stack) -> None:
    big = b'{"value": "' + b"x" * MAX_BODY_BYTES + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    async with api_client(roles_stack, API_TOKEN) as admin:
        for method, path, _ in ROUTES:
            if method not in {"POST", "PUT", "PATCH"}:
                continue
            declared = await admin.request(
                method, path, content=big, headers={"Content-Type": "application/json"}
            )
            assert declared.status_code == 413, f"{method} {path}"
            assert declared.json()["error"] == "payload_too_large"
        streamed = await admin.put("/catalogue/settings/poll_interval_seconds", content=chunks())
        assert streamed.status_code == 413
        fits = await admin.put("/catalogue/settings/poll_interval_seconds", json={"value": 9})
        assert fits.status_code == 200, fits.text


async def test_invalid_values_name_the_field_and_never_echo_the_input(
    api: httpx.AsyncClient,
) -> None:
    long_secret = "p" * 2000
    account = {"name": "a", "host": "h", "username": "u", "password": long_secret}
    too_long = await api.post("/accounts", json=account)
    assert too_long.status_code == 422
    assert too_long.json()["error"] == "invalid_request"
    assert "body.password" in too_long.json()["detail"] and long_secret not in too_long.text
    cases = [
        ("POST", "/accounts", {**account, "password": "pw", "port": 0}, "body.port"),
        ("POST", "/accounts", {**account, "password": "pw", "extra": 1}, "body.extra"),
        ("PATCH", "/accounts/a", {"protocol": "SMTP"}, "body.protocol"),
        ("POST", "/accounts/a/copy", {"name": "x" * 65}, "body.name"),
        ("POST", "/accounts/a/rename", {}, "body.name"),
        ("PUT", "/outgoing", {"send_timeout_ms": 1}, "body.send_timeout_ms"),
        ("PATCH", "/settings/settings", {f"k{i}": i for i in range(65)}, "body"),
        ("PATCH", "/settings/nosuch", {}, "path.module"),
        ("PUT", "/catalogue/settings/fetch_retries", {}, "body.value"),
        ("GET", "/failed?limit=0", None, "query.limit"),
        ("GET", f"/catalogue?module={'m' * 65}", None, "query.module"),
        ("GET", f"/accounts/{'n' * 65}", None, "path.name"),
        ("POST", "/config/export", {"passphrase": "short"}, "body.passphrase"),
    ]
    for method, path, body, where in cases:
        response = await api.request(method, path, json=body)
        assert response.status_code == 422, f"{method} {path}: {response.text}"
        assert where in response.json()["detail"], f"{method} {path}: {response.text}"
        assert "Traceback" not in response.text
    rejected = await api.put("/catalogue/settings/fetch_retries", json={"value": 1000})
    assert rejected.status_code == 422 and rejected.json()["error"] == "config_rejected"
    assert "settings.fetch_retries" in rejected.json()["detail"]


async def test_unknown_routes_and_methods_answer_in_the_same_shape(api: httpx.AsyncClient) -> None:
    nowhere = await api.get("/nowhere")
    assert nowhere.status_code == 404 and nowhere.json()["error"] == "not_found"
    wrong_method = await api.delete("/accounts")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"
    missing = await api.get("/accounts/nobody")
    assert missing.json() == {"error": "not_found", "detail": "no account 'nobody'"}
    not_json = await api.put(
        "/catalogue/settings/fetch_retries",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 422 and not_json.json()["error"] == "invalid_request"
