"""What a browser test knows about the console it drives: its URL, its stack (to add users and
read the store), the seeded data, who may post where; and the browser-side probes (forms a
page offers, its horizontal overflow)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from playwright.async_api import Cookie, Page

from deploy.local.seed import Seeded
from services.config.api.main import create_api
from services.config.users import add_user
from services.config.web.templates import CONSOLE
from shared.models.users import ROLES, Role, allows
from shared.runtime import Runtime
from shared.service import Stack
from shared.settings import SharedSettings
from tests.integration.config.api_routes import page_roles
from tests.secret_scan import SCAN

PASSWORD = SCAN.secret("password of a browser-test user", "browser-user-password-0123")
SIGNIN = f"{CONSOLE}/signin"

_CHANGES = """() => {
  const here = (url) => new URL(url, location.href).pathname;
  const posts = [...document.querySelectorAll('form')]
    .filter((f) => (f.getAttribute('method') || 'get').toLowerCase() === 'post')
    .map((f) => ['POST', here(f.getAttribute('action') || location.href)]);
  const buttons = [...document.querySelectorAll('[formaction]')]
    .filter((b) => (b.getAttribute('formmethod') || b.form?.method || '').toLowerCase() === 'post')
    .map((b) => ['POST', here(b.getAttribute('formaction'))]);
  const verbs = ['post', 'put', 'patch', 'delete'];
  const target = (e, verb) =>
    here(e.getAttribute(`hx-${verb}`) ?? e.getAttribute(`data-hx-${verb}`) ?? '');
  const htmx = verbs.flatMap((verb) =>
    [...document.querySelectorAll(`[hx-${verb}],[data-hx-${verb}]`)]
      .map((e) => [verb.toUpperCase(), target(e, verb)]));
  return [...posts, ...buttons, ...htmx];
}"""

_OVERFLOW = """() => {
  const root = document.documentElement;
  return root.scrollWidth - root.clientWidth;
}"""


@dataclass(frozen=True)
class ConsoleUser:
    """A user a test made; ``password`` signs them in."""

    name: str
    role: Role
    password: str = PASSWORD


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


@dataclass
class Console:
    """The console of the browser tests, served at ``url`` from ``stack`` with ``seeded``
    data. Tests share it: each makes its own users and names what it adds uniquely."""

    url: str
    stack: Stack
    seeded: Seeded
    _roles: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _sessions: dict[Role, tuple[ConsoleUser, list[Cookie]]] = field(
        default_factory=dict, repr=False
    )

    @property
    def rt(self) -> Runtime:
        """The stack's runtime (store, broker, settings)."""
        return self.stack.rt

    @cached_property
    def origin(self) -> str:
        """``scheme://host:port`` of the console."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def at(self, path: str) -> str:
        """The absolute URL of a console path."""
        return self.url + path

    async def make_user(self, role: Role) -> ConsoleUser:
        """A new user with ``role`` and a name of its own."""
        user = ConsoleUser(name=f"{role}-{uuid.uuid4().hex[:8]}", role=role)
        await add_user(self.rt, name=user.name, role=role, password=user.password, who="test")
        return user

    async def sign_in(self, page: Page, user: ConsoleUser) -> None:
        """Sign ``user`` in through the sign-in form, as a person would."""
        await page.goto(self.at(SIGNIN))
        await page.get_by_label("User name").fill(user.name)
        await page.get_by_label("Password").fill(user.password)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(re.escape(self.url) + r"/console/(?!signin)"))

    async def sign_in_as(self, page: Page, role: Role) -> ConsoleUser:
        """Make a user with ``role`` and sign them in on ``page``."""
        user = await self.make_user(role)
        await self.sign_in(page, user)
        return user

    async def signed_in_as(self, page: Page, role: Role) -> ConsoleUser:
        """Put the session of the session-wide user with ``role`` into ``page``'s context:
        signed in once per test session, so a test that only looks at pages does not pay
        for two Argon2 hashes. Such a user must not sign out (use :meth:`sign_in_as`)."""
        if role not in self._sessions:
            browser = page.context.browser
            assert browser is not None
            context = await browser.new_context()
            try:
                user = await self.sign_in_as(await context.new_page(), role)
                cookies = await context.cookies()
            finally:
                await context.close()
            self._sessions[role] = (user, cookies)
        user, cookies = self._sessions[role]
        await page.context.add_cookies(
            [{"name": c["name"], "value": c["value"], "url": self.url} for c in cookies]
        )
        return user

    def page_role(self, method: str, path: str) -> str | None:
        """The role a console route needs ("" when none; None when no route matches)."""
        if not self._roles:
            self._roles.update(page_roles(create_api(Runtime(SharedSettings()))))
        for (verb, template), role in self._roles.items():
            if verb == method and _pattern(template).match(path):
                return role
        return None

    def may(self, role: Role, method: str, path: str) -> bool:
        """Whether a user with ``role`` may send ``method`` to ``path``."""
        needed = self.page_role(method, path)
        return needed == "" or any(r == needed and allows(role, r) for r in ROLES)


async def changes_offered(page: Page) -> list[tuple[str, str]]:
    """(method, path) of every change the page's forms and htmx elements would send: POST,
    PUT, PATCH or DELETE."""
    found: list[list[str]] = await page.evaluate(_CHANGES)
    return [(method, path) for method, path in found]


async def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when it fits)."""
    excess: int = await page.evaluate(_OVERFLOW)
    return excess


async def htmx_settled(page: Page) -> None:
    """Wait until htmx has finished every request, swap and settle: content it swapped in
    reacts to events only once processed, so a choice made earlier is lost."""
    await page.wait_for_function(
        "() => !document.querySelector("
        "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )
