"""Account options from the HTTP API and the CLI, on the real Dovecot and SMTP sink: test
before save (incoming and the account's own outgoing server, from unsaved values), the
folder list, Test Account's real test mail, and "available to users"."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from deploy.local.servers import Dovecot, SmtpSink
from services.config.api_tokens import create_token
from services.config.users import add_user
from shared.models.users import Role
from shared.service import Stack
from tests.integration.fetcher.helpers import append, tricky_mail
from tests.integration.sender.helpers import received
from tests.secret_scan import SCAN
from tests.support import api_client
from tests.support_cli import cli_env, mailroom

pytestmark = pytest.mark.integration

PASSWORD = SCAN.secret("password of a console user", "account-options-password-0123")


def imap_body(dovecot: Dovecot, sink: SmtpSink, **fields: Any) -> dict[str, Any]:
    """A new account: bob's IMAP inbox, sending through the sink as alice."""
    body = {
        "name": "sales",
        "protocol": "IMAP",
        "host": "127.0.0.1",
        "port": dovecot.imap_port,
        "username": "bob",
        "password": "bobpw",
        "ca_file": str(dovecot.cert_file),  # the sink's certificate has the same CA
        "outgoing_host": "127.0.0.1",
        "outgoing_port": sink.port,
        "outgoing_security": "starttls",
        "outgoing_credentials": "own",
        "outgoing_username": "alice",
        "outgoing_password": "alicepw",
    }
    return body | fields


