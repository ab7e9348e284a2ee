"""Failed incoming emails and cases as an operator uses them: a mail a script rule rejected is
replayed from the Failed incoming emails page once the rule is off and becomes a case; the
seeded case's thread shows its acknowledgement with the outbox's delivery state."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Locator, Page, expect

from deploy.local.seed import announce, customer_mail
from services.config.web.templates import CONSOLE
from shared.models.users import Role
from tests.e2e.browser.console import Console, ConsoleUser
from tests.support import API_TOKEN, eventually

pytestmark = pytest.mark.e2e

SignInAs = Callable[[Page, Role], Awaitable[ConsoleUser]]
RULE = "reject_subject"
"""The seeded script rule that sends a subject mentioning the lottery to the desk."""
ADMIN_API = {"Authorization": f"Bearer {API_TOKEN}"}


def _rule_runs(console: Console) -> bool:
    scripts = console.rt.config.processor.incoming_scripts
    return any(s.name == RULE and s.enabled for s in scripts)


async def _set_rule(page: Page, console: Console, *, on: bool) -> None:
    """Enable or disable the rule through the API and wait until the processor's
    configuration has it so."""
    verb = "enable" if on else "disable"
    answer = await page.request.post(
        console.at(f"/scripts/incoming/{RULE}/{verb}"), headers=ADMIN_API
    )
    assert answer.status == 200, await answer.text()

    async def applied() -> bool:
        return _rule_runs(console) == on

    await eventually(applied, what=f"the {RULE} rule {verb}d")


@asynccontextmanager
async def _rule_off(page: Page, console: Console) -> AsyncIterator[None]:
    """The rule disabled for the block, as an administrator would after a false positive;
    on again afterwards (the seeded console has it on, and other tests see that)."""
    await _set_rule(page, console, on=False)
    try:
        yield
    finally:
        await _set_rule(page, console, on=True)


async def _shows(page: Page, url: str, wanted: Locator, what: str) -> None:
    """Open ``url`` again until ``wanted`` is on it (the processor works in the background)."""

    async def there() -> bool:
        await page.goto(url)
        return await wanted.count() > 0

    await eventually(there, what=what)


async def test_a_failed_mail_replayed_from_the_page_becomes_a_case_it_links_to(
    page: Page, console: Console, signed_in_as: SignInAs
) -> None:
    tag = uuid.uuid4().hex[:8]
    sender = f"dana-{tag}@example.net"
    subject = f"Did I win the lottery draw? Invoice {tag}"
    await announce(console.rt, customer_mail(subject, f"Dana Doe <{sender}>"))
    await signed_in_as(page, "operator")

    listing = console.at(f"{CONSOLE}/failed?sender={sender}")
    row = page.get_by_role("row").filter(has_text=subject)
    await _shows(page, listing, row, "the rejected mail on the Failed incoming emails page")
    await expect(row).to_contain_text(f"rejected by script '{RULE}'")
    checkbox = row.get_by_role("checkbox")
    failed_id = await checkbox.get_attribute("value")
    assert failed_id

    async with _rule_off(page, console):
        await checkbox.check()
        async with page.expect_response(lambda r: r.url.endswith("/failed/replay")) as posted:
            await page.get_by_role("button", name="Replay selected").click()
        assert (await posted.value).status < 400
        await expect(row).to_have_count(0)  # no longer waiting

        detail = console.at(f"{CONSOLE}/failed/{failed_id}")
        to_case = page.get_by_role("link", name=re.compile(r"^case \d+$"))
        await _shows(page, detail, to_case, "the replayed mail's page to link to its case")

    await expect(page.locator("dl.facts").first).to_contain_text("replayed")
    number = (await to_case.inner_text()).removeprefix("case ")
    await to_case.click()
    await expect(page).to_have_url(console.at(f"{CONSOLE}/cases/{number}"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Case {number}: {subject}")
    await expect(page.locator("article.msg.in")).to_contain_text(sender)


async def test_a_case_thread_shows_its_acknowledgement_sent_with_a_link_to_the_outbox(
    page: Page, console: Console, signed_in_as: SignInAs
) -> None:
    await signed_in_as(page, "viewer")
    seeded = console.seeded
    answer = await page.goto(console.at(f"{CONSOLE}/cases/{seeded.case}"))
    assert answer is not None and answer.status == 200

    acknowledgement = page.locator("article.msg.out").filter(has_text="Acknowledgement")
    await expect(acknowledgement).to_have_count(1)
    delivery = acknowledgement.get_by_role("link", name="sent", exact=True)
    outbox = f"{CONSOLE}/outbox/{seeded.outbox}"
    await expect(delivery).to_have_attribute("href", outbox)

    await delivery.click()
    await expect(page).to_have_url(console.at(outbox))
    facts = page.locator("dl.facts")
    await expect(facts).to_contain_text("sent")
    await expect(facts).to_contain_text("acknowledgement")
    await expect(facts.get_by_role("link", name=str(seeded.case), exact=True)).to_be_visible()
