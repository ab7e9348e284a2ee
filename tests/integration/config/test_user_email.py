"""A console user's optional mail address: set by an admin for anyone (API, CLI, Users pages)
and by users for themselves (``/me/email``, Your account), validated, shown, and where Test
Account sends when no address is given."""

from __future__ import annotations

import asyncio
import json
from html import unescape

import httpx

from deploy.local.servers import Dovecot, SmtpSink
from services.config.api_tokens import create_token
from services.config.users import add_user
from shared.service import Stack
from tests.integration.config.test_account_options_api import imap_body
from tests.integration.config.test_console_desk import signed_in
from tests.secret_scan import SCAN
from tests.support import api_client
from tests.support_cli import mailroom, settings_cli_env

PASSWORD = SCAN.secret("password of a console user", "user-email-password-0123")


async def test_admins_set_anyones_email_and_users_their_own(
    api: httpx.AsyncClient, config_stack: Stack
) -> None:
    body = {"name": "fay", "role": "operator", "password": PASSWORD, "email": "not mail"}
    refused = await api.post("/users", json=body)
    assert refused.status_code == 422 and "email:" in refused.text
    created = await api.post("/users", json=body | {"email": " fay@example.org "})
    assert created.status_code == 201 and created.json()["email"] == "fay@example.org"

    wrong = await api.put("/users/fay/email", json={"email": "fay@"})
    assert wrong.status_code == 422 and "email:" in wrong.text
    changed = await api.put("/users/fay/email", json={"email": "fay@example.com"})
    assert changed.status_code == 200 and changed.json()["email"] == "fay@example.com"
    listed = {u["name"]: u for u in (await api.get("/users")).json()}
    assert listed["fay"]["email"] == "fay@example.com"

    token = await create_token(config_stack.rt, user="fay", who="test")
    async with api_client(config_stack, SCAN.secret("a user's API token", token.token)) as fay:
        own = await fay.put("/me/email", json={"email": "f@example.net"})
        assert own.status_code == 200 and own.json()["email"] == "f@example.net"
        cleared = await fay.put("/me/email", json={"email": ""})
        assert cleared.status_code == 200 and cleared.json()["email"] is None
        others = await fay.put("/users/fay/email", json={"email": "x@example.org"})
        assert others.status_code == 403  # an operator is no admin
    # The service token belongs to no user, so it has no own address.
    assert (await api.put("/me/email", json={"email": "a@example.org"})).status_code == 403
    audit = (await api.get("/users/fay/audit")).json()
    assert [(e["action"], e["who"]) for e in audit if e["action"] == "email_changed"] == [
        ("email_changed", "fay"),
        ("email_changed", "fay"),
        ("email_changed", "api:admin"),
    ]


async def test_test_account_sends_to_the_signed_in_users_email(
    config_stack: Stack, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    rt = config_stack.rt
    await add_user(rt, name="gus", role="admin", password=PASSWORD, who="test")
    token = SCAN.secret("a user's API token", (await create_token(rt, user="gus", who="t")).token)
    async with api_client(config_stack, token) as gus:
        assert (await gus.post("/accounts", json=imap_body(dovecot, smtp_sink))).is_success
        none = await gus.post("/accounts/sales/test-mail", json={})
        assert none.status_code == 422
        assert "to: user 'gus' has no email" in none.text and "email" in none.text
        await gus.put("/me/email", json={"email": "gus@example.org"})
        sent = (await gus.post("/accounts/sales/test-mail", json={})).json()
        assert sent["test_mail"].startswith("sent to gus@example.org: 250 "), sent
        given = (await gus.post("/accounts/sales/test-mail", json={"to": "h@example.org"})).json()
        assert given["test_mail"].startswith("sent to h@example.org: 250 "), given

    async with signed_in(config_stack, "admin") as (browser, csrf):
        hx = {"HX-Request": "true"}
        url = "/console/email/accounts/sales/test-mail"
        refused = await browser.post(url, data={"csrf_token": csrf, "to": ""}, headers=hx)
        assert "no test mail sent: to: user 'admin' has no email" in unescape(refused.text)
        saved = await browser.post("/console/me/email", data={"csrf_token": csrf, "email": "x"})
        assert saved.status_code == 422 and "email" in saved.text
        saved = await browser.post(
            "/console/me/email", data={"csrf_token": csrf, "email": "admin@example.org"}
        )
        assert saved.status_code == 303
        assert 'value="admin@example.org"' in (await browser.get("/console/me")).text
        sent = await browser.post(url, data={"csrf_token": csrf, "to": ""}, headers=hx)
        assert "sent to admin@example.org: 250" in sent.text

        # An admin sets another user's email on the user's page; the Users page shows it.
        other = await browser.post(
            "/console/users/gus/email", data={"csrf_token": csrf, "email": "gus@example.net"}
        )
        assert other.status_code == 303
        assert "gus@example.net" in (await browser.get("/console/users/gus")).text
        assert "gus@example.net" in (await browser.get("/console/users")).text
        added = await browser.post(
            "/console/users",
            data={
                "csrf_token": csrf,
                "name": "ida",
                "role": "viewer",
                "password": PASSWORD,
                "email": "ida@example.org",
            },
        )
        assert added.status_code == 303
    ida = await rt.store.users.get(name="ida")
    assert ida is not None and ida.email == "ida@example.org"


async def test_users_email_and_test_mail_from_the_cli(
    config_stack: Stack, dovecot: Dovecot, smtp_sink: SmtpSink, api: httpx.AsyncClient
) -> None:
    env = settings_cli_env(config_stack.rt.settings)

    def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
        done = mailroom(*args, env=env, stdin=stdin)
        return done.returncode, done.stdout + done.stderr

    code, out = await asyncio.to_thread(
        cli, "users", "add", "jo", "--email", "bad", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 1 and "email:" in out
    code, out = await asyncio.to_thread(
        cli, "users", "add", "jo", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 0, out
    assert (await api.post("/accounts", json=imap_body(dovecot, smtp_sink))).is_success

    code, out = await asyncio.to_thread(cli, "accounts", "test-mail", "sales", "--user", "jo")
    assert code == 1 and "to: user 'jo' has no email" in out
    code, out = await asyncio.to_thread(cli, "users", "set-email", "jo", "jo@example.org")
    assert code == 0 and "jo: email jo@example.org" in out, out
    code, out = await asyncio.to_thread(cli, "users", "list", "--json")
    assert [u["email"] for u in json.loads(out) if u["name"] == "jo"] == ["jo@example.org"]
    code, out = await asyncio.to_thread(
        cli, "accounts", "test-mail", "sales", "--user", "jo", "--json"
    )
    assert code == 0, out
    assert json.loads(out)[0]["test_mail"].startswith("sent to jo@example.org: 250 ")
    code, out = await asyncio.to_thread(cli, "users", "set-email", "jo", "")
    assert code == 0 and "jo: email none" in out
