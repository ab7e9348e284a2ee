"""The seeds' account options on ``IncomingAccount``: bad values refused naming the field, and
what the options resolve to (the account's own SMTP connection, deleting, polling)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.models.config import IncomingAccount, OutgoingConnection

BASE: dict[str, Any] = {"name": "sales", "host": "imap.example.org", "username": "u",
                        "password": "p"}  # fmt: skip
OAUTH: dict[str, Any] = {"auth": "oauth2", "password": None, "client_id": "c",
                         "client_secret": "s", "authority": "https://login.example.org/t",
                         "scope": "https://outlook.office365.com/.default"}  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"outgoing_port": 587}, "outgoing_port needs outgoing_host"),
        ({"outgoing_host": "smtp.example.org", "outgoing_credentials": "own"},
         "outgoing_credentials own needs outgoing_username and outgoing_password"),
        ({"outgoing_host": "smtp.example.org", "outgoing_security": "ssl"}, "outgoing_security"),
        ({"outgoing_host": "smtp example"}, "outgoing_host"),
        ({"outgoing_host": "smtp.example.org", "outgoing_security": "none", **OAUTH},
         "outgoing_security none cannot carry the OAuth 2.0 token"),
        ({"from_address": "not-an-address"}, "from_address"),
        ({"reply_to": "nobody@"}, "reply_to"),
        ({"from_name": "Sales\r\nBcc: x@example.org"}, "from_name"),
        ({"poll_interval_seconds": 0.1}, "poll_interval_seconds"),
        ({"after_fetch": "move"}, "after_fetch 'move' needs move_to_folder"),
        ({"move_to_folder": "Done"}, "after_fetch 'move' needs move_to_folder"),
        ({"protocol": "POP3S", "after_fetch": "move", "move_to_folder": "Done"},
         "after_fetch 'move' cannot be used with POP3"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_naming_the_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        IncomingAccount.model_validate(BASE | fields)
    assert named in str(caught.value)


def test_the_own_outgoing_server_takes_the_credentials_it_names() -> None:
    global_conn = OutgoingConnection(host="relay.example.org", send_timeout_ms=5000)
    server = {"outgoing_host": "smtp.example.org", "ca_file": "/ca.pem"}

    assert IncomingAccount.model_validate(BASE).outgoing_connection(global_conn) is None
    same = IncomingAccount.model_validate(BASE | server).outgoing_connection(global_conn)
    assert same is not None and (same.username, same.effective_port) == ("u", 587)
    assert same.security == "auto" and same.ca_file == "/ca.pem"
    assert same.send_timeout_ms == 5000  # the global connection's limits
    assert same.password is not None and same.password.get_secret_value() == "p"
    own = IncomingAccount.model_validate(
        BASE | server | {"outgoing_credentials": "own", "outgoing_username": "smtp-user",
                         "outgoing_password": "smtp-pw", "outgoing_security": "tls"}
    ).outgoing_connection(None)  # fmt: skip
    assert own is not None and (own.username, own.effective_port) == ("smtp-user", 465)
    anonymous = IncomingAccount.model_validate(
        BASE | server | {"outgoing_credentials": "none"}
    ).outgoing_connection(None)
    assert anonymous is not None and anonymous.username is None
    oauth = IncomingAccount.model_validate(BASE | OAUTH | server).outgoing_connection(None)
    assert oauth is not None and (oauth.auth, oauth.client_id, oauth.password) == (
        "oauth2",
        "c",
        None,
    )


def test_pop3_deletes_unless_kept_and_the_poll_interval_falls_back() -> None:
    pop = IncomingAccount.model_validate(BASE | {"protocol": "POP3S"})
    assert pop.disposal(False) == "delete"
    kept = IncomingAccount.model_validate(BASE | {"protocol": "POP3S", "after_fetch": "seen"})
    assert kept.disposal(True) == "seen"
    assert pop.polls_every(30.0) == 30.0
    assert pop.model_copy(update={"poll_interval_seconds": 5.0}).polls_every(30.0) == 5.0
    assert pop.available_to_users  # CSM's flag: offered unless switched off


def test_an_outgoing_server_signing_in_as_the_incoming_side_carries_its_named_credential() -> None:
    account = IncomingAccount.model_validate(
        BASE
        | {"auth": "oauth2", "password": None, "credential": "m365-support"}
        | {"outgoing_host": "smtp.office365.com", "outgoing_credentials": "incoming"}
    )
    conn = account.outgoing_connection(None)
    assert conn is not None
    assert (conn.auth, conn.credential, conn.username) == ("oauth2", "m365-support", "u")
    assert conn.password is None and conn.client_id is None
