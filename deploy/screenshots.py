"""``make screenshots``: every console page at 1280 and 390 px wide, as
``docs/screenshots/<page>-<width>.png``.

It starts a private stack (MongoDB stand-in, its own RabbitMQ vhost, the SMTP sink, the config
service with the processor and sender, served over HTTP), seeds a little data
(``deploy.local.seed``), signs in as an admin in Debian's headless Chromium and shoots the
sign-in page, every page of the navigation (``services.config.web.templates.NAV``) and the
detail pages in :data:`DETAILS`. A page that answers an error is named and fails the command
(every page is built); everything it started is stopped and removed afterwards.

    .venv/bin/python -m deploy.screenshots [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, async_playwright

from deploy.local.chromium import launch_chromium
from deploy.local.console import serve_console
from deploy.local.seed import Seeded, SmtpTarget, seed
from deploy.local.servers import (
    create_vhost,
    delete_vhost,
    make_cert,
    start_mongodb,
    start_smtp_sink,
)
from services.config.service import build as config_service
from services.config.users import add_user
from services.config.web.templates import CONSOLE, NAV
from services.processor.service import build as processor_service
from services.sender.service import build as sender_service
from shared.service import Stack
from shared.settings import SharedSettings

WIDTHS = (1280, 390)
"""A desktop and a phone (an iPhone 12-15's CSS width)."""
HEIGHT = 900
"""The viewport's height; the shot is the whole page, however long."""
OUT = Path("docs/screenshots")
SIGNIN = f"{CONSOLE}/signin"

DETAILS: tuple[tuple[str, str], ...] = (
    ("email-settings", f"{CONSOLE}/email/settings"),
    ("email-addresses", f"{CONSOLE}/email/addresses"),
    ("email-scripts", f"{CONSOLE}/email/scripts"),
    ("email-account", f"{CONSOLE}/email/accounts/{{account}}"),
    ("email-new-account", f"{CONSOLE}/email/new-account"),
    ("email-credentials", f"{CONSOLE}/email/credentials"),
    ("email-credential", f"{CONSOLE}/email/credentials/{{credential}}"),
    ("email-new-credential", f"{CONSOLE}/email/new-credential"),
    ("failed-mail", f"{CONSOLE}/failed/{{failed}}"),
    ("case", f"{CONSOLE}/cases/{{case}}"),
    ("outbox-mail", f"{CONSOLE}/outbox/{{outbox}}"),
    ("user", f"{CONSOLE}/users/{{user}}"),
    ("me", f"{CONSOLE}/me"),
)
"""Pages beyond the navigation: tabs and one detail page per list, by name and path template
(``{account}``, ``{credential}``, ``{case}``, ``{failed}``, ``{outbox}``, ``{user}`` are the
seeded ids)."""

NAV_PATHS = tuple(href for _, href, _ in NAV)
ADMIN = "admin"


@dataclass(frozen=True)
class Shot:
    """One page to photograph: its file name stem and its path."""

    name: str
    path: str


def page_name(path: str) -> str:
    """A page's file name stem from its path: ``/console/email/accounts`` → ``email-accounts``."""
    rest = path.removeprefix(CONSOLE).strip("/")
    return re.sub(r"[^a-z0-9]+", "-", rest.lower()).strip("-") or "home"


def file_name(shot: Shot, width: int) -> str:
    """``<page>-<width>.png``."""
    return f"{shot.name}-{width}.png"


def pages(nav: Iterable[str] = NAV_PATHS) -> list[Shot]:
    """The sign-in page, every navigation page and every detail page (paths still holding
    their ``{id}`` placeholders), each path once and in that order."""
    found = [Shot("signin", SIGNIN), *(Shot(page_name(href), href) for href in nav)]
    found += [Shot(name, template) for name, template in DETAILS]
    unique: dict[str, Shot] = {}
    for shot in found:
        unique.setdefault(shot.path, shot)
    return list(unique.values())


def shots(ids: Mapping[str, str], nav: Iterable[str] = NAV_PATHS) -> list[Shot]:
    """:func:`pages` with ``ids`` filled in."""
    return [Shot(shot.name, shot.path.format_map(ids)) for shot in pages(nav)]


async def sign_in(page: Page, base_url: str, user: str, password: str) -> None:
    """Sign in through the sign-in form."""
    await page.goto(f"{base_url}{SIGNIN}")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r".*/console/(?!signin).*"))


