"""A viewer's API token, made on the viewer's own page, reads through the API but is refused
every change: the role holds on the API as on the pages (which offer a viewer no change
button: test_browser_pages.py)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from services.config.api_tokens import TOKEN_PREFIX
from services.config.web.templates import CONSOLE
from shared.models.users import Role
from tests.e2e.browser.console import Console, ConsoleUser
from tests.secret_scan import SCAN

pytestmark = pytest.mark.e2e

SignInAs = Callable[[Page, Role], Awaitable[ConsoleUser]]


async def test_a_viewers_api_token_reads_but_may_not_change(
    page: Page, console: Console, sign_in_as: SignInAs
) -> None:
    await sign_in_as(page, "viewer")
    await page.goto(console.at(f"{CONSOLE}/me"))
    await page.get_by_label("Label").fill("read-only scripts")
    await page.get_by_role("button", name="Create token").click()
    shown = page.locator("pre.token")
    await expect(shown).to_have_text(re.compile(rf"^\s*{TOKEN_PREFIX}\S+\s*$"))
    token = SCAN.secret("a viewer's API token", (await shown.inner_text()).strip())
    bearer = {"Authorization": f"Bearer {token}"}
    failed = console.seeded.failed

    read = await page.request.get(console.at(f"/failed/{failed}"), headers=bearer)
    assert read.status == 200, await read.text()
    for path in (f"/failed/{failed}/replay", "/scripts/incoming/reject_subject/disable"):
        answer = await page.request.post(console.at(path), headers=bearer)
        assert answer.status == 403, f"POST {path}: {answer.status} {await answer.text()}"
    scripts = console.rt.config.processor.incoming_scripts
    assert any(s.name == "reject_subject" and s.enabled for s in scripts)
