"""One schema per direction: what the API accepts and what it returns (never a secret).

The account and outgoing-connection schemas are derived from their stored views
(``services.config.api.model_schemas``): a field is declared once, on the view.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field

from services.config.api.model_schemas import (
    PublicView,
    RequestBody,
    create_schema,
    public_schema,
    update_schema,
)
from shared.models.config import IncomingAccount, OutgoingConnection
from shared.models.credentials import Credential
from shared.models.messages import MailAddress
from shared.models.records import ArchivedMail, FailedMail

if TYPE_CHECKING:
    # The type checker sees the bases; the fields are derived from the stored views below.
    AccountCreate = RequestBody
    AccountUpdate = RequestBody
    AccountPublic = PublicView
    OutgoingIn = RequestBody
    OutgoingPublic = PublicView
    CredentialCreate = RequestBody
    CredentialUpdate = RequestBody
    CredentialPublic = PublicView
else:
    AccountCreate = create_schema(IncomingAccount, "AccountCreate", "A new incoming account.")
    AccountUpdate = update_schema(
        IncomingAccount,
        "AccountUpdate",
        "A change to an account; omitted fields (and an omitted password) are kept.",
        exclude=("name",),  # renaming is its own action
    )
    AccountPublic = public_schema(
        IncomingAccount,
        "AccountPublic",
        "An incoming account as the API shows it: secrets only as set / not set.",
        resolved={"port": (int, "effective_port")},
    )
    OutgoingIn = update_schema(
        OutgoingConnection,
        "OutgoingIn",
        "The outgoing SMTP connection; omitted fields (and an omitted password) are kept.",
    )
    OutgoingPublic = public_schema(
        OutgoingConnection,
        "OutgoingPublic",
        "The outgoing connection as the API shows it: secrets only as set / not set.",
        resolved={"port": (int, "effective_port")},
    )
    CredentialCreate = create_schema(
        Credential, "CredentialCreate", "A new credential (OAuth 2.0 or a static API token)."
    )
    CredentialUpdate = update_schema(
        Credential,
        "CredentialUpdate",
        "A change to a credential; omitted fields (and omitted secrets) are kept.",
        exclude=("name",),
    )
    CredentialPublic = public_schema(
        Credential,
        "CredentialPublic",
        "A credential as the API shows it: secrets only as set / not set.",
    )


class AccountCopy(RequestBody):
    """The name of the copy, and whether it starts active (by default it does not)."""

    name: str = Field(max_length=64)
    enabled: bool = False


class AccountRename(RequestBody):
    """The account's new name."""

    name: str = Field(max_length=64)


class PropertyIn(RequestBody):
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
