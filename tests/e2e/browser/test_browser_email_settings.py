"""Email configuration → Settings as an administrator uses it: a subject template the incoming
pattern cannot read is flagged while typing and refused with the reason on Save."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from services.config.web.templates import CONSOLE
from shared.models.users import Role
from tests.e2e.browser.console import Console, ConsoleUser

pytestmark = pytest.mark.e2e

SignInAs = Callable[[Page, Role], Awaitable[ConsoleUser]]
UNREADABLE = "{{ subject }} (ticket {{ case }})"


async def test_a_template_the_pattern_cannot_read_is_refused_with_the_reason(
    page: Page, console: Console, signed_in_as: SignInAs
) -> None:
    await signed_in_as(page, "admin")
    path = f"{CONSOLE}/email/settings"
    answer = await page.goto(console.at(path))
    assert answer is not None
    assert answer.status == 200, f"{path}: {answer.status}"
    before = console.rt.config.settings.outgoing_subject_template

    template = page.get_by_label(re.compile(r"^Outgoing subject template( \*)?$"))
    await template.fill(UNREADABLE)
    check = page.locator("#subject-check")
    await expect(check).to_contain_text("Printer on floor 3 is broken (ticket 10042)")
    await expect(check).to_contain_text("Not recognised")

    form = page.locator("form", has=template)
    async with page.expect_response(lambda r: r.request.method == "POST") as saved:
        await form.get_by_role("button", name="Save").click()
    assert (await saved.value).status == 422
    await expect(page.get_by_role("alert").first).to_contain_text("replies would open new cases")
    await expect(template).to_have_value(UNREADABLE)  # what was typed stays
    assert console.rt.config.settings.outgoing_subject_template == before
