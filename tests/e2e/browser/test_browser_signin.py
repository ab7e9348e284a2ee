"""Signing in and out of the console in a real browser, and a form without the session's CSRF
token refused."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from services.config.web.templates import CONSOLE
from shared.models.users import Role
from tests.e2e.browser.console import SIGNIN, Console, ConsoleUser

pytestmark = pytest.mark.e2e

SignInAs = Callable[[Page, Role], Awaitable[ConsoleUser]]


async def test_a_page_asks_for_a_sign_in_and_comes_back_to_it(
    page: Page, console: Console, make_user: Callable[[Role], Awaitable[ConsoleUser]]
) -> None:
    user = await make_user("operator")
    await page.goto(console.at(f"{CONSOLE}/health"))
    await expect(page).to_have_url(re.compile(re.escape(SIGNIN)))
    await page.get_by_label("User name").fill(user.name)
    await page.get_by_label("Password").fill(user.password)
    await page.get_by_role("button", name="Sign in").click()

    await expect(page).to_have_url(console.at(f"{CONSOLE}/health"))
    await expect(page.get_by_role("heading", name="Health", exact=True)).to_be_visible()
    header = page.locator("header.top")
    await expect(header).to_contain_text(user.name)
    await expect(header).to_contain_text("operator")


async def test_a_wrong_password_is_refused_with_a_message(
    page: Page, console: Console, make_user: Callable[[Role], Awaitable[ConsoleUser]]
) -> None:
    user = await make_user("viewer")
    await page.goto(console.at(SIGNIN))
    await page.get_by_label("User name").fill(user.name)
    await page.get_by_label("Password").fill("not-the-password-at-all")
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.get_by_role("alert")).to_contain_text("wrong user name or password")
    await expect(page.get_by_label("User name")).to_have_value(user.name)
    await expect(page.get_by_role("navigation", name="Main")).to_have_count(0)


async def test_sign_out_ends_the_session(
    page: Page, console: Console, sign_in_as: SignInAs
) -> None:
    await sign_in_as(page, "admin")
    await page.get_by_role("button", name="Sign out").click()

    await expect(page).to_have_url(console.at(SIGNIN))
    await expect(page.get_by_role("status")).to_contain_text("Signed out.")
    await page.goto(console.at(f"{CONSOLE}/health"))
    await expect(page).to_have_url(re.compile(re.escape(SIGNIN)))


async def test_a_form_without_the_csrf_token_is_refused(
    page: Page, console: Console, sign_in_as: SignInAs
) -> None:
    await sign_in_as(page, "admin")
    # The sign-out form is on every page; without its hidden token it must not count.
    await page.locator("form[action$='/signout'] input[name=csrf_token]").evaluate(
        "input => input.remove()"
    )
    async with page.expect_response(lambda r: r.url.endswith("/signout")) as answer:
        await page.get_by_role("button", name="Sign out").click()

    assert (await answer.value).status == 403
    await expect(page.get_by_role("alert")).to_contain_text("did not come from this console")
    await page.goto(console.at(f"{CONSOLE}/health"))  # still signed in
    await expect(page.get_by_role("heading", name="Health", exact=True)).to_be_visible()
