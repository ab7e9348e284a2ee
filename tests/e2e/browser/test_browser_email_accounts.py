"""Email configuration → Accounts as an administrator uses it, against the session's Dovecot:
a wrong password's Test connection shows Dovecot's own refusal, the right one works, the
account is added and copied."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Locator, Page, expect

from deploy.local.servers import Dovecot, SmtpSink
from services.config.web.templates import CONSOLE
from shared.models.users import Role
from tests.e2e.browser.console import Console, ConsoleUser, htmx_settled

pytestmark = pytest.mark.e2e

SignInAs = Callable[[Page, Role], Awaitable[ConsoleUser]]
ALICE_PW = "alicepw"  # tests/conftest.py's Dovecot user


def _field(page: Page, title: str) -> Locator:
    """The input labelled ``title`` (a required one's label ends with " *")."""
    return page.get_by_label(re.compile(rf"^{re.escape(title)}( \*)?$"))


async def _open(page: Page, console: Console, path: str) -> None:
    answer = await page.goto(console.at(path))
    assert answer is not None
    assert answer.status == 200, f"{path}: {answer.status}"


async def test_test_connection_shows_dovecots_refusal_then_success_and_the_account_is_copied(
    page: Page, console: Console, signed_in_as: SignInAs, dovecot: Dovecot
) -> None:
    await signed_in_as(page, "admin")
    await _open(page, console, f"{CONSOLE}/email/new-account")
    name = f"alice-{uuid.uuid4().hex[:6]}"

    # The protocol redraws the form (its fields and the port's placeholder): choose it first,
    # and from another one, so the redraw is seen to land before the form is filled (IMAPS is
    # the default: choosing it alone would race its own redraw, which empties the inputs).
    await _field(page, "Protocol").select_option("IMAP")
    await expect(_field(page, "Port")).to_have_attribute("placeholder", "143")
    await htmx_settled(page)
    await _field(page, "Protocol").select_option("IMAPS")
    await expect(_field(page, "Port")).to_have_attribute("placeholder", "993")
    await _field(page, "Name").fill(name)
    await _field(page, "Host").fill("127.0.0.1")
    await _field(page, "Port").fill(str(dovecot.imaps_port))
    await _field(page, "CA file").fill(str(dovecot.cert_file))
    await _field(page, "Username").fill("alice")
    await _field(page, "Password").fill("not-alices-password")

    test = page.locator("form.model-form").get_by_role("button", name="Test connection")
    result = page.locator("#test-result")
    await test.click()
    await expect(result).to_contain_text("Connection failed")
    await expect(result.locator("pre")).to_contain_text(re.compile("AUTHENTICATIONFAILED"))

    await _field(page, "Password").fill(ALICE_PW)
    await test.click()
    await expect(result).to_contain_text("Connection works.")

    await page.get_by_role("button", name="Add account").click()
    await expect(page).to_have_url(console.at(f"{CONSOLE}/email/accounts/{name}"))
    await page.get_by_label("Copy to a new account named").fill(f"{name}-copy")
    await page.get_by_role("button", name="Copy", exact=True).click()

    await page.goto(console.at(f"{CONSOLE}/email/accounts"))
    table = page.locator("table")
    await expect(table.get_by_role("link", name=name, exact=True)).to_be_visible()
    await expect(table.get_by_role("link", name=f"{name}-copy", exact=True)).to_be_visible()
    assert ALICE_PW not in await page.content()


async def test_the_accounts_own_outgoing_server_is_tested_before_saving_then_sends_a_test_mail(
    page: Page, console: Console, signed_in_as: SignInAs, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    await signed_in_as(page, "admin")
    await _open(page, console, f"{CONSOLE}/email/new-account")
    name = f"sales-{uuid.uuid4().hex[:6]}"

    # The sign-in choice redraws the form (its own username and password appear): first.
    await _field(page, "Outgoing sign-in").select_option("own")
    await expect(_field(page, "Outgoing username")).to_be_visible()
    await _field(page, "Name").fill(name)
    await _field(page, "Host").fill("127.0.0.1")
    await _field(page, "Port").fill(str(dovecot.imaps_port))
    await _field(page, "CA file").fill(str(dovecot.cert_file))  # the sink's CA too
    await _field(page, "Username").fill("alice")
    await _field(page, "Password").fill(ALICE_PW)
    await _field(page, "Outgoing (SMTP) server").fill("127.0.0.1")
    await _field(page, "Outgoing port").fill(str(smtp_sink.port))
    await _field(page, "Outgoing username").fill("bob")
    await _field(page, "Outgoing password").fill("not-bobs-password")
    await _field(page, "From address").fill("sales@example.com")

    test = page.locator("form.model-form").get_by_role("button", name="Test connection")
    result = page.locator("#test-result")
    await test.click()
    await expect(result).to_contain_text("Outgoing server failed")
    await expect(result.locator("pre")).to_contain_text("535")

    await _field(page, "Outgoing password").fill("bobpw")
    await test.click()
    await expect(result).to_contain_text("Outgoing server works")
    await expect(result).to_contain_text("authenticated as bob")

    await page.get_by_role("button", name="Add account").click()
    await expect(page).to_have_url(console.at(f"{CONSOLE}/email/accounts/{name}"))
    await page.get_by_label("Send a test mail to").fill(f"{name}@example.org")
    await page.get_by_role("button", name="Test account").click()
    await expect(result).to_contain_text(f"sent to {name}@example.org: 250")
    assert "bobpw" not in await page.content()
