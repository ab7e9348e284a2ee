"""The ``concurrency`` setting through the whole sender service, against a real aiosmtpd
server that counts its sessions and holds each DATA until the expected number of
transactions run at once: N connections deliver N mails at a time, one never more than one,
and a change of the setting by the config broadcast rebuilds the pool; the API and the CLI
set and show it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.config.properties import set_property
from services.sender.service import build as sender_service
from shared.broker import publish
from shared.config_views import OUTGOING_KEY, OUTGOING_MODULE
from shared.models.messages import OutgoingMail
from shared.runtime import Runtime
from shared.service import Stack
from shared.topology import MAIL_OUTGOING
from tests.integration.sender.helpers import outgoing_mail
from tests.support import eventually
from tests.support_cli import mailroom, settings_cli_env

pytestmark = pytest.mark.integration


@dataclass
class CountingHandler:
    """Counts open connections and running transactions (MAIL to the end of DATA), keeping
    the maximum of each; DATA waits until ``hold_until`` transactions run at once (or all
    ``expected`` mails still to come), or ``grace`` seconds, so that a pool that could open
    more gets every chance to."""

    hold_until: int
    grace: float
    expected: int = 0
    open: int = 0
    busy: int = 0
    max_open: int = 0
    max_busy: int = 0
    delivered: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def connected(self, delta: int) -> None:
        self.open += delta
        self.max_open = max(self.max_open, self.open)

    def reset(self, *, hold_until: int, grace: float) -> None:
        self.hold_until, self.grace = hold_until, grace
        self.max_open, self.max_busy = self.open, self.busy

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        async with self._changed:
            self.busy += 1
            self.max_busy = max(self.max_busy, self.busy)
            self._changed.notify_all()
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(
                        lambda: self.busy >= min(self.hold_until, self.expected)
                    ),
                    self.grace,
                )
            self.busy -= 1
            self.expected -= 1
            self.delivered += 1
            self._changed.notify_all()
        return "250 OK kept"


class _CountingSMTP(SMTP):
    def __init__(self, handler: CountingHandler) -> None:
        super().__init__(handler, hostname="counting.localhost")
        self._counter = handler

    def connection_made(self, transport: Any) -> None:
        self._counter.connected(+1)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._counter.connected(-1)
        super().connection_lost(exc)


@asynccontextmanager
async def counting_server(handler: CountingHandler) -> AsyncIterator[int]:
    """Plain SMTP on a free port; yields the port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _CountingSMTP(handler), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def running_sender(rt: Runtime) -> AsyncIterator[Stack]:
    update = {"instance_id": "sender-concurrency"}
    stack = Stack([sender_service], rt.settings.model_copy(update=update))
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()


def smtp_property(port: int, concurrency: int) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "security": "none", "concurrency": concurrency}


async def configure(rt: Runtime, port: int, concurrency: int) -> None:
    value = smtp_property(port, concurrency)
    await rt.store.properties.put(module=OUTGOING_MODULE, key=OUTGOING_KEY, value=value, who="t")
    await rt.reload_config()


async def send_all(rt: Runtime, handler: CountingHandler, count: int) -> list[OutgoingMail]:
    """Publish ``count`` mails and wait until the server took them all and each is sent."""
    before = handler.delivered
    handler.expected += count
    mails = [outgoing_mail() for _ in range(count)]
    for mail in mails:
        await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)

    async def all_sent() -> bool:
        entries = [await rt.store.outbox.get(mail_id=m.mail_id) for m in mails]
        return all(e is not None and e.status == "sent" for e in entries)

    await eventually(all_sent, what=f"{count} mails sent")
    assert handler.delivered - before == count  # each once
    return mails


@pytest.mark.parametrize("concurrency", [2, 4])
async def test_n_connections_deliver_n_mails_at_once(rt: Runtime, concurrency: int) -> None:
    handler = CountingHandler(hold_until=concurrency, grace=10.0)
    async with counting_server(handler) as port:
        await configure(rt, port, concurrency)
        async with running_sender(rt):
            await send_all(rt, handler, 3 * concurrency)

    assert handler.max_busy == concurrency
    assert handler.max_open == concurrency  # each connection reused, never one too many


async def test_one_connection_never_sends_two_mails_at_once(rt: Runtime) -> None:
    # DATA waits a moment for a second transaction that must never come.
    handler = CountingHandler(hold_until=2, grace=0.2)
    async with counting_server(handler) as port:
        await configure(rt, port, 1)
        async with running_sender(rt):
            await send_all(rt, handler, 5)

    assert (handler.max_busy, handler.max_open) == (1, 1)


async def test_one_mail_published_twice_is_sent_once_though_connections_are_free(
    rt: Runtime,
) -> None:
    # DATA waits a moment for a second copy that must never come.
    handler = CountingHandler(hold_until=2, grace=0.5, expected=2)
    async with counting_server(handler) as port:
        await configure(rt, port, 4)
        async with running_sender(rt):
            mail = outgoing_mail()
            for _ in range(2):
                await publish(rt.broker, mail, routing_key=MAIL_OUTGOING)

            async def both_handled() -> bool:
                entry = await rt.store.outbox.get(mail_id=mail.mail_id)
                return entry is not None and entry.status == "sent" and entry.attempts == 2

            await eventually(both_handled, what="both deliveries of the mail handled")

    assert (handler.delivered, handler.max_busy) == (1, 1)


async def test_a_changed_setting_reaches_the_running_sender_by_broadcast(
    rt: Runtime, config_stack: Stack
) -> None:
    handler = CountingHandler(hold_until=2, grace=0.2)
    async with counting_server(handler) as port:
        await configure(rt, port, 1)
        async with running_sender(rt) as sender:
            await send_all(rt, handler, 4)
            assert handler.max_busy == 1

            await set_property(
                config_stack.rt,
                module=OUTGOING_MODULE,
                key=OUTGOING_KEY,
                value=smtp_property(port, 3),
                who="test",
            )

            async def reloaded() -> bool:
                outgoing = sender.rt.config.outgoing
                return outgoing is not None and outgoing.concurrency == 3

            await eventually(reloaded, what="the sender to load concurrency 3")
            handler.reset(hold_until=3, grace=10.0)
            await send_all(rt, handler, 9)

    assert handler.max_busy == 3


async def test_the_api_and_the_cli_set_and_show_the_concurrency(
    rt: Runtime, api: httpx.AsyncClient
) -> None:
    refused = await api.put("/outgoing", json={"host": "127.0.0.1", "concurrency": 33})
    assert refused.status_code == 422
    assert "SMTP connections used in parallel: from 1 to 32, not 33" in refused.text

    accepted = await api.put("/outgoing", json={"host": "127.0.0.1", "concurrency": 4})
    assert accepted.status_code == 200, accepted.text
    assert (await api.get("/outgoing")).json()["concurrency"] == 4

    env = settings_cli_env(rt.settings)
    set_by_cli = mailroom("outgoing", "set", "--host", "127.0.0.1", "--concurrency", "8", env=env)
    assert set_by_cli.returncode == 0, set_by_cli.stderr
    shown = mailroom("outgoing", "show", "--json", env=env)
    assert json.loads(shown.stdout)[0]["concurrency"] == 8
