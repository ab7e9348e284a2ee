"""One schema per direction: what the API accepts and what it returns (never a secret)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.models.config import IncomingAccount, OutgoingConnection
from shared.models.messages import MailAddress
from shared.models.records import ArchivedMail, FailedMail


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountCreate(_In):
    """A new incoming account."""

    name: str = Field(max_length=64)
    protocol: Literal["IMAP", "IMAPS", "POP3", "POP3S"] = "IMAPS"
    security: Literal["none", "STARTTLS", "auto"] = "auto"
    host: str = Field(max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    folder: str = Field(default="INBOX", max_length=255)
    username: str = Field(max_length=320)
    password: SecretStr | None = Field(default=None, max_length=1024)
    delete_read_messages: Literal["inherit", "yes", "no"] = "inherit"
    debug: Literal["inherit", "yes", "no"] = "inherit"
    enabled: bool = True
    verify_tls: bool = True
    ca_file: str | None = Field(default=None, max_length=4096)
    auth: Literal["basic", "oauth2"] = "basic"
    client_id: str | None = Field(default=None, max_length=255)
    client_secret: SecretStr | None = Field(default=None, max_length=4096)
    authority: str | None = Field(default=None, max_length=1024)
    scope: str | None = Field(default=None, max_length=1024)
    oauth_ca_file: str | None = Field(default=None, max_length=4096)
    start_position: Literal["all", "new", "since"] = "all"
    start_date: str | None = Field(default=None, max_length=10, description="YYYY-MM-DD")


class AccountUpdate(_In):
    """A change to an account; omitted fields (and an omitted password) are kept."""

    protocol: Literal["IMAP", "IMAPS", "POP3", "POP3S"] | None = None
    security: Literal["none", "STARTTLS", "auto"] | None = None
    host: str | None = Field(default=None, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    folder: str | None = Field(default=None, max_length=255)
    username: str | None = Field(default=None, max_length=320)
    password: SecretStr | None = Field(default=None, max_length=1024)
    delete_read_messages: Literal["inherit", "yes", "no"] | None = None
    debug: Literal["inherit", "yes", "no"] | None = None
    enabled: bool | None = None
    verify_tls: bool | None = None
    ca_file: str | None = Field(default=None, max_length=4096)
    auth: Literal["basic", "oauth2"] | None = None
    client_id: str | None = Field(default=None, max_length=255)
    client_secret: SecretStr | None = Field(default=None, max_length=4096)
    authority: str | None = Field(default=None, max_length=1024)
    scope: str | None = Field(default=None, max_length=1024)
    oauth_ca_file: str | None = Field(default=None, max_length=4096)
    start_position: Literal["all", "new", "since"] | None = None
    start_date: str | None = Field(default=None, max_length=10, description="YYYY-MM-DD")


class AccountCopy(_In):
    """The name of the copy, and whether it starts active (by default it does not)."""

    name: str = Field(max_length=64)
    enabled: bool = False


class AccountRename(_In):
    """The account's new name."""

    name: str = Field(max_length=64)


class _PublicWithSecrets(BaseModel):
    """A settings view as the API shows it: secrets only as set / not set."""

    port: int
    password_set: bool
    auth: str = "basic"
    client_id: str | None = None
    client_secret_set: bool = False
    authority: str | None = None
    scope: str | None = None
    oauth_ca_file: str | None = None

    @classmethod
    def of(cls, view: IncomingAccount | OutgoingConnection) -> Self:
        """The public view: secrets replaced by flags, the port resolved."""
        data = view.model_dump(exclude={"password", "client_secret"})
        data["port"] = view.effective_port
        return cls(
            **data,
            password_set=view.password is not None,
            client_secret_set=view.client_secret is not None,
        )


class AccountPublic(_PublicWithSecrets):
    """An incoming account as the API shows it."""

    name: str
    protocol: str
    security: str
    host: str
    folder: str
    username: str
    delete_read_messages: str
    debug: str = "inherit"
    enabled: bool
    verify_tls: bool
    ca_file: str | None
    start_position: str = "all"
    start_date: date | None = None


class OutgoingIn(_In):
    """The outgoing SMTP connection; an omitted password is kept."""

    host: str | None = Field(default=None, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] | None = None
    username: str | None = Field(default=None, max_length=320)
    password: SecretStr | None = Field(default=None, max_length=1024)
    connect_timeout_ms: int | None = Field(default=None, ge=100, le=600_000)
    send_timeout_ms: int | None = Field(default=None, ge=100, le=3_600_000)
    # Bounds checked by OutgoingConnection, whose refusal names them.
    concurrency: int | None = None
    verify_tls: bool | None = None
    ca_file: str | None = Field(default=None, max_length=4096)
    auth: Literal["basic", "oauth2"] | None = None
    client_id: str | None = Field(default=None, max_length=255)
    client_secret: SecretStr | None = Field(default=None, max_length=1024)
    authority: str | None = Field(default=None, max_length=1024)
    scope: str | None = Field(default=None, max_length=1024)
    oauth_ca_file: str | None = Field(default=None, max_length=4096)
    credentials_from: str | None = Field(default=None, max_length=64)


class OutgoingPublic(_PublicWithSecrets):
    """The outgoing connection as the API shows it."""

    host: str
    security: str
    username: str | None
    connect_timeout_ms: int
    send_timeout_ms: int
    concurrency: int = 1
    verify_tls: bool
    ca_file: str | None
    credentials_from: str | None = None


class PropertyIn(_In):
    """A property value (JSON; the request body's size is capped, see ``limits``)."""

    value: Any


class VersionOut(BaseModel):
    """The configuration version after a change."""

    version: int


class FailedMailPublic(BaseModel):
    """A desk entry."""

    id: str
    queue: str
    ref: str
    account: str | None
    sender: str | None
    subject: str | None
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    status: str
    replays: int

    @classmethod
    def of(cls, entry: FailedMail) -> FailedMailPublic:
        """The public view of a desk entry."""
        return cls(**entry.model_dump(by_alias=False, exclude={"body", "routing_key"}))


class DeskAuditOut(BaseModel):
    """One audited operator action on a desk entry."""

    who: str
    at: datetime
    action: str
    outcome: str
    note: str


class CountOut(BaseModel):
    """How many entries match."""

    count: int


class ReplayOut(BaseModel):
    """The outcome of one replay."""

    failed_id: str
    replayed: bool
    note: str


class ArchivedMailSummary(BaseModel):
    """One line of the archive listing."""

    id: str
    message_id: str
    case_number: int | None
    kind: str
    to: list[MailAddress]
    subject: str
    flavour: str
    intercepted_at: datetime

    @classmethod
    def of(cls, mail: ArchivedMail) -> Self:
        """This view of an archived mail: the fields the class declares."""
        return cls.model_validate(mail.model_dump(include=set(cls.model_fields)))


class ArchivedMailPublic(ArchivedMailSummary):
    """An archived mail in full, with the message as it would have been sent."""

    model_config = ConfigDict(populate_by_name=True)

    from_: MailAddress = Field(alias="from")
    text: str
    raw: str
