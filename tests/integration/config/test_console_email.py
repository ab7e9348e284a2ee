"""The console's Email configuration pages as a person uses them, on the real config service,
MongoDB stand-in and Dovecot: accounts (test before and after saving, copy, secrets write-only),
settings (a template the pattern cannot read is refused on the page), addresses, scripts."""

from __future__ import annotations

import contextlib
import imaplib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from deploy.local.servers import Dovecot, SmtpSink
from services.config.users import add_user
from shared.models.messages import utcnow
from shared.models.users import Role
from shared.service import Stack
from shared.store.account_health import AccountHealthRepo
from tests.secret_scan import SCAN
from tests.support import console_client, sign_in

pytestmark = pytest.mark.integration

PASSWORD = SCAN.secret("password of a console user", "console-email-password-0123")
WRONG = SCAN.secret("password of a mailbox", "not-alices-password-4711")
RIGHT = SCAN.secret("password of a mailbox", "alicepw")
SMTP_PASSWORD = SCAN.secret("password of an SMTP login", "bobpw")


@contextlib.asynccontextmanager
async def signed_in(stack: Stack, role: Role) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A console client signed in as a new user ``role`` with that role, and its CSRF token."""
    await add_user(stack.rt, name=role, role=role, password=PASSWORD, who="test")
    async with console_client(stack) as client:
        yield client, await sign_in(client, role, PASSWORD)


def imap_form(dovecot: Dovecot, csrf: str, password: str, **extra: str) -> dict[str, str]:
    """The new-account form as a person fills it in for alice's mailbox on the Dovecot."""
    return {
        "csrf_token": csrf,
        "saved": "",
        "name": "support",
        "protocol": "IMAP",
        "security": "STARTTLS",
        "host": "127.0.0.1",
        "port": str(dovecot.imap_port),
        "verify_tls": "on",
        "ca_file": str(dovecot.cert_file),
        "auth": "basic",
        "username": "alice",
        "password": password,
        "folder": "INBOX",
        "start_position": "all",
        "after_fetch": "inherit",
        "debug": "inherit",
        "enabled": "on",
        **extra,
    }


async def test_an_account_is_tested_added_fixed_and_copied(
    config_stack: Stack, dovecot: Dovecot
) -> None:
    dovecot.reset_mailbox("alice")
    async with signed_in(config_stack, "admin") as (browser, csrf):
        page = await browser.get("/console/email/new-account")
        assert page.status_code == 200
        assert 'placeholder="993"' in page.text  # IMAPS, the default protocol's port

        form = imap_form(dovecot, csrf, WRONG)
        tested = await browser.post(
            "/console/email/account-draft/test", data=form, headers={"HX-Request": "true"}
        )
        assert tested.status_code == 200 and "Connection failed" in tested.text
        assert "AUTHENTICATIONFAILED" in tested.text  # Dovecot's own words

        added = await browser.post("/console/email/new-account", data=form)
        assert added.status_code == 303, added.text
        assert added.headers["location"] == "/console/email/accounts/support"
        saved = await browser.post(
            "/console/email/accounts/support/test", data={"csrf_token": csrf}
        )
        assert "AUTHENTICATIONFAILED" in saved.text

        # Fix the password: an empty secret input keeps the stored one, a typed one replaces it.
        edit = await browser.get("/console/email/accounts/support")
        assert ">set<" in edit.text and "Replace" in edit.text
        fixed = imap_form(dovecot, csrf, RIGHT, saved="support")
        tested = await browser.post("/console/email/account-draft/test", data=fixed)
        assert "Connection works" in tested.text, tested.text
        changed = await browser.post("/console/email/accounts/support", data=fixed)
        assert changed.status_code == 303, changed.text
        kept = await browser.post(
            "/console/email/accounts/support", data=imap_form(dovecot, csrf, "", saved="support")
        )
        assert kept.status_code == 303, kept.text
        ok = await browser.post("/console/email/accounts/support/test", data={"csrf_token": csrf})
        assert "Connection works" in ok.text and "0 messages" in ok.text

        copied = await browser.post(
            "/console/email/accounts/support/copy",
            data={"csrf_token": csrf, "new_name": "support-2"},
        )
        assert copied.headers["location"] == "/console/email/accounts/support-2"
        copy = config_stack.rt.config.accounts["support-2"]
        assert copy.host == "127.0.0.1" and not copy.enabled
        listing = await browser.get("/console/email/accounts")
        assert "support-2" in listing.text and "inactive" in listing.text
        taken = await browser.post(
            "/console/email/accounts/support/copy",
            data={"csrf_token": csrf, "new_name": "support-2"},
        )
        follow = await browser.get(taken.headers["location"])
        assert "Not copied" in follow.text and "exists" in follow.text

        settings = (await browser.get("/console/email/settings")).text
        borrow = re.search(r'<select id="f-credentials_from"[^>]*>(.*?)</select>', settings, re.S)
        assert borrow and '<option value="support-2">' in borrow.group(1)

        for page_path in ("/console/email/accounts", "/console/email/accounts/support"):
            html = (await browser.get(page_path)).text
            assert RIGHT not in html and WRONG not in html


