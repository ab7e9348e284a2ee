"""The ``mailroom`` CLI as an operator runs it: a real process on real servers."""

from __future__ import annotations

import json

from tests.support_cli import cli_env, mailroom

PASSWORD = "cli-secret-password"


def test_accounts_settings_and_desk_from_the_cli(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    env = cli_env(
        rabbit_url=rabbit_url,
        mongo_url=mongo_url,
        database=mongo_db_name,
        secret_key="cli-test-secret-key",
    )
    added = mailroom(
        "accounts",
        "add",
        "support",
        "--host",
        "imap.example.org",
        "--username",
        "support@example.org",
        "--password-stdin",
        "--json",
        env=env,
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert PASSWORD not in added.stdout + added.stderr

    listed = mailroom("accounts", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    accounts = json.loads(listed.stdout)
    assert [(a["name"], a["port"], a["password_set"]) for a in accounts] == [("support", 993, True)]
    assert PASSWORD not in listed.stdout

    props = mailroom("properties", "raw", "--json", env=env)
    assert props.returncode == 0 and PASSWORD not in props.stdout and "***" in props.stdout

    refused = mailroom(
        "settings",
        "set",
        "settings",
        "outgoing_subject_template={{ subject }} #{{ case }}",
        env=env,
    )
    assert refused.returncode == 1
    assert "replies would open new cases" in refused.stderr

    accepted = mailroom("settings", "set", "settings", "poll_interval_seconds=5", env=env)
    assert accepted.returncode == 0, accepted.stderr
    shown = json.loads(mailroom("settings", "show", "settings", env=env).stdout)
    assert shown["poll_interval_seconds"] == 5

    deactivated = mailroom("accounts", "deactivate", "support", env=env)
    assert deactivated.returncode == 0, deactivated.stderr
    accounts = json.loads(mailroom("accounts", "list", "--json", env=env).stdout)
    assert accounts[0]["enabled"] is False

    desk = mailroom("failed", "list", "--json", env=env)
    assert desk.returncode == 0 and json.loads(desk.stdout) == []
    nothing = mailroom("failed", "replay", "--all", env=env)
    assert nothing.returncode == 0 and "0 replayed" in nothing.stdout


def test_a_missing_secret_key_is_refused_with_what_to_do(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    env = cli_env(rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="")
    result = mailroom(
        "accounts",
        "add",
        "x",
        "--host",
        "h",
        "--username",
        "u",
        "--password-stdin",
        env=env,
        stdin="pw\n",
    )
    assert result.returncode == 1
    assert "MAILROOM_SECRET_KEY" in result.stderr


def test_outgoing_set_changes_only_the_options_given(
    rabbit_url: str, mongo_url: str, mongo_db_name: str
) -> None:
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="cli-key-4"
    )
    first = mailroom(
        "outgoing", "set", "--host", "smtp.example.org", "--port", "2525", "--security", "TLS",
        "--username", "u", "--password-stdin", env=env, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    again = mailroom("outgoing", "set", "--concurrency", "2", "--json", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    shown = json.loads(again.stdout)[0]
    assert (shown["host"], shown["port"], shown["security"]) == ("smtp.example.org", 2525, "tls")
    assert shown["concurrency"] == 2 and shown["password_set"] is True
    assert PASSWORD not in again.stdout
    reset = json.loads(mailroom("outgoing", "set", "--reset", "port", "--json", env=env).stdout)
    assert reset[0]["port"] == 465
