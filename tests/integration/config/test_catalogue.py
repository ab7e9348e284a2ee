"""The property catalogue through the API and the CLI, on real MongoDB and RabbitMQ."""

from __future__ import annotations

import json

import httpx

from shared.service import Stack
from tests.support_cli import cli_env, mailroom

SMTP_PASSWORD = "catalogue-smtp-password-42"


async def test_list_filters_by_module_and_describes_each_property(api: httpx.AsyncClient) -> None:
    listed = await api.get("/catalogue", params={"module": "settings"})
    assert listed.status_code == 200, listed.text
    by_key = {p["key"]: p for p in listed.json()}
    assert {p["module"] for p in listed.json()} == {"settings"}
    poll = by_key["poll_interval_seconds"]
    assert poll["type"] == "number (0.2..86400)" and poll["default"] == 30.0
    assert poll["value"] == 30.0 and poll["is_set"] is False and poll["secret"] is False
    assert "Seconds between two fetches" in poll["description"]
    everything = (await api.get("/catalogue")).json()
    assert {"settings", "addresses", "outgoing", "system"} <= {p["module"] for p in everything}


async def test_set_get_and_reset_one_property(api: httpx.AsyncClient, config_stack: Stack) -> None:
    saved = await api.put("/catalogue/settings/poll_interval_seconds", json={"value": 12})
    assert saved.status_code == 200, saved.text
    got = (await api.get("/catalogue/settings/poll_interval_seconds")).json()
    assert got["value"] == 12 and got["is_set"] is True
    assert config_stack.rt.config.settings.poll_interval_seconds == 12

    reset = await api.delete("/catalogue/settings/poll_interval_seconds")
    assert reset.status_code == 200 and reset.json()["version"] > saved.json()["version"]
    got = (await api.get("/catalogue/settings/poll_interval_seconds")).json()
    assert got["value"] == 30.0 and got["is_set"] is False
    log = await config_stack.rt.store.properties.log()
    assert [(e.action, e.old, e.new) for e in log[:2]] == [("delete", 12, None), ("set", None, 12)]
    again = await api.delete("/catalogue/settings/poll_interval_seconds")
    assert again.json()["version"] == reset.json()["version"]


async def test_unknown_names_and_invalid_values_are_refused_with_what_to_fix(
    api: httpx.AsyncClient,
) -> None:
    unknown = await api.put("/catalogue/settings/poll_interval", json={"value": 3})
    assert unknown.status_code == 422
    detail = unknown.json()["detail"]
    assert "settings/poll_interval" in detail and "poll_interval_seconds" in detail
    module = await api.get("/catalogue/incoming/host")
    assert module.status_code == 422 and "known modules" in module.json()["detail"]
    invalid = await api.put("/catalogue/settings/poll_interval_seconds", json={"value": 0})
    assert invalid.status_code == 422
    assert "settings.poll_interval_seconds" in invalid.json()["detail"]
    assert "greater than or equal to 0.2" in invalid.json()["detail"]


async def test_object_fields_and_secrets_shown_as_set_only(
    api: httpx.AsyncClient, config_stack: Stack
) -> None:
    created = await api.put(
        "/outgoing",
        json={"host": "smtp.example.org", "username": "u", "password": SMTP_PASSWORD},
    )
    assert created.status_code == 200, created.text
    port = await api.put("/catalogue/outgoing/smtp.port", json={"value": 2525})
    assert port.status_code == 200, port.text
    assert config_stack.rt.config.outgoing is not None
    assert config_stack.rt.config.outgoing.port == 2525
    password = (await api.get("/catalogue/outgoing/smtp.password")).json()
    assert password["secret"] is True and password["secret_set"] is True
    assert password["value"] is None
    listed = await api.get("/catalogue", params={"module": "outgoing"})
    assert SMTP_PASSWORD not in listed.text
    # The login needs its password: resetting it alone is refused; clearing the username
    # (sending without AUTH) drops the password with it.
    reset = await api.delete("/catalogue/outgoing/smtp.password")
    assert reset.status_code == 422 and "needs a password" in reset.json()["detail"]
    no_login = await api.put("/outgoing", json={"username": None})
    assert no_login.status_code == 200, no_login.text
    assert (await api.get("/catalogue/outgoing/smtp.password")).json()["secret_set"] is False
    missing = await api.get("/catalogue/incoming.accounts/nobody.host")
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]


def test_catalogue_from_the_cli(rabbit_url: str, mongo_url: str, mongo_db_name: str) -> None:
    env = cli_env(
        rabbit_url=rabbit_url, mongo_url=mongo_url, database=mongo_db_name, secret_key="cli-key-1"
    )
    listed = mailroom("properties", "list", "--module", "system", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {p["key"] for p in json.loads(listed.stdout)} == {"flavour", "test_archive_flavours"}
    saved = mailroom("properties", "set", "system", "flavour", "test", env=env)
    assert saved.returncode == 0, saved.stdout + saved.stderr
    got = json.loads(mailroom("properties", "get", "system", "flavour", env=env).stdout)
    assert got["value"] == "test" and got["is_set"] is True
    refused = mailroom("properties", "set", "system", "flavor", "test", env=env)
    assert refused.returncode == 1 and "flavour" in refused.stderr
    reset = mailroom("properties", "reset", "system", "flavour", env=env)
    assert reset.returncode == 0, reset.stdout
    got = json.loads(mailroom("properties", "get", "system", "flavour", env=env).stdout)
    assert got["value"] == "production" and got["is_set"] is False