async def test_the_form_names_the_field_it_refuses_and_keeps_what_was_typed(
    config_stack: Stack, dovecot: Dovecot
) -> None:
    async with signed_in(config_stack, "admin") as (browser, csrf):
        form = imap_form(dovecot, csrf, RIGHT, port="99999", host="mail.example.org")
        refused = await browser.post("/console/email/new-account", data=form)
        assert refused.status_code == 422
        error = re.search(r'f-port".*?field-error[^>]*>([^<]*)<', refused.text, re.S)
        assert error and "65535" in error.group(1)
        assert 'value="mail.example.org"' in refused.text
        assert RIGHT not in refused.text  # a typed secret is not sent back
        assert "support" not in config_stack.rt.config.accounts


async def test_the_form_shows_the_fields_of_the_chosen_protocol_and_auth(
    config_stack: Stack, dovecot: Dovecot
) -> None:
    async with signed_in(config_stack, "admin") as (browser, csrf):
        imap = await browser.post("/console/email/account-draft", data=imap_form(dovecot, csrf, ""))
        assert 'name="folder"' in imap.text and 'name="client_id"' not in imap.text
        form = imap_form(dovecot, csrf, "", protocol="POP3S", auth="oauth2")
        pop = await browser.post("/console/email/account-draft", data=form)
        assert 'name="folder"' not in pop.text and 'name="security"' not in pop.text
        assert 'name="client_id"' in pop.text and 'name="password"' not in pop.text
        assert 'placeholder="995"' in pop.text


async def test_load_folders_offers_the_servers_folders(
    config_stack: Stack, dovecot: Dovecot
) -> None:
    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30) as imap:
        imap.login("alice", RIGHT)
        imap.create('"Support Queue"')  # NO when it exists: fine
    async with signed_in(config_stack, "admin") as (browser, csrf):
        form = imap_form(dovecot, csrf, RIGHT, folder="Support Queue")
        page = await browser.post("/console/email/account-draft/folders", data=form)
        picker = re.search(r'<select id="f-folder" name="folder">(.*?)</select>', page.text, re.S)
        assert picker, page.text
        options = re.findall(r'<option value="([^"]*)"', picker.group(1))
        assert options[0] == "INBOX" and "Support Queue" in options
        assert '<option value="Support Queue" selected>' in picker.group(1)
        wrong = await browser.post(
            "/console/email/account-draft/folders", data=imap_form(dovecot, csrf, WRONG)
        )
        assert "folders not listed" in wrong.text and "AUTHENTICATIONFAILED" in wrong.text
        assert 'name="folder" value="INBOX"' in wrong.text  # the text input stays


async def test_a_viewer_reads_and_an_operator_activates(
    config_stack: Stack, dovecot: Dovecot
) -> None:
    async with signed_in(config_stack, "admin") as (admin, csrf):
        added = await admin.post("/console/email/new-account", data=imap_form(dovecot, csrf, RIGHT))
        assert added.status_code == 303
    async with signed_in(config_stack, "viewer") as (viewer, csrf):
        for path in ("accounts", "accounts/support", "settings", "addresses", "scripts"):
            page = await viewer.get(f"/console/email/{path}")
            assert page.status_code == 200, path
            forms = re.findall(r'<form method="post" action="([^"]+)"', page.text)
            assert forms == ["/console/signout"], (path, forms)
            assert "<input" not in page.text.split("</header>", 1)[1], path
        refused = await viewer.post(
            "/console/email/accounts/support/deactivate", data={"csrf_token": csrf}
        )
        assert refused.status_code == 403
    async with signed_in(config_stack, "operator") as (operator, csrf):
        page = await operator.get("/console/email/accounts/support")
        assert (
            "Deactivate" in page.text and "Copy" not in page.text and 'name="host"' not in page.text
        )
        done = await operator.post(
            "/console/email/accounts/support/deactivate", data={"csrf_token": csrf, "back": "list"}
        )
        assert done.headers["location"] == "/console/email/accounts"
        assert not config_stack.rt.config.accounts["support"].enabled
        audit = await config_stack.rt.store.db["config_log"].find_one(
            {"key": "support"}, sort=[("_id", -1)]
        )
        assert audit is not None and audit["who"] == "operator"
        refused = await operator.post(
            "/console/email/accounts/support/delete", data={"csrf_token": csrf}
        )
        assert refused.status_code == 403