async def test_values_are_tested_on_both_servers_before_anything_is_saved(
    api: httpx.AsyncClient, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    dovecot.reset_mailbox("bob")
    append(dovecot, "bob", tricky_mail(1))

    good = (await api.post("/accounts/test", json=imap_body(dovecot, smtp_sink))).json()
    assert (good["ok"], good["message_count"], good["error"]) == (True, 1, None)
    assert good["outgoing"]["ok"] and "authenticated as alice" in good["outgoing"]["steps"]

    body = imap_body(dovecot, smtp_sink, outgoing_password="Wr0ng-Smtp-Pw")
    bad = (await api.post("/accounts/test", json=body)).json()
    assert not bad["ok"] and bad["message_count"] == 1  # incoming works, outgoing does not
    assert "refused the login of user 'alice'" in bad["outgoing"]["error"]
    assert "Wr0ng-Smtp-Pw" not in json.dumps(bad)

    refused = await api.post(
        "/accounts/test", json=imap_body(dovecot, smtp_sink, outgoing_host=None)
    )
    assert refused.status_code == 422 and "outgoing_port" in refused.text
    assert (await api.get("/accounts")).json() == []  # nothing was stored


async def test_a_saved_account_is_tested_with_the_values_being_entered(
    api: httpx.AsyncClient, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    dovecot.reset_mailbox("bob")
    created = await api.post("/accounts", json=imap_body(dovecot, smtp_sink))
    assert created.status_code == 201, created.text

    saved = (await api.post("/accounts/sales/test")).json()
    assert saved["ok"] and saved["outgoing"]["ok"]
    # The form's stored secrets stand in for those left empty; the rest is as entered.
    entered = {"outgoing_credentials": "incoming", "outgoing_username": None,
               "outgoing_password": None}  # fmt: skip
    changed = (await api.post("/accounts/sales/test", json=entered)).json()
    assert changed["ok"] and "authenticated as bob" in changed["outgoing"]["steps"]
    wrong = (await api.post("/accounts/sales/test", json={"password": "n0t-bobs"})).json()
    assert not wrong["ok"] and "login refused for bob@" in wrong["error"]
    assert (await api.get("/accounts/sales")).json()["outgoing_credentials"] == "own"


async def test_the_folders_are_listed_for_a_saved_account_and_for_values(
    api: httpx.AsyncClient, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    body = imap_body(dovecot, smtp_sink)
    listed = (await api.post("/accounts/folders", json=body)).json()
    assert "INBOX" in listed["folders"] and listed["error"] is None
    await api.post("/accounts", json=body)
    saved = (await api.get("/accounts/sales/folders")).json()
    assert saved["folders"] == listed["folders"]
    wrong = await api.post("/accounts/folders", json=body | {"password": "n0t-bobs"})
    assert wrong.json()["folders"] is None and "login refused" in wrong.json()["error"]


async def test_test_account_sends_a_real_mail_through_the_accounts_outgoing_path(
    api: httpx.AsyncClient, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    body = imap_body(dovecot, smtp_sink, from_address="sales@example.com", from_name="Sales")
    await api.post("/accounts", json=body)

    before = len(smtp_sink.messages())  # the session's sink holds other tests' mail
    answer = await api.post("/accounts/sales/test-mail", json={"to": "carol@example.org"})

    report = answer.json()
    assert report["ok"] and report["test_mail"].startswith("sent to carol@example.org: 250 ")
    (mail,) = [m for m in smtp_sink.messages()[before:] if m["Subject"] == "Mailroom test mail"
               and m["From"] == "Sales <sales@example.com>"]  # fmt: skip
    assert mail["X-Sink-Auth"] == "alice" and received(smtp_sink, mail["Message-ID"])
    # The API token has no user, so no address of its own: the refusal names the field.
    anonymous = await api.post("/accounts/sales/test-mail", json={})
    assert anonymous.status_code == 422 and "to:" in anonymous.text


async def test_available_to_users_is_exposed_and_filters_the_list(
    api: httpx.AsyncClient, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    await api.post("/accounts", json=imap_body(dovecot, smtp_sink))
    await api.post(
        "/accounts", json=imap_body(dovecot, smtp_sink, name="robot", available_to_users=False)
    )

    assert (await api.get("/accounts/sales")).json()["available_to_users"] is True
    offered = (await api.get("/accounts", params={"available_to_users": "true"})).json()
    assert [a["name"] for a in offered] == ["sales"]
    hidden = (await api.get("/accounts", params={"available_to_users": "false"})).json()
    assert [a["name"] for a in hidden] == ["robot"]
    patched = await api.patch("/accounts/robot", json={"available_to_users": True})
    assert patched.json()["available_to_users"] is True


def test_cli_lists_folders_tests_values_and_sends_a_test_mail(
    rabbit_url: str, mongo_url: str, mongo_db_name: str, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="k" * 20
    )
    options = (
        "--protocol", "IMAP", "--host", "127.0.0.1", "--port", str(dovecot.imap_port),
        "--username", "alice", "--ca-file", str(dovecot.cert_file), "--password-stdin",
        "--outgoing-host", "127.0.0.1", "--outgoing-port", str(smtp_sink.port),
    )  # fmt: skip
    tested = mailroom("accounts", "test", "box", "--from-values", *options, "--json",
                      env=env, stdin="alicepw\n")  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    (report,) = json.loads(tested.stdout)
    assert report["ok"] and "authenticated as alice" in report["outgoing"]["steps"]
    assert json.loads(mailroom("accounts", "list", "--json", env=env).stdout) == []  # not saved

    not_asked = mailroom("accounts", "test", "box", "--host", "x.example", env=env)
    assert not_asked.returncode != 0 and "--from-values" in not_asked.stderr

    added = mailroom("accounts", "add", "box", *options, env=env, stdin="alicepw\n")
    assert added.returncode == 0, added.stdout + added.stderr
    folders = mailroom("accounts", "folders", "box", env=env)
    assert folders.returncode == 0 and "INBOX" in folders.stdout.split()
    sent = mailroom("accounts", "test-mail", "box", "--to", "dave@example.org", "--json", env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    (mail,) = json.loads(sent.stdout)
    assert mail["test_mail"].startswith("sent to dave@example.org: 250 ")


async def test_entered_values_are_an_admins_and_the_test_mail_goes_to_the_signed_in_user(
    config_stack: Stack, dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    rt = config_stack.rt
    tokens = {}
    users: tuple[tuple[str, Role], ...] = (("op", "operator"), ("erin@example.org", "admin"))
    for name, role in users:
        await add_user(rt, name=name, role=role, password=PASSWORD, who="test")
        made = await create_token(rt, user=name, who="test")
        tokens[role] = SCAN.secret("a user's API token", made.token)
    async with api_client(config_stack, tokens["admin"]) as admin:
        created = await admin.post("/accounts", json=imap_body(dovecot, smtp_sink))
        assert created.status_code == 201, created.text
        sent = (await admin.post("/accounts/sales/test-mail", json={})).json()
        assert sent["test_mail"].startswith("sent to erin@example.org: 250 ")
    async with api_client(config_stack, tokens["operator"]) as operator:
        assert (await operator.post("/accounts/sales/test")).json()["ok"]
        entered = await operator.post("/accounts/sales/test", json={"host": "elsewhere.example"})
        assert entered.status_code == 403 and "admin" in entered.text
