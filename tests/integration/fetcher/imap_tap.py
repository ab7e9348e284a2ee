"""A TCP relay in front of Dovecot's plain IMAP port that records which process sent which
command: the test's own witness of who flagged or expunged mail, independent of the
fetcher's logs. Accounts must use ``security: none`` so that the commands are readable."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

DESTRUCTIVE = re.compile(rb"\b(STORE|EXPUNGE)\b", re.IGNORECASE)
LOGIN = re.compile(rb"\bLOGIN\s+\"?([^\s\"]+)", re.IGNORECASE)


@dataclass
class Connection:
    """One client connection: the client's pid, its user and its command lines (timed)."""

    pid: int | None
    opened: float
    user: str | None = None
    lines: list[tuple[float, bytes]] = field(default_factory=list)

    def destructive_after(self, moment: float) -> list[bytes]:
        """STORE / EXPUNGE command lines this connection sent after ``moment``."""
        return [line for at, line in self.lines if at > moment and DESTRUCTIVE.search(line)]


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the TCP socket from local port ``local_port`` to ``remote_port``.

    Both ports, not the local one alone: Linux reuses an ephemeral port for connections to
    other destinations, and other test runs on the machine hold connections of their own.
    """
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for row in f.readlines()[1:]:
                fields = row.split()
                local = int(fields[1].rsplit(":", 1)[1], 16)
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                if (local, remote) == (local_port, remote_port):
                    return fields[9]
    return None


def pid_of_client(port: int, server_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` owns the client socket from local ``port`` to ``server_port``."""
    inode = _socket_inode(port, server_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        with contextlib.suppress(OSError):
            for fd in fds.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    return None


class ImapTap:
    """Relay 127.0.0.1:<port> → the upstream IMAP port, recording client commands."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self.pids: list[int] = []
        """Processes whose connections are attributed (set before they connect)."""
        self.connections: list[Connection] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def __aenter__(self) -> ImapTap:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_port = writer.get_extra_info("peername")[1]
        conn = Connection(pid_of_client(client_port, self.port, self.pids), 0.0)
        conn.opened = time.monotonic()
        self.connections.append(conn)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]
        down = asyncio.create_task(self._pump(up_reader, writer, None))
        await self._pump(reader, up_writer, conn)
        await down

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Connection | None
    ) -> None:
        try:
            while line := await reader.readline():
                if conn is not None:
                    conn.lines.append((time.monotonic(), line))
                    if conn.user is None and (login := LOGIN.search(line)):
                        conn.user = login.group(1).decode()
                writer.write(line)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
