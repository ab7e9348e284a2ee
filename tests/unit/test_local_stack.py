"""The local default's reading of the user's environment (``deploy.local.stack``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.preset import Applied
from deploy.local.stack import forget_own_env, is_local_default, ready_block, vhost_name


def test_values_loaded_from_our_own_env_file_are_not_the_users_servers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A shell that ran `. .local/env`, then `make stop` and `make run` again.
    monkeypatch.setenv("MAILROOM_LOCAL_STATE", str(tmp_path))
    monkeypatch.setenv("MAILROOM_MONGODB_URL", "mongodb://127.0.0.1:1/?retryWrites=false")
    monkeypatch.setenv("MAILROOM_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/old")
    monkeypatch.delenv("MONGODB_URL", raising=False)
    assert not is_local_default()
    forget_own_env(tmp_path)
    assert is_local_default()


def test_the_users_own_urls_are_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAILROOM_LOCAL_STATE", str(tmp_path / "another-checkout"))
    monkeypatch.setenv("MAILROOM_MONGODB_URL", "mongodb://db.example.org/")
    monkeypatch.delenv("MAILROOM_BROKER_URL", raising=False)
    forget_own_env(tmp_path)
    assert not is_local_default()
    monkeypatch.delenv("MAILROOM_LOCAL_STATE")
    monkeypatch.delenv("MAILROOM_MONGODB_URL")
    monkeypatch.setenv("MONGODB_URL", "mongodb://db.example.org/")
    forget_own_env(tmp_path)
    assert not is_local_default()


def test_each_state_directory_has_its_own_vhost(tmp_path: Path) -> None:
    assert vhost_name(tmp_path / "a") != vhost_name(tmp_path / "b")
    assert vhost_name(tmp_path / "a") == vhost_name(tmp_path / "a")


def test_ready_block_names_api_token_mailbox_and_three_next_commands(tmp_path: Path) -> None:
    env = {
        "LOCAL_MAILBOX": "support@example.org",
        "LOCAL_MAILBOX_USER": "support",
        "LOCAL_MAILBOX_PASSWORD": "do-not-print-me",
        "MAILROOM_API_TOKEN": "do-not-print-me-either",
    }
    block = ready_block(tmp_path, env, "http://127.0.0.1:8025", True, Applied([]))
    assert "http://127.0.0.1:8025" in block
    assert f"MAILROOM_API_TOKEN in {tmp_path}/env" in block
    assert "support@example.org" in block and "login support" in block
    assert "do-not-print-me" not in block
    next_commands = block.split("Next:\n", 1)[1].splitlines()
    assert next_commands[0].strip() == f". {tmp_path}/env"
    assert [c.split()[:2] for c in next_commands[1:4]] == [
        ["mailroom", "demo"],
        ["mailroom", "cases"],
        ["mailroom", "demo"],
    ]


def test_ready_block_shows_the_first_admins_password_only_when_it_was_made(
    tmp_path: Path,
) -> None:
    env = {"LOCAL_MAILBOX": "s@example.org", "LOCAL_MAILBOX_USER": "s"}
    first = ready_block(tmp_path, env, "http://h:1", True, Applied([], "pw-0123456789abcdef"))
    assert "http://h:1/console/  user admin, password pw-0123456789abcdef" in first
    assert "shown this once" in first
    later = ready_block(tmp_path, env, "http://h:1", True, Applied([]))
    assert "pw-0123456789abcdef" not in later and "reset-password admin" in later
