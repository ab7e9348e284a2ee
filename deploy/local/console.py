"""Serve a running stack's HTTP app (the config API and its console) over real HTTP on a free
port, inside the caller's event loop: a browser needs a URL, and the caller keeps the
stack's runtime at hand (to add users, seed mail) on the same loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn

from deploy.local._proc import HOST
from shared.logs import UVICORN_LOG_CONFIG
from shared.service import Stack


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C stays with the program that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_console(stack: Stack) -> AsyncIterator[str]:
    """Serve ``stack.asgi`` on 127.0.0.1 at a free port while the block runs; yields the base
    URL (``http://127.0.0.1:PORT``). The stack must be started (and is not stopped here)."""
    # Bound here and handed over, so no other process can take the port in between.
    sock = socket.socket()
    sock.bind((HOST, 0))
    port = int(sock.getsockname()[1])
    # The stack's lifespan is the caller's (it is started already); uvicorn only serves.
    config = uvicorn.Config(stack.asgi, log_config=UVICORN_LOG_CONFIG, lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("the console's HTTP server stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
