"""Accounts by name: copy, rename, activate, deactivate, delete (API and CLI)."""

from __future__ import annotations

import json

import httpx

from shared.config_views import ACCOUNTS_MODULE
from shared.models.records import FetchState
from shared.service import Stack
from tests.support_cli import cli_env, mailroom

PASSWORD = "accounts-imap-password-42"
ACCOUNT = {
    "name": "support",
    "protocol": "IMAPS",
    "host": "imap.example.org",
    "username": "support@example.org",
    "password": PASSWORD,
}


async def test_copy_takes_settings_and_encrypted_secrets_and_starts_deactivated(
    api: httpx.AsyncClient, config_stack: Stack
) -> None:
    assert (await api.post("/accounts", json=ACCOUNT)).status_code == 201
    copied = await api.post("/accounts/support/copy", json={"name": "support-2"})
    assert copied.status_code == 201, copied.text
    body = copied.json()
    assert body["name"] == "support-2" and body["enabled"] is False
    assert body["host"] == "imap.example.org" and body["password_set"] is True
    store = config_stack.rt.store.properties
    source = await store.get(module=ACCOUNTS_MODULE, key="support")
    copy = await store.get(module=ACCOUNTS_MODULE, key="support-2")
    assert source is not None and copy is not None
    # The sealed secret itself was copied: it was never decrypted on the way.
    assert copy.value["password"] == source.value["password"]
    account = config_stack.rt.config.accounts["support-2"]
    assert account.password is not None and account.password.get_secret_value() == PASSWORD
    taken = await api.post("/accounts/support/copy", json={"name": "support-2"})
    assert taken.status_code == 409 and taken.json()["error"] == "conflict"
    missing = await api.post("/accounts/nope/copy", json={"name": "other"})
    assert missing.status_code == 404 and "support" in missing.json()["detail"]


async def test_rename_moves_settings_and_everything_stored_under_the_name(
    api: httpx.AsyncClient, config_stack: Stack
) -> None:
    rt = config_stack.rt
    assert (await api.post("/accounts", json=ACCOUNT)).status_code == 201
    assert (await api.put("/outgoing", json={"host": "smtp.example.org"})).status_code == 200
    both = await api.put("/outgoing", json={"credentials_from": "support"})
    assert both.status_code == 200, both.text
    await rt.store.fetch_state.save_cursor(account="support", folder="INBOX", cursor="c-42")
    await rt.store.db["failed_mails"].insert_one({"_id": "f1", "account": "support"})
    await rt.store.db["account_health"].insert_one({"_id": "support", "account": "support"})
    assert (await api.post("/accounts", json={**ACCOUNT, "name": "sales"})).status_code == 201

    taken = await api.post("/accounts/support/rename", json={"name": "sales"})
    assert taken.status_code == 409 and "exists" in taken.json()["detail"]
    renamed = await api.post("/accounts/support/rename", json={"name": "helpdesk"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "helpdesk" and renamed.json()["password_set"] is True

    assert set(rt.config.accounts) == {"helpdesk", "sales"}
    assert rt.config.outgoing is not None and rt.config.outgoing.credentials_from == "helpdesk"
    position: FetchState = await rt.store.fetch_state.get(account="helpdesk", folder="INBOX")
    assert position.cursor == "c-42"
    desk = await rt.store.db["failed_mails"].find_one({"_id": "f1"})
    assert desk is not None and desk["account"] == "helpdesk"
    assert await rt.store.db["account_health"].find_one({"_id": "helpdesk"}) is not None
    assert await rt.store.db["account_health"].find_one({"_id": "support"}) is None
    assert (await api.get("/accounts/support")).status_code == 404

    # The old name now has a fetch position no more, but a new account may not take a name
    # whose mail is still stored.
    await rt.store.fetch_state.save_cursor(account="old", folder="INBOX", cursor="c-1")
    history = await api.post("/accounts/sales/rename", json={"name": "old"})
    assert history.status_code == 409 and "still" in history.json()["detail"]


async def test_activate_deactivate_delete_by_name(api: httpx.AsyncClient) -> None:
    assert (await api.post("/accounts", json=ACCOUNT)).status_code == 201
    off = await api.post("/accounts/support/deactivate")
    assert off.status_code == 200 and off.json()["enabled"] is False
    on = await api.post("/accounts/support/activate")
    assert on.status_code == 200 and on.json()["enabled"] is True
    assert (await api.delete("/accounts/support")).status_code == 200
    gone = await api.delete("/accounts/support")
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"


def test_copy_and_rename_from_the_cli(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> None:
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="cli-key-2"
    )
    added = mailroom(
        "accounts", "add", "support", "--host", "imap.example.org", "--username", "s",
        "--password-stdin", env=env, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    copied = mailroom("accounts", "copy", "support", "support-2", "--json", env=env)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert json.loads(copied.stdout)[0]["enabled"] is False
    renamed = mailroom("accounts", "rename", "support-2", "sales", env=env)
    assert renamed.returncode == 0, renamed.stdout + renamed.stderr
    taken = mailroom("accounts", "rename", "sales", "support", env=env)
    assert taken.returncode == 1 and "exists" in taken.stderr
    names = [a["name"] for a in json.loads(mailroom("accounts", "list", "--json", env=env).stdout)]
    assert sorted(names) == ["sales", "support"]


def test_set_changes_only_the_options_given_from_the_cli(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="cli-key-3"
    )
    added = mailroom(
        "accounts", "add", "support", "--host", "imap.example.org", "--username", "s",
        "--password-stdin", env=env, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr

    def account(*args: str, stdin: str | None = None) -> dict[str, object]:
        done = mailroom("accounts", "set", "support", *args, "--json", env=env, stdin=stdin)
        assert done.returncode == 0, done.stdout + done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        row: dict[str, object] = json.loads(done.stdout)[0]
        return row

    # Choices in any case; the host, username and password stay as they were.
    changed = account("--protocol", "imap", "--security", "starttls", "--port", "1143")
    assert (changed["protocol"], changed["security"], changed["port"]) == ("IMAP", "STARTTLS", 1143)
    assert changed["host"] == "imap.example.org" and changed["password_set"] is True
    assert account("--reset", "port")["port"] == 143
    moved = account("--folder", "Support", "--after-fetch", "delete")
    assert (moved["folder"], moved["after_fetch"]) == ("Support", "delete")
    assert account("--password-stdin", stdin="another-password-7\n")["password_set"] is True

    refused = mailroom("accounts", "set", "support", "--reset", "host", env=env)
    assert refused.returncode != 0 and "host" in refused.stderr
    missing = mailroom("accounts", "set", "nobody", "--port", "993", env=env)
    assert missing.returncode == 1 and "nobody" in missing.stderr
