"""Helpers every command group shares: running a coroutine against a runtime, printing rows,
reading secrets from stdin, parsing values typed on the command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from shared.errors import MailroomError
from shared.models.config import SystemConfig
from shared.runtime import Runtime
from shared.settings import SharedSettings

T = TypeVar("T")
WHO = "cli"

console = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@asynccontextmanager
async def _runtime(*, broker: bool) -> AsyncIterator[Runtime]:
    rt = Runtime(SharedSettings())
    await rt.start_store()
    if broker:
        await rt.start_broker()
    try:
        yield rt
    finally:
        if broker:
            await rt.broker.stop()
        await rt.close()


def run_with(work: Callable[[Runtime], Awaitable[T]], *, broker: bool = False) -> T:
    """Run ``work`` against a fresh runtime (with the broker when it changes something);
    a ``MailroomError`` becomes a red one-line message and exit status 1."""

    async def main() -> T:
        async with _runtime(broker=broker) as rt:
            return await work(rt)

    try:
        return asyncio.run(main())
    except MailroomError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


async def loaded_config(rt: Runtime) -> SystemConfig:
    """The configuration the runtime read when it opened the store."""
    return rt.config


def print_rows(
    rows: Sequence[BaseModel], columns: Sequence[str], as_json: bool, title: str
) -> None:
    """Print models as a table of ``columns``, or all their fields as JSON."""
    data = [r.model_dump(mode="json", by_alias=True) for r in rows]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in data:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, booleans, lists), the plain string otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def read_secret(from_stdin: bool) -> str | None:
    """One line from stdin when asked for: secrets never come from arguments."""
    return sys.stdin.readline().rstrip("\r\n") if from_stdin else None