async def test_posts_without_the_csrf_token_are_refused(
    config_stack: Stack, dovecot: Dovecot
) -> None:
    async with signed_in(config_stack, "admin") as (browser, csrf):
        form = imap_form(dovecot, csrf, RIGHT)
        del form["csrf_token"]
        refused = await browser.post("/console/email/new-account", data=form)
        assert refused.status_code == 403 and "did not come from this console" in refused.text
        assert "support" not in config_stack.rt.config.accounts


async def test_deleting_asks_first(config_stack: Stack, dovecot: Dovecot) -> None:
    async with signed_in(config_stack, "admin") as (browser, csrf):
        await browser.post("/console/email/new-account", data=imap_form(dovecot, csrf, RIGHT))
        ask = await browser.get("/console/email/accounts/support/delete")
        assert "Delete account support?" in ask.text
        gone = await browser.post(
            "/console/email/accounts/support/delete", data={"csrf_token": csrf}
        )
        assert gone.headers["location"] == "/console/email/accounts"
        assert "support" not in config_stack.rt.config.accounts


async def test_a_template_the_pattern_cannot_read_is_refused_with_the_reason(
    config_stack: Stack,
) -> None:
    rt = config_stack.rt
    async with signed_in(config_stack, "admin") as (browser, csrf):
        page = await browser.get("/console/email/settings")
        assert "Printer on floor 3 is broken [Case#10042]" in page.text
        current = rt.config.settings.model_dump(mode="json")
        form = {
            "csrf_token": csrf,
            **{k: str(v) for k, v in current.items() if not isinstance(v, bool)},
            "outgoing_subject_template": "{{ subject }} (ticket {{ case }})",
        }
        live = await browser.post("/console/email/settings/subject-check", data=form)
        assert "Printer on floor 3 is broken (ticket 10042)" in live.text
        assert "Not recognised" in live.text and "finds no case reference" in live.text
        refused = await browser.post("/console/email/settings/global", data=form)
        assert refused.status_code == 422
        assert (
            "finds no case reference" in refused.text
            and "replies would open new cases" in refused.text
        )
        assert "(ticket {{ case }})" in refused.text  # what was typed stays in the form
        assert rt.config.settings.outgoing_subject_template == current["outgoing_subject_template"]

        both = {
            **form,
            "incoming_subject_pattern": r"\(ticket (?P<case>\d+)\)",
            "fetch_retries": "7",
        }
        saved = await browser.post("/console/email/settings/global", data=both)
        assert saved.status_code == 303, saved.text
        assert rt.config.settings.fetch_retries == 7
        assert rt.config.settings.outgoing_subject_template.endswith("(ticket {{ case }})")
        bad = await browser.post(
            "/console/email/settings/global", data={**both, "fetch_retries": "-1"}
        )
        assert bad.status_code == 422
        error = re.search(r'f-fetch_retries".*?field-error[^>]*>([^<]*)<', bad.text, re.S)
        assert error and "0" in error.group(1)


