"""A TCP gate in front of a real server, to take it away and bring it back within a test.

``cut()`` drops every open connection and refuses new ones (as a stopped server does);
``restore()`` accepts again. The server behind keeps its data, so a test sees exactly what a
service sees during an outage of its MongoDB (or SMTP server) without restarting anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

from deploy.local._proc import HOST
from services.processor.service import build as processor_service
from shared.service import Stack
from tests.support import server_settings

SCRIPT_GATES: list[Gate] = []
"""Gates a test lets an installed incoming-mail script cut (scripts are imported apart
from the test modules, so they find the gate here)."""


class Gate:
    """Forwards ``127.0.0.1:port`` to ``target_host:target_port`` while open."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def restore(self) -> None:
        """Accept connections (on the same port as before, once it had one)."""
        if self._server is None:
            self._server = await asyncio.start_server(self._pipe, HOST, self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by the gate's.

        A MongoDB URL gets ``directConnection=true``: the stand-in reports a one-node replica
        set, whose member address the driver would otherwise use, going round the gate.
        """
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@{HOST}:{self.port}" if auth else f"{HOST}:{self.port}"
        query = parts.query
        if parts.scheme == "mongodb":
            query = "&".join(q for q in (query, "directConnection=true") if q)
        return urlunsplit(parts._replace(netloc=netloc, query=query))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self._writers -= {writer, up_writer}


@contextlib.asynccontextmanager
async def gate_for(url: str) -> AsyncIterator[Gate]:
    """An open gate in front of the server of ``url`` (``mongodb://host:port/...``)."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port, url
    gate = Gate(parts.hostname, parts.port)
    await gate.restore()
    try:
        yield gate
    finally:
        await gate.cut()


def processor_behind(
    gate: Gate, *, rabbit_url: str, mongo_url: str, database: str, instance: str
) -> Stack:
    """A processor (not started) whose MongoDB is reached through ``gate``."""
    settings = server_settings(
        rabbit_url=rabbit_url, mongo_url=gate.url(mongo_url), database=database, instance=instance
    )
    return Stack([processor_service], settings)