async def photograph(
    browser: Browser, base_url: str, password: str, todo: list[Shot], out: Path
) -> tuple[list[Path], list[str]]:
    """Every shot at every width; the files written and the pages skipped (with why)."""
    written: list[Path] = []
    skipped: list[str] = []
    for width in WIDTHS:
        context = await browser.new_context(viewport={"width": width, "height": HEIGHT})
        page = await context.new_page()
        try:
            for shot in todo:
                if shot.path != SIGNIN and "signin" in page.url:
                    await sign_in(page, base_url, ADMIN, password)
                answer = await page.goto(f"{base_url}{shot.path}")
                status = answer.status if answer else 0
                if status >= 400:
                    if width == WIDTHS[0]:
                        skipped.append(f"{shot.path} ({status})")
                    continue
                target = out / file_name(shot, width)
                await page.screenshot(path=str(target), full_page=True)
                written.append(target)
                if shot.path == SIGNIN:
                    await sign_in(page, base_url, ADMIN, password)
        finally:
            await context.close()
    return written, skipped


@asynccontextmanager
async def private_stack(state_dir: Path) -> AsyncIterator[tuple[Stack, str, SmtpTarget]]:
    """A stack of its own (config, processor, sender) on private servers, served over HTTP:
    the stack, its base URL and the SMTP sink it sends to."""
    async with AsyncExitStack() as stack:
        mongo = await asyncio.to_thread(start_mongodb, state_dir)
        stack.callback(mongo.stop)
        vhost = f"mailroom-screenshots-{uuid.uuid4().hex[:8]}"
        broker_url = await asyncio.to_thread(create_vhost, vhost)
        stack.callback(delete_vhost, vhost)
        cert, key = make_cert(state_dir / "tls")
        sink_password = secrets.token_urlsafe(16)
        sink = await asyncio.to_thread(
            start_smtp_sink, state_dir, {"support": sink_password}, cert, key
        )
        stack.callback(sink.stop)
        settings = SharedSettings(
            broker_url=broker_url,
            mongodb_url=mongo.url,
            database="screenshots",
            instance_id="screenshots",
            secret_key=secrets.token_urlsafe(32),
            api_token=secrets.token_urlsafe(32),
            log_json=False,
            log_level="WARNING",
        )
        services = Stack([config_service, processor_service, sender_service], settings)
        await services.start()
        stack.push_async_callback(services.stop)
        url = await stack.enter_async_context(serve_console(services))
        yield services, url, SmtpTarget(sink.port, "support", sink_password, cert)


async def take(state_dir: Path, out: Path) -> tuple[list[Path], list[str]]:
    """Seed a private stack whose servers keep their files in ``state_dir`` and write every
    page's screenshots to ``out``; the files written and the pages skipped."""
    async with private_stack(state_dir) as (stack, url, smtp):
        token = stack.rt.settings.api_token
        assert token is not None
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
            seeded: Seeded = await seed(stack.rt, api, smtp)
        password = secrets.token_urlsafe(18)
        await add_user(stack.rt, name=ADMIN, role="admin", password=password, who="screenshots")
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                todo = shots({**seeded.ids(), "user": ADMIN})
                return await photograph(browser, url, password, todo, out)
            finally:
                await browser.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--out DIR`` (default ``docs/screenshots``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="mailroom-screenshots-"))
    try:
        written, skipped = asyncio.run(take(state_dir, args.out))
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    for path in written:
        print(f"wrote {path}")
    for page in skipped:
        print(f"failed {page}", file=sys.stderr)
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
