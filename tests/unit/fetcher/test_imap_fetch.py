"""The adapter's own UID FETCH command, fed through aioimaplib's protocol as the server's
bytes arrive: split anywhere, with IMAP syntax inside the literals."""

from __future__ import annotations

import asyncio

import aioimaplib

from shared.mailbox._imap_fetch import UidFetch
from shared.mailbox._imap_parse import parse_bodies

FIRST = b"Subject: {5}\r\n\r\nbody ) ( {3}\r\n* 9 FETCH (\r\nA1 OK not the end\r\n"
SECOND = b"Subject: two\r\n\r\n" + bytes(range(256)) * 40


def server_answer(tag: str) -> bytes:
    return (
        b"* 3 FETCH (FLAGS (\\Seen))\r\n"  # another client flagged message 3 meanwhile
        + b"* 1 FETCH (UID 5 BODY[] {%d}\r\n" % len(FIRST)
        + FIRST
        + b")\r\n* 2 FETCH (BODY[] {%d}\r\n" % len(SECOND)
        + SECOND
        + b" UID 9)\r\n* 4 FETCH (UID 11 BODY[] {0}\r\n)\r\n"
        + f"{tag} OK Fetch completed.\r\n".encode()
    )


async def fetch_in_pieces(size: int) -> UidFetch:
    """Run a UidFetch while the answer arrives in pieces of ``size`` bytes."""
    loop = asyncio.get_running_loop()
    protocol = aioimaplib.IMAP4ClientProtocol(loop)
    protocol.state = aioimaplib.SELECTED
    command = UidFetch("A1", "5:11", "(UID BODY.PEEK[])", loop=loop, timeout=5)
    protocol.pending_async_commands[command.untagged_resp_name] = command
    answer = server_answer("A1")
    for start in range(0, len(answer), size):
        protocol.data_received(answer[start : start + size])
    await asyncio.wait_for(command.wait(), 5)
    return command


async def test_bodies_arrive_exact_however_the_answer_is_split() -> None:
    for size in (1, 7, 64, 4096, 1 << 20):
        command = await fetch_in_pieces(size)
        assert command.response.result == "OK"
        bodies = parse_bodies(command.response.lines)
        assert bodies == {5: FIRST, 9: SECOND, 11: b""}, size
        assert all(type(body) is bytes for body in bodies.values())


async def test_the_command_waits_until_the_fetch_item_is_closed() -> None:
    loop = asyncio.get_running_loop()
    command = UidFetch("A1", "5", "(UID BODY.PEEK[])", loop=loop, timeout=5)
    command.append_to_resp(b"1 FETCH (UID 5 FLAGS (\\Seen)")
    assert command.wait_data()
    command.append_to_resp(b")")
    assert not command.wait_data()
    command.append_to_resp(b"2 FETCH (UID 6")
    assert command.wait_data()
