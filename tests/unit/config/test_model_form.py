"""A console form declared by a pydantic model: inputs from the fields, posted strings back
to the model's values, refusals by field, secrets write-only."""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from services.config.web.model_form import (
    check,
    form_fields,
    grouped,
    parse_form,
    posted_values,
    shown,
    stored_values,
)
from shared.conversation import ConversationSettings
from shared.models.config import Addresses, GlobalSettings, IncomingAccount, OutgoingConnection
from shared.models.messages import MailAddress


class Box(BaseModel):
    """A model with one field of every kind a form knows."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    host: str
    """The ``server``'s name."""
    protocol: Literal["IMAP", "POP3"] = "IMAP"
    folder: str = Field(default="INBOX", json_schema_extra={"applies_to": {"protocol": ["IMAP"]}})
    start: Literal["all", "since"] = Field(
        default="all", json_schema_extra={"applies_to": {"protocol": ["IMAP"]}}
    )
    start_date: date | None = Field(
        default=None, json_schema_extra={"applies_to": {"start": ["since"]}}
    )
    port: int | None = Field(default=None, ge=1, le=65535)
    verify_tls: bool = True
    password: SecretStr | None = Field(default=None, json_schema_extra={"group": "Sign-in"})
    token: str | None = Field(default=None, title="API token", json_schema_extra={"secret": True})
    allowed: tuple[str, ...] = ()
    sender: MailAddress | None = None
    admins: tuple[MailAddress, ...] = ()
    timeout: float = Field(default=30.0, json_schema_extra=lambda schema: None)

    @model_validator(mode="after")
    def _pop3_has_no_folders(self) -> Self:
        if self.protocol == "POP3" and self.folder != "INBOX":
            raise ValueError("POP3 knows only INBOX")
        return self


FIELDS = form_fields(Box)
BY_NAME = {f.name: f for f in FIELDS}


def test_each_field_becomes_the_input_its_type_asks_for() -> None:
    kinds = {f.name: f.kind for f in FIELDS}
    assert kinds == {
        "host": "text",
        "protocol": "select",
        "folder": "text",
        "start": "select",
        "start_date": "date",
        "port": "number",
        "verify_tls": "checkbox",
        "password": "secret",
        "token": "secret",
        "allowed": "lines",
        "sender": "address",
        "admins": "addresses",
        "timeout": "number",
    }
    assert BY_NAME["protocol"].choices == (("IMAP", "IMAP"), ("POP3", "POP3"))
    assert BY_NAME["start"].choices[1] == ("since", "Mail since a date")
    assert BY_NAME["host"].required and not BY_NAME["port"].required
    assert BY_NAME["host"].help == "The server's name."  # the docstring, without the markup
    assert BY_NAME["verify_tls"].title == "Verify TLS" and BY_NAME["token"].title == "API token"
    assert (BY_NAME["timeout"].step, BY_NAME["port"].step) == ("any", "1")
    assert BY_NAME["protocol"].controls and BY_NAME["start"].controls
    assert not BY_NAME["host"].controls
    assert [g for g, _ in grouped(FIELDS)] == ["", "Sign-in"]


def test_hints_given_by_the_page_add_to_the_models_own() -> None:
    fields = form_fields(Box, exclude=["admins"], hints={"host": {"group": "Server"}})
    assert "admins" not in {f.name for f in fields}
    assert next(f for f in fields if f.name == "host").group == "Server"
    assert [g for g, _ in grouped(fields)] == ["Server", "", "Sign-in"]


def test_a_field_that_does_not_apply_is_hidden_and_so_are_those_depending_on_it() -> None:
    imap = {f.name for f in shown(FIELDS, {"protocol": "IMAP", "start": "since"})}
    assert {"folder", "start", "start_date"} <= imap
    pop = {f.name for f in shown(FIELDS, {"protocol": "POP3", "start": "since"})}
    assert not {"folder", "start", "start_date"} & pop


def test_posted_strings_become_the_models_values() -> None:
    form = {
        "host": " mail.example.org ",
        "protocol": "IMAP",
        "folder": "Support",
        "start": "all",
        "port": "",
        "password": "s3cret",
        "allowed": "a@example.org\n\n b@example.org \n",
        "sender": "Help Desk <help@example.org>",
        "admins": "ops@example.org\nOps Two <ops2@example.org>",
        "timeout": "2.5",
    }
    data = parse_form(FIELDS, form, form)
    assert data["host"] == "mail.example.org" and data["port"] is None
    assert data["verify_tls"] is False  # a check box not sent is unchecked
    assert data["start_date"] is None  # hidden (start is "all"): its default
    assert "token" not in data  # an empty secret input: the stored one is kept
    assert data["allowed"] == ["a@example.org", "b@example.org"]
    assert data["sender"] == {"name": "Help Desk", "address": "help@example.org"}
    checked = check(Box, data, data)
    assert checked.errors == {}
    assert checked.values["password"] == "s3cret" and checked.values["timeout"] == 2.5
    assert checked.values["admins"][1] == {"name": "Ops Two", "address": "ops2@example.org"}

    pop = parse_form(FIELDS, {**form, "protocol": "POP3"}, {**form, "protocol": "POP3"})
    assert pop["folder"] == "INBOX"  # hidden for POP3: back to the default, so it saves
    assert check(Box, pop, pop).errors == {}


def test_an_empty_secret_input_keeps_the_stored_secret() -> None:
    form = {"host": "h", "protocol": "IMAP", "password": ""}
    assert "password" not in parse_form(FIELDS, form, form)


def test_refusals_are_filed_under_the_field_they_name() -> None:
    form = {"host": "h", "protocol": "IMAP", "port": "70000", "sender": "not an address"}
    data = parse_form(FIELDS, form, form)
    errors = check(Box, data, data).errors
    assert set(errors) == {"port", "sender"}
    assert "65535" in errors["port"]
    whole = check(Box, {"host": "h", "protocol": "POP3", "folder": "Old"}, ()).errors
    assert whole == {"": "POP3 knows only INBOX"}


def test_a_secret_is_shown_only_as_set_or_not_set() -> None:
    box = Box(host="h", password=SecretStr("s3cret"), sender=MailAddress(address="a@b.org"))
    values = stored_values(FIELDS, box)
    assert values["password"] is True and values["token"] is False
    assert values["sender"] == "a@b.org" and values["timeout"] == "30"
    assert "s3cret" not in repr(values)
    again = posted_values(FIELDS, {"password": "typed", "host": "other"}, values)
    assert again["password"] is True and again["host"] == "other"
    assert again["verify_tls"] is False


@pytest.mark.parametrize(
    "model",
    [IncomingAccount, OutgoingConnection, GlobalSettings, Addresses, ConversationSettings],
)
def test_every_field_of_the_email_views_has_an_input(model: type[BaseModel]) -> None:
    fields = form_fields(model)
    assert [f.name for f in fields] == list(model.model_fields)
    assert all(f.title and f.help for f in fields)
    secrets = {f.name for f in fields if f.kind == "secret"}
    assert secrets == {"password", "client_secret", "outgoing_password"} & set(model.model_fields)
