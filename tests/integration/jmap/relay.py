"""The SMTP server behind Cyrus' EmailSubmission in the tests: an aiosmtpd sink that keeps
each mail with its envelope.

Not ``deploy/local/smtp_sink.py``: Cyrus puts RFC 3461/4954 parameters (``AUTH=``,
``ENVID=``, ...) on MAIL FROM, which aiosmtpd refuses with 555 unless told to ignore them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from deploy.local._proc import free_ports


@dataclass
class Relayed:
    """One mail as the relay received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class Relay:
    """The mails received so far, in arrival order."""

    mails: list[Relayed] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: set[str] = field(default_factory=set)
    """Recipients answered 550 at RCPT TO."""
    port: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Accept the recipient unless it is in ``refuse``."""
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the mail."""
        with self.lock:
            self.mails.append(
                Relayed(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or b""),
                )
            )
        return "250 2.0.0 OK queued"


class _LenientSMTP(SMTP):
    """aiosmtpd's SMTP that ignores MAIL FROM parameters it does not know."""

    def _getparams(self, params: Sequence[str]) -> dict[str, str | bool] | None:
        known = [p for p in params if p.split("=", 1)[0] in ("SIZE", "BODY", "SMTPUTF8")]
        result: dict[str, str | bool] | None = super()._getparams(known)
        return result


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _LenientSMTP(self.handler, **self.SMTP_kwargs)


def start_relay() -> tuple[Relay, Controller]:
    """Start the relay on a free port of 127.0.0.1; its handler and controller (``.port``)."""
    (port,) = free_ports(1)
    relay = Relay(port=port)
    controller = _Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    return relay, controller
