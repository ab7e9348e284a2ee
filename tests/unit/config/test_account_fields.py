"""One declaration per field: the stored views declare every field once, and the API schemas
(create, update, public) and the CLI options are derived from them, so every surface has
every field, secrets stay write-only, and a field added to a model appears everywhere."""

from __future__ import annotations

import io
from typing import Any, Literal

import pytest
import typer
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from typer.main import get_command

from services.config.api.model_schemas import create_schema, public_schema, update_schema
from services.config.api.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    OutgoingIn,
    OutgoingPublic,
)
from services.config.cli import accounts as accounts_cli
from services.config.cli import outgoing as outgoing_cli
from services.config.cli.field_options import given_fields, secret_param, with_field_options
from shared.config_views import SECRET_FIELDS
from shared.models.config import MAILBOX_PORTS, SMTP_PORTS, IncomingAccount, OutgoingConnection
from shared.models.field_hints import hints
from shared.models.field_specs import (
    FieldSpec,
    account_fields,
    defaults,
    field_specs,
    outgoing_fields,
)

MODELS = [
    pytest.param(IncomingAccount, AccountCreate, AccountUpdate, AccountPublic, id="account"),
    pytest.param(OutgoingConnection, None, OutgoingIn, OutgoingPublic, id="outgoing"),
]


def _public_names(specs: list[FieldSpec]) -> set[str]:
    return {f"{s.name}_set" if s.secret else s.name for s in specs}


def _option_names(specs: list[FieldSpec]) -> set[str]:
    return {secret_param(s) if s.secret else s.name for s in specs}


def _cli_params(app: typer.Typer, command: str) -> set[str]:
    group = get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return {str(p.name) for p in group.commands[command].params}


@pytest.mark.parametrize(("model", "create", "update", "public"), MODELS)
def test_every_api_schema_has_every_field(
    model: type[BaseModel],
    create: type[BaseModel] | None,
    update: type[BaseModel],
    public: type[BaseModel],
) -> None:
    specs = field_specs(model)
    names = {s.name for s in specs}
    if create is not None:
        assert set(create.model_fields) == names
        required = {n for n, f in create.model_fields.items() if f.is_required()}
        assert required == {s.name for s in specs if s.required}
    # Renaming an account is its own action; everything else can be changed.
    assert set(update.model_fields) == names - {"name"}
    assert not any(f.is_required() for f in update.model_fields.values())
    assert set(public.model_fields) == _public_names(specs)


@pytest.mark.parametrize(("model", "create", "update", "public"), MODELS)
def test_secrets_are_never_in_the_public_schema(
    model: type[BaseModel],
    create: type[BaseModel] | None,
    update: type[BaseModel],
    public: type[BaseModel],
) -> None:
    secrets = {s.name for s in field_specs(model) if s.secret}
    own_smtp = {"outgoing_password"} if model is IncomingAccount else set()
    assert secrets == {"password", "client_secret", *own_smtp}
    assert secrets <= SECRET_FIELDS, "the store seals only the names in SECRET_FIELDS"
    assert not secrets & set(public.model_fields)
    assert not secrets & set(public.model_json_schema()["properties"])
    for name in secrets:
        schema = update.model_json_schema()["properties"][name]
        assert {"format": "password", "writeOnly": True}.items() <= schema["anyOf"][0].items()


def test_the_public_views_say_set_or_not_set_never_the_value() -> None:
    account = IncomingAccount(
        name="support",
        protocol="IMAP",
        host="imap.example.org",
        username="u",
        password=SecretStr("hunter2-account"),
    )
    shown = AccountPublic.of(account).model_dump_json()
    assert "hunter2" not in shown
    assert '"password_set":true' in shown and '"client_secret_set":false' in shown
    assert '"port":143' in shown  # the port in effect, not "none"
    outgoing = OutgoingConnection(
        host="smtp.example.org", security="tls", username="u", password=SecretStr("hunter2-smtp")
    )
    shown = OutgoingPublic.of(outgoing).model_dump_json()
    assert "hunter2" not in shown and '"password_set":true' in shown and '"port":465' in shown


def test_the_cli_has_an_option_for_every_field() -> None:
    account = [s for s in account_fields() if s.name != "name"]
    for command in ("add", "set"):
        params = _cli_params(accounts_cli.app, command)
        assert _option_names(account) <= params, command
        assert "name" in params  # the argument
    assert _option_names(outgoing_fields()) <= _cli_params(outgoing_cli.app, "set")


def test_secrets_are_never_cli_arguments() -> None:
    group = get_command(accounts_cli.app)
    assert isinstance(group, typer.core.TyperGroup)
    for command in ("add", "set"):
        by_name = {p.name: p for p in group.commands[command].params}
        for spec in account_fields():
            assert spec.name not in by_name or not spec.secret
            if spec.secret:
                assert by_name[secret_param(spec)].is_flag  # type: ignore[attr-defined]


def test_the_specs_read_the_models_declarations() -> None:
    specs = {s.name: s for s in account_fields()}
    assert specs["protocol"].kind == "choice"
    assert specs["protocol"].choices == ("IMAP", "IMAPS", "POP3", "POP3S", "GRAPH", "JMAP")
    assert specs["protocol"].default == "IMAPS"
    # GRAPH needs no host, nor JMAP with a jmap_url: the model refuses a missing one for
    # the others, so no surface may require it.
    assert not specs["host"].required and specs["host"].title == "Host"
    assert specs["enabled"].kind == "bool" and specs["port"].kind == "number"
    assert specs["port"].integer and specs["port"].nullable
    assert specs["start_date"].kind == "date" and specs["password"].kind == "secret"
    assert "stored encrypted" in specs["password"].description
    assert "``" not in specs["security"].description
    for protocol, port in MAILBOX_PORTS.items():
        assert specs["port"].placeholder_for({"protocol": protocol}) == str(port)
    smtp = {s.name: s for s in outgoing_fields()}
    for security, port in SMTP_PORTS.items():
        assert smtp["port"].placeholder_for({"security": security}) == str(port)
    assert all(s.title and s.description for s in (*specs.values(), *smtp.values()))


