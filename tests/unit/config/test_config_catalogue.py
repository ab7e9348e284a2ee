"""The catalogue is read from the typed views: every property described, secrets flagged."""

from __future__ import annotations

import pytest

from services.config.catalogue import MODULES, describe
from shared.config_views import FIELD_MODULES
from shared.errors import ConfigRejected, NotFound
from shared.models.config import IncomingAccount, SystemConfig


def _config() -> SystemConfig:
    account = IncomingAccount(name="support", host="h", username="u", password="pw")
    return SystemConfig(accounts={"support": account})


def test_every_property_has_a_type_and_a_description() -> None:
    config = _config()
    names = [(m, k) for m, model in FIELD_MODULES.items() for k in model.model_fields]
    names += [("outgoing", "smtp.host"), ("incoming.accounts", "support.port")]
    for module, key in names:
        info = describe(module, key, config)
        assert info.type and info.description, f"{module}/{key}"
    assert set(FIELD_MODULES) < set(MODULES)


def test_secrets_are_flagged_and_others_not() -> None:
    config = _config()
    assert describe("incoming.accounts", "support.password", config).secret
    assert describe("outgoing", "smtp.client_secret", config).secret
    assert not describe("outgoing", "smtp.username", config).secret
    port = describe("incoming.accounts", "support.port", config)
    assert port.type == "integer (1..65535) | null" and port.default is None


def test_unknown_names_are_refused_naming_the_known_ones() -> None:
    config = _config()
    with pytest.raises(ConfigRejected, match=r"settings/pol_interval.*poll_interval_seconds"):
        describe("settings", "pol_interval", config)
    with pytest.raises(ConfigRejected, match=r"smtp\.<field>"):
        describe("outgoing", "host", config)
    with pytest.raises(NotFound, match="accounts: support"):
        describe("incoming.accounts", "sales.port", config)
    with pytest.raises(ConfigRejected, match="known modules"):
        describe("incoming", "host", config)
