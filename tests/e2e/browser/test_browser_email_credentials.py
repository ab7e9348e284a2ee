"""Email configuration → Credentials as an administrator uses it, against the session's local
OAuth issuer: a device-code credential is added, authorized with the code the page shows (the
page follows the consent by itself) and listed as granted."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Locator, Page, expect

from deploy.local.oauth_issuer import OAuthIssuer
from services.config.web.templates import CONSOLE
from shared.models.users import Role
from tests.e2e.browser.console import Console, ConsoleUser, htmx_settled
from tests.secret_scan import SCAN

pytestmark = pytest.mark.e2e

SignInAs = Callable[[Page, Role], Awaitable[ConsoleUser]]


def _field(page: Page, title: str) -> Locator:
    """The input labelled ``title`` (a required one's label ends with " *")."""
    return page.get_by_label(re.compile(rf"^{re.escape(title)}( \*)?$"))


async def test_a_device_code_credential_is_added_and_authorized_on_the_page(
    page: Page, console: Console, signed_in_as: SignInAs, oauth_issuer: OAuthIssuer
) -> None:
    name = f"device-{uuid.uuid4().hex[:6]}"
    oauth_issuer.add_client(name, None, "alice")
    await signed_in_as(page, "admin")
    answer = await page.goto(console.at(f"{CONSOLE}/email/credentials"))
    assert answer is not None and answer.status == 200
    await page.get_by_role("link", name="New credential").click()

    # The flow redraws the form (only the browser flow has a redirect URI): choose it first,
    # and from another one, so the redraw is seen to land before the form is filled.
    await _field(page, "Flow").select_option("authorization_code")
    await expect(page.locator("#f-redirect_uri")).to_be_visible()
    await htmx_settled(page)
    await _field(page, "Flow").select_option("device_code")
    await expect(page.locator("#f-redirect_uri")).to_have_count(0)
    await _field(page, "Name").fill(name)
    await _field(page, "Client ID").fill(name)
    await _field(page, "Authority / token URI").fill(oauth_issuer.authority())
    await _field(page, "Token issuer CA file").fill(str(oauth_issuer.ca_file))
    await page.get_by_role("button", name="Add credential").click()
    await expect(page).to_have_url(console.at(f"{CONSOLE}/email/credentials/{name}"))

    await page.get_by_role("button", name="Authorize").click()
    code = page.locator(".user-code")
    await expect(code).to_have_text(re.compile(r"\S+"))
    await expect(page.locator("a[href$='/devicelogin']")).to_be_visible()
    oauth_issuer.approve_device((await code.inner_text()).strip())  # the user types the code
    await expect(page.locator("#consent-state")).to_contain_text("Consent granted by alice")

    await page.goto(console.at(f"{CONSOLE}/email/credentials"))
    row = page.locator("tr", has=page.get_by_role("link", name=name, exact=True))
    await expect(row).to_contain_text("granted")
    await expect(row).to_contain_text("device code")
    for refresh in list(oauth_issuer.grants.refresh):
        SCAN.secret("an OAuth 2.0 refresh token", refresh)
    for token in list(oauth_issuer.tokens):
        SCAN.secret("an OAuth 2.0 access token", token)
    SCAN.record("the credentials page", await page.content())
