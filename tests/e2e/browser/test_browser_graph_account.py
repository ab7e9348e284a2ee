"""Email configuration → Accounts with protocol GRAPH, as an administrator uses it against the
local Graph stand-in: the form shows only the fields that apply (no host, port or security;
the Graph fields), Test connection signs in and reads the mailbox's folders, and the account
is added without a host. JMAP shows its own fields."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Locator, Page, expect

from deploy.local.graph_standin import GraphStandin
from services.config.web.templates import CONSOLE
from shared.models.users import Role
from tests.e2e.browser.console import Console, ConsoleUser, htmx_settled
from tests.integration.graph.contract_server import (
    APP_SECRET,
    GraphContractServer,
    graph_server,
    graph_standin,
)

__all__ = ["graph_server", "graph_standin"]  # the fixtures used here

pytestmark = pytest.mark.e2e

SignInAs = Callable[[Page, Role], Awaitable[ConsoleUser]]


def _field(page: Page, title: str) -> Locator:
    """The input labelled ``title`` (a required one's label ends with " *")."""
    return page.get_by_label(re.compile(rf"^{re.escape(title)}( \*)?$"))


async def test_a_graph_account_shows_its_fields_tests_and_is_added_without_a_host(
    page: Page,
    console: Console,
    signed_in_as: SignInAs,
    graph_server: GraphContractServer,
    graph_standin: GraphStandin,
) -> None:
    await signed_in_as(page, "admin")
    answer = await page.goto(console.at(f"{CONSOLE}/email/new-account"))
    assert answer is not None and answer.status == 200
    name = f"m365-{uuid.uuid4().hex[:6]}"

    # JMAP first: its URL and its host (filled from the URL when left empty) show.
    await _field(page, "Protocol").select_option("JMAP")
    await expect(_field(page, "JMAP session URL")).to_be_visible()
    await expect(_field(page, "Host")).to_have_attribute("placeholder", "from jmap_url")
    await expect(_field(page, "Graph URL")).not_to_be_visible()
    await htmx_settled(page)

    # Each choice redraws the form: choose, wait for the redraw, then fill.
    await _field(page, "Protocol").select_option("GRAPH")
    await expect(_field(page, "Graph URL")).to_be_visible()
    for gone in ("Host", "Port", "Security", "JMAP session URL"):
        await expect(_field(page, gone)).not_to_be_visible()
    await htmx_settled(page)
    await _field(page, "Authentication method").select_option("oauth2")
    await expect(_field(page, "Client ID")).to_be_visible()
    await expect(_field(page, "Password")).not_to_be_visible()
    await htmx_settled(page)

    await _field(page, "Name").fill(name)
    await _field(page, "Username").fill(graph_server.upn)
    await _field(page, "Graph URL").fill(graph_standin.url)
    await _field(page, "CA file").fill(str(graph_standin.ca_file))
    await _field(page, "Client ID").fill(graph_server.client_id)
    await _field(page, "Client secret").fill("not-the-app-secret")
    await _field(page, "Authority").fill(graph_server.issuer.authority())
    await _field(page, "Token issuer CA file").fill(str(graph_server.issuer.ca_file))

    test = page.locator("form.model-form").get_by_role("button", name="Test connection")
    result = page.locator("#test-result")
    await test.click()
    await expect(result).to_contain_text("Connection failed")

    await _field(page, "Client secret").fill(APP_SECRET)
    await test.click()
    await expect(result).to_contain_text("Connection works.")

    await page.get_by_role("button", name="Add account").click()
    await expect(page).to_have_url(console.at(f"{CONSOLE}/email/accounts/{name}"))
    assert APP_SECRET not in await page.content()
