"""Named credentials (the credentials manager): one declaration per field.

A :class:`Credential` is what an administrator enters once — provider, flow, app
registration, scopes, the client secret's expiry date, or a server's API token — and then
names from the incoming and outgoing side of any number of accounts (their ``credential``
field). Secrets (``client_secret``, ``certificate``, ``service_account_key``, ``token``) are
stored sealed with the project's ``SecretBox`` and shown on every surface only as set / not
set.

What Mailroom learns while using a credential (consent, the token cache with its refresh
token, token expiry, last login, last error) is not configuration: it lives beside it as a
:class:`CredentialState` and changes without a config broadcast.

flow per provider::

    microsoft  client_credentials   app-only (Exchange application access policy), as before
               authorization_code   a user consents in a browser (PKCE); refresh token kept
               device_code          a user consents on another device with a short code
    google     service_account      domain-wide delegation, JWT bearer grant per mailbox user
               authorization_code   a user consents in a browser; refresh token kept
    static     api_token            a token the mail server issued (Fastmail's or Stalwart's
                                    API token), sent as it is as the bearer token; no issuer,
                                    no expiry: it is good until the server refuses it

The provider of a static token is ``static`` rather than the server's name: Mailroom does
nothing server-specific with it, and one kind serves every server that takes a bearer token
it issued itself.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Final, Literal

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shared.models.field_hints import hints
from shared.models.messages import HeaderText

CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Provider = Literal["microsoft", "google", "static"]
Flow = Literal[
    "client_credentials", "authorization_code", "device_code", "service_account", "api_token"
]
FLOWS: Final[dict[str, tuple[str, ...]]] = {
    "microsoft": ("client_credentials", "authorization_code", "device_code"),
    "google": ("service_account", "authorization_code"),
    "static": ("api_token",),
}
"""The flows each provider offers."""
DELEGATED: Final = ("authorization_code", "device_code")
"""Flows in which a user consents once and Mailroom keeps a refresh token."""
GOOGLE_TOKEN_URI: Final = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
MICROSOFT_SCOPES: Final = (
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
)
"""Delegated Microsoft 365 mail scopes (``offline_access`` brings the refresh token)."""
GOOGLE_SCOPES: Final = ("https://mail.google.com/",)

_OAUTH = {"provider": ("microsoft", "google")}
"""The fields of an OAuth 2.0 app registration, which a static token has none of."""
_OAUTH_FIELDS = (
    "client_id",
    "client_secret",
    "client_secret_expires",
    "certificate",
    "service_account_key",
    "authority",
    "scopes",
    "redirect_uri",
    "ca_file",
)
_SECRET_FLOWS = {
    **_OAUTH,
    "flow": ("client_credentials", "authorization_code", "device_code"),
}
_CONFIDENTIAL_FLOWS = ("client_credentials", "authorization_code")
"""The flows of a confidential client, which may sign with a certificate (a device-code app
is a public client)."""


class Credential(BaseModel):
    """An OAuth 2.0 app registration and how Mailroom signs in with it, or a static token."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: str = Field(max_length=64, title="Name", json_schema_extra=hints(group="Credential"))
    """The credential's name, unique; accounts refer to it by this name."""
    provider: Provider = Field(
        default="microsoft", title="Provider", json_schema_extra=hints(group="Credential")
    )
    """``microsoft`` (Entra ID / Microsoft 365), ``google`` (Google Workspace) or ``static``
    (an API token the mail server issued: Fastmail, Stalwart)."""
    flow: Flow = Field(
        default="client_credentials", title="Flow", json_schema_extra=hints(group="Credential")
    )
    """How tokens are obtained: ``client_credentials`` (Microsoft app-only),
    ``authorization_code`` (a user consents in a browser), ``device_code`` (Microsoft: a user
    consents with a code), ``service_account`` (Google domain-wide delegation), ``api_token``
    (static: the token is sent as it is)."""
    client_id: HeaderText | None = Field(
        default=None,
        max_length=255,
        title="Client ID",
        json_schema_extra=hints(group="App", applies_to=_OAUTH),
    )
    """The app registration's client (application) id; Google service accounts take theirs
    from the key."""
    client_secret: SecretStr | None = Field(
        default=None,
        max_length=4096,
        title="Client secret",
        json_schema_extra=hints(group="App", applies_to=_SECRET_FLOWS),
    )
    """The app's client secret (secret, stored encrypted); a Microsoft device-code app (a
    public client) has none."""
    client_secret_expires: date | None = Field(
        default=None,
        title="Client secret expires",
        json_schema_extra=hints(group="App", placeholder="YYYY-MM-DD", applies_to=_OAUTH),
    )
    """The day the client secret expires (Entra shows it; at most 24 months): Mailroom warns
    before it."""
    certificate: SecretStr | None = Field(
        default=None,
        max_length=65536,
        title="Certificate",
        json_schema_extra=hints(
            group="App",
            applies_to={"provider": ("microsoft",), "flow": _CONFIDENTIAL_FLOWS},
        ),
    )
    """Microsoft: in place of a client secret, the PEM of the certificate uploaded to the app
    registration and its private key (secret, stored encrypted); Mailroom warns before the
    certificate expires."""
    service_account_key: SecretStr | None = Field(
        default=None,
        max_length=16384,
        title="Service account key",
        json_schema_extra=hints(group="App", applies_to={"flow": ("service_account",)}),
    )
    """Google: the service account's JSON key file content (secret, stored encrypted)."""
    authority: HeaderText | None = Field(
        default=None,
        max_length=1024,
        title="Authority / token URI",
        json_schema_extra=hints(
            group="App",
            applies_to=_OAUTH,
            placeholder_by={
                "provider": {
                    "microsoft": "https://login.microsoftonline.com/<tenant>",
                    "google": GOOGLE_TOKEN_URI,
                }
            },
        ),
    )
    """Microsoft: ``https://login.microsoftonline.com/<tenant id or domain>``; Google: the
    token URI (empty: ``https://oauth2.googleapis.com/token``)."""
    scopes: tuple[HeaderText, ...] = Field(
        default=(),
        max_length=16,
        title="Scopes",
        json_schema_extra=hints(group="App", applies_to=_OAUTH),
    )
    """Scopes asked for; empty: the provider's mail scopes (Microsoft delegated:
    ``https://outlook.office.com/IMAP.AccessAsUser.All``, ``.../SMTP.Send``,
    ``offline_access``; app-only: ``https://outlook.office365.com/.default``; Google:
    ``https://mail.google.com/``)."""
    redirect_uri: HeaderText | None = Field(
        default=None,
        max_length=1024,
        title="Redirect URI",
        json_schema_extra=hints(
            group="App",
            placeholder="https://<config service>/oauth/callback",
            applies_to={"flow": ("authorization_code",)},
        ),
    )
    """Where the provider sends the browser back after consent: the config service's
    ``/oauth/callback``, exactly as registered with the app."""
    ca_file: str | None = Field(
        default=None,
        max_length=4096,
        title="Token issuer CA file",
        json_schema_extra=hints(
            group="App", placeholder="the system's CA store", applies_to=_OAUTH
        ),
    )
    """CA that signed a private token issuer's certificate; empty: the system store."""
    token: SecretStr | None = Field(
        default=None,
        max_length=4096,
        title="API token",
        json_schema_extra=hints(group="Token", applies_to={"provider": ("static",)}),
    )
    """Static: the API token the mail server issued (secret, stored encrypted), sent as
    ``Authorization: Bearer <token>`` (JMAP) or in SASL XOAUTH2 (IMAP, POP3, SMTP)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not CREDENTIAL_NAME.match(value):
            raise ValueError(
                "credential name must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _static_flow(cls, data: object) -> object:
        # A static credential has one flow: naming the provider is enough. The API and the
        # CLI fill in the default flow (client_credentials), which is taken as unset here.
        if (
            isinstance(data, dict)
            and data.get("provider") == "static"
            and data.get("flow") in (None, "", "client_credentials")
        ):
            return {**data, "flow": "api_token"}
        return data

    @model_validator(mode="after")
    def _complete(self) -> Credential:
        if self.flow not in FLOWS[self.provider]:
            raise ValueError(
                f"flow {self.flow} is not offered by {self.provider}: use one of "
                f"{', '.join(FLOWS[self.provider])}"
            )
        if self.provider == "static":
            return self._static_complete()
        if self.token is not None:
            raise ValueError("token belongs to a static credential (provider static)")
        if self.flow == "service_account":
            if self.service_account_key is None:
                raise ValueError("flow service_account needs service_account_key (the JSON key)")
        elif self.client_id is None:
            raise ValueError(f"flow {self.flow} needs client_id")
        needs_secret = self.flow == "client_credentials" or (
            self.flow == "authorization_code" and self.provider == "google"
        )
        if self.client_secret is not None and self.certificate is not None:
            raise ValueError("give client_secret or certificate, not both")
        if self.certificate is not None:
            if self.provider != "microsoft" or self.flow == "device_code":
                raise ValueError("a certificate signs in Microsoft confidential clients only")
            certificate_pair(self.certificate.get_secret_value())
        elif needs_secret and self.client_secret is None:
            raise ValueError(
                f"{self.provider} flow {self.flow} needs client_secret"
                + (" (or certificate)" if self.provider == "microsoft" else "")
            )
        if self.provider == "microsoft" and self.authority is None:
            raise ValueError(
                "a Microsoft credential needs authority, e.g. "
                "https://login.microsoftonline.com/<tenant>"
            )
        if self.authority is not None and not self.authority.startswith("https://"):
            raise ValueError("the authority (token URI) must be an https:// URL")
        if self.flow == "authorization_code" and self.redirect_uri is None:
            raise ValueError(
                "flow authorization_code needs redirect_uri: the config service's "
                "/oauth/callback as registered with the app"
            )
        return self

    def _static_complete(self) -> Credential:
        if self.token is None or not self.token.get_secret_value().strip():
            raise ValueError("a static credential needs token (the server's API token)")
        given = [f for f in _OAUTH_FIELDS if getattr(self, f) not in (None, ())]
        if given:
            raise ValueError(
                f"a static credential holds only its token: leave out {', '.join(given)}"
            )
        return self

    def secrets(self) -> tuple[SecretStr | None, ...]:
        """The credential's secrets: client secret, certificate, service account key, token."""
        return (self.client_secret, self.certificate, self.service_account_key, self.token)

    @property
    def static(self) -> bool:
        """True for a static token (sent as it is; no issuer, no expiry)."""
        return self.flow == "api_token"

    @property
    def delegated(self) -> bool:
        """True when a user consents and Mailroom keeps their refresh token."""
        return self.flow in DELEGATED

    @property
    def effective_scopes(self) -> list[str]:
        """The scopes asked for: the given ones or the provider's mail scopes."""
        if self.scopes:
            return list(self.scopes)
        if self.provider == "google":
            return list(GOOGLE_SCOPES)
        if self.flow == "client_credentials":
            return ["https://outlook.office365.com/.default"]
        return list(MICROSOFT_SCOPES)

    @property
    def token_uri(self) -> str:
        """Google's token endpoint for this credential."""
        return self.authority or GOOGLE_TOKEN_URI


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


