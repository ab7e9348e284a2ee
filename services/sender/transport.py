"""The outgoing seam: what the sender asks of any way of sending a built mail.

An adapter (SMTP through ``pool``, Microsoft Graph ``sendMail`` and JMAP
``EmailSubmission/set`` in ``transports``) sends one ``EmailMessage`` and answers with a
:class:`SendResult`: the server's acceptance text and the recipients it refused, each with
a code and text. Codes follow SMTP's classes whatever the transport (4xx: try again later,
5xx: never), so ``outcome`` turns any adapter's result into the same outbox record. The
claim-before-send (``starting``) and the outcome record live above the adapters, in
``deliver``: they do not change with the transport. ``registry`` picks the adapter by the
outgoing connection's ``protocol``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol, runtime_checkable

from shared.errors import Transient
from shared.models.config import OutgoingConnection


@dataclass(frozen=True)
class Refusal:
    """The server's refusal of one recipient."""

    code: int
    text: str

    @property
    def permanent(self) -> bool:
        """5xx: retrying will not help this recipient."""
        return 500 <= self.code < 600

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(frozen=True)
class SendResult:
    """The server's answer to one send of one mail."""

    reply: str | None
    """The acceptance, e.g. ``250 OK queued as 4Xyz``; None when every recipient was
    refused (nothing was sent)."""
    refused: dict[str, Refusal] = field(default_factory=dict)
    """Recipients the server refused: address → its reply."""


class OutcomeUnknown(Transient):
    """The connection broke after the whole mail was handed over and before the server
    answered: the server may have accepted it. Every adapter raises it: SMTP once the final
    ``.`` of DATA was written, Graph and JMAP once the request that submits the mail
    (``sendMail``; the one carrying ``EmailSubmission/set``) may have reached the server. The
    sender keeps its claim and records no outcome, so the redelivery checks the claim
    ("possibly sent") instead of sending the mail a second time (RFC 1047's duplicate
    window)."""


Starting = Callable[[], Awaitable[None]]
"""Awaited by a transport once it can send (holds a connection), right before it does."""


class OutgoingTransport(Protocol):
    """Sends built messages; every adapter (and every test fake) implements these two."""

    async def send(
        self,
        message: EmailMessage,
        connection: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SendResult:
        """Send ``message`` to ``recipients`` (default: from its headers); ``starting`` is
        awaited once the transport can send, right before it does (the sender claims the
        send there, durably: a mail waiting for a free connection has not started).

        Raise Transient or Permanent for failures of the whole send; refusals of single
        recipients come back in the result.
        """
        ...

    async def close(self) -> None:
        """Release connections, if any are open."""
        ...


@runtime_checkable
class CheckableTransport(Protocol):
    """An adapter that can test a connection without sending (Graph, JMAP; SMTP's test is
    its own, step by step, in ``probe``)."""

    async def check(self, connection: OutgoingConnection, *, sender: str | None) -> list[str]:
        """Sign in and prove what can be proven without sending a mail, as ``sender`` (the
        From Mailroom would send with) when given; the steps done, for the report. Raise
        Transient or Permanent (the server's own words, never a secret) on failure."""
        ...
