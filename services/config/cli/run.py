"""``mailroom run`` and ``mailroom secret-key``: starting services, making keys."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any

import typer

from shared.settings import SharedSettings


def run(
    service: Annotated[
        str, typer.Argument(help="all, config, fetcher, processor or sender")
    ] = "all",
    host: Annotated[str | None, typer.Option(help="HTTP address (API, probes, metrics)")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (API, probes, metrics)")] = None,
) -> None:
    """Run one service, or all four in this process."""
    from services.config.service import build as config
    from services.fetcher.service import build as fetcher
    from services.processor.service import build as processor
    from services.sender.service import build as sender
    from shared.service import Stack

    builders = {"config": config, "fetcher": fetcher, "processor": processor, "sender": sender}
    if service != "all" and service not in builders:
        raise typer.BadParameter(f"unknown service {service!r}; use all or {', '.join(builders)}")
    chosen = list(builders.values()) if service == "all" else [builders[service]]
    settings = SharedSettings()
    stack = Stack(chosen, settings)
    runner = stack.app()
    # Unset, the stack picks the address: MAILROOM_HTTP_*, else the service's own port.
    options: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v}
    asyncio.run(runner.run(run_extra_options=options))


def secret_key() -> None:
    """Print a new random value for MAILROOM_SECRET_KEY or MAILROOM_API_TOKEN."""
    typer.echo(secrets.token_urlsafe(32))
