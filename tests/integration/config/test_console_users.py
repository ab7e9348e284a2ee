"""The Users page (admins) and Your account page (everyone) as people use them, against the
real config service and MongoDB stand-in: add, set role, reset password, unlock, delete after
a confirmation; change one's own password; create (shown once) and revoke one's own tokens."""

from __future__ import annotations

import re

import httpx

from services.config.api_tokens import create_token, owner_of
from services.config.users import add_user, check_password
from shared.service import Stack
from tests.integration.config.test_console_desk import PASSWORD as SIGNED_IN_PASSWORD
from tests.integration.config.test_console_desk import signed_in
from tests.secret_scan import SCAN
from tests.support import console_client, sign_in

PASSWORD = SCAN.secret("password of a console user", "console-users-password-0123")
NEW = SCAN.secret("password of a console user", "console-users-new-password-4567")
TOKEN = re.compile(r'<pre class="token">(mrt_[^<]+)</pre>')


def flash(answer: httpx.Response) -> str:
    from urllib.parse import unquote

    return unquote(answer.headers.get("set-cookie", ""))


async def test_an_admin_adds_changes_and_deletes_users(config_stack: Stack) -> None:
    rt = config_stack.rt
    async with signed_in(config_stack, "admin") as (browser, csrf):
        added = await browser.post(
            "/console/users",
            data={"csrf_token": csrf, "name": "Olga", "role": "operator", "password": PASSWORD},
        )
        assert added.status_code == 303 and "User olga added as operator" in flash(added)
        page = await browser.get("/console/users")
        assert page.status_code == 200 and ">olga<" in page.text and "Add a user" in page.text

        refused = await browser.post(
            "/console/users",
            data={"csrf_token": csrf, "name": "x", "role": "boss", "password": PASSWORD},
        )
        assert refused.status_code == 422 and "role" in refused.text
        weak = await browser.post(
            "/console/users", data={"csrf_token": csrf, "name": "y", "role": "viewer"}
        )
        assert weak.status_code == 422 and "password" in weak.text
        taken = await browser.post(
            "/console/users",
            data={"csrf_token": csrf, "name": "olga", "role": "viewer", "password": PASSWORD},
        )
        assert taken.status_code == 409

        role = await browser.post(
            "/console/users/olga/role", data={"csrf_token": csrf, "role": "viewer"}
        )
        assert role.status_code == 303 and (await rt.store.users.get(name="olga")).role == "viewer"  # type: ignore[union-attr]
        reset = await browser.post(
            "/console/users/olga/password", data={"csrf_token": csrf, "password": NEW}
        )
        assert reset.status_code == 303
        assert (await check_password(rt, name="olga", password=NEW)).name == "olga"

        token = await create_token(rt, user="olga", label="monitoring", who="test")
        shown = await browser.get("/console/users/olga")
        assert shown.status_code == 200 and "monitoring" in shown.text
        assert "user_added" in shown.text and "role_changed" in shown.text
        assert token.token not in shown.text
        revoked = await browser.post(
            f"/console/users/olga/tokens/{token.id}/revoke", data={"csrf_token": csrf}
        )
        assert revoked.status_code == 303 and await owner_of(rt, token.token) is None

        asked = await browser.post("/console/users/olga/delete", data={"csrf_token": csrf})
        assert asked.status_code == 200 and 'name="confirmed" value="yes"' in asked.text
        assert await rt.store.users.get(name="olga") is not None
        gone = await browser.post(
            "/console/users/olga/delete", data={"csrf_token": csrf, "confirmed": "yes"}
        )
        assert gone.status_code == 303 and await rt.store.users.get(name="olga") is None

        last = await browser.post(
            "/console/users/admin/delete", data={"csrf_token": csrf, "confirmed": "yes"}
        )
        assert last.status_code == 422 and "last admin" in last.text
        unsigned = await browser.post("/console/users/admin/role", data={"role": "viewer"})
        assert unsigned.status_code == 403


async def test_only_an_admin_sees_the_users_page(config_stack: Stack) -> None:
    async with signed_in(config_stack, "operator") as (browser, csrf):
        page = await browser.get("/console/health")
        assert 'href="/console/users"' not in page.text and 'href="/console/me"' in page.text
        assert (await browser.get("/console/users")).status_code == 403
        added = await browser.post(
            "/console/users",
            data={"csrf_token": csrf, "name": "eve", "role": "admin", "password": PASSWORD},
        )
        assert added.status_code == 403
    assert await config_stack.rt.store.users.get(name="eve") is None


async def test_anyone_changes_their_password_and_keeps_their_tokens_to_themselves(
    config_stack: Stack,
) -> None:
    rt = config_stack.rt
    async with signed_in(config_stack, "viewer") as (browser, csrf):
        made = await browser.post(
            "/console/me/tokens", data={"csrf_token": csrf, "label": "case system"}
        )
        assert made.status_code == 201
        found = TOKEN.search(made.text)
        assert found and "case system" in made.text
        token = found.group(1)
        owner = await owner_of(rt, token)
        assert owner is not None and (owner.user, owner.role) == ("viewer", "viewer")
        page = await browser.get("/console/me")
        assert "case system" in page.text and token not in page.text  # shown once only
        [listed] = await rt.store.api_tokens.of_user(user="viewer")

        revoked = await browser.post(
            f"/console/me/tokens/{listed.id}/revoke", data={"csrf_token": csrf}
        )
        assert revoked.status_code == 303 and await owner_of(rt, token) is None

        await add_user(rt, name="other", role="viewer", password=PASSWORD, who="test")
        async with console_client(config_stack) as other:
            other_csrf = await sign_in(other, "other", PASSWORD)
            theirs = await other.post("/console/me/tokens", data={"csrf_token": other_csrf})
            [their_token] = await rt.store.api_tokens.of_user(user="other")
            assert theirs.status_code == 201
        stolen = await browser.post(
            f"/console/me/tokens/{their_token.id}/revoke", data={"csrf_token": csrf}
        )
        assert stolen.status_code == 404

        wrong = await browser.post(
            "/console/me/password",
            data={
                "csrf_token": csrf,
                "current_password": NEW,
                "new_password": NEW,
                "repeat_password": NEW,
            },
        )
        assert wrong.status_code == 422 and "current password" in wrong.text
        differs = await browser.post(
            "/console/me/password",
            data={
                "csrf_token": csrf,
                "current_password": SIGNED_IN_PASSWORD,
                "new_password": NEW,
                "repeat_password": PASSWORD,
            },
        )
        assert differs.status_code == 422 and "repeat_password" in differs.text
        changed = await browser.post(
            "/console/me/password",
            data={
                "csrf_token": csrf,
                "current_password": SIGNED_IN_PASSWORD,
                "new_password": NEW,
                "repeat_password": NEW,
            },
        )
        assert changed.status_code == 303
        assert (await browser.get("/console/me")).status_code == 200  # still signed in
        assert (await check_password(rt, name="viewer", password=NEW)).name == "viewer"