async def test_the_outgoing_connection_is_set_tested_and_sends_a_test_mail(
    config_stack: Stack, smtp_sink: SmtpSink
) -> None:
    rt = config_stack.rt
    async with signed_in(config_stack, "admin") as (browser, csrf):
        form = {
            "csrf_token": csrf,
            "host": "127.0.0.1",
            "port": str(smtp_sink.port),
            "security": "starttls",
            "username": "bob",
            "password": SMTP_PASSWORD,
            "auth": "basic",
            "connect_timeout_ms": "5000",
            "send_timeout_ms": "20000",
            "concurrency": "1",
            "verify_tls": "on",
            "ca_file": str(smtp_sink.cert_file),
            "credentials_from": "",
        }
        oauth = await browser.post(
            "/console/email/settings/redraw/outgoing", data={**form, "auth": "oauth2"}
        )
        assert 'name="client_id"' in oauth.text and 'name="password"' not in oauth.text
        saved = await browser.post("/console/email/settings/outgoing", data=form)
        assert saved.status_code == 303, saved.text
        assert rt.config.outgoing is not None and rt.config.outgoing.username == "bob"
        page = await browser.get("/console/email/settings")
        assert SMTP_PASSWORD not in page.text and ">set<" in page.text
        tested = await browser.post(
            "/console/email/outgoing-test", data={"csrf_token": csrf, "action": "test"}
        )
        assert "Connection works" in tested.text and "authenticated as bob" in tested.text
        before = len(smtp_sink.messages())
        sent = await browser.post(
            "/console/email/outgoing-test",
            data={"csrf_token": csrf, "action": "send", "send_to": "admin@example.org"},
            headers={"HX-Request": "true"},
        )
        assert "Connection works" in sent.text and "Test mail" in sent.text
        assert len(smtp_sink.messages()) == before + 1
        kept = await browser.post("/console/email/settings/outgoing", data={**form, "password": ""})
        assert kept.status_code == 303
        wrong = await browser.post(
            "/console/email/settings/outgoing", data={**form, "password": "not-bobs-pw-123"}
        )
        assert wrong.status_code == 303
        failed = await browser.post(
            "/console/email/outgoing-test", data={"csrf_token": csrf, "action": "test"}
        )
        assert "Connection failed" in failed.text and "535" in failed.text


async def test_addresses_are_validated_on_save(config_stack: Stack) -> None:
    rt = config_stack.rt
    async with signed_in(config_stack, "admin") as (browser, csrf):
        page = await browser.get("/console/email/addresses")
        assert "The From of outgoing mail" in page.text  # each property's description
        form = {
            "csrf_token": csrf,
            "from_address": "Support <support@example.org>",
            "reply_to": "",
            "allowed_from": "support@example.org\nsales@example.org",
            "administrators": "Ops <ops@example.org>",
            "notification_recipients": "",
        }
        saved = await browser.post("/console/email/addresses", data=form)
        assert saved.status_code == 303, saved.text
        addresses = rt.config.addresses
        assert addresses.from_address.name == "Support"
        assert addresses.allowed_from == ("support@example.org", "sales@example.org")
        assert [a.address for a in addresses.administrators] == ["ops@example.org"]

        bad = await browser.post("/console/email/addresses", data={**form, "reply_to": "not mail"})
        assert bad.status_code == 422
        error = re.search(r'f-reply_to".*?field-error[^>]*>([^<]*)<', bad.text, re.S)
        assert error, bad.text
        outside = await browser.post(
            "/console/email/addresses", data={**form, "from_address": "x@elsewhere.org"}
        )
        assert outside.status_code == 422 and "not in allowed_from" in outside.text
        assert rt.config.addresses.from_address.address == "support@example.org"


async def test_scripts_move_and_the_last_case_matcher_cannot_be_disabled(
    config_stack: Stack,
) -> None:
    rt = config_stack.rt
    async with signed_in(config_stack, "admin") as (browser, csrf):
        page = await browser.get("/console/email/scripts")
        assert "case_matcher" in page.text and "mailroom" in page.text
        names = [s.name for s in rt.config.processor.incoming_scripts]
        second = names[1]
        moved = await browser.post(f"/console/email/scripts/{second}/up", data={"csrf_token": csrf})
        assert moved.status_code == 303
        assert rt.config.processor.incoming_scripts[0].name == second
        refused = await browser.post(
            "/console/email/scripts/case_matcher/disable", data={"csrf_token": csrf}
        )
        shown = await browser.get(refused.headers["location"])
        assert (
            "Not changed" in shown.text and "no enabled script puts mail into cases" in shown.text
        )
        assert next(
            s for s in rt.config.processor.incoming_scripts if s.name == "case_matcher"
        ).enabled


async def test_the_list_shows_each_accounts_health(config_stack: Stack, dovecot: Dovecot) -> None:
    rt = config_stack.rt
    async with signed_in(config_stack, "admin") as (browser, csrf):
        await browser.post("/console/email/new-account", data=imap_form(dovecot, csrf, RIGHT))
        health = AccountHealthRepo(rt.store.db)
        now = utcnow()
        await health.record(account="support", at=now, token_at=now, token_expires_at=now)
        await health.record(
            account="support", at=now, error="NO [AUTHENTICATIONFAILED] x", failures=2
        )
        listing = (await browser.get("/console/email/accounts")).text
        row = listing.split('href="/console/email/accounts/support"', 1)[1].split("</tr>", 1)[0]
        for shown in ("2 failed", "NO [AUTHENTICATIONFAILED] x", "Next poll", "Credential expires"):
            assert shown in row, shown
