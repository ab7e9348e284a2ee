"""The outgoing registry hands each mail to the adapter of its connection's protocol."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from typing import get_args

from services.sender.registry import ADAPTERS, AdapterDeps, Transports
from services.sender.transport import SendResult, Starting
from shared.models.config import OutgoingConnection, OutgoingProtocol


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str] | None]] = []
        self.closed = False

    async def send(
        self,
        message: EmailMessage,
        connection: OutgoingConnection,
        recipients: Sequence[str] | None = None,
        *,
        starting: Starting | None = None,
    ) -> SendResult:
        if starting is not None:
            await starting()
        self.sent.append((connection.host, list(recipients) if recipients else None))
        return SendResult("250 ok")

    async def close(self) -> None:
        self.closed = True


async def test_mail_goes_to_its_protocols_adapter_opened_once_and_closed() -> None:
    made: list[_Recorder] = []

    def factory(deps: AdapterDeps) -> _Recorder:
        made.append(_Recorder())
        return made[-1]

    transports = Transports(AdapterDeps(), {"smtp": factory})
    started: list[bool] = []

    async def starting() -> None:
        started.append(True)

    conn = OutgoingConnection(host="smtp.example.org")
    assert conn.protocol == "smtp"  # the default: existing configurations keep working
    for _ in range(2):
        result = await transports.send(EmailMessage(), conn, ["a@example.org"], starting=starting)
    assert result.reply == "250 ok"
    assert len(made) == 1 and made[0].sent == [("smtp.example.org", ["a@example.org"])] * 2
    assert started == [True, True]
    await transports.close()
    assert made[0].closed


def test_every_outgoing_protocol_has_an_adapter() -> None:
    assert set(ADAPTERS) == set(get_args(OutgoingProtocol)) == {"smtp", "graph", "jmap"}