def certificate_pair(pem: str) -> tuple[str, x509.Certificate]:
    """The private key (PEM) and the certificate of a certificate credential's PEM text;
    ValueError when either is missing or unreadable."""
    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(pem)]
    keys = [text for kind, text in blocks if kind.endswith("PRIVATE KEY")]
    certs = [text for kind, text in blocks if kind == "CERTIFICATE"]
    if not keys or not certs:
        raise ValueError("certificate must be PEM holding the certificate and its private key")
    try:
        return keys[0], x509.load_pem_x509_certificate(certs[0].encode())
    except ValueError:
        raise ValueError("the certificate in the PEM cannot be read") from None


Consent = Literal["not_needed", "pending", "granted", "failing"]


class CredentialState(BaseModel):
    """What Mailroom has learned using a credential; no secret is in it (the sealed token
    cache is kept apart, see ``shared.store.credentials``)."""

    name: str
    consent: Consent = "not_needed"
    """``pending`` until a user consented (delegated flows), ``granted`` after, ``failing``
    once the issuer refused a refresh (consent again) or a server refused a static token
    (until a server accepts it or a new token is set)."""
    consented_by: str | None = None
    """The user who consented (the token's account), when known."""
    refresh_token_at: datetime | None = None
    """When the current refresh token was issued (delegated flows)."""
    last_token_at: datetime | None = None
    token_expires_at: datetime | None = None
    last_login_at: datetime | None = None
    """The last login to a mail server (IMAP, POP3 or SMTP) with this credential."""
    last_error: str | None = None
    """The issuer's or the server's last refusal, as it said it."""
    last_error_at: datetime | None = None
    version: int = 0
    """Bumped on every write of the token cache: several fetchers share it safely."""


CredentialAction = Literal["added", "changed", "deleted", "authorize"]


class CredentialLogEntry(BaseModel):
    """Audit of one administrator's action on a credential; names the fields it changed,
    never their values."""

    name: str
    action: CredentialAction
    who: str
    at: datetime
    fields: list[str] = []
    """The fields added or changed (a secret by its name only)."""
