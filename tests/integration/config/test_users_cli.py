"""``mailroom users`` and ``mailroom tokens`` as an operator runs them: real processes on the
real servers. Passwords go in on stdin and never come out; a token comes out once."""

from __future__ import annotations

import json

import httpx

from services.config.api_tokens import TOKEN_PREFIX
from shared.service import Stack
from tests.secret_scan import SCAN
from tests.support import api_client
from tests.support_cli import mailroom, settings_cli_env

PASSWORD = "cli-user-password-0123"
NEW_PASSWORD = "cli-user-password-4567"


def test_users_and_tokens_from_the_cli(config_stack: Stack) -> None:
    env = settings_cli_env(config_stack.rt.settings)
    added = mailroom(
        "users",
        "add",
        "Ops",
        "--role",
        "operator",
        "--password-stdin",
        env=env,
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert "added ops (operator)" in added.stdout
    weak = mailroom("users", "add", "weak", "--password-stdin", env=env, stdin="short\n")
    assert weak.returncode == 1 and "12 to 1024 characters" in weak.stdout + weak.stderr
    no_stdin = mailroom("users", "add", "nopw", env=env, stdin="")
    assert no_stdin.returncode == 2 and "--password-stdin" in no_stdin.stderr
    taken = mailroom("users", "add", "ops", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert taken.returncode == 1 and "already exists" in taken.stdout + taken.stderr

    listed = json.loads(mailroom("users", "list", "--json", env=env).stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("ops", "operator")]
    assert "password" not in json.dumps(listed).replace("password_changed_at", "")
    assert mailroom("users", "set-role", "ops", "viewer", env=env).returncode == 0
    reset = mailroom(
        "users", "reset-password", "ops", "--password-stdin", env=env, stdin=NEW_PASSWORD + "\n"
    )
    assert reset.returncode == 0, reset.stdout

    created = mailroom("tokens", "create", "ops", "--label", "monitoring", "--json", env=env)
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    assert token.startswith(TOKEN_PREFIX)
    # Registered only now: the creation's output is the one place the token may appear.
    SCAN.end_test()
    SCAN.secret("a user's API token made by the CLI", token)
    tokens = mailroom("tokens", "list", "--json", env=env)
    assert [t["label"] for t in json.loads(tokens.stdout)] == ["monitoring"]
    token_id = json.loads(tokens.stdout)[0]["id"]
    assert token not in tokens.stdout

    deleted = mailroom("users", "delete", "ops", env=env)
    assert deleted.returncode == 0
    assert mailroom("tokens", "list", "--json", env=env).stdout.strip() == "[]"
    log = json.loads(mailroom("users", "log", "ops", "--json", env=env).stdout)
    assert [(e["action"], e["who"]) for e in log] == [
        ("user_deleted", "cli"),
        ("token_created", "cli"),
        ("password_reset", "cli"),
        ("role_changed", "cli"),
        ("user_added", "cli"),
    ]
    gone = mailroom("tokens", "revoke", token_id, env=env)
    assert gone.returncode == 1 and "no token" in gone.stdout + gone.stderr


async def test_a_cli_token_works_on_the_api_until_revoked(config_stack: Stack) -> None:
    env = settings_cli_env(config_stack.rt.settings)
    mailroom("users", "add", "viewer", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    created = mailroom("tokens", "create", "viewer", env=env)
    assert created.returncode == 0, created.stderr
    token = next(w for w in created.stdout.split() if w.startswith(TOKEN_PREFIX))
    SCAN.end_test()
    SCAN.secret("a user's API token made by the CLI", token)
    async with api_client(config_stack, token) as viewer:
        me = await viewer.get("/me")
        assert me.json() == {"name": "viewer", "role": "viewer", "user": "viewer"}
        token_id = (await viewer.get("/me/tokens")).json()[0]["id"]
        assert mailroom("tokens", "revoke", token_id, env=env).returncode == 0
        refused: httpx.Response = await viewer.get("/me")
        assert refused.status_code == 401
    audit = await config_stack.rt.store.users.log(user="viewer")
    assert [(e.action, e.who) for e in audit] == [
        ("token_revoked", "cli"),
        ("token_created", "cli"),
        ("user_added", "cli"),
    ]
