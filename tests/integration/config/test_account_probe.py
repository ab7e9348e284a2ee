"""Test connection for an account from the HTTP API and from the CLI, on the real Dovecot."""

from __future__ import annotations

import json

import httpx
import pytest

from deploy.local.servers import Dovecot
from tests.integration.fetcher.helpers import append, tricky_mail
from tests.support_cli import cli_env, mailroom

pytestmark = pytest.mark.integration


async def test_api_reports_the_message_count_or_the_error(
    api: httpx.AsyncClient, dovecot: Dovecot
) -> None:
    dovecot.reset_mailbox("bob")
    append(dovecot, "bob", tricky_mail(1), tricky_mail(2))
    base = {
        "protocol": "POP3S",
        "host": "127.0.0.1",
        "port": dovecot.pop3s_port,
        "username": "bob",
        "ca_file": str(dovecot.cert_file),
    }
    for name, password in (("good", "bobpw"), ("bad", "wrong-pw-123")):
        created = await api.post("/accounts", json=base | {"name": name, "password": password})
        assert created.status_code == 201, created.text

    good = (await api.post("/accounts/good/test")).json()
    assert (good["ok"], good["message_count"], good["error"]) == (True, 2, None)
    bad = (await api.post("/accounts/bad/test")).json()
    assert not bad["ok"] and "login refused for bob@127.0.0.1" in bad["error"]
    assert "wrong-pw-123" not in bad["error"]
    assert (await api.post("/accounts/nobody/test")).status_code == 404


def test_cli_tests_an_account(
    rabbit_url: str, mongo_url: str, mongo_db_name: str, dovecot: Dovecot
) -> None:
    dovecot.reset_mailbox("alice")
    append(dovecot, "alice", tricky_mail(1))
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="k" * 20
    )
    added = mailroom(
        "accounts", "add", "box", "--protocol", "IMAP", "--security", "STARTTLS",
        "--host", "127.0.0.1", "--port", str(dovecot.imap_port), "--username", "alice",
        "--ca-file", str(dovecot.cert_file), "--password-stdin",
        env=env, stdin="alicepw\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    tested = mailroom("accounts", "test", "box", "--json", env=env)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    (report,) = json.loads(tested.stdout)
    assert report["ok"] and report["message_count"] == 1


async def test_api_takes_a_start_position(api: httpx.AsyncClient) -> None:
    body = {
        "name": "later",
        "host": "imap.example.org",
        "username": "u",
        "password": "p",
        "start_position": "since",
        "start_date": "2026-01-31",
    }
    created = await api.post("/accounts", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["start_date"] == "2026-01-31"
    refused = await api.post("/accounts", json=body | {"name": "pop", "protocol": "POP3S"})
    assert (
        refused.status_code >= 400
        and "start_position applies to IMAP, GRAPH and JMAP only" in refused.text
    )