def test_applies_follows_the_protocol_and_the_auth_method() -> None:
    specs = {s.name: s for s in account_fields()}
    new = defaults(account_fields())
    assert specs["password"].applies(new) and not specs["client_secret"].applies(new)
    oauth = new | {"auth": "oauth2"}
    assert specs["client_secret"].applies(oauth) and not specs["password"].applies(oauth)
    assert not specs["folder"].applies(new | {"protocol": "POP3"})
    assert specs["security"].applies(new | {"protocol": "IMAP"})
    assert not specs["security"].applies(new)  # IMAPS is TLS from the first byte
    assert not specs["start_date"].applies(new)
    assert specs["start_date"].applies(new | {"start_position": "since"})
    assert not specs["host"].applies(new | {"protocol": "GRAPH"})
    assert specs["host"].applies(new | {"protocol": "JMAP"})
    assert specs["host"].placeholder_for({"protocol": "JMAP"}) == "from jmap_url"
    smtp = {s.name: s for s in outgoing_fields()}
    assert not smtp["host"].applies(defaults(outgoing_fields()) | {"protocol": "graph"})


def test_password_stdin_reads_the_secret_the_auth_method_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    specs = [s for s in account_fields() if s.name != "name"]
    values: dict[str, Any] = {s.name: None for s in specs} | {"password_stdin": True}
    monkeypatch.setattr("sys.stdin", io.StringIO("pw-basic\n"))
    assert given_fields(specs, values) == {"password": "pw-basic"}
    monkeypatch.setattr("sys.stdin", io.StringIO("client-secret\n"))
    oauth = given_fields(specs, values | {"auth": "oauth2"})
    assert oauth == {"auth": "oauth2", "client_secret": "client-secret"}


def test_reset_puts_a_field_back_to_its_default() -> None:
    specs = outgoing_fields()
    values: dict[str, Any] = {s.name: None for s in specs} | {"reset": ["port", "username"]}
    assert given_fields(specs, values | {"host": "h"}) == {
        "host": "h",
        "port": None,
        "username": None,
    }
    assert given_fields(specs, values | {"reset": ["host"]})["host"] == ""
    with pytest.raises(typer.BadParameter, match="password"):
        given_fields(specs, values | {"reset": ["password"]})


class Tiny(BaseModel):
    """A small stored view, to watch the derivation at work."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: str = Field(max_length=20, title="Name")
    """Its name."""
    mode: Literal["plain", "locked"] = "plain"
    """How it works."""
    key: SecretStr | None = Field(
        default=None, max_length=50, json_schema_extra=hints(applies_to={"mode": ["locked"]})
    )
    """The key (secret)."""
    size: int | None = Field(
        default=None, ge=1, le=9, json_schema_extra=hints(placeholder_by={"mode": {"plain": "3"}})
    )
    """How big; empty: by mode."""


class Bigger(Tiny):
    """Tiny with one field more: the change a developer makes to add a field."""

    colour: Literal["red", "blue"] = "red"
    """The new field."""


def _surfaces(model: type[BaseModel]) -> dict[str, set[str]]:
    specs = field_specs(model)
    app = typer.Typer()

    @app.command("add")
    @with_field_options(specs, create=True)
    def add(**values: Any) -> None:
        """Add one."""

    @app.command("set")
    @with_field_options(specs, create=False)
    def change(**values: Any) -> None:
        """Change one."""

    return {
        "create": set(create_schema(model, "TinyCreate", "").model_fields),
        "update": set(update_schema(model, "TinyUpdate", "").model_fields),
        "public": set(public_schema(model, "TinyPublic", "").model_fields),
        "cli add": _cli_params(app, "add"),
        "cli set": _cli_params(app, "set"),
    }


def test_a_field_added_to_the_model_appears_on_every_surface() -> None:
    before, after = _surfaces(Tiny), _surfaces(Bigger)
    assert before["create"] == before["update"] == {"name", "mode", "key", "size"}
    assert before["public"] == {"name", "mode", "key_set", "size"}
    assert {"name", "mode", "key_stdin", "size"} <= before["cli add"]
    for surface, names in after.items():
        assert names - before[surface] == {"colour"}, surface


def test_the_derived_schemas_keep_the_models_bounds_and_defaults() -> None:
    create = create_schema(Tiny, "TinyCreate", "")
    props = create.model_json_schema()["properties"]
    assert props["name"]["maxLength"] == 20 and props["mode"]["default"] == "plain"
    assert props["size"]["anyOf"][0] == {"maximum": 9, "minimum": 1, "type": "integer"}
    assert props["key"]["description"] == "The key (secret)."
    with pytest.raises(ValueError, match="size"):
        create.model_validate({"name": "n", "size": 10})
    with pytest.raises(ValueError, match="extra"):
        update_schema(Tiny, "TinyUpdate", "").model_validate({"colour": "red"})
    public = public_schema(Tiny, "TinyPublic", "")
    shown = public.of(Tiny(name="n", mode="locked", key=SecretStr("k-value")))
    assert shown.model_dump() == {"name": "n", "mode": "locked", "key_set": True, "size": None}
    spec = {s.name: s for s in field_specs(Tiny)}
    assert spec["size"].placeholder_for({"mode": "plain"}) == "3"
    assert spec["size"].placeholder_for({"mode": "locked"}) == ""
    assert spec["key"].secret and not spec["key"].applies({"mode": "plain"})
