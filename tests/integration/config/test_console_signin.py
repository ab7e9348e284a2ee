"""Signing in to the console: sessions, cookies, CSRF, lock-out and sign-out, against the
real config service and MongoDB stand-in."""

from __future__ import annotations

import httpx

from services.config.passwords import LOCKOUT
from services.config.users import add_user, reset_password
from services.config.web.sessions import COOKIE
from shared.service import Stack
from tests.secret_scan import SCAN
from tests.support import console_client, sign_in

PASSWORD = SCAN.secret("password of a console user", "console-password-0123456789")
OTHER = SCAN.secret("password of a console user", "console-other-password-987654")


async def test_a_page_needs_a_session_and_the_sign_in_comes_back_to_it(
    config_stack: Stack,
) -> None:
    await add_user(config_stack.rt, name="olga", role="operator", password=PASSWORD, who="test")
    async with console_client(config_stack) as browser:
        away = await browser.get("/console/health?tab=x")
        assert away.status_code == 303
        assert away.headers["location"] == "/console/signin?next=/console/health%3Ftab%3Dx"
        form = await browser.get(away.headers["location"])
        assert form.status_code == 200 and 'name="password"' in form.text
        assert 'value="/console/health?tab=x"' in form.text

        signed = await browser.post(
            "/console/signin",
            data={"username": "Olga", "password": PASSWORD, "next": "/console/health"},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/console/health"
        cookie = signed.headers["set-cookie"]
        assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain http here; under https it is set
        page = await browser.get("/console/health")
        assert page.status_code == 200
        assert "olga" in page.text and "operator" in page.text and "Health" in page.text


async def test_the_sign_in_never_sends_anyone_off_the_site(config_stack: Stack) -> None:
    await add_user(config_stack.rt, name="olga", role="viewer", password=PASSWORD, who="test")
    async with console_client(config_stack) as browser:
        for target in ("https://evil.example/", "//evil.example/console/", "/docs"):
            answer = await browser.post(
                "/console/signin", data={"username": "olga", "password": PASSWORD, "next": target}
            )
            assert answer.headers["location"] == "/console/", target


async def test_a_wrong_password_is_refused_and_repeated_ones_lock_the_user_out(
    config_stack: Stack,
) -> None:
    await add_user(config_stack.rt, name="olga", role="admin", password=PASSWORD, who="test")
    async with console_client(config_stack) as browser:
        for _ in range(LOCKOUT.threshold - 1):
            wrong = await browser.post(
                "/console/signin", data={"username": "olga", "password": OTHER}
            )
            assert wrong.status_code == 401
            assert "wrong user name or password" in wrong.text
            assert COOKIE not in wrong.headers.get("set-cookie", "")
        locked = await browser.post("/console/signin", data={"username": "olga", "password": OTHER})
        assert "too many wrong passwords" in locked.text
        right = await browser.post(
            "/console/signin", data={"username": "olga", "password": PASSWORD}
        )
        assert right.status_code == 401 and "too many wrong passwords" in right.text
        unknown = await browser.post(
            "/console/signin", data={"username": "nobody", "password": OTHER}
        )
        assert "wrong user name or password" in unknown.text


async def test_a_form_without_the_sessions_csrf_token_is_refused(config_stack: Stack) -> None:
    await add_user(config_stack.rt, name="olga", role="admin", password=PASSWORD, who="test")
    async with console_client(config_stack) as browser:
        csrf = await sign_in(browser, "olga", PASSWORD)
        for data in ({}, {"csrf_token": "forged-" + csrf[:10]}):
            refused = await browser.post("/console/signout", data=data)
            assert refused.status_code == 403, refused.text
            assert "did not come from this console" in refused.text
            assert refused.headers["content-type"].startswith("text/html")
        assert (await browser.get("/console/health")).status_code == 200  # still signed in
        header = await browser.post("/console/signout", headers={"X-CSRF-Token": csrf})
        assert header.status_code == 303
        after = await browser.get("/console/health")
        assert after.status_code == 303  # the session ended in the store, not only the cookie


async def test_signing_out_ends_the_session_even_for_a_copied_cookie(
    config_stack: Stack,
) -> None:
    await add_user(config_stack.rt, name="olga", role="viewer", password=PASSWORD, who="test")
    async with console_client(config_stack) as browser:
        csrf = await sign_in(browser, "olga", PASSWORD)
        stolen = browser.cookies[COOKIE]
        out = await browser.post("/console/signout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/console/signin"
    async with console_client(config_stack) as thief:
        thief.cookies.set(COOKIE, stolen)
        assert (await thief.get("/console/health")).status_code == 303


async def test_a_password_reset_ends_the_users_sessions(config_stack: Stack) -> None:
    rt = config_stack.rt
    await add_user(rt, name="olga", role="viewer", password=PASSWORD, who="test")
    async with console_client(config_stack) as browser:
        await sign_in(browser, "olga", PASSWORD)
        await reset_password(rt, name="olga", password=OTHER, who="test")
        assert (await browser.get("/console/health")).status_code == 303


async def test_console_errors_are_pages_and_api_errors_stay_json(config_stack: Stack) -> None:
    await add_user(config_stack.rt, name="olga", role="viewer", password=PASSWORD, who="test")
    async with console_client(config_stack) as browser:
        await sign_in(browser, "olga", PASSWORD)
        missing = await browser.get("/console/no-such-page")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert (
            "Not found" in missing.text and "Sign out" in missing.text
        ) or "Back" in missing.text
        api = await browser.get("/accounts")  # the session is no API credential
        assert api.status_code == 401 and api.json()["error"] == "unauthorized"


async def test_the_root_leads_to_the_console_and_the_assets_are_local(
    config_stack: Stack,
) -> None:
    async with console_client(config_stack) as browser:
        root = await browser.get("/")
        assert root.headers["location"] == "/console/health"
        page = await browser.get("/console/signin")
        assert "http://" not in page.text and "https://" not in page.text
        for asset in ("htmx.min.js", "console.css", "console.js", "favicon.svg"):
            answer = await browser.get(f"/console/static/{asset}")
            assert answer.status_code == 200, asset
    assert isinstance(browser, httpx.AsyncClient)
