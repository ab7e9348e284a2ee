"""The account settings for protocols and TLS: ports, POP3 rules, and the STARTTLS policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.errors import Permanent
from shared.mailbox._tls import wants_starttls
from shared.models.config import IncomingAccount


def make(**fields: object) -> IncomingAccount:
    values: dict[str, object] = {"name": "a", "host": "h", "username": "u", "password": "p"}
    return IncomingAccount.model_validate(values | fields)


def test_ports_default_by_protocol() -> None:
    ports = [make(protocol=p).effective_port for p in ("IMAP", "IMAPS", "POP3", "POP3S")]
    assert ports == [143, 993, 110, 995]


def test_pop3_with_a_folder_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValidationError, match="POP3 knows only the inbox"):
        make(protocol="POP3", folder="Archive")


def test_starttls_on_an_implicit_tls_protocol_is_refused() -> None:
    with pytest.raises(ValidationError, match="TLS from the first byte"):
        make(protocol="IMAPS", security="STARTTLS")


def test_pop3_without_after_fetch_deletes_whatever_the_global_setting() -> None:
    assert make(protocol="POP3S").disposal(False) == "delete"
    assert make(protocol="POP3S", after_fetch="seen").disposal(True) == "seen"


@pytest.mark.parametrize(
    ("protocol", "security", "offered", "upgrade"),
    [
        ("IMAP", "auto", True, True),
        ("IMAP", "STARTTLS", True, True),
        ("POP3", "none", True, False),
        ("POP3", "none", False, False),
        ("IMAPS", "auto", False, False),
        ("POP3S", "auto", True, False),
    ],
)
def test_starttls_policy(protocol: str, security: str, offered: bool, upgrade: bool) -> None:
    account = make(protocol=protocol, security=security)
    assert wants_starttls(account, offered=offered, where="h:1") is upgrade


@pytest.mark.parametrize("security", ["auto", "STARTTLS"])
def test_no_starttls_offered_means_no_password_in_clear(security: str) -> None:
    account = make(protocol="IMAP", security=security)
    with pytest.raises(Permanent, match="not sent in clear"):
        wants_starttls(account, offered=False, where="h:143")


def test_start_position_is_for_imap_and_since_needs_a_date() -> None:
    with pytest.raises(ValidationError, match="IMAP, GRAPH and JMAP only"):
        make(protocol="POP3S", start_position="new")
    with pytest.raises(ValidationError, match="needs start_date"):
        make(protocol="IMAPS", start_position="since")
    assert make(start_position="since", start_date="2026-01-01").start_date is not None
