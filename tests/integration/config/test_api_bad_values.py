"""Bad values and user mistakes answer 4xx with a ``detail`` naming the field, never 500:
the refusals are declared once in the typed views (``shared.models``), so the API, the CLI
and config import refuse alike; templates are rendered with sample values when saved."""

from __future__ import annotations

import re

import httpx
import pytest


async def test_bad_values_are_refused_naming_the_field_never_with_a_500(
    api: httpx.AsyncClient,
) -> None:
    # The test client raises what the app raises: a 500 would fail this test before the
    # status is looked at.
    account = {"name": "box", "host": "imap.example.org", "username": "u", "password": "pw"}
    assert (await api.post("/accounts", json=account)).status_code == 201
    smtp = {"host": "smtp.example.org", "security": "tls"}
    assert (await api.put("/outgoing", json=smtp)).status_code == 200
    cases: list[tuple[str, str, object, int, str]] = [
        ("POST", "/accounts", {**account, "name": "b2", "host": ""}, 422, "b2.host"),
        ("POST", "/accounts", {**account, "name": "b2", "host": "a b"}, 422, "b2.host"),
        ("POST", "/accounts", {**account, "name": "b2", "username": ""}, 422, "b2.username"),
        ("POST", "/accounts", {**account, "name": "b2", "password": None}, 422, "password"),
        ("POST", "/accounts", {**account, "name": "b2", "port": 65536}, 422, "body.port"),
        ("POST", "/accounts", {**account, "name": "b2", "security": "none"}, 422, "security"),
        ("POST", "/accounts", {**account, "name": "b2", "protocol": "X"}, 422, "body.protocol"),
        ("POST", "/accounts", {**account, "name": "b2", "port": "x"}, 422, "body.port"),
        ("POST", "/accounts", ["not", "an", "object"], 422, "body"),
        ("PATCH", "/accounts/box", {"host": ""}, 422, "incoming.accounts/box.host"),
        ("PATCH", "/accounts/box", {"port": 0}, 422, "body.port"),
        ("PATCH", "/accounts/nobody", {"host": "h"}, 404, "nobody"),
        ("POST", "/accounts/nobody/rename", {"name": "x"}, 404, "nobody"),
        ("PUT", "/outgoing", {"host": ""}, 422, "outgoing/smtp.host"),
        ("PUT", "/outgoing", {"username": "u"}, 422, "password"),
        ("PUT", "/outgoing", {"port": 70000}, 422, "body.port"),
        ("PUT", "/outgoing", {"security": "ssl"}, 422, "body.security"),
        ("PUT", "/outgoing", {"credentials_from": "nobody"}, 422, "credentials_from"),
        ("PUT", "/catalogue/incoming.accounts/box.host", {"value": ""}, 422, "box.host"),
        ("PUT", "/catalogue/incoming.accounts/box.port", {"value": 0}, 422, "box.port"),
        ("PUT", "/catalogue/incoming.accounts/nobody.host", {"value": "h"}, 404, "nobody"),
        ("PUT", "/catalogue/outgoing/smtp.host", {"value": " "}, 422, "smtp.host"),
        ("PUT", "/catalogue/settings/fetch_retries", {"value": "many"}, 422, "fetch_retries"),
        ("PUT", "/catalogue/nosuch/key", {"value": 1}, 422, "nosuch"),
        ("PUT", "/catalogue/settings/nosuch", {"value": 1}, 422, "nosuch"),
        ("PUT", "/properties/incoming.accounts/b3", {"value": "h"}, 422, "incoming.accounts/b3"),
        ("PUT", "/properties/incoming.accounts/b3", {"value": [1]}, 422, "incoming.accounts/b3"),
        ("PUT", "/properties/outgoing/smtp", {"value": 5}, 422, "outgoing/smtp"),
        ("PATCH", "/settings/settings", {"poll_interval_seconds": "x"}, 422, "poll_interval"),
        ("PATCH", "/settings/conversation", {"number_format": "{number.x}"}, 422, "number_format"),
        ("GET", "/failed/not-an-id", None, 404, "not-an-id"),
        ("GET", "/failed/not-an-id/audit", None, 404, "not-an-id"),
        ("GET", "/archive/not-an-id", None, 404, "not-an-id"),
        ("GET", "/cases/x/messages/m/attachments/0", None, 422, "path.case_number"),
        ("GET", "/cases/1/messages/m/attachments/x", None, 422, "path.index"),
    ]
    for method, path, body, status, where in cases:
        response = await api.request(method, path, json=body)
        assert response.status_code == status, f"{method} {path} {body}: {response.text}"
        assert where in response.json()["detail"], f"{method} {path} {body}: {response.text}"
    bad_json = await api.put(
        "/outgoing", content=b'{"host": ', headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422
    assert bad_json.json()["detail"].startswith("body: not valid JSON at character")
    no_body = await api.put("/outgoing", headers={"Content-Type": "application/json"})
    assert no_body.json()["detail"] == "body: a JSON object is required"


async def test_templates_failing_at_render_time_are_refused_naming_the_field(
    api: httpx.AsyncClient,
) -> None:
    subject = "outgoing_subject_template"
    writes = [
        ("PUT", f"/catalogue/settings/{subject}", {"value": "{{ 1/0 }}"}, subject),
        ("PUT", f"/properties/settings/{subject}", {"value": "{{ 1/0 }}"}, subject),
        ("PATCH", "/settings/settings", {subject: "{{ 1/0 }}"}, subject),
        (
            "PUT",
            "/catalogue/templates/acknowledgement_subject",
            {"value": "{{ 1/0 }}"},
            "templates.acknowledgement_subject",
        ),
        (
            "PATCH",
            "/settings/templates",
            {"fetch_error_body": "{{ range(10**9)|list }}"},
            "templates.fetch_error_body",
        ),
    ]
    for method, path, body, field in writes:
        response = await api.request(method, path, json=body)
        assert response.status_code == 422, f"{method} {path}: {response.text}"
        detail = response.json()["detail"]
        assert field in detail and "does not render" in detail, detail
    shown = (await api.get("/settings/settings")).json()
    assert shown["outgoing_subject_template"] == "{{ subject }} [Case#{{ case }}]"


async def test_api_docs_stay_reachable(api: httpx.AsyncClient) -> None:
    assert (await api.get("/docs")).status_code == 200
    assert (await api.get("/openapi.json")).json()["info"]["title"]


BAD_BODIES: list[object] = [{}, [], "x", {"value": None}, {"name": "", "value": "{{ 1/0 }}"}]
"""Bodies no route expects: each must be refused as a user mistake (4xx), never a 500."""


async def test_no_route_answers_a_bad_request_with_a_500(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    for path, operations in paths.items():
        for method in operations:
            filled = re.sub(r"\{[^}]+\}", "no-such-thing", path)
            for body in BAD_BODIES if method in {"post", "put", "patch"} else [None]:
                try:
                    response = await api.request(method.upper(), filled, json=body)
                except Exception as exc:  # the test client raises what became a 500
                    pytest.fail(f"{method.upper()} {filled} {body!r}: {exc!r}")
                assert response.status_code < 500, f"{method} {filled} {body}: {response.text}"
