"""The account form's options from the seeds, as a person uses them on the real Dovecot and
SMTP sink: the Outgoing server and From settings sections, Test connection of both servers
before saving, Test account's real test mail, and POP3's leave-on-server field."""

from __future__ import annotations

import pytest

from deploy.local.servers import Dovecot, SmtpSink
from shared.service import Stack
from tests.integration.config.test_console_email import imap_form, signed_in
from tests.secret_scan import SCAN

pytestmark = pytest.mark.integration

SMTP_PASSWORD = SCAN.secret("password of an SMTP login", "alicepw")
WRONG_SMTP = SCAN.secret("password of an SMTP login", "n0t-alices-smtp-pw")


def outgoing_form(sink: SmtpSink, password: str) -> dict[str, str]:
    """The Outgoing server and From settings sections, filled in for the sink as alice."""
    return {
        "outgoing_host": "127.0.0.1",
        "outgoing_port": str(sink.port),
        "outgoing_security": "auto",
        "outgoing_credentials": "own",
        "outgoing_username": "alice",
        "outgoing_password": password,
        "from_address": "support@example.com",
        "from_name": "Support desk",
        "reply_to": "",
        "poll_interval_seconds": "",
        "available_to_users": "on",
    }


async def test_both_servers_are_tested_before_saving_and_test_account_sends_a_mail(
    config_stack: Stack, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    dovecot.reset_mailbox("alice")
    async with signed_in(config_stack, "admin") as (browser, csrf):
        page = (await browser.get("/console/email/new-account")).text
        for name in ("outgoing_host", "outgoing_credentials", "from_address", "from_name",
                     "reply_to", "poll_interval_seconds", "available_to_users"):  # fmt: skip
            assert f'name="{name}"' in page, name
        assert 'name="after_fetch"' in page
        assert 'name="move_to_folder"' not in page  # only with after_fetch move

        hx = {"HX-Request": "true"}
        wrong = imap_form(dovecot, csrf, "alicepw", **outgoing_form(smtp_sink, WRONG_SMTP))
        tested = await browser.post("/console/email/account-draft/test", data=wrong, headers=hx)
        assert "Connection works" in tested.text and "Outgoing server failed" in tested.text
        assert "535" in tested.text and WRONG_SMTP not in tested.text

        form = imap_form(dovecot, csrf, "alicepw", **outgoing_form(smtp_sink, SMTP_PASSWORD))
        tested = await browser.post("/console/email/account-draft/test", data=form, headers=hx)
        assert "Outgoing server works" in tested.text and "authenticated as alice" in tested.text
        assert config_stack.rt.config.accounts == {}  # tested, not saved

        added = await browser.post("/console/email/new-account", data=form)
        assert added.status_code == 303, added.text
        account = config_stack.rt.config.accounts["support"]
        assert (account.outgoing_host, account.from_name) == ("127.0.0.1", "Support desk")
        edit = (await browser.get("/console/email/accounts/support")).text
        assert SMTP_PASSWORD not in edit and "Test account" in edit

        before = len(smtp_sink.messages())  # the session's sink holds other tests' mail
        sent = await browser.post(
            "/console/email/accounts/support/test-mail",
            data={"csrf_token": csrf, "to": "dave@example.org"},
            headers=hx,
        )
        assert "Test mail" in sent.text and "sent to dave@example.org: 250" in sent.text
        (mail,) = [m for m in smtp_sink.messages()[before:]
                   if m["X-Sink-Rcpt-To"] == "dave@example.org"]  # fmt: skip
        assert mail["From"] == "Support desk <support@example.com>"
        assert mail["X-Sink-Auth"] == "alice"
        refused = await browser.post(
            "/console/email/accounts/support/test-mail",
            data={"csrf_token": csrf, "to": "not an address"},
            headers=hx,
        )
        assert "no test mail sent: to:" in refused.text


async def test_pop3_keeps_mail_on_the_server_when_asked(
    config_stack: Stack, dovecot: Dovecot
) -> None:
    async with signed_in(config_stack, "admin") as (browser, csrf):
        pop = imap_form(
            dovecot, csrf, "alicepw", protocol="POP3S", security="auto",
            port=str(dovecot.pop3s_port), after_fetch="seen", available_to_users="on",
        )  # fmt: skip
        redrawn = await browser.post("/console/email/account-draft", data=pop)
        assert 'name="after_fetch"' in redrawn.text
        assert 'name="move_to_folder"' not in redrawn.text  # IMAP only
        added = await browser.post("/console/email/new-account", data=pop)
        assert added.status_code == 303, added.text
        assert config_stack.rt.config.accounts["support"].after_fetch == "seen"


async def test_choosing_move_shows_the_folder_to_move_to(
    config_stack: Stack, dovecot: Dovecot
) -> None:
    async with signed_in(config_stack, "admin") as (browser, csrf):
        form = imap_form(dovecot, csrf, "alicepw", after_fetch="move")
        redrawn = await browser.post("/console/email/account-draft", data=form)
        assert 'name="move_to_folder"' in redrawn.text
        refused = await browser.post("/console/email/new-account", data=form)
        assert "move_to_folder" in refused.text  # move needs the folder
        added = await browser.post(
            "/console/email/new-account", data={**form, "move_to_folder": "Done"}
        )
        assert added.status_code == 303, added.text
        account = config_stack.rt.config.accounts["support"]
        assert (account.after_fetch, account.move_to_folder) == ("move", "Done")
