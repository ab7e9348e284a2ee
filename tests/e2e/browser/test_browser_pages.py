"""Every console page in a real browser: a viewer is offered no change, nothing is loaded from
another origin, and a phone's width needs no sideways scrolling.

The pages are the navigation (``services.config.web.templates.NAV``) and the detail pages of
``deploy.screenshots.DETAILS`` (on the seeded data), so a page added there is covered here
without being listed. Every page is built: one that answers 404 fails the test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, Request, Response, ViewportSize

from deploy.screenshots import SIGNIN, Shot, pages
from shared.models.users import Role
from tests.e2e.browser.console import Console, ConsoleUser, changes_offered, horizontal_overflow
from tests.secret_scan import SCAN

pytestmark = pytest.mark.e2e

SignInAs = Callable[[Page, Role], Awaitable[ConsoleUser]]
PAGES = [shot for shot in pages() if shot.path != SIGNIN]
PHONE: ViewportSize = {"width": 390, "height": 844}


async def _visit(page: Page, console: Console, shot: Shot, user: ConsoleUser) -> Response:
    """Open the page (its ``{id}``s filled from the seeded data and ``user``); a 404 fails.
    Every page shown goes through the secret scan."""
    path = shot.path.format_map({**console.seeded.ids(), "user": user.name})
    answer = await page.goto(console.at(path))
    assert answer is not None, path
    assert answer.status != 404, f"{path} answers 404"
    SCAN.record(f"the console page {path}", await page.content())
    return answer


@pytest.mark.parametrize("shot", PAGES, ids=[s.name for s in PAGES])
async def test_a_viewer_is_offered_no_change(
    page: Page, console: Console, signed_in_as: SignInAs, shot: Shot
) -> None:
    viewer = await signed_in_as(page, "viewer")
    answer = await _visit(page, console, shot, viewer)
    path = answer.url.removeprefix(console.url).split("?")[0]
    if console.may("viewer", "GET", path):
        assert answer.status == 200, f"{path}: {answer.status}"
    else:
        assert answer.status == 403, f"{path} is not a viewer's but answered {answer.status}"
    refused = [
        f"{method} {target}"
        for method, target in await changes_offered(page)
        if not console.may("viewer", method, target)
    ]
    assert refused == [], f"{path} offers a viewer changes they may not make"


@pytest.mark.parametrize("shot", PAGES, ids=[s.name for s in PAGES])
async def test_nothing_is_loaded_from_another_origin(
    page: Page, console: Console, signed_in_as: SignInAs, shot: Shot
) -> None:
    admin = await signed_in_as(page, "admin")
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    page.on("request", record)
    answer = await _visit(page, console, shot, admin)
    assert answer.status == 200, f"{shot.path}: {answer.status}"
    await page.wait_for_load_state("networkidle")
    foreign = [
        url
        for url in requested
        if not url.startswith(console.origin + "/") and not url.startswith("data:")
    ]
    assert foreign == [], f"{shot.path} loads from another origin"


@pytest.mark.parametrize("shot", PAGES, ids=[s.name for s in PAGES])
async def test_a_phone_needs_no_sideways_scrolling(
    page: Page, console: Console, signed_in_as: SignInAs, shot: Shot
) -> None:
    admin = await signed_in_as(page, "admin")
    await page.set_viewport_size(PHONE)
    answer = await _visit(page, console, shot, admin)
    assert answer.status == 200, f"{shot.path}: {answer.status}"
    assert await horizontal_overflow(page) == 0, f"{shot.path} is wider than 390 px"
