"""An account's debug switch traces its IMAP/POP3 conversation with real Dovecot into the
logs at DEBUG, visible while the service logs at INFO; passwords, tokens and AUTH payloads
appear nowhere, and mail bodies only as sizes. With the switch off there is no trace."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest

from deploy.local.servers import Dovecot, OAuthIssuer
from services.fetcher.deps import FetcherDeps
from services.fetcher.ingest import fetch_once
from shared.auth import xoauth2
from shared.errors import Permanent
from shared.runtime import Runtime
from tests.integration.fetcher.conftest import MailboxMaker
from tests.integration.fetcher.helpers import account, announced, append, tricky_mail
from tests.integration.fetcher.test_oauth_fetch import oauth_account

pytestmark = pytest.mark.integration

BODY_LINE = "looks like a status line"  # in every tricky_mail body
TRACE = "mailroom.trace"


@pytest.fixture
def service_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Captured logs with the root logger at INFO, as a service runs by default."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    caplog.clear()
    yield caplog
    root.setLevel(level)


def trace_of(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    """The trace lines logged for account ``name``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == f"{TRACE}.{name}" and r.levelno == logging.DEBUG
    ]


def everything(caplog: pytest.LogCaptureFixture) -> str:
    """All captured output, rendered and with extras, where a secret must not appear."""
    return caplog.text + "\n".join(str(vars(r)) for r in caplog.records)


async def test_imap_basic_trace_shows_commands_without_password_or_body(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker, service_log: pytest.LogCaptureFixture
) -> None:
    append(bob, "bob", tricky_mail(1))
    acc = account(bob, "bob", name="traced-imap", debug="yes")
    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == 1
    assert len(await announced(rt)) == 1

    lines = trace_of(service_log, "traced-imap")
    text = "\n".join(lines)
    assert any(line.startswith("S * OK") for line in lines)  # the greeting
    assert "C " in text and "STARTTLS" in text
    login = next(line for line in lines if " LOGIN " in line)
    assert login.endswith("LOGIN <redacted>")
    for command in ("SELECT", "UID SEARCH", "UID FETCH", "UID STORE"):
        assert any(line.startswith("C ") and command in line for line in lines), command
    assert any("<literal of" in line for line in lines)
    assert BODY_LINE not in text
    assert "bobpw" not in everything(service_log)


async def test_a_refused_imap_login_is_traced_without_the_password(
    bob: Dovecot, open_mailbox: MailboxMaker, service_log: pytest.LogCaptureFixture
) -> None:
    acc = account(bob, "bob", name="traced-wrong", debug="yes", password="wrong-bob-secret")
    with pytest.raises(Permanent, match="login refused"):
        await open_mailbox(acc).connect()
    lines = trace_of(service_log, "traced-wrong")
    assert any(line.startswith("S ") and " NO " in line for line in lines)
    assert "wrong-bob-secret" not in everything(service_log)


@pytest.mark.parametrize("protocol", ["IMAPS", "POP3S"])
async def test_xoauth2_trace_hides_token_and_sasl_payload(
    rt: Runtime,
    bob: Dovecot,
    oauth_issuer: OAuthIssuer,
    open_mailbox: MailboxMaker,
    service_log: pytest.LogCaptureFixture,
    protocol: str,
) -> None:
    append(bob, "bob", tricky_mail(2))
    oauth_issuer.add_client("trace-app", "trace-client-secret", "bob")
    name = f"traced-oauth-{protocol.lower()}"
    acc = oauth_account(
        bob,
        oauth_issuer,
        "trace-app",
        "trace-client-secret",
        protocol=protocol,
        name=name,
        debug="yes",
    )
    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == 1
    await announced(rt)

    lines = trace_of(service_log, name)
    command = "AUTHENTICATE" if protocol == "IMAPS" else "AUTH"
    auth = next(line for line in lines if f" {command} XOAUTH2" in line)
    assert auth.endswith(f"{command} XOAUTH2 <redacted>")
    logged = everything(service_log)
    assert "trace-client-secret" not in logged
    tokens = list(oauth_issuer.tokens)
    assert tokens
    for token in tokens:
        assert token not in logged
        payload = base64.b64encode(xoauth2("bob", token)).decode()
        assert payload not in logged and payload[:24] not in logged
    assert BODY_LINE not in "\n".join(lines)


async def test_pop3_trace_hides_user_pass_and_shows_body_sizes(
    rt: Runtime, bob: Dovecot, open_mailbox: MailboxMaker, service_log: pytest.LogCaptureFixture
) -> None:
    append(bob, "bob", tricky_mail(3))
    acc = account(bob, "bob", name="traced-pop3", protocol="POP3", debug="yes")
    assert await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc)) == 1
    await announced(rt)

    lines = trace_of(service_log, "traced-pop3")
    assert "C USER <redacted>" in lines and "C PASS <redacted>" in lines
    assert "C STLS" in lines and "C UIDL" in lines and "C RETR 1" in lines
    assert any(line.startswith("S <message of") for line in lines)
    assert BODY_LINE not in "\n".join(lines)
    assert "bobpw" not in everything(service_log)


@pytest.mark.parametrize("switch", ["no", "inherit"])
async def test_without_the_switch_nothing_is_traced(
    rt: Runtime,
    bob: Dovecot,
    open_mailbox: MailboxMaker,
    service_log: pytest.LogCaptureFixture,
    switch: str,
) -> None:
    append(bob, "bob", tricky_mail(4))
    for protocol in ("IMAP", "POP3"):
        acc = account(bob, "bob", name=f"quiet-{protocol}", protocol=protocol, debug=switch)
        await fetch_once(FetcherDeps.of(rt), acc, open_mailbox(acc))
    await announced(rt)
    assert not [r for r in service_log.records if r.name.startswith(TRACE)]
