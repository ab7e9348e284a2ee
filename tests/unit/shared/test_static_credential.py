"""Static credentials (provider ``static``, flow ``api_token``): what the model accepts, and
the token provider that gives the token as it is until a server refuses it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from pydantic import SecretStr, ValidationError

from shared.auth import NamedTokenProvider
from shared.credential_health import assess
from shared.models.credentials import Credential, CredentialState
from shared.store.credentials import CredentialRepo
from tests.secret_scan import SCAN

TOKEN = SCAN.secret("a static API token", "fmu1-static-token-0123456789abcdef")
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def static(**fields: Any) -> Credential:
    return Credential.model_validate({"name": "fastmail", "provider": "static"} | fields)


def test_a_static_credential_takes_its_flow_from_the_provider_and_hides_the_token() -> None:
    # The surfaces fill in the default flow: it means "not given".
    assert static(token=TOKEN, flow="client_credentials").flow == "api_token"
    credential = static(token=TOKEN)
    assert credential.flow == "api_token" and credential.static
    assert not credential.delegated
    assert credential.token == SecretStr(TOKEN) and TOKEN in str(
        [s.get_secret_value() for s in credential.secrets() if s]
    )
    assert TOKEN not in repr(credential) and TOKEN not in str(credential.model_dump())


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, "needs token"),
        ({"token": "   "}, "needs token"),
        ({"token": TOKEN, "client_id": "app"}, "leave out client_id"),
        ({"token": TOKEN, "scopes": ["mail"]}, "leave out scopes"),
        ({"token": TOKEN, "flow": "device_code"}, "not offered by static"),
    ],
)
def test_a_static_credential_holds_its_token_and_nothing_else(
    fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        static(**fields)


def test_an_oauth_credential_takes_no_token() -> None:
    with pytest.raises(ValidationError, match="token belongs to a static credential"):
        Credential.model_validate(
            {
                "name": "m365",
                "client_id": "app",
                "client_secret": "s3cret-value",
                "authority": "https://login.microsoftonline.com/contoso",
                "token": TOKEN,
            }
        )


class FakeRepo:
    """The two calls a provider makes of the credential store, in memory."""

    def __init__(self, credential: Credential) -> None:
        self.credential = credential
        self.state = CredentialState(name=credential.name)
        self.reads = 0

    async def get(self, *, name: str) -> Credential:
        self.reads += 1
        return self.credential

    async def note(self, *, name: str, **fields: Any) -> None:
        self.state = self.state.model_copy(update=fields)


def consent(repo: FakeRepo) -> str:
    # Read through a function: the type checker would keep an earlier assert's narrowing.
    return repo.state.consent


def provider(repo: FakeRepo, refused: list[str]) -> NamedTokenProvider:
    async def on_refused(name: str) -> None:
        refused.append(name)

    return NamedTokenProvider(
        cast(CredentialRepo, repo),
        "fastmail",
        user="alice",
        clock=lambda: NOW.timestamp(),
        on_refused=on_refused,
    )


async def test_the_token_is_given_as_it_is_with_no_expiry_and_read_once() -> None:
    repo, alerted = FakeRepo(static(token=TOKEN)), list[str]()
    tokens = provider(repo, alerted)
    assert await tokens.token() == TOKEN
    assert await tokens.token() == TOKEN
    assert repo.reads == 1
    assert tokens.health.ok and tokens.health.expires_at is None
    assert repo.state.last_token_at == NOW and repo.state.token_expires_at is None
    report = assess(repo.credential, repo.state, now=NOW, warning_days=14)
    assert report.status == "ok" and report.conditions == []


async def test_a_refusal_marks_it_failing_with_the_servers_text_until_a_server_accepts() -> None:
    repo, alerted = FakeRepo(static(token=TOKEN)), list[str]()
    tokens = provider(repo, alerted)
    await tokens.token()
    text = "JMAP server refused the sign-in of alice at api.fastmail.com (HTTP 401)"
    await tokens.refused(text)
    assert repo.state.last_error == text
    assert consent(repo) == "failing"
    assert alerted == ["fastmail"] and not tokens.health.ok
    report = assess(repo.credential, repo.state, now=NOW, warning_days=14)
    assert report.status == "failing" and text in report.conditions[0].text
    assert "credentials set fastmail --token-stdin" in report.conditions[0].text
    # The administrator sets a new token: the next call reads the store again.
    repo.credential = static(token=TOKEN + "-new")
    assert await tokens.token() == TOKEN + "-new" and repo.reads == 2
    await tokens.login_ok()
    assert consent(repo) == "not_needed" and repo.state.last_login_at == NOW
    assert assess(repo.credential, repo.state, now=NOW, warning_days=14).status == "ok"


async def test_invalidate_reads_the_token_again() -> None:
    repo = FakeRepo(static(token=TOKEN))
    tokens = provider(repo, [])
    await tokens.token()
    tokens.invalidate()
    await tokens.token()
    assert repo.reads == 2


async def test_a_refusal_of_an_oauth_token_is_left_to_its_issuer() -> None:
    credential = Credential.model_validate(
        {
            "name": "m365",
            "client_id": "app",
            "client_secret": "s3cret-value",
            "authority": "https://login.microsoftonline.com/contoso",
        }
    )
    repo, alerted = FakeRepo(credential), list[str]()
    await provider(repo, alerted).refused("IMAP server said no")
    assert repo.state.consent == "not_needed" and repo.state.last_error is None
    assert alerted == []
